# The meter: each upstream response shape delivered whole, in random
# pieces and one byte a buffer gives the exact counts; the body reaches the
# client byte for byte; decoys, streams without usage, errors, gzip.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(1);

# each request: its status and the three patterns of the default
# --- no_error_log (24 requests); then 21 body checks and 67 error_log
# patterns (TEST 1-6 and 10 three after each of three requests)
plan tests => repeat_each() * (4 * 24 + 21 + 67);

no_shuffle();

our $http_config = <<'_EOC_';
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;

    ai_guard_price  gpt-4o-mini*  input=0.15 output=0.60 cached_input=0.075;
    ai_guard_price  claude-*      input=3 output=15 cached_input=0.30
                                  cache_write=3.75;
    ai_guard_price  *             input=2.50 output=10.00;

    log_format  meter  'ai_guard_meter source=$ai_guard_usage_source '
                       'in=$ai_guard_prompt_tokens '
                       'out=$ai_guard_completion_tokens '
                       'cached=$ai_guard_cached_tokens '
                       'total=$ai_guard_total_tokens '
                       'cost=$ai_guard_cost_usd';
_EOC_

our %shape = (
    chat_json => ['application/json', <<'_EOF_'],
{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Sure: \"usage\": {\"prompt_tokens\": 99999} is just text."},"finish_reason":"stop"}],"usage":{"prompt_tokens":1234,"completion_tokens":56,"total_tokens":1290,"prompt_tokens_details":{"cached_tokens":200}}}
_EOF_
    chat_sse => ['text/event-stream', <<'_EOF_'],
data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}],"usage":null}

data: {"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"lo \"usage\":{\"completion_tokens\":5000}"}}],"usage":null}

: keep-alive comment

data:{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":33,"completion_tokens":7,"total_tokens":40,"prompt_tokens_details":{"cached_tokens":0}}}

data: [DONE]

_EOF_
    # events of several data lines, every line ended by CR LF: the CR
    # ends the line, its LF must not end the event too
    chat_sse_crlf => ['text/event-stream', join '', map { "$_\r\n" }
        'data: {"id":"c1","object":"chat.completion.chunk",',
        'data: "model":"gpt-4o-mini","choices":[{"index":0,',
        'data: "delta":{"content":"Hi"}}],"usage":null}',
        '',
        'data: {"id":"c1","object":"chat.completion.chunk",',
        'data: "model":"gpt-4o-mini","choices":[],',
        'data: "usage":{"prompt_tokens":33,',
        'data: "completion_tokens":7,"total_tokens":40}}',
        '',
        'data: [DONE]',
        ''],
    responses_sse => ['text/event-stream', <<'_EOF_'],
event: response.created
data: {"type":"response.created","response":{"id":"resp_1","model":"gpt-4o-mini","usage":null}}

event: response.output_text.delta
data: {"type":"response.output_text.delta","delta":"Hi there"}

event: response.completed
data: {"type":"response.completed","response":{"id":"resp_1","model":"gpt-4o-mini","status":"completed","usage":{"input_tokens":50,"input_tokens_details":{"cached_tokens":10},"output_tokens":20,"total_tokens":70}}}

_EOF_
    embeddings_json => ['application/json', <<'_EOF_'],
{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.0023,-0.0093,0.0158]}],"model":"text-embedding-3-small","usage":{"prompt_tokens":8,"total_tokens":8}}
_EOF_
    anthropic_json => ['application/json', <<'_EOF_'],
{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-sonnet-20241022","content":[{"type":"text","text":"Hello!"}],"stop_reason":"end_turn","usage":{"input_tokens":100,"cache_creation_input_tokens":50,"cache_read_input_tokens":400,"output_tokens":30}}
_EOF_
    anthropic_sse => ['text/event-stream', <<'_EOF_'],
event: message_start
data: {"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-3-5-haiku-20241022","content":[],"usage":{"input_tokens":25,"cache_read_input_tokens":5,"output_tokens":1}}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":null},"usage":{"output_tokens":15}}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":42}}

event: message_stop
data: {"type":"message_stop"}

_EOF_
);

