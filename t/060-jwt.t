# OAuth/JWT bearer tokens: RS256, ES256 and HS256 tokens from a JWKS on
# disk, each way a token fails with its code, the claims mapped to tenant,
# tier, key id and models, and no token in the error log.  The tokens are
# minted here with util/jwt-mint and the test keys of t/unit/data/jwt/;
# the second round of each block is served from the worker's cache.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(2);

# each request: its status and the four patterns of the default
# --- no_error_log, no token and the three levels (84 requests and 5
# blocks that must die, their exit counted as a status); then 80 body
# checks, 73 header lines, 13 error_log lines and one grep_error_log
plan tests => repeat_each() * (5 * 89 + 80 + 73 + 13 + 1);

no_shuffle();

our $dir = 't/unit/data/jwt';
our $iss = 'https://abcdefghijklmnop.supabase.co/auth/v1';
our $sub = '6f1c2a4e-2b7d-4f7a-9c1e-0a5b3c2d1e0f';
our $now = time;
our @sigs;

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or die "$f: $!";
    local $/;
    return <$fh>;
}

# a Supabase access token: custom claims under app_metadata
sub claims {
    my (%o) = @_;
    my %c = (iss => $iss, aud => 'authenticated', sub => $sub,
             iat => $now - 60, exp => $now + 3600, role => 'authenticated',
             app => '"tenant":"acme","tier":"pro"', %o);
    my $app = delete $c{app};
    return '{' . join(',', map {
               my $v = $c{$_};
               "\"$_\":" . ($v =~ /^-?\d+$/ || $v =~ /^[\[{]/ ? $v : "\"$v\"")
           } sort keys %c)
           . ",\"app_metadata\":{$app}}";
}

sub mint {
    my ($claims, @opt) = @_;
    my @cmd = ('util/jwt-mint', @opt, $claims);
    open my $p, '-|', @cmd or die "jwt-mint: $!";
    my $t = <$p>;
    close $p or die "jwt-mint @opt failed";
    chomp $t;
    push @sigs, (split /\./, $t)[2] if $t =~ /\.[^.]+$/;
    return $t;
}

our %tok = (
    rs256     => mint(claims(), '--key', "$dir/rsa1.pem", '--kid', 'rsa1'),
    rs_nokid  => mint(claims(), '--key', "$dir/rsa1.pem"),
    es256     => mint(claims(), '--key', "$dir/ec256.pem", '--kid', 'ec256'),
    rs384     => mint(claims(), '--key', "$dir/rsa1.pem", '--kid', 'rsa1',
                      '--alg', 'RS384'),
    hs256     => mint(claims(), '--key', "$dir/hs.secret", '--kid', 'hs1'),
    expired   => mint(claims(iat => $now - 7200, exp => $now - 3600),
                      '--key', "$dir/rsa1.pem", '--kid', 'rsa1'),
    nbf       => mint(claims(nbf => $now + 3600),
                      '--key', "$dir/ec256.pem", '--kid', 'ec256'),
    iss       => mint(claims(iss => 'https://evil.example/auth/v1'),
                      '--key', "$dir/rsa1.pem", '--kid', 'rsa1'),
    aud       => mint(claims(aud => 'service_role'),
                      '--key', "$dir/rsa1.pem", '--kid', 'rsa1'),
    wrongkid  => mint(claims(), '--key', "$dir/rsa1.pem", '--kid', 'nope'),
    rsa2      => mint(claims(), '--key', "$dir/rsa2.pem", '--kid', 'rsa2'),
    rsa2_nokid => mint(claims(), '--key', "$dir/rsa2.pem"),
    none      => mint(claims(), '--key', "$dir/hs.secret", '--alg', 'none'),
    confusion => mint(claims(), '--key', "$dir/rsa1.pub.pem", '--kid', 'rsa1',
                      '--alg', 'HS256'),
    confusion_nokid => mint(claims(), '--key', "$dir/rsa1.pub.pem",
                            '--alg', 'HS256'),
    gold      => mint(claims(app => '"tenant":"acme","tier":"gold"'),
                      '--key', "$dir/rsa1.pem", '--kid', 'rsa1'),
    notier    => mint(claims(app => '"tenant":"acme"'),
                      '--key', "$dir/ec256.pem", '--kid', 'ec256'),
    models    => mint(claims(app => '"tenant":"acme","tier":"pro",'
                                    . '"models":["gpt-4o-mini*"]'),
                      '--key', "$dir/rsa1.pem", '--kid', 'rsa1'),
    notenant  => mint(claims(app => '"tier":"pro"'),
                      '--key', "$dir/rsa1.pem", '--kid', 'rsa1'),
);

# the payload of another token under the signature of rs256
{
    my @a = split /\./, $tok{rs256};
    my @b = split /\./, mint(claims(app => '"tenant":"beta","tier":"pro"'),
                             '--key', "$dir/rsa1.pem", '--kid', 'rsa1');
    $tok{tampered} = "$a[0].$b[1].$a[2]";
}

sub bearer { "Authorization: Bearer $tok{$_[0]}" }

# every algorithm, and each token's signature cut to 3 bytes (an HS256
# forgery in 2^24 tries if only the bytes sent were compared), 3 and 300
# bytes too long (past any MAC's buffer), and empty: all invalid_token
our %alg_key = (RS => ['rsa1.pem', 'rsa1'], PS => ['rsa1.pem', 'rsa1'],
                ES256 => ['ec256.pem', 'ec256'],
                ES384 => ['ec384.pem', 'ec384'],
                HS => ['hs.secret', 'hs1']);
our @algs = qw(RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 HS256 HS384
               HS512);
our (@sig_tokens, @sig_codes);

for my $alg (@algs) {
    my ($file, $kid) = @{ $alg_key{$alg} || $alg_key{substr $alg, 0, 2} };
    my $t = mint(claims(), '--key', "$dir/$file", '--kid', $kid,
                 '--alg', $alg);
    my ($hp, $sig) = $t =~ /^(.*\.)([^.]*)$/;

    push @sig_tokens, $t, $hp . substr($sig, 0, 4), "${t}AAAA",
                      $t . ('A' x 400), $hp;
    push @sig_codes, 200, (401) x 4;
}

# the JWKS of those: jwks.json with its oct key for every HS algorithm
our $jwks_any_hs = slurp("$dir/jwks.json");
$jwks_any_hs =~ s/"alg":"HS256",// or die "jwks.json: no HS256 oct key";

our $http_config = <<"_EOC_";
    ai_guard_tier  pro;
    ai_guard_tier  free;
    ai_guard_keys  \$TEST_NGINX_HTML_DIR/keys.json;

    ai_guard_jwt_keys        \$TEST_NGINX_HTML_DIR/jwks.json;
    ai_guard_jwt_issuer      $iss;
    ai_guard_jwt_audience    authenticated;
    ai_guard_jwt_algorithms  RS256 ES256 HS256;
    ai_guard_jwt_claims      tenant=app_metadata.tenant
                             tier=app_metadata.tier
                             models=app_metadata.models;

    # whether a token's identity came from the worker's cache, in the
    # error log where --- grep_error_log sees it (the debug line that
    # said so exists only in --with-debug builds)
    log_format  jwt  'ai_guard_jwt cache=\$ai_guard_jwt_cache';
_EOC_

our $user_files = ">>> jwks.json\n" . slurp("$dir/jwks.json")
    . ">>> rotation.json\n" . slurp("$dir/jwks-rotation.json")
    . ">>> any-hs.json\n" . $jwks_any_hs
    . keys_file(['acme-1', 'sk-aig-test-valid-0001', tenant => 'acme',
                 tier => 'pro'],
                ['beta-1', 'sk-aig-test-beta-00001', tenant => 'beta']);

our $headers = <<'_EOC_';
        add_header X-Key-Id $ai_guard_key_id always;
        add_header X-Tenant $ai_guard_tenant always;
        add_header X-Tier $ai_guard_tier always;
        add_header X-Reason $ai_guard_reason always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
_EOC_

our $config = <<"_EOC_";
    location /v1/ {
        ai_guard on;
        ai_guard_jwt on;
        access_log logs/error.log jwt;
$headers
    }

    location /keyhdr/ {
        ai_guard on;
        ai_guard_jwt on;
        ai_guard_key_header x-api-key;
$headers
    }

    location /sub/ {
        ai_guard on;
        ai_guard_jwt on;
        ai_guard_jwt_claims tenant=sub;
        ai_guard_jwt_default_tier free;
$headers
    }

    location /rotation/ {
        ai_guard on;
        ai_guard_jwt on;
        ai_guard_jwt_keys \$TEST_NGINX_HTML_DIR/rotation.json;
        ai_guard_jwt_algorithms RS256;
$headers
    }

    location /allalg/ {
        ai_guard on;
        ai_guard_jwt on;
        ai_guard_jwt_keys \$TEST_NGINX_HTML_DIR/any-hs.json;
        ai_guard_jwt_algorithms @algs;
$headers
    }

    location /nojwt/ {
        ai_guard on;
$headers
    }

    location /mock/ {
        echo "auth=[\$http_authorization] xkey=[\$http_x_api_key]";
    }
_EOC_

# no line may hold a token's signature (its first 20 characters are
# enough to tell); nginx's own debug echo of the request headers ("http
# header: ...") is core behaviour, see 010-auth.t
our $sig_re = join '|', map { quotemeta substr($_, 0, 20) } @sigs;
our $no_token_in_log = [qr/^(?!.*http header: ).*(?:$sig_re)/,
                        @AiGuardBlocks::CLEAN];

our $invalid = '{"error":{"message":"The bearer token is invalid: send a '
    . 'token of this API\'s identity provider, or an API key.",'
    . '"type":"invalid_request_error","param":null,"code":"invalid_token"}}';

# a block without --- no_error_log: no token, no [error] [alert] [crit]
defaults(http_config => $http_config, user_files => $user_files,
         config => $config, no_error_log => $no_token_in_log);

run_tests();

__DATA__

=== TEST 1: RS256 token: tenant and tier from app_metadata, key id = sub
--- request
GET /v1/models
--- more_headers eval: main::bearer('rs256')
--- response_headers
X-Key-Id: 6f1c2a4e-2b7d-4f7a-9c1e-0a5b3c2d1e0f
X-Tenant: acme
X-Tier: pro
--- response_body
auth=[] xkey=[]
--- grep_error_log eval: qr/ai_guard_jwt cache=\S*/
--- grep_error_log_out eval
["ai_guard_jwt cache=miss\n", "ai_guard_jwt cache=hit\n"]



=== TEST 2: RS256 token without kid: every RSA key is tried
--- request
GET /v1/models
--- more_headers eval: main::bearer('rs_nokid')
--- response_headers
X-Tenant: acme
--- response_body
auth=[] xkey=[]



=== TEST 3: ES256 token
--- request
GET /v1/models
--- more_headers eval: main::bearer('es256')
--- response_headers
X-Key-Id: 6f1c2a4e-2b7d-4f7a-9c1e-0a5b3c2d1e0f
X-Tenant: acme
X-Tier: pro
--- response_body
auth=[] xkey=[]



=== TEST 4: HS256 token with the JWKS's oct secret
--- request
GET /v1/models
--- more_headers eval: main::bearer('hs256')
--- response_headers
X-Tenant: acme
--- response_body
auth=[] xkey=[]



=== TEST 5: expired token
--- request
GET /v1/models
--- more_headers eval: main::bearer('expired')
--- error_code: 401
--- response_headers
Content-Type: application/json
X-Reason: token_expired
--- response_body
{"error":{"message":"The bearer token has expired: get a new one from the identity provider.","type":"invalid_request_error","param":null,"code":"token_expired"}}
--- error_log
ai_guard: rejected: token_expired, key digest



=== TEST 6: token not yet valid (nbf an hour ahead)
--- request
GET /v1/models
--- more_headers eval: main::bearer('nbf')
--- error_code: 401
--- response_body_like: "code":"token_not_yet_valid"



=== TEST 7: wrong issuer
--- request
GET /v1/models
--- more_headers eval: main::bearer('iss')
--- error_code: 401
--- response_body_like: "code":"invalid_issuer"



=== TEST 8: wrong audience
--- request
GET /v1/models
--- more_headers eval: main::bearer('aud')
--- error_code: 401
--- response_body_like: "code":"invalid_audience"



=== TEST 9: unknown kid
--- request
GET /v1/models
--- more_headers eval: main::bearer('wrongkid')
--- error_code: 401
--- response_body eval: "$::invalid\n"
--- error_log
unknown "kid"



=== TEST 10: tampered payload
--- request
GET /v1/models
--- more_headers eval: main::bearer('tampered')
--- error_code: 401
--- response_body eval: "$::invalid\n"
--- error_log
bad signature



=== TEST 11: alg none
--- request
GET /v1/models
--- more_headers eval: main::bearer('none')
--- error_code: 401
--- response_body eval: "$::invalid\n"



=== TEST 12: HS256 signed with the RSA public key as the secret
--- request eval
["GET /v1/models", "GET /v1/models"]
--- more_headers eval
[main::bearer('confusion'), main::bearer('confusion_nokid')]
--- error_code eval
[401, 401]
--- response_body eval
["$::invalid\n", "$::invalid\n"]



=== TEST 13: rotation: a JWKS with two keys takes tokens of either
--- request eval
["GET /rotation/models", "GET /rotation/models", "GET /rotation/models"]
--- more_headers eval
[main::bearer('rs256'), main::bearer('rsa2'), main::bearer('rsa2_nokid')]
--- error_code eval
[200, 200, 200]



=== TEST 14: a key no longer in the JWKS: the second key's token elsewhere
--- request
GET /v1/models
--- more_headers eval: main::bearer('rsa2')
--- error_code: 401
--- response_body eval: "$::invalid\n"



=== TEST 15: a tier the module does not declare is refused
--- request
GET /v1/models
--- more_headers eval: main::bearer('gold')
--- error_code: 403
--- response_body
{"error":{"message":"The bearer token names a tier that this API does not have: ask the API's provider to check the token's tier.","type":"invalid_request_error","param":null,"code":"tier_unknown"}}



=== TEST 16: no tier claim: ai_guard_jwt_default_tier; tenant=sub
--- request
GET /sub/models
--- more_headers eval: main::bearer('notier')
--- response_headers
X-Key-Id: 6f1c2a4e-2b7d-4f7a-9c1e-0a5b3c2d1e0f
X-Tenant: 6f1c2a4e-2b7d-4f7a-9c1e-0a5b3c2d1e0f
X-Tier: free



=== TEST 17: no tenant claim
--- request
GET /v1/models
--- more_headers eval: main::bearer('notenant')
--- error_code: 401
--- response_body_like: "code":"invalid_token"



=== TEST 18: the models claim restricts the models
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\",\"messages\":[]}",
 "POST /v1/chat/completions\n{\"model\":\"gpt-4o\",\"messages\":[]}"]
--- more_headers eval
[main::bearer('models'), main::bearer('models')]
--- error_code eval
[200, 403]
--- response_body_like eval
["auth=", '"code":"model_not_allowed"']



=== TEST 19: token and key: by default the bearer token is used
--- request
GET /v1/models
--- more_headers eval
main::bearer('rs256') . "\nx-api-key: sk-aig-test-beta-00001"
--- response_headers
X-Tenant: acme
--- response_body
auth=[] xkey=[]



=== TEST 20: token and key: the key wins in the header ai_guard_key_header names
--- request eval
["GET /keyhdr/models", "GET /keyhdr/models"]
--- more_headers eval
[main::bearer('rs256') . "\nx-api-key: sk-aig-test-beta-00001",
 main::bearer('es256')]
--- response_headers eval
["X-Key-Id: beta-1\nX-Tenant: beta", "X-Tenant: acme"]
--- response_body eval
["auth=[] xkey=[]\n", "auth=[] xkey=[]\n"]



=== TEST 21: without ai_guard_jwt a token is just an unknown key
--- request
GET /nojwt/models
--- more_headers eval: main::bearer('rs256')
--- error_code: 401
--- response_body_like: "code":"invalid_api_key"



=== TEST 22: JWT only: no ai_guard_keys; an API key is then unknown
--- http_config eval
"ai_guard_tier pro;\n"
. "ai_guard_jwt_keys \$TEST_NGINX_HTML_DIR/jwks.json;\n"
. "ai_guard_jwt_claims tenant=app_metadata.tenant tier=app_metadata.tier;\n"
--- config eval
"location /v1/ { ai_guard on; ai_guard_jwt on; $::headers }\n"
. "location /mock/ { echo ok; }\n"
--- request eval
["GET /v1/models", "GET /v1/models"]
--- more_headers eval
[main::bearer('es256'), "x-api-key: sk-aig-test-valid-0001"]
--- error_code eval
[200, 401]
--- response_body_like eval
["ok", '"code":"invalid_api_key"']



=== TEST 23: ai_guard on with neither keys nor tokens
--- http_config
    ai_guard_tier pro;
--- config
    location /v1/ { ai_guard on; echo ok; }
--- must_die
--- error_log
[emerg]
"ai_guard on" needs a credential to check: "ai_guard_keys <file>" or "ai_guard_key_store <size>" in the http block, or "ai_guard_jwt on"



=== TEST 24: ai_guard_jwt on without ai_guard_jwt_keys
--- http_config
    ai_guard_tier pro;
--- config
    location /v1/ { ai_guard on; ai_guard_jwt on; echo ok; }
--- must_die
--- error_log
[emerg]
"ai_guard_jwt on" needs "ai_guard_jwt_keys <file>"



=== TEST 25: alg none can never be enabled
--- http_config
    ai_guard_jwt_algorithms RS256 none;
--- config
    location /v1/ { echo ok; }
--- must_die
--- error_log
[emerg]
algorithm "none" can never be enabled



=== TEST 26: HS256 allowed, but the JWKS has no oct key
--- http_config eval
"ai_guard_jwt_keys \$TEST_NGINX_HTML_DIR/rotation.json;\n"
. "ai_guard_jwt_algorithms RS256 HS256;\n"
--- config
    location /v1/ { ai_guard on; ai_guard_jwt on; echo ok; }
--- must_die
--- error_log
[emerg]
ai_guard_jwt_algorithms allows HS* but



=== TEST 27: a JWKS that is not JSON
--- http_config
    ai_guard_jwt_keys $TEST_NGINX_HTML_DIR/broken.json;
--- user_files
>>> broken.json
{"keys": [
--- config
    location /v1/ { echo ok; }
--- must_die
--- error_log
[emerg]
ai_guard_jwt_keys



=== TEST 28: every algorithm: a signature cut short, too long or empty is invalid_token
--- request eval
[("GET /allalg/models") x @::sig_tokens]
--- more_headers eval
[map { "Authorization: Bearer $_" } @::sig_tokens]
--- error_code eval
[@::sig_codes]
--- response_headers eval
[map { $_ == 200 ? "X-Tenant: acme" : "X-Reason: invalid_token" } @::sig_codes]
--- response_body eval
[map { $_ == 200 ? "auth=[] xkey=[]\n" : "$::invalid\n" } @::sig_codes]



=== TEST 29: an algorithm ai_guard_jwt_algorithms does not name is invalid_token, though its key verifies it
--- request
GET /v1/models
--- more_headers eval: main::bearer('rs384')
--- error_code: 401
--- response_headers
X-Reason: invalid_token
--- response_body eval: "$::invalid\n"
