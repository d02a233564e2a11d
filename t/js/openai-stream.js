// OpenAI's own Node SDK streaming through a guarded location that injects
// stream_options.include_usage: the stream iterator must yield every
// content chunk and, for a client that did not ask, no chunk with empty
// choices (code that reads chunk.choices[0] would throw on it); a client
// that asked must see the usage chunk.  Prints one JSON line for
// t/045-openai-sdk.t.

const path = require('path');
const OpenAI = require(path.join(process.env.AI_GUARD_NODE_MODULES,
                                 'openai'));

const client = new OpenAI({ baseURL: process.env.AI_GUARD_BASE_URL,
                            apiKey: process.env.AI_GUARD_KEY,
                            maxRetries: 0 });

async function run(extra) {
    const stream = await client.chat.completions.create(Object.assign({
        model: 'gpt-4o-mini', stream: true,
        messages: [{ role: 'user', content: 'hi' }] }, extra));
    const seen = [];
    let usage = null;

    for await (const chunk of stream) {
        if (chunk.usage) {
            usage = chunk.usage.total_tokens;
        }

        seen.push(chunk.choices.length ? chunk.choices[0].delta.content
                                       : '(no choices)');
    }

    return { text: seen.join('|'), usage: usage };
}

async function main() {
    const plain = await run({});
    const asked = await run({ stream_options: { include_usage: true } });

    console.log(JSON.stringify({ plainText: plain.text,
                                 plainUsage: plain.usage,
                                 askedText: asked.text,
                                 askedUsage: asked.usage }));
}

main().catch((e) => { console.log(JSON.stringify({ error: String(e) }));
                      process.exit(1); });
