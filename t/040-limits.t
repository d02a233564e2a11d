# Tiered limits: requests and tokens per window, quotas and budgets, the
# x-ratelimit-* headers and the 429s OpenAI's SDKs understand.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(1);

# each request: its status and the three patterns of the default
# --- no_error_log (39 requests); then 14 body checks and 40 header
# checks (TEST 1: 7 of them on the raw headers)
plan tests => repeat_each() * (4 * 39 + 14 + 40);

no_shuffle();

our $http_config = <<'_EOC_';
    ai_guard_zone  ai_guard 1m;

    ai_guard_tier  five   rpm=5;
    ai_guard_tier  tokens tpm=1000;
    ai_guard_tier  daily  tpd=300;
    ai_guard_tier  cheap  budget=0.000300/month;

    ai_guard_price  gpt-4o-mini*  input=0.15 output=0.60;
    ai_guard_price  *             input=2.50 output=10.00;

    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;
_EOC_

# valid-0001 and beta-00001: tenants acme and beta, both on rpm=5;
# future-0001: a second key of acme; disabled-01/expired-001 (re-used
# here as ordinary keys): tpm and tpd tiers
our $user_files = keys_file(
    ['acme-1', 'sk-aig-test-valid-0001', tenant => 'acme', tier => 'five'],
    ['beta-1', 'sk-aig-test-beta-00001', tenant => 'beta', tier => 'five'],
    ['acme-2', 'sk-aig-test-future-0001', tenant => 'acme', tier => 'five'],
    ['tok-1', 'sk-aig-test-disabled-01', tenant => 'tok', tier => 'tokens'],
    ['day-1', 'sk-aig-test-expired-001', tenant => 'day', tier => 'daily']);

# the mock reports what a real upstream would: the prompt and about as
# many completion tokens as max_tokens allowed
our $config = <<'_EOC_';
    location /v1/ {
        ai_guard on;
        add_header X-Reason $ai_guard_reason always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        default_type application/json;
        echo '{"model":"gpt-4o-mini","usage":{"prompt_tokens":10,"completion_tokens":90},"ok":1}';
    }

    location /mock/chat/ {
        default_type application/json;
        echo_read_request_body;
        echo '{"model":"gpt-4o-mini","usage":{"prompt_tokens":10,"completion_tokens":$arg_c},"ok":1}';
    }
_EOC_

our $acme = "Authorization: Bearer sk-aig-test-valid-0001";
our $acme2 = "Authorization: Bearer sk-aig-test-future-0001";
our $beta = "Authorization: Bearer sk-aig-test-beta-00001";
our $tok = "Authorization: Bearer sk-aig-test-disabled-01";
our $day = "Authorization: Bearer sk-aig-test-expired-001";

sub chat {
    my ($max, $used) = @_;
    $used //= $max - 10;
    return "POST /v1/chat/completions?c=$used\n{\"model\":\"gpt-4o-mini\","
           . "\"max_tokens\":$max,\"messages\":[{\"role\":\"user\","
           . "\"content\":\"hi\"}]}";
}

defaults(http_config => $http_config, user_files => $user_files,
         config => $config);

run_tests();

__DATA__

=== TEST 1: rpm=5: remaining 4..0, then a 429 with retry-after; beta unaffected
--- request eval
[("GET /v1/models") x 7]
--- more_headers eval
[($::acme) x 6, $::beta]
--- error_code eval
[200, 200, 200, 200, 200, 429, 200]
--- response_headers eval
["x-ratelimit-limit-requests: 5\nx-ratelimit-remaining-requests: 4",
 "x-ratelimit-remaining-requests: 3",
 "x-ratelimit-remaining-requests: 2",
 "x-ratelimit-remaining-requests: 1",
 "x-ratelimit-remaining-requests: 0",
 "x-ratelimit-remaining-requests: 0\nretry-after: 12\nX-Reason: rpm",
 "x-ratelimit-remaining-requests: 4"]
--- raw_response_headers_like eval
["\nx-ratelimit-reset-requests: 12s\r\n",
 ("\nx-ratelimit-reset-requests: \\d+s\r\n") x 3,
 "\nx-ratelimit-reset-requests: 1m0s\r\n",
 "\nretry-after-ms: 1\\d{4}\r\n",
 "\nx-ratelimit-reset-requests: 12s\r\n"]
