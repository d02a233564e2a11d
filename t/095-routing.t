# Routing and fallback with nginx's own parts (docs/routing.md): a map
# on $ai_guard_model picks the upstream group proxy_pass names, and
# proxy_next_upstream falls back to a second OpenAI-compatible provider
# when the first answers 429 or 5xx or cannot be reached.  The request
# is billed once, with the usage of the provider that answered, and the
# access log names every upstream tried ($upstream_addr).
#
# The two "providers" are this test server itself, reached as
# 127.0.0.1 and as 127.0.0.2 (a listen of its own: the bundled runner
# listens on 127.0.0.1 only, the real one on every address, which the
# second listen then shares), told apart by $server_addr; a header of
# the client tells the first how to fail.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(1);

# per request: the status, the body and the default --- no_error_log's 3
plan tests => repeat_each() * (14 * 5);

no_shuffle();

# the error log of a block is all its requests': TEST 4's refused connect
# is checked at each of them
check_accum_error_log();

our $http_config = <<'_EOC_';
    ai_guard_tier   pro;
    ai_guard_keys   $TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_price  gpt-4o-mini  input=1 output=2;
    ai_guard_price  claude-*     input=3 output=15;
    ai_guard_price  *            input=100 output=100;

    upstream openai {
        server  127.0.0.1:$TEST_NGINX_SERVER_PORT;
    }

    upstream anthropic {
        server  127.0.0.2:$TEST_NGINX_SERVER_PORT;
    }

    # the second provider is tried only when the first has failed
    upstream openai_with_fallback {
        server  127.0.0.1:$TEST_NGINX_SERVER_PORT max_fails=0;
        server  127.0.0.2:$TEST_NGINX_SERVER_PORT backup;
    }

    # the first provider unreachable: nothing listens on port 1
    upstream down_with_fallback {
        server  127.0.0.1:1 max_fails=0;
        server  127.0.0.2:$TEST_NGINX_SERVER_PORT backup;
    }

    map $ai_guard_model $llm_upstream {
        ~^claude-  anthropic;
        default    openai;
    }

    # the second provider answers under the model X-Second-Model names,
    # else the request's
    map $http_x_second_model $second_model {
        ""       $http_x_model;
        default  $http_x_second_model;
    }

    log_format  routing  '$ai_guard_model|$upstream_addr|$upstream_status|'
                         '$ai_guard_prompt_tokens|$ai_guard_completion_tokens|'
                         '$ai_guard_cost_usd';
_EOC_

our $config = <<'_EOC_';
    listen      127.0.0.2:$TEST_NGINX_SERVER_PORT;
    access_log  $TEST_NGINX_SERVER_ROOT/html/routing.log  routing;

    location /v1/ {
        ai_guard    on;
        proxy_pass  http://$llm_upstream/provider$request_uri;
    }

    location /fallback/v1/ {
        ai_guard             on;
        proxy_next_upstream  error timeout http_429 http_500 http_502
                             http_503 non_idempotent;
        proxy_pass           http://openai_with_fallback/provider/v1/;
    }

    location /down/v1/ {
        ai_guard             on;
        proxy_next_upstream  error timeout http_429 http_500 http_502
                             http_503 non_idempotent;
        proxy_pass           http://down_with_fallback/provider/v1/;
    }

    # the providers: the first fails as the client's X-First-Fails says
    location /provider/ {
        access_log  off;

        if ($server_addr = 127.0.0.2) {
            rewrite  ^  /second  last;
        }

        if ($http_x_first_fails = 429) {
            return  429 '{"error":{"code":"rate_limit_exceeded"}}';
        }

        if ($http_x_first_fails = 500) {
            return  500 '{"error":{"message":"The server had an error"}}';
        }

        default_type  application/json;
        echo -n '{"id":"a","object":"chat.completion","model":"$http_x_model",'
                '"choices":[{"index":0,"message":{"role":"assistant",'
                '"content":"first"},"finish_reason":"stop"}],'
                '"usage":{"prompt_tokens":10,"completion_tokens":5,'
                '"total_tokens":15}}';
    }

    location = /second {
        access_log    off;
        default_type  application/json;
        echo -n '{"id":"b","object":"chat.completion","model":"$second_model",'
                '"choices":[{"index":0,"message":{"role":"assistant",'
                '"content":"second"},"finish_reason":"stop"}],'
                '"usage":{"prompt_tokens":20,"completion_tokens":8,'
                '"total_tokens":28}}';
    }

    location = /routing.log {
        access_log  off;
        root        $TEST_NGINX_SERVER_ROOT/html;
    }

    location = /ai-guard/usage {
        access_log  off;
        ai_guard_usage;
    }