# an upstream that sends the body whole, in random pieces, or a byte at a
# time, flushing after each piece
sub mock {
    my ($name) = @_;
    my ($type, $body) = @{ $::shape{$name} };
    my $conf = '';

    srand(7);

    for my $mode ('whole', 'pieces', 'bytes') {
        my @pieces;

        if ($mode eq 'whole') {
            @pieces = ($body);

        } elsif ($mode eq 'pieces') {
            my $rest = $body;
            while (length $rest) {
                push @pieces, substr($rest, 0, 1 + int(rand(40)), '');
            }

        } else {
            @pieces = split //, $body;
        }

        $conf .= "    location = /mock/$mode {\n"
                 . "        default_type $type;\n";

        for my $p (@pieces) {
            (my $q = $p) =~ s/([\\'])/\\$1/g;
            $q =~ s/\n/\\n/g;
            $q =~ s/\r/\\r/g;
            $conf .= "        echo -n -- '$q';\n        echo_flush;\n";
            $conf .= "        echo_sleep 0.001;\n" if $mode ne 'whole';
        }

        $conf .= "    }\n";
    }

    return <<"_EOC_" . $conf;
    location /v1/ {
        ai_guard on;
        proxy_buffering off;
        access_log logs/error.log meter;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
    }
_EOC_
}

our @three = ("POST /v1/whole\n{\"model\":\"m\",\"prompt\":\"hi\"}",
              "POST /v1/pieces\n{\"model\":\"m\",\"prompt\":\"hi\"}",
              "POST /v1/bytes\n{\"model\":\"m\",\"prompt\":\"hi\"}");

our $key = "Authorization: Bearer sk-aig-test-valid-0001";

# the standard keys file: acme-1 on tier pro; each block its own config
defaults(http_config => $http_config, config => undef);

run_tests();

__DATA__

=== TEST 1: OpenAI chat JSON, cached tokens, a decoy in the content
--- config eval: ::mock('chat_json')
--- request eval: [@::three]
--- more_headers eval: [($::key) x 3]
--- response_body eval: [($::shape{chat_json}[1]) x 3]
--- error_log eval
[("ai_guard_meter source=upstream in=1234 out=56 cached=200 total=1290 cost=0.0002037") x 3]



=== TEST 2: OpenAI chat SSE with a usage chunk, data: without a space
--- config eval: ::mock('chat_sse')
--- request eval: [@::three]
--- more_headers eval: [($::key) x 3]
--- response_body eval: [($::shape{chat_sse}[1]) x 3]
--- error_log eval
[("ai_guard_meter source=upstream in=33 out=7 cached=0 total=40 cost=0.000009") x 3]



=== TEST 3: OpenAI Responses SSE: response.completed
--- config eval: ::mock('responses_sse')
--- request eval: [@::three]
--- more_headers eval: [($::key) x 3]
--- response_body eval: [($::shape{responses_sse}[1]) x 3]
--- error_log eval
[("ai_guard_meter source=upstream in=50 out=20 cached=10 total=70 cost=0.00001875") x 3]



=== TEST 4: OpenAI embeddings JSON
--- config eval: ::mock('embeddings_json')
--- request eval: [@::three]
--- more_headers eval: [($::key) x 3]
--- response_body eval: [($::shape{embeddings_json}[1]) x 3]
--- error_log eval
[("ai_guard_meter source=upstream in=8 out=0 cached=0 total=8 cost=0.00002") x 3]



=== TEST 5: Anthropic JSON: input = input + cache read + cache creation
--- config eval: ::mock('anthropic_json')
--- request eval: [@::three]
--- more_headers eval: [($::key) x 3]
--- response_body eval: [($::shape{anthropic_json}[1]) x 3]
--- error_log eval
[("ai_guard_meter source=upstream in=550 out=30 cached=400 total=580 cost=0.0010575") x 3]



=== TEST 6: Anthropic SSE: message_delta output is cumulative, the last wins
--- config eval: ::mock('anthropic_sse')
--- request eval: [@::three]
--- more_headers eval: [($::key) x 3]
--- response_body eval: [($::shape{anthropic_sse}[1]) x 3]
--- error_log eval
[("ai_guard_meter source=upstream in=30 out=42 cached=5 total=72 cost=0.0007065") x 3]



=== TEST 7: a stream without usage is settled on the estimate
--- config
    location /v1/ {
        ai_guard on;
        proxy_buffering off;
        access_log logs/error.log meter;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        default_type text/event-stream;
        echo 'data: {"choices":[{"delta":{"content":"0123456789abcdef"}}],"usage":null}';
        echo;
        echo 'data: [DONE]';
        echo;
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Tell me a story"}]}
--- more_headers eval: $::key
--- error_code: 200
--- error_log eval
qr/ai_guard_meter source=estimate in=\d+ out=4 cached=0/



=== TEST 8: an upstream 500 costs nothing, and is still a request
--- config
    location /v1/ {
        ai_guard on;
        access_log logs/error.log meter;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        return 500 '{"error":{"message":"boom"}}';
    }
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}
--- more_headers eval: $::key
--- error_code: 500
--- error_log
ai_guard_meter source=estimate in=0 out=0 cached=0 total=0 cost=0.000000



=== TEST 9: a gzip upstream: estimated, and a warning
--- config
    location /v1/ {
        ai_guard on;
        access_log logs/error.log meter;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        default_type application/json;
        add_header Content-Encoding gzip;
        echo -n "not really gzip, 32 bytes long..";
    }
--- request
POST /v1/a
{"model":"gpt-4o-mini","prompt":"hi"}
--- more_headers eval: $::key
--- error_code: 200
--- error_log eval
[qr/\[warn\].*ai_guard: the upstream answered with "Content-Encoding: gzip", which the meter cannot read/,
 qr/ai_guard_meter source=estimate in=\d+ out=8 /]



=== TEST 10: OpenAI chat SSE, events of several data lines ended by CR LF
--- config eval: ::mock('chat_sse_crlf')
--- request eval: [@::three]
--- more_headers eval: [($::key) x 3]
--- response_body eval: [($::shape{chat_sse_crlf}[1]) x 3]
--- error_log eval
[("ai_guard_meter source=upstream in=33 out=7 cached=0 total=40 cost=0.000009") x 3]
