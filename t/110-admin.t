# The admin API (docs/admin.md) through nginx on two workers: a key made,
# used, moved to another tier, rotated with a grace period, disabled and
# revoked, each change in force for the next request whichever worker
# takes it; the store kept across a reload; an audit line a change with
# who made it and never a secret; and what an attacker of the API sends:
# bodies of every shape, unknown and repeated fields, oversized values,
# ids made to escape, a full store.
#
# Plain Perl rather than blocks: the secret a create returns is the key
# the next request uses.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use MIME::Base64 qw(encode_base64);
use AiGuardNginx;

my $file_digest =
    '86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e';

my $http = <<'_EOC_';
    ai_guard_tier  free  models=gpt-4o-mini*;
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_key_store  1m max=4;

    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /mock/ {
            default_type application/json;
            return 200 '{"model":"gpt-4o-mini","usage":{"prompt_tokens":3,"completion_tokens":2}}';
        }

        location /admin/ {
            auth_basic "admin";
            auth_basic_user_file $TEST_NGINX_HTML_DIR/htpasswd;
            ai_guard_admin;
        }

        location = /metrics { ai_guard_metrics; }
        location = /usage { ai_guard_usage; }
    }
_EOC_

my $n = AiGuardNginx->new(name => 'admin', workers => 2);

$n->write_file('html/keys.json', <<"_EOF_");
{"keys": [
  {"id": "file-1", "tenant": "filed", "tier": "pro", "sha256": "$file_digest"}
]}
_EOF_
$n->write_file('html/htpasswd', "ops:{PLAIN}s3cret\n");
$n->write_config($http);
$n->start;

my @auth = ('Authorization: Basic ' . encode_base64('ops:s3cret', ''),
            'Content-Type: application/json');
my @secrets;

sub admin {
    my ($method, $path, $body) = @_;
    return $n->request($method, "/admin/$path", \@auth, $body);
}

# the chat request of a model, with a key; returns (status, body)
sub chat {
    my ($key, $model) = @_;
    my ($st, $h, $b) = $n->request('POST', '/v1/chat/completions',
        ["Authorization: Bearer $key", 'Content-Type: application/json'],
        qq({"model":"$model","messages":[{"role":"user","content":"hi"}]}));
    return ($st, $b);
}

# every one of six requests (both workers, as the kernel spreads them)
sub all_say {
    my ($key, $model, $want, $name) = @_;
    my @got = map { (chat($key, $model))[0] } 1 .. 6;
    is(join(',', @got), join(',', ($want) x 6), $name);
}

sub field {
    my ($body, $name) = @_;
    return $body =~ /"$name":"([^"]*)"/ ? $1 : undef;
}

# create, and the secret returned once
my ($st, $h, $b) = admin('POST', 'keys',
    '{"id":"acme-1","tenant":"acme","tier":"free",'
    . '"stripe_customer":"cus_1"}');
