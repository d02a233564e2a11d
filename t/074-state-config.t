# docs/state.md in the block format: scopes of ai_guard_limit_by are per
# tenant (or global), keys are length-prefixed, max= caps a tenant's
# variable scopes; the zone's three parts and what `nginx -t` refuses;
# ai_guard_usage_max_models folds the rest of a day's models into "other".
# Two workers, so every limit is shared through the zone.

use Test::Nginx::Socket;

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

repeat_each(1);
workers(2);
master_on();

# per request: status, body, [error]; TEST 7 has 9 header lines; the
# must_die blocks one exit and two log checks each.  Blocks that need no
# new directive come first: a block whose nginx does not start ends the
# run (under both runners)
plan tests => repeat_each() * (3 * (5 + 4 + 4 + 7 + 2 + 1 + 5) + 9 + 3 * 3);

no_shuffle();

# acme-1, beta-1: tenants acme and beta; ab-1 and a-1: tenants "ab" and
# "a", whose names run into their end users' without length prefixes
our $user_files = <<'_EOF_';
>>> keys.json
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "two",
   "sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"},
  {"id": "beta-1", "tenant": "beta", "tier": "two",
   "sha256": "39c81276bc9edac2614e74ea48f6f4b687a3562ca7ba8b0d19806b3e69afde2c"},
  {"id": "ab-1", "tenant": "ab", "tier": "two",
   "sha256": "5ce7fee67f99f77555e6fe5192f9841a0709966866a04b289848357f584a8db6"},
  {"id": "a-1", "tenant": "a", "tier": "two",
   "sha256": "30e4b30767243b31569d1d067691295b2f5a5db37d191661e09f41f202367371"}
]}
>>> keys-day.json
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "day",
   "sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"},
  {"id": "beta-1", "tenant": "beta", "tier": "day",
   "sha256": "39c81276bc9edac2614e74ea48f6f4b687a3562ca7ba8b0d19806b3e69afde2c"}
]}
_EOF_

# rpm=2 keeps an entry's state for a minute, rpd=1000 for the day: with
# state, an entry is never freed while a test runs
our $http_config = <<'_EOC_';
    ai_guard_metrics_max_series  64;
    ai_guard_tier  two  rpm=2;
    ai_guard_tier  day  rpd=1000;
    ai_guard_price  *  input=1 output=2;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;
_EOC_

our $day_config = <<'_EOC_';
    ai_guard_metrics_max_series  64;
    ai_guard_tier  two  rpm=2;
    ai_guard_tier  day  rpd=1000;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys-day.json;
_EOC_

sub config {
    my ($limit_by) = @_;

    return <<"_EOC_";
    location /v1/ {
        ai_guard on;
        $limit_by
        add_header X-Reason \$ai_guard_reason always;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        default_type application/json;
        echo '{"usage":{"prompt_tokens":10,"completion_tokens":5},"ok":1}';
    }

    location = /usage {
        ai_guard_usage;
    }
_EOC_
}

our $acme = "Authorization: Bearer sk-aig-test-valid-0001";
our $beta = "Authorization: Bearer sk-aig-test-beta-00001";
our $ab = "Authorization: Bearer sk-aig-test-future-0001";
our $a = "Authorization: Bearer sk-aig-test-disabled-01";

our $ok = '"ok":1';
our $rate = '"code":"rate_limit_exceeded"';

sub chat {
    my ($model) = @_;
    return "POST /v1/chat/completions\n{\"model\":\"$model\","
           . "\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
           . "\"content\":\"hi\"}]}";
}

run_tests();

__DATA__

=== TEST 1: a value scope is the tenant's: beta's "alice" is not acme's
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval: ::config('ai_guard_limit_by $http_x_end_user;')
--- request eval
[("GET /v1/models") x 5]
--- more_headers eval
[("$::acme\nX-End-User: alice") x 3, "$::beta\nX-End-User: alice",
 "$::acme\nX-End-User: bob"]
--- error_code eval
[200, 200, 429, 200, 200]
--- response_body_like eval
[$::ok, $::ok, $::rate, $::ok, $::ok]
--- no_error_log
[error]



=== TEST 2: length-prefixed: ("ab", "alice") is not ("a", "balice")
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval: ::config('ai_guard_limit_by $http_x_end_user;')
--- request eval
[("GET /v1/models") x 4]
--- more_headers eval
[("$::ab\nX-End-User: alice") x 3, "$::a\nX-End-User: balice"]
--- error_code eval
[200, 200, 429, 200]
--- response_body_like eval
[$::ok, $::ok, $::rate, $::ok]
--- no_error_log
[error]



