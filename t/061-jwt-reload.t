# JWT signing-key rotation: a JWKS swapped on disk plus a reload accepts
# the new key's tokens and refuses the removed key's; a broken JWKS on
# reload keeps the old one; no token reaches the error log.
#
# Plain Perl rather than blocks: Test::Nginx starts a fresh nginx for each
# block and has no section for a reload in the middle of one.  A token
# limited like a key is in t/062-jwt-limits.t, as a block.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More tests => 13;
use AiGuardNginx;

my $dir = "$FindBin::Bin/unit/data/jwt";
my $mint = "$FindBin::Bin/../util/jwt-mint";
my $iss = 'https://abcdefghijklmnop.supabase.co/auth/v1';
my $now = time;
my @sigs;

sub mint {
    my ($app, @opt) = @_;
    my $claims = qq({"iss":"$iss","aud":"authenticated","sub":"u-1",)
        . qq("iat":@{[ $now - 60 ]},"exp":@{[ $now + 3600 ]},)
        . qq("app_metadata":{$app}});
    open my $p, '-|', $mint, @opt, $claims or die "jwt-mint: $!";
    my $t = <$p>;
    close $p or die "jwt-mint @opt failed";
    chomp $t;
    push @sigs, (split /\./, $t)[2];
    return $t;
}

sub jwk {
    my (@opt) = @_;
    open my $p, '-|', $mint, '--jwk', @opt or die "jwt-mint: $!";
    my $k = <$p>;
    close $p or die "jwt-mint --jwk @opt failed";
    chomp $k;
    return $k;
}

my $acme = '"tenant":"acme","tier":"pro"';

my $old = mint($acme, '--key', "$dir/rsa1.pem", '--kid', 'rsa1');
my $new = mint($acme, '--key', "$dir/rsa2.pem", '--kid', 'rsa2');
my $new_nokid = mint($acme, '--key', "$dir/rsa2.pem");

my $http = <<"_EOC_";
    ai_guard_zone  ai_guard 1m;
    ai_guard_tier  pro;

    ai_guard_jwt_keys      \$TEST_NGINX_HTML_DIR/jwks.json;
    ai_guard_jwt_issuer    $iss;
    ai_guard_jwt_audience  authenticated;
    ai_guard_jwt_claims    tenant=app_metadata.tenant tier=app_metadata.tier;

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            ai_guard_jwt on;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /mock/ {
            return 200 "ok\\n";
        }
    }
_EOC_

my $n = AiGuardNginx->new(name => 'jwt-reload');

$n->write_file('html/jwks.json', '{"keys":[' . jwk("$dir/rsa1.pem",
                                                   '--kid', 'rsa1') . ']}');
$n->write_config($http);
$n->start;

sub status {
    my ($token) = @_;
    my ($status, $h, $body) = $n->request('GET', '/v1/models',
                                          ["Authorization: Bearer $token"]);
    return wantarray ? ($status, $body) : $status;
}

is(status($old), 200, 'the current key\'s token works');
is(status($old), 200, '... again, from the cache');

my ($status, $body) = status($new);
is($status, 401, 'a token of a key not yet published is refused');
like($body, qr/"code":"invalid_token"/, '... as invalid_token');

# the provider rotates: rsa2 signs, rsa1 is withdrawn
$n->write_file('html/jwks.json', '{"keys":[' . jwk("$dir/rsa2.pem",
                                                   '--kid', 'rsa2') . ']}');
$n->reload;

is(status($new), 200, 'after the reload the new key\'s token works');
is(status($new_nokid), 200, '... with or without a kid');

($status, $body) = status($old);
is($status, 401, 'the removed key\'s token is refused after the reload');
like($body, qr/"code":"invalid_token"/, '... as invalid_token');

# a broken JWKS on reload: the old configuration keeps serving
$n->write_file('html/jwks.json', '{"keys": [');
$n->reload;

is(status($new), 200, 'a broken JWKS on reload keeps the old keys');
like($n->log, qr/\[emerg\].*ai_guard_jwt_keys ".*jwks\.json": /,
     '... and says why in the log');

$n->stop;

my $log = $n->log;

for my $sig (@sigs) {
    unlike($log, qr/\Q$sig\E/, 'no token signature in the error log');
}
