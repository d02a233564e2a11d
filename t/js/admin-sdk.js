// OpenAI's own Node SDK with a key the admin API made: a completion with
// it, and once the key is revoked the SDK's AuthenticationError.  Prints
// one JSON line for t/113-admin-sdk.t.

const path = require('path');
const OpenAI = require(path.join(process.env.AI_GUARD_NODE_MODULES,
                                 'openai'));

async function main() {
    const out = {};
    const client = new OpenAI({ baseURL: process.env.AI_GUARD_BASE_URL,
                                apiKey: process.env.AI_GUARD_KEY,
                                maxRetries: 0 });

    try {
        const r = await client.chat.completions.create({
            model: 'gpt-4o-mini',
            messages: [{ role: 'user', content: 'hi' }] });

        out.content = r.choices[0].message.content;
        out.totalTokens = r.usage.total_tokens;

    } catch (e) {
        out.raised = e.constructor.name;
        out.isAuthenticationError = e instanceof OpenAI.AuthenticationError;
        out.status = e.status;
        out.code = e.code;
    }

    console.log(JSON.stringify(out));
}

main();