_EOC_

our $key = "Authorization: Bearer sk-aig-test-valid-0001";

sub chat {
    my ($path, $model) = @_;
    return "POST $path/chat/completions\n"
           . qq({"model":"$model","messages":[{"role":"user",)
           . qq("content":"hi"}]});
}

defaults(http_config => $http_config, config => $config);

run_tests();

__DATA__

=== TEST 1: the map on $ai_guard_model picks the upstream proxy_pass names
--- request eval
[::chat('/v1', 'gpt-4o-mini'), ::chat('/v1', 'claude-3-5-haiku'),
 "GET /routing.log", "GET /ai-guard/usage?group=model"]
--- more_headers eval
["$::key\nX-Model: gpt-4o-mini", "$::key\nX-Model: claude-3-5-haiku", "",
 ""]
--- error_code eval
[200, 200, 200, 200]
--- response_body_like eval
['"content":"first"', '"content":"second"',
 '^gpt-4o-mini\|127\.0\.0\.1:\d+\|200\|10\|5\|0\.000020\n'
 . 'claude-3-5-haiku\|127\.0\.0\.2:\d+\|200\|20\|8\|0\.000180\n$',
 '"groups":\[\{"model":"claude-3-5-haiku","requests":1,"input_tokens":20,'
 . '"output_tokens":8,.*\{"model":"gpt-4o-mini","requests":1,'
 . '"input_tokens":10,"output_tokens":5,']



=== TEST 2: the first provider rate-limits: the second answers, billed once, with its usage, under the model it answered with
--- request eval
[::chat('/fallback/v1', 'gpt-4o'), "GET /routing.log",
 "GET /ai-guard/usage?group=model"]
--- more_headers eval
["$::key\nX-Model: gpt-4o\nX-First-Fails: 429\nX-Second-Model: gpt-4o-mini",
 "", ""]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
['"content":"second"',
 '^gpt-4o\|127\.0\.0\.1:\d+, 127\.0\.0\.2:\d+\|429, 200\|20\|8\|'
 . '0\.000036\n$',
 '^(?!.*"model":"gpt-4o",).*"tenant":"acme","requests":1,"input_tokens":20,'
 . '"output_tokens":8,.*"groups":\[\{"model":"gpt-4o-mini","requests":1,'
 . '"input_tokens":20,"output_tokens":8,']



=== TEST 3: a 5xx of the first: the same; a request it answers stays there
--- request eval
[::chat('/fallback/v1', 'gpt-4o-mini'), ::chat('/fallback/v1', 'gpt-4o-mini'),
 "GET /routing.log", "GET /ai-guard/usage"]
--- more_headers eval
["$::key\nX-Model: gpt-4o-mini\nX-First-Fails: 500",
 "$::key\nX-Model: gpt-4o-mini", "", ""]
--- error_code eval
[200, 200, 200, 200]
--- response_body_like eval
['"content":"second"', '"content":"first"',
 '^gpt-4o-mini\|127\.0\.0\.1:\d+, 127\.0\.0\.2:\d+\|500, 200\|20\|8\|'
 . '0\.000036\ngpt-4o-mini\|127\.0\.0\.1:\d+\|200\|10\|5\|0\.000020\n$',
 '"tenant":"acme","requests":2,"input_tokens":30,"output_tokens":13,']



=== TEST 4: the first unreachable: the second answers, billed once
--- request eval
[::chat('/down/v1', 'gpt-4o-mini'), "GET /routing.log",
 "GET /ai-guard/usage"]
--- more_headers eval
["$::key\nX-Model: gpt-4o-mini", "", ""]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
['"content":"second"',
 '^gpt-4o-mini\|127\.0\.0\.1:1, 127\.0\.0\.2:\d+\|502, 200\|20\|8\|',
 '"tenant":"acme","requests":1,"input_tokens":20,"output_tokens":8,']
--- error_log
connect() failed (111: Connection refused) while connecting to upstream
--- no_error_log
[alert]
[crit]
