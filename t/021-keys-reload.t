# The keys file: a removed key stops working after `nginx -s reload`, and
# every malformed file fails `nginx -t` naming the file and the entry.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
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
like($n->log, qr/\[emerg\].*ai_guard_keys ".*keys\.json": invalid JSON/,
     '... and says why in the log');

$n->stop;

unlike($n->log, qr/sk-aig-test/, 'no key in the error log');

my @broken = (
    [ 'not JSON', '{"keys": [ {"id": ',
      qr/invalid JSON/ ],
    [ 'not an object', '[1, 2]',
      qr/the file is an array, not an object/ ],
    [ 'no keys array', '{"key": []}',
      qr/no "keys" array/ ],
    [ 'duplicate digest',
      qq({"keys": [{"id": "a", "sha256": "$valid"},
                   {"id": "b", "sha256": "$valid"}]}),
      qr/entry 2 \("b"\): duplicate sha256, the same as entry 1 \("a"\)/ ],
    [ 'bad date',
      qq({"keys": [{"id": "a", "sha256": "$valid",
                    "expires": "2027-02-30T00:00:00Z"}]}),
      qr/entry 1: "expires" is not an RFC 3339 date/ ],
    [ 'short digest',
      qq({"keys": [{"id": "a", "sha256": "abc123"}]}),
      qr/entry 1: "sha256" must be 64 hex digits/ ],
    [ 'digest not hex',
      qq({"keys": [{"id": "a", "sha256": "${\ ('z' x 64)}"}]}),
      qr/entry 1: "sha256" must be 64 hex digits/ ],
    [ 'no id',
      qq({"keys": [{"sha256": "$valid"}]}),
      qr/entry 1: no "id"/ ],
    [ 'no digest',
      qq({"keys": [{"id": "a"}]}),
      qr/entry 1 \("a"\): no "sha256"/ ],
    [ 'disabled not a boolean',
      qq({"keys": [{"id": "a", "sha256": "$valid", "disabled": "yes"}]}),
      qr/entry 1: "disabled" is a string/ ],
    [ 'undeclared tier',
      qq({"keys": [{"id": "a", "sha256": "$valid", "tier": "gold"}]}),
      qr/entry 1 \("a"\): tier "gold" is not declared by ai_guard_tier/ ],
    [ 'an entry not an object', '{"keys": ["x"]}',
      qr/entry 1: a string, not an object/ ],
);

for my $case (@broken) {
    my ($name, $json, $want) = @$case;
    my $t = AiGuardNginx->new(name => 'keys-t');

    $t->write_file('html/keys.json', $json);
    $t->write_config($http);

    my ($rc, $out) = $t->test_config;

    isnt($rc, 0, "$name: nginx -t fails");
    like($out, qr/ai_guard_keys "[^"]*keys\.json": /,
         "$name: the message names the file");
    like($out, $want, "$name: and the problem");
}

my $t = AiGuardNginx->new(name => 'keys-t');
$t->write_config($http);
my ($rc, $out) = $t->test_config;
isnt($rc, 0, 'a missing keys file fails nginx -t');
like($out, qr/keys\.json" failed/, '... naming the file');

$t->write_file('html/keys.json', qq({"keys": [], "comment": {"a": [1]}}));
($rc, $out) = $t->test_config;
is($rc, 0, 'an empty key list with extra fields is valid') or diag $out;

done_testing();
