# A token is limited like a key: a token and a key of one tenant share the
# tenant's rpm, and no token reaches the error log.  (Rotating the JWKS
# across reloads: t/061-jwt-reload.t.)  One round a block: the limit's
# state must not carry into a repeat.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(1);

# five requests: the status, the body, and four log patterns (the token's
# signature and the three levels of the default)
plan tests => repeat_each() * 5 * (1 + 1 + 4);

our $dir = 't/unit/data/jwt';
our $iss = 'https://abcdefghijklmnop.supabase.co/auth/v1';
our $now = time;

# a token of tenant "shared" on the rpm=3 tier, signed with the JWKS's
# rsa1
our $token = do {
    my $claims = qq({"iss":"$iss","aud":"authenticated","sub":"u-1",)
        . qq("iat":@{[ $now - 60 ]},"exp":@{[ $now + 3600 ]},)
        . qq("app_metadata":{"tenant":"shared","tier":"three"}});
    open my $p, '-|', 'util/jwt-mint', '--key', "$dir/rsa1.pem",
        '--kid', 'rsa1', $claims or die "jwt-mint: $!";
    my $t = <$p>;
    close $p or die "jwt-mint failed";
    chomp $t;
    $t;
};

our $sig = substr((split /\./, $token)[2], 0, 20);

our $jwks = do {
    open my $f, '<', "$dir/jwks.json" or die "$dir/jwks.json: $!";
    local $/;
    <$f>;
};

our $key = 'x-api-key: sk-aig-test-beta-00001';
our $tok = "Authorization: Bearer $token";

defaults(
    http_config => <<"_EOC_",
    ai_guard_zone  ai_guard 1m;
    ai_guard_tier  three  rpm=3;
    ai_guard_keys  \$TEST_NGINX_HTML_DIR/keys.json;

    ai_guard_jwt_keys      \$TEST_NGINX_HTML_DIR/jwks.json;
    ai_guard_jwt_issuer    $iss;
    ai_guard_jwt_audience  authenticated;
    ai_guard_jwt_claims    tenant=app_metadata.tenant tier=app_metadata.tier;
_EOC_
    # sk-aig-test-beta-00001: a key of tenant "shared", on the rpm=3 tier
    user_files => keys_file(['shared-key', 'sk-aig-test-beta-00001',
                             tenant => 'shared', tier => 'three'])
                  . ">>> jwks.json\n$jwks",
    config => guarded_location('/v1/', 'ai_guard_jwt on;')
              . "    location /mock/ {\n        return 200 \"ok\\n\";\n"
              . "    }\n",
    # nginx's own debug echo of the request headers ("http header: ...")
    # is core behaviour, see 010-auth.t
    no_error_log => [qr/^(?!.*http header: ).*\Q$sig\E/,
                     @AiGuardBlocks::CLEAN]);

run_tests();

__DATA__

=== TEST 1: one tenant, one rpm: two requests by key, one by token, then neither
--- request eval
[("GET /v1/models") x 5]
--- more_headers eval
[$::key, $::key, $::tok, $::tok, $::key]
--- error_code eval
[200, 200, 200, 429, 429]
--- response_body_like eval
["^ok\$", "^ok\$", "^ok\$", '"code":"rate_limit_exceeded"',
 '"code":"rate_limit_exceeded"']
