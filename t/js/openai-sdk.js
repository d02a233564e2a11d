// OpenAI's own Node SDK against a guarded location: a 429 must raise
// RateLimitError, and with retries on the SDK must wait as the headers
// say and then succeed.  Prints one JSON line for t/045-openai-sdk.t.

const path = require('path');
const OpenAI = require(path.join(process.env.AI_GUARD_NODE_MODULES,
                                 'openai'));

const base = process.env.AI_GUARD_BASE_URL;
const key = process.env.AI_GUARD_KEY;
const limit = Number(process.env.AI_GUARD_RPM);

async function main() {
    const out = {};
    const strict = new OpenAI({ baseURL: base, apiKey: key, maxRetries: 0 });
    const msg = { model: 'gpt-4o-mini',
                  messages: [{ role: 'user', content: 'hi' }] };

    // the bucket refills while the requests run (one every 60/limit s):
    // on a busy machine the limit+1st may find a request again, so send
    // until the first refusal, at most three bucketfuls
    out.raised = 'nothing';

    for (let i = 0; i < 3 * limit; i++) {
        try {
            await strict.chat.completions.create(msg);
        } catch (e) {
            out.raised = e.constructor.name;
            out.isRateLimitError = e instanceof OpenAI.RateLimitError;
            out.status = e.status;
            out.code = e.code;
            out.retryAfterMs = Number(e.headers['retry-after-ms']);
            out.admitted = i;
            break;
        }
    }

    const patient = new OpenAI({ baseURL: base, apiKey: key,
                                 maxRetries: 2 });
    const t0 = Date.now();
    const r = await patient.chat.completions.create(msg);
    out.waitedMs = Date.now() - t0;
    out.retried = r.choices[0].message.content;

    console.log(JSON.stringify(out));
}

main().catch((e) => { console.log(JSON.stringify({ error: String(e) }));
                      process.exit(1); });
