# $ai_guard_cache_key with nginx's own proxy_cache: two identical
# deterministic requests of a tenant, the second a HIT; every other request
# (another tenant, another body, other args, a stream, a sampled request, no
# ai_guard_cache_key line at all) gets a key of its own, so no configuration
# serves one tenant's answer to another.

use Test::Nginx::Socket;
use Digest::SHA ();
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(1);

# each request: its status and the three patterns of the default
# --- no_error_log (41 requests, TEST 14's exit counted as one); then 16
# body checks, 82 header lines and 2 error_log lines
plan tests => repeat_each() * (4 * 42 + 16 + 82 + 2);

no_shuffle();

our $http_config = <<'_EOC_';
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;

    proxy_cache_path  cache levels=1 keys_zone=llm:1m;
_EOC_

our $user_files = keys_file(
    ['acme-1', 'sk-aig-test-valid-0001', tenant => 'acme', tier => 'pro'],
    ['beta-1', 'sk-aig-test-beta-00001', tenant => 'beta', tier => 'pro']);

# The mock answers with the tenant the request came from and a fresh
# $request_id: an answer cached for another tenant, or for another request,
# shows in the body.

our $mock = <<'_EOC_';
    location /mock/ {
        echo "answer for $http_x_tenant $args $request_id";
    }
_EOC_

our $config = <<'_EOC_' . $mock;
    location /v1/ {
        ai_guard            on;
        ai_guard_cache_key  on;

        proxy_cache          llm;
        proxy_cache_methods  POST;
        proxy_cache_key      $ai_guard_cache_key;
        proxy_cache_valid    200 1m;
        proxy_no_cache       $ai_guard_no_cache;
        proxy_cache_bypass   $ai_guard_no_cache;

        proxy_set_header X-Tenant $ai_guard_tenant;
        add_header X-Cache $upstream_cache_status always;
        add_header X-Cache-Key $ai_guard_cache_key always;
        add_header X-No-Cache $ai_guard_no_cache always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }
_EOC_

# The configuration of the leak: proxy_cache_key $ai_guard_cache_key,
# without ai_guard_cache_key and without proxy_no_cache.  Every request
# must still get a key of its own.

our $leak_config = <<'_EOC_' . $mock;
    location /v1/ {
        ai_guard  on;

        proxy_cache          llm;
        proxy_cache_methods  POST;
        proxy_cache_key      $ai_guard_cache_key;
        proxy_cache_valid    200 1m;

        proxy_set_header X-Tenant $ai_guard_tenant;
        add_header X-Cache $upstream_cache_status always;
        add_header X-Cache-Key $ai_guard_cache_key always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }
_EOC_

# ai_guard_cache_key on, but without proxy_no_cache: the requests that are
# not cacheable still never share a key.
our $unpaired_config = $leak_config;
$unpaired_config =~ s/(ai_guard  on;)/$1\n        ai_guard_cache_key  on;/;

our $acme = "Authorization: Bearer sk-aig-test-valid-0001";
our $beta = "Authorization: Bearer sk-aig-test-beta-00001";

our $nocache = "X-Cache: MISS\nX-Cache-Key: nocache-[0-9a-f]{32}";
our $bypass = "X-Cache: BYPASS\nX-Cache-Key: nocache-[0-9a-f]{32}\n"
              . "X-No-Cache: 1";
our $cached = "X-Cache-Key: [0-9a-f]{64}\nX-No-Cache: ";

