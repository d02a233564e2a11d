# OpenAI's official Node SDK as the client: it raises RateLimitError on
# our 429, and with retries on it waits as our headers say, then succeeds.
# Its stream iterator, with ai_guard_stream_usage inject (the default),
# yields every content chunk and no usage chunk to a client that did not
# ask for one, which is still settled on the upstream's usage; a client
# that asked gets the usage chunk.
# Needs node and npm (the npm registry) to install the SDK under build/;
# skipped when they are not there.
#
# Plain Perl rather than a block: the client is the SDK in a Node process
# of its own, with its own retries and timing, not Test::Nginx's.

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::SHA qw(sha256_hex);
use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use AiGuardNginx;

my $top = abs_path("$FindBin::Bin/..");
my $modules = AiGuardNginx::openai_sdk($top);

plan skip_all => 'node or the openai npm package is not available'
    unless $modules;
plan tests => 13;

my $rpm = 120;

my $n = AiGuardNginx->new(name => 'sdk');

# sdk-1 for the rate limit; sdk-2, on a tier without limits, streams
my $stream_digest = sha256_hex('sk-aig-test-stream-0001');

$n->write_file('html/keys.json', <<"_EOF_");
{"keys": [
  {"id": "sdk-1", "tenant": "sdk", "tier": "fast",
   "sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"},
  {"id": "sdk-2", "tenant": "stream", "tier": "open",
   "sha256": "$stream_digest"}
]}
_EOF_

$n->write_config(<<"_EOC_");
    ai_guard_tier  fast  rpm=$rpm;
    ai_guard_tier  open;
    ai_guard_keys  \$TEST_NGINX_HTML_DIR/keys.json;

    # OpenAI's usage chunk, only when the body asks for it (the SDK
    # indents its JSON)
    map \$request_body \$usage_chunk {
        "~\\"include_usage\\":\\s*true" 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":2,"total_tokens":9}}\\n\\n';
        default "";
    }

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /s/v1/ {
            ai_guard on;
            proxy_buffering off;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/stream/;
        }

        location /stream/ {
            default_type text/event-stream;
            client_body_buffer_size 64k;
            echo_read_request_body;
            echo -n 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\\n\\n';
            echo_flush;
            echo -n 'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":"stop"}]}\\n\\n';
            echo -n \$usage_chunk;
            echo -n 'data: [DONE]\\n\\n';
        }

        location = /usage {
            ai_guard_usage;
        }

        location /mock/ {
            default_type application/json;
            return 200 '{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}';
        }
    }
_EOC_

$n->start;

local $ENV{AI_GUARD_NODE_MODULES} = $modules;
local $ENV{AI_GUARD_BASE_URL} = 'http://127.0.0.1:' . $n->port . '/v1';
local $ENV{AI_GUARD_KEY} = 'sk-aig-test-valid-0001';
local $ENV{AI_GUARD_RPM} = $rpm;

my $out = `node $FindBin::Bin/js/openai-sdk.js`;
diag $out if $?;

my %r = $out =~ /"(\w+)":("[^"]*"|[\w.-]+)/g;
s/^"|"$//g for values %r;

is($r{raised}, 'RateLimitError', 'the SDK raises RateLimitError');
ok(($r{admitted} // 0) >= $rpm,
   "... once the $rpm requests of the minute have passed ("
   . ($r{admitted} // 'none') . ' did)');
is($r{isRateLimitError}, 'true', '... an instance of OpenAI.RateLimitError');
is($r{status}, 429, '... for a 429');
is($r{code}, 'rate_limit_exceeded', '... with our code');
ok($r{retryAfterMs} > 0 && $r{retryAfterMs} <= 60000 / $rpm,
   "retry-after-ms is at most one refill ($r{retryAfterMs} ms)");
is($r{retried}, 'ok', 'with retries on, the SDK succeeds');
ok($r{waitedMs} >= $r{retryAfterMs} * 0.9,
   "... having waited what retry-after-ms said ($r{waitedMs} ms)");

local $ENV{AI_GUARD_BASE_URL} = 'http://127.0.0.1:' . $n->port . '/s/v1';
local $ENV{AI_GUARD_KEY} = 'sk-aig-test-stream-0001';

$out = `node $FindBin::Bin/js/openai-stream.js`;
diag $out if $?;

%r = $out =~ /"(\w+)":("[^"]*"|[\w.-]+)/g;
s/^"|"$//g for values %r;

is($r{plainText}, 'Hel|lo',
   'without include_usage: every content chunk, no chunk without choices');
is($r{plainUsage}, 'null', '... and no usage chunk');
is($r{askedText}, 'Hel|lo|(no choices)',
   'with include_usage: the content chunks, then the usage chunk');
is($r{askedUsage}, 9, '... with the upstream\'s usage');

my (undef, undef, $report) = $n->request('GET', '/usage');
like($report, qr/"tenant":"stream","requests":2,"input_tokens":\d+,"output_tokens":\d+,"cached_tokens":\d+,"estimated_requests":0,/,
     'both streams settled on the upstream\'s usage: none on the estimate');

$n->stop;