--- response_body_like eval
['"ok":1', '"ok":1', '"ok":1', '"ok":1', '"ok":1',
 '^\{"error":\{"message":"Rate limit reached for requests per minute \(rpm\) of this API key\'s tier \\\\"five\\\\": the limit is 5\. Please try again in \d+s\.","type":"requests","param":null,"code":"rate_limit_exceeded"\}\}$',
 '"ok":1']



=== TEST 2: two keys of one tenant share the tenant's limit
--- request eval
[("GET /v1/models") x 6]
--- more_headers eval
[$::acme, $::acme2, $::acme, $::acme2, $::acme, $::acme2]
--- error_code eval
[200, 200, 200, 200, 200, 429]
--- response_headers eval
["x-ratelimit-remaining-requests: 4", "x-ratelimit-remaining-requests: 3",
 "x-ratelimit-remaining-requests: 2", "x-ratelimit-remaining-requests: 1",
 "x-ratelimit-remaining-requests: 0",
 "x-ratelimit-remaining-requests: 0\nX-Reason: rpm"]



=== TEST 3: ai_guard_limit_by key: each key its own count
--- config eval
"ai_guard_limit_by key;\n" . $::config
--- request eval
[("GET /v1/models") x 7]
--- more_headers eval
[($::acme) x 5, $::acme2, $::acme]
--- error_code eval
[200, 200, 200, 200, 200, 200, 429]



=== TEST 4: ai_guard_limit_by a variable: per end user, from a header
--- config eval
"ai_guard_limit_by \$http_x_end_user;\n" . $::config
--- request eval
[("GET /v1/models") x 7]
--- more_headers eval
[("$::acme\nX-End-User: alice") x 5, "$::acme\nX-End-User: bob",
 "$::acme\nX-End-User: alice"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 429]



=== TEST 5: tpm: max_tokens is reserved before the upstream is called
--- request eval
[::chat(800), ::chat(800), ::chat(5000)]
--- more_headers eval
[$::tok, $::tok, $::tok]
--- error_code eval
[200, 429, 429]
--- response_headers_like eval
["x-ratelimit-limit-tokens: 1000\nx-ratelimit-remaining-tokens: 1\\d\\d",
 "X-Reason: tpm\nretry-after: \\d+",
 "X-Reason: tpm"]
--- response_body_like eval
['"ok":1', '"code":"rate_limit_exceeded"',
 'This request alone, an estimated \d+ tokens with its max_tokens, exceeds the tokens per minute \(tpm\)']



=== TEST 6: a daily token quota is insufficient_quota, not a rate limit
--- request eval
[::chat(100), ::chat(100), ::chat(100)]
--- more_headers eval
[$::day, $::day, $::day]
--- error_code eval
[200, 200, 429]
--- response_body_like eval
['"ok":1', '"ok":1', '"type":"insufficient_quota","param":null,"code":"insufficient_quota"']
--- response_headers eval
["x-ratelimit-limit-tokens: 300\nx-ratelimit-remaining-tokens: 195\n!X-Reason",
 "x-ratelimit-limit-tokens: 300\nx-ratelimit-remaining-tokens: 95\n!X-Reason",
 "x-ratelimit-remaining-tokens: 100\nX-Reason: tpd"]



=== TEST 7: a request the upstream fails costs its tenant no tokens
--- config
    location /v1/ {
        ai_guard on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock$uri;
    }

    location ~ ^/mock/.*/fail$ {
        return 500;
    }

    location /mock/ {
        default_type application/json;
        echo '{"usage":{"prompt_tokens":10,"completion_tokens":790}}';
    }
--- request eval
[map { my $r = ::chat(800); $r =~ s/completions/$_/; $r }
 "fail", "fail", "fail", "completions", "completions"]
--- more_headers eval
[($::tok) x 5]
--- error_code eval
[500, 500, 500, 200, 429]



=== TEST 8: the headers go out with a streamed (SSE) response
--- config
    location /v1/ {
        ai_guard on;
        proxy_buffering off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        default_type text/event-stream;
        echo 'data: {"choices":[{"delta":{"content":"Hel"}}],"usage":null}';
        echo;
        echo_flush;
        echo_sleep 0.1;
        echo 'data: [DONE]';
        echo;
    }
--- request eval: ::chat(10)
--- more_headers eval: $::acme
--- error_code: 200
--- response_headers
Content-Type: text/event-stream
x-ratelimit-limit-requests: 5
x-ratelimit-remaining-requests: 4
--- response_body_like: data: \[DONE\]