# a chat request: the body, then the arguments if any
sub chat {
    my ($body, $args) = @_;
    return "POST /v1/chat/completions" . ($args // "") . "\n$body";
}

# The documented key: SHA-256 of "<length>:<bytes>" for the tenant, the
# method, the host, the URI, the arguments and the canonical body.
sub cache_key_of {
    my $s = join '', map { length($_) . ":" . $_ } @_;
    return Digest::SHA::sha256_hex($s);
}

defaults(http_config => $http_config, user_files => $user_files,
         config => $config);

run_tests();

__DATA__

=== TEST 1: the second identical request is a HIT; key order and spaces do not matter
--- request eval
[main::chat('{"model":"gpt-4o-mini","temperature":0,'
            . '"messages":[{"role":"user","content":"hi"}]}'),
 main::chat('{ "messages": [ {"content":"hi", "role":"user"} ], '
            . '"temperature": 0, "model": "gpt-4o-mini" }')]
--- more_headers eval
[$::acme, $::acme]
--- error_code eval
[200, 200]
--- response_headers_like eval
["X-Cache: MISS\n$::cached", "X-Cache: HIT\n$::cached"]



=== TEST 2: another tenant never gets the first tenant's answer
--- request eval
[main::chat('{"model":"m","temperature":0,"prompt":"same"}'),
 main::chat('{"model":"m","temperature":0,"prompt":"same"}'),
 main::chat('{"model":"m","temperature":0,"prompt":"same"}')]
--- more_headers eval
[$::acme, $::beta, $::beta]
--- response_headers_like eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT"]
--- response_body_like eval
["^answer for acme ", "^answer for beta ", "^answer for beta "]



=== TEST 3: streams and sampled requests get a key of their own and are never cached
--- request eval
[main::chat('{"model":"m","prompt":"sampled"}'),
 main::chat('{"model":"m","prompt":"sampled"}'),
 main::chat('{"model":"m","temperature":0,"stream":true,"prompt":"s"}'),
 main::chat('{"model":"m","temperature":0,"stream":true,"prompt":"s"}')]
--- more_headers eval
[$::acme, $::acme, $::acme, $::acme]
--- response_headers_like eval
[$::bypass, $::bypass, $::bypass, $::bypass]



=== TEST 4: "always" opts sampled requests in
--- config eval
my $c = $::config;
$c =~ s/ai_guard_cache_key  on/ai_guard_cache_key  always/;
$c
--- request eval
[main::chat('{"model":"m","prompt":"sampled-2"}'),
 main::chat('{"model":"m","prompt":"sampled-2"}')]
--- more_headers eval
[$::acme, $::acme]
--- response_headers_like eval
["X-Cache: MISS\n$::cached", "X-Cache: HIT\n$::cached"]



=== TEST 5: the leak: proxy_cache_key $ai_guard_cache_key without ai_guard_cache_key never serves one tenant's answer to another
--- config eval: $::leak_config
--- request eval
[main::chat('{"model":"m","temperature":0,"prompt":"same"}'),
 main::chat('{"model":"m","temperature":0,"prompt":"same"}'),
 main::chat('{"model":"m","temperature":0,"prompt":"same"}')]
--- more_headers eval
[$::acme, $::beta, $::acme]
--- response_headers_like eval
[$::nocache, $::nocache, $::nocache]
--- response_body_like eval
["^answer for acme ", "^answer for beta ", "^answer for acme "]



=== TEST 6: without proxy_no_cache, streams of two tenants never share a key
--- config eval: $::unpaired_config
--- request eval
[main::chat('{"model":"m","temperature":0,"stream":true,"prompt":"s"}'),
 main::chat('{"model":"m","temperature":0,"stream":true,"prompt":"s"}')]
--- more_headers eval
[$::acme, $::beta]
--- response_headers_like eval
[$::nocache, $::nocache]
--- response_body_like eval
["^answer for acme ", "^answer for beta "]



=== TEST 7: without proxy_no_cache, sampled requests of two tenants never share a key
--- config eval: $::unpaired_config
--- request eval
[main::chat('{"model":"m","prompt":"sampled"}'),
 main::chat('{"model":"m","prompt":"sampled"}')]
--- more_headers eval
[$::acme, $::beta]
--- response_headers_like eval
[$::nocache, $::nocache]
--- response_body_like eval
["^answer for acme ", "^answer for beta "]



=== TEST 8: two different canonical bodies never share a key
--- request eval
[main::chat('{"model":"m","temperature":0,"prompt":"one"}'),
 main::chat('{"model":"m","temperature":0,"prompt":"two"}'),
 main::chat('{"model":"m","temperature":0,"prompt":"one","n":1}'),
 main::chat('{"model":"m","temperature":0.0,"prompt":"one"}'),
 main::chat('{"model":"m","temperature":0,"prompt":"one"}')]
--- more_headers eval
[$::acme, $::acme, $::acme, $::acme, $::acme]
--- response_headers_like eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS",
 "X-Cache: HIT"]



=== TEST 9: the arguments are part of the key (?api-version=)
--- request eval
[main::chat('{"model":"m","temperature":0,"prompt":"v"}',
            '?api-version=2024-02-01'),
 main::chat('{"model":"m","temperature":0,"prompt":"v"}',
            '?api-version=2024-06-01'),
 main::chat('{"model":"m","temperature":0,"prompt":"v"}'),
 main::chat('{"model":"m","temperature":0,"prompt":"v"}',
            '?api-version=2024-02-01')]
--- more_headers eval
[$::acme, $::acme, $::acme, $::acme]
--- response_headers_like eval
["X-Cache: MISS", "X-Cache: MISS", "X-Cache: MISS", "X-Cache: HIT"]
--- response_body_like eval
["^answer for acme api-version=2024-02-01 ",
 "^answer for acme api-version=2024-06-01 ",
 "^answer for acme  ",
 "^answer for acme api-version=2024-02-01 "]



