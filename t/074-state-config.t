# docs/state.md in the block format: scopes of ai_guard_limit_by are per
# tenant (or global), keys are length-prefixed, max= caps a tenant's
# variable scopes; the zone's three parts and what `nginx -t` refuses;
# ai_guard_usage_max_models folds the rest of a day's models into "other".
# Two workers, so every limit is shared through the zone.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(1);
workers(2);
master_on();

# per request: status, body and the three patterns of the default
# --- no_error_log; TEST 7 has 9 header lines; the must_die blocks one
# exit and two log checks each.  Blocks that need no
# new directive come first: a block whose nginx does not start ends the
# run (under both runners)
plan tests => repeat_each() * (5 * (5 + 4 + 4 + 7 + 2 + 1 + 5) + 9 + 3 * 3);

no_shuffle();

# acme-1, beta-1: tenants acme and beta; ab-1 and a-1: tenants "ab" and
# "a", whose names run into their end users' without length prefixes
our $user_files = keys_file(
    ['acme-1', 'sk-aig-test-valid-0001', tenant => 'acme', tier => 'two'],
    ['beta-1', 'sk-aig-test-beta-00001', tenant => 'beta', tier => 'two'],
    ['ab-1', 'sk-aig-test-future-0001', tenant => 'ab', tier => 'two'],
    ['a-1', 'sk-aig-test-disabled-01', tenant => 'a', tier => 'two'])
    . ">>> keys-day.json\n" . keys_json(
    ['acme-1', 'sk-aig-test-valid-0001', tenant => 'acme', tier => 'day'],
    ['beta-1', 'sk-aig-test-beta-00001', tenant => 'beta', tier => 'day']);

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

defaults(http_config => $http_config, user_files => $user_files,
         config => config(''));

run_tests();

__DATA__

=== TEST 1: a value scope is the tenant's: beta's "alice" is not acme's
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



=== TEST 2: length-prefixed: ("ab", "alice") is not ("a", "balice")
--- config eval: ::config('ai_guard_limit_by $http_x_end_user;')
--- request eval
[("GET /v1/models") x 4]
--- more_headers eval
[("$::ab\nX-End-User: alice") x 3, "$::a\nX-End-User: balice"]
--- error_code eval
[200, 200, 429, 200]
--- response_body_like eval
[$::ok, $::ok, $::rate, $::ok]



=== TEST 3: zone parts that add up to more than the zone: nginx -t fails
--- http_config eval
"    ai_guard_zone  z 128k limits=64k ledger=64k series=64k;\n"
. $::http_config
--- must_die
--- error_log eval
qr/\[emerg\] .*(?:exceed|more than|larger than|add up)/
--- no_error_log
invalid number of arguments



=== TEST 4: a zone part under 32k: nginx -t fails
--- http_config eval
"    ai_guard_zone  z 256k limits=16k;\n" . $::http_config
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
--- must_die
--- error_log eval
qr/\[emerg\] .*cannot hold/
--- no_error_log
invalid number of arguments



=== TEST 6: with global, one "alice" across tenants
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



=== TEST 7: max=2 a tenant: the third is limit_by_max, beta has its own
--- http_config eval: $::day_config
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



=== TEST 8: three parts given: nginx starts, meters and reports
--- http_config eval
"    ai_guard_zone  z 192k limits=64k ledger=64k series=64k;\n"
. $::http_config
--- request eval
[::chat('gpt-4o-mini'), "GET /usage?tenant=acme"]
--- more_headers eval
[$::acme, ""]
--- error_code eval
[200, 200]
--- response_body_like eval
[$::ok, '"tenants":\[\{"tenant":"acme","requests":1,"input_tokens":10,"output_tokens":5,']



=== TEST 9: limits get the rest of the zone
--- http_config eval
"    ai_guard_zone  z 256k ledger=96k series=64k;\n" . $::http_config
--- request eval
::chat('gpt-4o-mini')
--- more_headers eval: $::acme
--- error_code: 200
--- response_body_like eval: $::ok



=== TEST 10: ai_guard_usage_max_models 2: models 3 and 4 are "other"
--- http_config eval
"    ai_guard_usage_max_models  2;\n" . $::http_config
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
