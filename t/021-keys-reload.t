# The keys file across `nginx -s reload`: a removed key stops working, the
# keys that stay keep working, and a broken file on reload leaves the old
# keys serving, with the reason in the log.
#
# Plain Perl rather than blocks: Test::Nginx starts a fresh nginx for each
# block and has no section for a reload in the middle of one.  What a
# malformed file does to `nginx -t` is in t/020-keys-file.t, as blocks.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More tests => 7;
use AiGuardNginx;

my $valid = '86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e';
my $beta  = '39c81276bc9edac2614e74ea48f6f4b687a3562ca7ba8b0d19806b3e69afde2c';

my $http = <<'_EOC_';
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;

    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /mock/ {
            return 200 "ok\n";
        }
    }
_EOC_

my $n = AiGuardNginx->new(name => 'keys');

$n->write_file('html/keys.json', <<"_EOF_");
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "pro", "sha256": "$valid"},
  {"id": "beta-1", "tenant": "beta", "sha256": "$beta"}
]}
_EOF_

$n->write_config($http);
$n->start;

my @beta = ('x-api-key: sk-aig-test-beta-00001');
my @acme = ('Authorization: Bearer sk-aig-test-valid-0001');

my ($status, $h, $body) = $n->request('GET', '/v1/models', \@beta);
is($status, 200, 'beta key works before the reload');

$n->write_file('html/keys.json', <<"_EOF_");
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "pro", "sha256": "$valid"}
]}
_EOF_

$n->reload;

($status, $h, $body) = $n->request('GET', '/v1/models', \@beta);
is($status, 401, 'the removed key is refused after the reload');
like($body, qr/"code":"invalid_api_key"/, '... as an invalid key');

($status) = $n->request('GET', '/v1/models', \@acme);
is($status, 200, 'the key that stayed still works');

# a broken file on reload: the old configuration keeps serving
$n->write_file('html/keys.json', '{"keys": [');
$n->reload;

($status) = $n->request('GET', '/v1/models', \@acme);
is($status, 200, 'a broken keys file on reload keeps the old keys');
like($n->log, qr/\[emerg\].*ai_guard_keys ".*keys\.json", line \d+, column \d+: invalid JSON/,
     '... and says why in the log');

$n->stop;

unlike($n->log, qr/sk-aig-test/, 'no key in the error log');