=== TEST 10: the key is SHA-256 over length-prefixed tenant, method, host, URI, arguments and canonical body
--- request eval
[main::chat('{ "temperature": 0, "model": "m", "prompt": "k" }',
            '?api-version=1'),
 "PUT /v1/chat/completions?api-version=1\n"
 . '{"model":"m","prompt":"k","temperature":0}']
--- more_headers eval
[$::acme, "$::beta\nHost: api.example.com"]
--- response_headers eval
["X-Cache-Key: "
 . main::cache_key_of("acme", "POST", "localhost", "/v1/chat/completions",
                      "api-version=1",
                      '{"model":"m","prompt":"k","temperature":0}'),
 "X-Cache-Key: "
 . main::cache_key_of("beta", "PUT", "api.example.com",
                      "/v1/chat/completions", "api-version=1",
                      '{"model":"m","prompt":"k","temperature":0}')]



=== TEST 11: rejected requests, requests without a body and locations without ai_guard get a key of their own
--- config eval
my $c = $::config;
$c =~ s{location /v1/ }{location /plain/ {
        proxy_cache          llm;
        proxy_cache_key      \$ai_guard_cache_key;
        proxy_cache_valid    200 1m;
        proxy_set_header X-Tenant none;
        add_header X-Cache \$upstream_cache_status always;
        add_header X-Cache-Key \$ai_guard_cache_key always;
        add_header X-No-Cache \$ai_guard_no_cache always;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /v1/ };
$c
--- request eval
[main::chat('{"model":"m","temperature":0,"prompt":"x"}'),
 main::chat('{"model":"m","temperature":0,'),
 "GET /v1/models",
 "GET /v1/models",
 "GET /plain/",
 "GET /plain/"]
--- more_headers eval
["", $::acme, $::acme, $::acme, "", ""]
--- error_code eval
[401, 400, 200, 200, 200, 200]
--- response_headers_like eval
["X-Cache: \nX-Cache-Key: nocache-[0-9a-f]{32}\nX-No-Cache: 1",
 "X-Cache: \nX-Cache-Key: nocache-[0-9a-f]{32}\nX-No-Cache: 1",
 $::bypass, $::bypass,
 "$::nocache\nX-No-Cache: 1", "$::nocache\nX-No-Cache: 1"]



=== TEST 12: monitor mode: a request ai_guard would reject is not cached
--- config eval
my $c = $::config;
$c =~ s/(ai_guard_cache_key  on;)/$1
        ai_guard_mode monitor;
        ai_guard_prompt_deny "forbidden" id=word;/;
$c
--- request eval
[main::chat('{"model":"m","temperature":0,"prompt":"forbidden"}'),
 main::chat('{"model":"m","temperature":0,"prompt":"forbidden"}'),
 main::chat('{"model":"m","temperature":0,"prompt":"fine"}'),
 main::chat('{"model":"m","temperature":0,"prompt":"fine"}')]
--- more_headers eval
[$::acme, $::acme, $::acme, $::acme]
--- response_headers_like eval
[$::bypass, $::bypass, "X-Cache: MISS\n$::cached", "X-Cache: HIT\n$::cached"]



=== TEST 13: the key is the same on every read; a request's own key is nocache-$request_id, a subrequest's another
--- config
    location = /v1/key {
        ai_guard            on;
        ai_guard_cache_key  on;
        echo "$ai_guard_cache_key $ai_guard_cache_key $request_id";
        echo_location /inner;
    }

    location = /inner {
        echo "$ai_guard_cache_key $ai_guard_no_cache";
    }
--- request eval
["POST /v1/key\n{\"model\":\"m\",\"prompt\":\"sampled\"}",
 "POST /v1/key\n{\"model\":\"m\",\"temperature\":0,\"prompt\":\"k\"}"]
--- more_headers eval
[$::acme, $::acme]
--- response_body_like eval
[qr/^nocache-(\w{32}) nocache-\1 \1\nnocache-(?!\1)[0-9a-f]{32} 1\n$/,
 qr/^([0-9a-f]{64}) \1 (\w{32})\nnocache-(?!\2)[0-9a-f]{32} 1\n$/]



=== TEST 14: the earlier map recipe that defined $ai_guard_no_cache fails nginx -t, loudly
--- http_config eval
$::http_config . <<'_EOC_';
    map $ai_guard_cache_key $ai_guard_no_cache {
        ""       1;
        default  0;
    }
_EOC_
--- must_die
--- error_log
[emerg]
the duplicate "ai_guard_no_cache" variable
