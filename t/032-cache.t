# $ai_guard_cache_key with nginx's own proxy_cache: two identical
# deterministic requests, the second a HIT; streams and sampling not cached.

use Test::Nginx::Socket 'no_plan';

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

repeat_each(1);

no_shuffle();

our $http_config = <<'_EOC_';
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;

    proxy_cache_path  cache levels=1 keys_zone=llm:1m;

    map $ai_guard_cache_key $ai_guard_no_cache {
        ""       1;
        default  0;
    }
_EOC_

our $user_files = <<'_EOF_';
>>> keys.json
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "pro",
   "sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"},
  {"id": "beta-1", "tenant": "beta", "tier": "pro",
   "sha256": "39c81276bc9edac2614e74ea48f6f4b687a3562ca7ba8b0d19806b3e69afde2c"}
]}
_EOF_

our $config = <<'_EOC_';
    location /v1/ {
        ai_guard            on;
        ai_guard_cache_key  on;

        proxy_cache          llm;
        proxy_cache_methods  POST;
        proxy_cache_key      $ai_guard_cache_key;
        proxy_cache_valid    200 1m;
        proxy_no_cache       $ai_guard_no_cache;
        proxy_cache_bypass   $ai_guard_no_cache;

        add_header X-Cache $upstream_cache_status always;
        add_header X-Cache-Key $ai_guard_cache_key always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        echo "answer $request_id";
    }
_EOC_

our $acme = "Authorization: Bearer sk-aig-test-valid-0001";
our $beta = "Authorization: Bearer sk-aig-test-beta-00001";

run_tests();

__DATA__

=== TEST 1: the second identical request is a HIT; key order and spaces do not matter
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval: $::config
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\",\"temperature\":0,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
 "POST /v1/chat/completions\n{ \"messages\": [ {\"content\":\"hi\", \"role\":\"user\"} ], \"temperature\": 0, \"model\": \"gpt-4o-mini\" }"]
--- more_headers eval
[$::acme, $::acme]
--- error_code eval
[200, 200]
--- response_headers_like eval
["X-Cache: MISS\nX-Cache-Key: [0-9a-f]{64}", "X-Cache: HIT\nX-Cache-Key: [0-9a-f]{64}"]
--- no_error_log
[error]



=== TEST 2: another tenant never gets the first tenant's answer
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval: $::config
--- request eval
["POST /v1/chat/completions\n{\"model\":\"m\",\"temperature\":0,\"prompt\":\"same\"}",
 "POST /v1/chat/completions\n{\"model\":\"m\",\"temperature\":0,\"prompt\":\"same\"}",
 "POST /v1/chat/completions\n{\"model\":\"m\",\"temperature\":0,\"prompt\":\"same\"}"]
--- more_headers eval
[$::acme, $::beta, $::beta]
--- response_headers_like eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT"]
--- no_error_log
[error]



=== TEST 3: streams and sampled requests have no key and are never cached
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval: $::config
--- request eval
["POST /v1/chat/completions\n{\"model\":\"m\",\"prompt\":\"sampled\"}",
 "POST /v1/chat/completions\n{\"model\":\"m\",\"prompt\":\"sampled\"}",
 "POST /v1/chat/completions\n{\"model\":\"m\",\"temperature\":0,\"stream\":true,\"prompt\":\"s\"}",
 "POST /v1/chat/completions\n{\"model\":\"m\",\"temperature\":0,\"stream\":true,\"prompt\":\"s\"}"]
--- more_headers eval
[$::acme, $::acme, $::acme, $::acme]
--- response_headers eval
["X-Cache: BYPASS\nX-Cache-Key: ", "X-Cache: BYPASS\nX-Cache-Key: ",
 "X-Cache: BYPASS\nX-Cache-Key: ", "X-Cache: BYPASS\nX-Cache-Key: "]
--- no_error_log
[error]



=== TEST 4: "always" opts sampled requests in
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval
my $c = $::config;
$c =~ s/ai_guard_cache_key  on/ai_guard_cache_key  always/;
$c
--- request eval
["POST /v1/chat/completions\n{\"model\":\"m\",\"prompt\":\"sampled-2\"}",
 "POST /v1/chat/completions\n{\"model\":\"m\",\"prompt\":\"sampled-2\"}"]
--- more_headers eval
[$::acme, $::acme]
--- response_headers_like eval
["X-Cache: MISS", "X-Cache: HIT"]
--- no_error_log
[error]
