# A Content-Encoding the meter cannot read: every such request is settled
# on the estimate, and a worker warns once, not once a request.
#
# Every error log check reads the whole log (check_accum_error_log): so
# the one warning is counted after each request, not only after the
# first, and no request may have been metered from the upstream.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(1);

# six requests, each: its status, its body, the warning counted (grep)
# and five log patterns (one error_log, four no_error_log)
plan tests => repeat_each() * 6 * (1 + 1 + 1 + 5);

check_accum_error_log();

our $key = "x-api-key: sk-aig-test-valid-0001";

# the standard http_config and keys file: acme-1 on tier pro
defaults();

run_tests();

__DATA__

=== TEST 1: five gzip answers: each on the estimate, one warning
--- http_config
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;

    log_format  meter  'ai_guard_meter $request_uri $ai_guard_usage_source';
--- config
    location /v1/ {
        ai_guard on;
        access_log logs/error.log meter;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        default_type application/json;
        add_header Content-Encoding gzip;
        return 200 "not really gzip";
    }

    location = /usage {
        ai_guard_usage;
    }
--- request eval
[(map { "POST /v1/r$_\n{\"model\":\"m\",\"prompt\":\"hi\"}" } 1 .. 5),
 "GET /usage"]
--- more_headers eval
[($::key) x 5, ""]
--- error_code eval
[(200) x 6]
--- response_body_like eval
[("^not really gzip\$") x 5,
 '"tenant":"acme","requests":5,.*"estimated_requests":5,']
--- grep_error_log eval
qr/ai_guard: the upstream answered with "Content-Encoding: gzip"/
--- grep_error_log_out
ai_guard: the upstream answered with "Content-Encoding: gzip"
--- error_log
ai_guard_meter /v1/r1 estimate
--- no_error_log eval
[qr/ai_guard_meter \S+ upstream/, @AiGuardBlocks::CLEAN]