=== TEST 3: zone parts that add up to more than the zone: nginx -t fails
--- http_config eval
"    ai_guard_zone  z 128k limits=64k ledger=64k series=64k;\n"
. $::http_config
--- user_files eval: $::user_files
--- config eval: ::config('')
--- must_die
--- error_log eval
qr/\[emerg\] .*(?:exceed|more than|larger than|add up)/
--- no_error_log
invalid number of arguments



=== TEST 4: a zone part under 32k: nginx -t fails
--- http_config eval
"    ai_guard_zone  z 256k limits=16k;\n" . $::http_config
--- user_files eval: $::user_files
--- config eval: ::config('')
--- must_die
--- error_log eval
qr/\[emerg\] .*(?:32k|32768|too small|at least)/
--- no_error_log
invalid number of arguments



=== TEST 5: a series part too small for max_series: nginx -t fails
--- http_config eval
"    ai_guard_zone  z 512k series=64k;\n"
. "    ai_guard_metrics_max_series  200;\n"
. "    ai_guard_tier  two  rpm=2;\n"
. "    ai_guard_keys  \$TEST_NGINX_HTML_DIR/keys.json;\n"
--- user_files eval: $::user_files
--- config eval: ::config('')
--- must_die
--- error_log eval
qr/\[emerg\] .*cannot hold/
--- no_error_log
invalid number of arguments



=== TEST 6: with global, one "alice" across tenants
--- http_config eval: $::http_config
--- user_files eval: $::user_files
--- config eval: ::config('ai_guard_limit_by $http_x_end_user global;')
--- request eval
[("GET /v1/models") x 4]
--- more_headers eval
[("$::acme\nX-End-User: alice") x 2, "$::beta\nX-End-User: alice",
 "$::beta\nX-End-User: bob"]
--- error_code eval
[200, 200, 429, 200]
--- response_body_like eval
[$::ok, $::ok, $::rate, $::ok]
--- no_error_log
[error]



=== TEST 7: max=2 a tenant: the third is limit_by_max, beta has its own
--- http_config eval: $::day_config
--- user_files eval: $::user_files
--- config eval: ::config('ai_guard_limit_by $http_x_end_user max=2;')
--- request eval
[("GET /v1/models") x 7]
--- more_headers eval
["$::acme\nX-End-User: u1", "$::acme\nX-End-User: u2",
 "$::acme\nX-End-User: u3", "$::beta\nX-End-User: u1",
 "$::beta\nX-End-User: u2", "$::acme\nX-End-User: u1",
 "$::acme\nX-End-User: u3"]
--- error_code eval
[200, 200, 429, 200, 200, 200, 429]
--- response_headers eval
["!retry-after", "!retry-after",
 "retry-after: 60\nX-Reason: limit_by_max",
 "!retry-after", "!retry-after", "!retry-after",
 "retry-after: 60\nX-Reason: limit_by_max"]
--- response_body_like eval
[$::ok, $::ok, $::rate, $::ok, $::ok, $::ok, $::rate]
--- no_error_log
[error]



=== TEST 8: three parts given: nginx starts, meters and reports
--- http_config eval
"    ai_guard_zone  z 192k limits=64k ledger=64k series=64k;\n"
. $::http_config
--- user_files eval: $::user_files
--- config eval: ::config('')
--- request eval
[::chat('gpt-4o-mini'), "GET /usage?tenant=acme"]
--- more_headers eval
[$::acme, ""]
--- error_code eval
[200, 200]
--- response_body_like eval
[$::ok, '"tenants":\[\{"tenant":"acme","requests":1,"input_tokens":10,"output_tokens":5,']
--- no_error_log
[error]



=== TEST 9: limits get the rest of the zone
--- http_config eval
"    ai_guard_zone  z 256k ledger=96k series=64k;\n" . $::http_config
--- user_files eval: $::user_files
--- config eval: ::config('')
--- request eval
::chat('gpt-4o-mini')
--- more_headers eval: $::acme
--- error_code: 200
--- response_body_like eval: $::ok
--- no_error_log
[error]



=== TEST 10: ai_guard_usage_max_models 2: models 3 and 4 are "other"
--- http_config eval
"    ai_guard_usage_max_models  2;\n" . $::http_config
--- user_files eval: $::user_files
--- config eval: ::config('ai_guard_limit_by $http_x_end_user;')
--- request eval
[::chat('m1'), ::chat('m2'), ::chat('m3'), ::chat('m4'),
 "GET /usage?tenant=acme&group=model"]
--- more_headers eval
[map({ "$::acme\nX-End-User: u$_" } 1 .. 4), ""]
--- error_code eval
[200, 200, 200, 200, 200]
--- response_body_like eval
[$::ok, $::ok, $::ok, $::ok,
 '"groups":\[\{"model":"m1","requests":1,[^\]]*\{"model":"m2","requests":1,[^\]]*\{"model":"other","requests":2,"input_tokens":20,"output_tokens":10,[^\]]*\]\}\]\}$']
--- no_error_log
[error]
