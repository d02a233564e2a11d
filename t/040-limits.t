# Tiered limits: requests and tokens per window, quotas and budgets, the
# x-ratelimit-* headers and the 429s OpenAI's SDKs understand.

use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

repeat_each(1);

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
# here as ordinary keys): tpm and tpd tiers; unknown-9999: the budget tier
our $user_files = <<'_EOF_';
>>> keys.json
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "five",
   "sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"},
  {"id": "beta-1", "tenant": "beta", "tier": "five",
   "sha256": "39c81276bc9edac2614e74ea48f6f4b687a3562ca7ba8b0d19806b3e69afde2c"},
  {"id": "acme-2", "tenant": "acme", "tier": "five",
   "sha256": "5ce7fee67f99f77555e6fe5192f9841a0709966866a04b289848357f584a8db6"},
  {"id": "tok-1", "tenant": "tok", "tier": "tokens",
   "sha256": "30e4b30767243b31569d1d067691295b2f5a5db37d191661e09f41f202367371"},
  {"id": "day-1", "tenant": "day", "tier": "daily",
   "sha256": "d959b9202699614fbe04c1a61f8dd41766c426ffe9329ad2cae859d7819dcf47"}
]}
_EOF_

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

run_tests();

__DATA__

=== TEST 1: rpm=5: remaining 4..0, then a 429 with retry-after; beta unaffected
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval: $::config
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
--- response_headers_like eval
["x-ratelimit-reset-requests: 12s", ".*", ".*", ".*",
 "x-ratelimit-reset-requests: 1m0s",
 "retry-after-ms: 1\\d{4}",
 ".*"]
--- response_body_like eval
['"ok":1', '"ok":1', '"ok":1', '"ok":1', '"ok":1',
 '^\{"error":\{"message":"Rate limit reached for rpm \(limit 5\)\. Please try again in \d+ms\.","type":"requests","param":null,"code":"rate_limit_exceeded"\}\}$',
 '"ok":1']
--- no_error_log
[error]



=== TEST 2: two keys of one tenant share the tenant's limit
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval: $::config
--- request eval
[("GET /v1/models") x 6]
--- more_headers eval
[$::acme, $::acme2, $::acme, $::acme2, $::acme, $::acme2]
--- error_code eval
[200, 200, 200, 200, 200, 429]
--- no_error_log
[error]



=== TEST 3: ai_guard_limit_by key: each key its own count
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval
"ai_guard_limit_by key;\n" . $::config
--- request eval
[("GET /v1/models") x 7]
--- more_headers eval
[($::acme) x 5, $::acme2, $::acme]
--- error_code eval
[200, 200, 200, 200, 200, 200, 429]
--- no_error_log
[error]



=== TEST 4: ai_guard_limit_by a variable: per end user, from a header
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval
"ai_guard_limit_by \$http_x_end_user;\n" . $::config
--- request eval
[("GET /v1/models") x 7]
--- more_headers eval
[("$::acme\nX-End-User: alice") x 5, "$::acme\nX-End-User: bob",
 "$::acme\nX-End-User: alice"]
--- error_code eval
[200, 200, 200, 200, 200, 200, 429]
--- no_error_log
[error]



=== TEST 5: tpm: max_tokens is reserved before the upstream is called
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval: $::config
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
 'This request alone exceeds the tpm limit']
--- no_error_log
[error]



=== TEST 6: a daily token quota is insufficient_quota, not a rate limit
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval: $::config
--- request eval
[::chat(100), ::chat(100), ::chat(100)]
--- more_headers eval
[$::day, $::day, $::day]
--- error_code eval
[200, 200, 429]
--- response_body_like eval
['"ok":1', '"ok":1', '"type":"insufficient_quota","param":null,"code":"insufficient_quota"']
--- response_headers_like eval
[".*", ".*", "X-Reason: tpd"]
--- no_error_log
[error]



=== TEST 7: a request the upstream fails costs its tenant no tokens
--- http_config eval: $::http_config
--- user_files eval: $::user_files
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
--- no_error_log
[alert]



=== TEST 8: the headers go out with a streamed (SSE) response
--- http_config eval: $::http_config
--- user_files eval: $::user_files
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
--- no_error_log
[error]