is($st, 201, 'create: 201');
my $k1 = field($b, 'key');
like($k1 // '', qr/^sk-aig-[0-9A-Za-z]{40}$/, 'the secret is sk-aig- + 40 base62');
is($h->{'cache-control'}, 'no-store', 'the secret is not cached on the way');
like($b, qr/"source":"api"/, 'the key is the API\'s');
push @secrets, $k1;

all_say($k1, 'gpt-4o-mini', 200, 'the new key works at once on every worker');
all_say($k1, 'gpt-4o', 403, 'the free tier\'s models hold for it');

# get and list: never a secret
($st, $h, $b) = admin('GET', 'keys/acme-1');
is($st, 200, 'get: 200');
unlike($b, qr/sk-aig-/, 'get shows no secret');
like($b, qr/"last_used":"\d{4}-\d\d-\d\dT/, 'get shows when it was last used');

($st, $h, $b) = admin('GET', 'keys?tenant=acme');
like($b, qr/"id":"acme-1"/, 'list of the tenant has the key');
unlike($b, qr/file-1|sk-aig-/, 'and neither another tenant\'s key nor a secret');
($st, $h, $b) = admin('GET', 'keys');
like($b, qr/"id":"file-1".*"source":"file"/, 'the full list shows the file\'s keys');

# update the tier
($st, $h, $b) = admin('PATCH', 'keys/acme-1', '{"tier":"pro"}');
is($st, 200, 'update: 200');
like($b, qr/"tier":"pro"/, 'the answer shows the new tier');
all_say($k1, 'gpt-4o', 200, 'the new tier is in force for the next request');

# rotate with a grace period: both secrets work
($st, $h, $b) = admin('POST', 'keys/acme-1/rotate', '{"grace_seconds":3600}');
is($st, 200, 'rotate: 200');
my $k2 = field($b, 'key');
isnt($k2, $k1, 'a new secret');
like($b, qr/"old_key_until":"\d{4}-/, 'the old secret\'s end is shown');
push @secrets, $k2;
all_say($k2, 'gpt-4o', 200, 'the new secret works');
all_say($k1, 'gpt-4o', 200, 'the old one works in its grace period');

# rotate without grace: the previous secret stops at once, and the one
# before it too
($st, $h, $b) = admin('POST', 'keys/acme-1/rotate', '{"grace_seconds":0}');
my $k3 = field($b, 'key');
push @secrets, $k3;
all_say($k3, 'gpt-4o', 200, 'the third secret works');
all_say($k2, 'gpt-4o', 401, 'the second stops at once');
all_say($k1, 'gpt-4o', 401, 'the first too');

# disabled, enabled
admin('PATCH', 'keys/acme-1', '{"disabled":true}');
($st, $b) = chat($k3, 'gpt-4o');
like($b, qr/"code":"key_disabled"/, 'a disabled key is refused');
admin('PATCH', 'keys/acme-1', '{"disabled":false}');
all_say($k3, 'gpt-4o', 200, 'and enabled again');

# expired
admin('PATCH', 'keys/acme-1', '{"expires":"2001-01-01T00:00:00Z"}');
($st, $b) = chat($k3, 'gpt-4o');
like($b, qr/"code":"key_expired"/, 'an expired key is refused');
admin('PATCH', 'keys/acme-1', '{"expires":null}');

# metadata: the operator's labels, kept and shown, never read for auth
($st, $h, $b) = admin('PATCH', 'keys/acme-1',
    '{"metadata":{"team":"search","tier":"free","disabled":"true"}}');
is($st, 200, 'metadata set by update');
like($b, qr/"metadata":\{"team":"search","tier":"free","disabled":"true"\}/,
     'the answer shows it in its order');
like($b, qr/"tier":"pro".*"disabled":false/, 'the key\'s own fields unchanged');
all_say($k3, 'gpt-4o', 200, 'metadata named like fields changes no verdict');

# the store survives a reload
$n->reload;
all_say($k3, 'gpt-4o', 200, 'the key works after a reload');
($st, $h, $b) = admin('GET', 'keys/acme-1');
like($b, qr/"tier":"pro".*"stripe_customer":"cus_1"/,
     'with the fields it had');
like($b, qr/"metadata":\{"team":"search","tier":"free","disabled":"true"\}/,
     'and its metadata');
($st, $h, $b) = admin('GET', 'keys?tenant=acme');
like($b, qr/"id":"acme-1".*"metadata":\{"team":"search"/, 'the list shows it');
($st, $h, $b) = admin('PATCH', 'keys/acme-1', '{"metadata":{"cc":"7"}}');
like($b, qr/"metadata":\{"cc":"7"\},/, 'an update replaces all of it');
($st, $h, $b) = admin('PATCH', 'keys/acme-1', '{"metadata":{}}');
is($st, 200, 'an empty object clears it');
unlike($b, qr/"metadata"/, 'a key without metadata shows none');

# its usage is billed to its id
($st, $h, $b) = $n->request('GET', '/usage?tenant=acme&group=key');
like($b, qr/"key":"acme-1"/, 'the usage report bills the key by its id');

# revoke
($st, $h, $b) = admin('DELETE', 'keys/acme-1');
is($st, 200, 'delete: 200');
all_say($k3, 'gpt-4o', 401, 'a revoked key is refused at once everywhere');
($st, $h, $b) = admin('GET', 'keys/acme-1');
is($st, 404, 'and gone');
like($b, qr/"code":"key_not_found"/, 'key_not_found');

# the file's keys are the file's
($st, $h, $b) = admin('POST', 'keys', '{"id":"file-1","tenant":"x"}');
is($st, 409, 'an id of the keys file cannot be made again');
($st, $h, $b) = admin('PATCH', 'keys/file-1', '{"disabled":true}');
like($b, qr/"code":"key_in_file"/, 'nor changed through the API');
($st, $h, $b) = admin('DELETE', 'keys/file-1');
like($b, qr/"code":"key_in_file"/, 'nor deleted');

# what an attacker sends
my @bad = (
    ['POST', 'keys', 'not json', 400, 'null', 'not JSON'],
    ['POST', 'keys', '[1,2]', 400, 'null', 'an array'],
    ['POST', 'keys', '"x"', 400, 'null', 'a string'],
    ['POST', 'keys', '{"id":"a","tenant":"t","admin":true}', 400, 'null',
     'an unknown field'],
    ['POST', 'keys', '{"id":"a","tenant":"t","sha256":"00"}', 400, 'null',
     'a digest of the caller\'s choosing'],
    ['POST', 'keys', '{"id":"a","id":"b","tenant":"t"}', 400, '"id"',
     'a field twice'],
    ['POST', 'keys', '{"tenant":"t"}', 400, '"id"', 'no id'],
    ['POST', 'keys', '{"id":"a"}', 400, '"tenant"', 'no tenant'],
    ['POST', 'keys', '{"id":"a/../b","tenant":"t"}', 400, '"id"',
     'an id with a slash'],
    ['POST', 'keys', '{"id":"' . ('a' x 65) . '","tenant":"t"}', 400, '"id"',
     'an id too long'],
    ['POST', 'keys', '{"id":"a","tenant":"' . ('t' x 129) . '"}', 400,
     '"tenant"', 'a tenant too long'],
    ['POST', 'keys', '{"id":"a","tenant":"t\u0000x"}', 400, 'null',
     'a NUL in a string'],
    ['POST', 'keys', '{"id":"a","tenant":"t\n"}', 400, '"tenant"',
     'an escaped new line'],
    ['POST', 'keys', '{"id":"a","tenant":"t\u0001"}', 400, '"tenant"',
     'an escaped control character'],
    ['POST', 'keys', '{"id":"a","tenant":"t","tier":"gold"}', 400, '"tier"',
     'a tier not declared'],
    ['POST', 'keys', '{"id":"a","tenant":7}', 400, '"tenant"',
     'a number for a string'],
    ['POST', 'keys', '{"id":"a","tenant":"t","models":"gpt-4o"}', 400,
     '"models"', 'a string for the models'],
    ['POST', 'keys', '{"id":"a","tenant":"t","models":[' .
     join(',', ('"m"') x 17) . ']}', 400, '"models"', '17 models'],
    ['POST', 'keys', '{"id":"a","tenant":"t","expires":"tomorrow"}', 400,
     '"expires"', 'a date not RFC 3339'],
    ['POST', 'keys', '{"id":"a","tenant":"t","disabled":"yes"}', 400,
     '"disabled"', 'a string for a boolean'],
    ['POST', 'keys', '{"id":"a","tenant":"t","grace_seconds":5}', 400,
     'null', 'a field of another request'],
    ['POST', 'keys', '{"id":"a","tenant":"t"' . (' ' x 17000) . '}', 413,
     'null', 'a body over 16 KB'],
    ['POST', 'keys', ('[' x 5000) . (']' x 5000), 400, 'null',
     'nesting 5000 deep'],
    ['PATCH', 'keys/acme-2', '{"tenant":"other"}', 400, 'null',
     'a tenant changed by update'],
    ['POST', 'keys/acme-2/rotate', '{"grace_seconds":-1}', 400,
     '"grace_seconds"', 'a negative grace'],
    ['POST', 'keys/acme-2/rotate', '{"grace_seconds":99999999999999999999}',
     400, '"grace_seconds"', 'a grace past any integer'],
    ['POST', 'keys/acme-2/rotate', '{"grace_seconds":1.5}', 400,
     '"grace_seconds"', 'a fraction of a second'],
    ['PUT', 'keys', '{}', 405, 'null', 'PUT'],
    ['DELETE', 'keys', undef, 405, 'null', 'DELETE of all keys'],
    ['GET', 'nothing', undef, 404, 'null', 'an unknown path'],
    ['GET', 'keys/a%2Fb', undef, 404, 'null', 'an escaped slash in an id'],
    ['GET', 'keys/a%20b', undef, 400, '"id"', 'an escaped space in an id'],
    ['POST', 'keys', '{"id":"a","tenant":"t","tier":"free","models":[1]}',
     400, '"models"', 'a number for a model'],
    ['GET', 'keys/x/rotate/y', undef, 404, 'null', 'a path too long'],
    ['POST', 'keys', '{"id":"a","tenant":"t","metadata":"x"}', 400,
     '"metadata"', 'a string for the metadata'],
    ['POST', 'keys', '{"id":"a","tenant":"t","metadata":["x"]}', 400,
     '"metadata"', 'an array for the metadata'],
    ['POST', 'keys', '{"id":"a","tenant":"t","metadata":{'
     . join(',', map { qq("m$_":"v") } 1 .. 17) . '}}', 400, '"metadata"',
     '17 metadata members'],
    ['POST', 'keys', '{"id":"a","tenant":"t","metadata":{"m":"'
     . ('v' x 129) . '"}}', 400, '"metadata"', 'a metadata value too long'],
    ['POST', 'keys', '{"id":"a","tenant":"t","metadata":{"'
     . ('m' x 129) . '":"v"}}', 400, '"metadata"', 'a metadata name too long'],
    ['POST', 'keys', '{"id":"a","tenant":"t","metadata":{"":"v"}}', 400,
     '"metadata"', 'an empty metadata name'],
    ['POST', 'keys', '{"id":"a","tenant":"t","metadata":{"m":7}}', 400,
     '"metadata"', 'a number for a metadata value'],
    ['POST', 'keys', '{"id":"a","tenant":"t","metadata":{"m":{"n":"v"}}}',
     400, '"metadata"', 'metadata nested'],
    ['POST', 'keys', '{"id":"a","tenant":"t","metadata":{"m":"1","m":"2"}}',
     400, '"metadata"', 'a metadata name twice'],
    ['POST', 'keys', '{"id":"a","tenant":"t","metadata":{"m\u0001":"v"}}',
     400, '"metadata"', 'a control character in a metadata name'],
);

for my $t (@bad) {
    my ($method, $path, $body, $status, $param, $name) = @$t;
    ($st, $h, $b) = admin($method, $path, $body);
    is($st, $status, "$name: $status");
    like($b, qr/^\{"error":\{"message":"(?:[^"\\]|\\.)+","type":"[a-z_]+","param":\Q$param\E,/,
         "$name: the error names param $param");
}

# not the admin's: no credentials
($st, $h, $b) = $n->request('GET', '/admin/keys');
is($st, 401, 'the admin API is behind the location\'s own auth_basic');

# the store bounded: max=4 keys
for my $i (1 .. 4) {
    ($st, $h, $b) = admin('POST', 'keys', qq({"id":"fill-$i","tenant":"f"}));
    is($st, 201, "key $i of 4 made");
    push @secrets, field($b, 'key');
}

($st, $h, $b) = admin('POST', 'keys', '{"id":"fill-5","tenant":"f"}');
is($st, 503, 'a full store refuses a new key');
like($b, qr/"code":"key_store_full"/, 'and says why');
like($n->log, qr/\[warn\].*key store is full \(max= keys\): key "fill-5"/,
     'in the log too');
all_say($secrets[-1], 'gpt-4o-mini', 200, 'the stored keys keep working');

# the audit: who, what; never a secret
my $log = $n->log;
like($log, qr/ai_guard admin: key "acme-1" of tenant "acme" created by user "ops"/,
     'the audit line of a create names the user');
like($log, qr/key "acme-1" of tenant "acme" rotated by user "ops"/, 'rotation');
like($log, qr/key "acme-1" of tenant "acme" revoked by user "ops"/, 'revocation');
ok(!(grep { index($log, $_) >= 0 } @secrets), 'no secret in the log');
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert, the workers live on');

# every change counted: a create, 8 updates (tier, disabled, enabled,
# expired, not expired, metadata set, replaced, cleared), 2 rotations, a
# revocation, 4 creates
($st, $h, $b) = $n->request('GET', '/metrics');
my ($changes) = $b =~ /^ai_guard_admin_changes_total (\d+)$/m;
is($changes, 16, 'ai_guard_admin_changes_total counts every change');
like($b, qr/^ai_guard_key_store_keys 4$/m, 'the store has its 4 keys');

$n->stop;

done_testing();
