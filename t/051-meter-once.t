# A Content-Encoding the meter cannot read: every such request is settled
# on the estimate, and a worker warns once, not once a request.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use AiGuardNginx;

my $n = AiGuardNginx->new(name => 'gzip');

$n->write_file('html/keys.json', <<'_EOF_');
{"keys": [
  {"id": "acme-1", "tenant": "acme",
   "sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"}
]}
_EOF_

$n->write_config(<<'_EOC_');
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;

    log_format  meter  '$request_uri $ai_guard_usage_source';

    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            access_log logs/access.log meter;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /mock/ {
            default_type application/json;
            add_header Content-Encoding gzip;
            return 200 "not really gzip";
        }
    }
_EOC_

$n->start;

for my $i (1 .. 5) {
    my ($status) = $n->request('POST', "/v1/r$i",
                               ['x-api-key: sk-aig-test-valid-0001'],
                               '{"model":"m","prompt":"hi"}');
    is($status, 200, "request $i passes");
}

my $lines = '';

for (1 .. 50) {
    $lines = $n->log('access.log');
    last if ($lines =~ tr/\n//) >= 5;
    select(undef, undef, undef, 0.05);
}

is(scalar(() = $lines =~ / estimate$/mg), 5,
   'all five are settled on the estimate');

$n->stop;

my @warnings = $n->log =~ /ai_guard: the upstream answered with "Content-Encoding: gzip"/g;
is(scalar @warnings, 1, 'one warning for the worker, not five');

done_testing();
