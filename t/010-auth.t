# API-key auth: the 401s of the error contract, the key headers, and the
# client's key kept from the upstream and from the logs.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;
use Digest::SHA qw(sha256_hex);
use POSIX qw(strftime);

repeat_each(2);

# 36 requests, each its status; the four patterns of the default
# --- no_error_log after each of 30 requests, 11 patterns of their own
# in TEST 15 and 18-21; 30 body checks, 35 header lines, 12 error_log lines
plan tests => repeat_each() * (36 + 4 * 30 + 11 + 30 + 35 + 12);

no_shuffle();

# sk-aig-test-valid-0001, -disabled-01, -expired-001, -beta-00001 and
# -future-0001; the keys themselves appear only in requests.
our $user_files = keys_file(
    ['acme-1', 'sk-aig-test-valid-0001', tenant => 'acme', tier => 'pro'],
    ['acme-off', 'sk-aig-test-disabled-01', tenant => 'acme',
     disabled => \1],
    ['acme-old', 'sk-aig-test-expired-001', tenant => 'acme',
     expires => '2020-01-01T00:00:00Z'],
    ['beta-1', 'sk-aig-test-beta-00001', tenant => 'beta',
     stripe_customer => 'cus_beta'],
    ['acme-new', 'sk-aig-test-future-0001', tenant => 'acme',
     expires => '2999-01-01T00:00:00+02:00']);

our $config = <<'_EOC_';
    location /v1/ {
        ai_guard on;
        add_header X-Key-Id $ai_guard_key_id always;
        add_header X-Tenant $ai_guard_tenant always;
        add_header X-Decision $ai_guard_decision always;
        add_header X-Reason $ai_guard_reason always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        echo "auth=[$http_authorization] xkey=[$http_x_api_key]";
    }
_EOC_

# no line of ours may hold a key; nginx's own debug echo of the request
# headers ("http header: ...") is core behaviour, see docs/security.md
our $no_key_in_log = [qr/^(?!.*http header: ).*sk-aig-test/,
                      @AiGuardBlocks::CLEAN];

# nor when nginx core quotes a header line at info, see docs/security.md
our $core_quotes = qr/http header: |client sent (?:duplicate|invalid) header line: /;
our $no_key_but_core = [qr/^(?!.*(?:$core_quotes)).*sk-aig-test/, '[error]'];

# the digest of a key with one byte changed: the table looks a key up by
# its digest's first 8 bytes, so a digest that differs only after them
# finds the entry and must still be refused
sub near {
    my ($secret, $byte) = @_;
    my $d = sha256_hex($secret);
    substr($d, 2 * $byte, 2) = sprintf('%02x', hex(substr($d, 2 * $byte, 2))
                                                ^ 0x01);
    return \$d;
}

# an RFC 3339 time, $at seconds from now, written in the zone $off minutes
# east of UTC: the same instant in any zone
sub at {
    my ($at, $off) = @_;
    return strftime('%Y-%m-%dT%H:%M:%S', gmtime(time + $at + 60 * $off))
           . sprintf('%s%02d:%02d', $off < 0 ? '-' : '+', abs($off) / 60,
                     abs($off) % 60);
}

# keys whose expiry is ten minutes away, in the past or the future, in
# zones east and west of UTC and half an hour off
our @expiring = (
    ['plus2-past', -600, 120, 401], ['plus2-next', 600, 120, 200],
    ['minus5-past', -600, -300, 401], ['minus5-next', 600, -300, 200],
    ['plus530-past', -600, 330, 401], ['plus530-next', 600, 330, 200],
    ['minus945-past', -600, -585, 401], ['minus945-next', 600, -585, 200],
);

# a block gets these unless it gives its own; each request of a block
# without --- no_error_log is checked for a key and the three levels
defaults(user_files => $user_files, config => $config,
         no_error_log => $no_key_in_log);

run_tests();

__DATA__

=== TEST 1: no key
--- request
GET /v1/models
--- error_code: 401
--- response_headers
Content-Type: application/json
X-Decision: reject
X-Reason: missing_api_key
--- response_body
{"error":{"message":"Missing API key: send it as \"Authorization: Bearer <key>\" or \"x-api-key: <key>\".","type":"invalid_request_error","param":null,"code":"missing_api_key"}}



=== TEST 2: unknown key
--- request
GET /v1/models
--- more_headers
Authorization: Bearer sk-aig-test-unknown-9999
--- error_code: 401
--- response_body_like: "code":"invalid_api_key"
--- error_log
ai_guard: rejected: invalid_api_key, key digest



=== TEST 3: disabled key
--- request
GET /v1/models
--- more_headers
Authorization: Bearer sk-aig-test-disabled-01
--- error_code: 401
--- response_body_like: "code":"key_disabled"
--- error_log
ai_guard: rejected: key_disabled, key "acme-off"



=== TEST 4: expired key
--- request
GET /v1/models
--- more_headers
x-api-key: sk-aig-test-expired-001
--- error_code: 401
--- response_body_like: "code":"key_expired"
--- error_log
ai_guard: rejected: key_expired, key "acme-old"



=== TEST 5: a valid key by Authorization: Bearer; the upstream never sees it
--- request
GET /v1/models
--- more_headers
Authorization: Bearer sk-aig-test-valid-0001
--- error_code: 200
--- response_headers
X-Key-Id: acme-1
X-Tenant: acme
X-Decision: allow
--- response_body
auth=[] xkey=[]



=== TEST 6: a valid key by x-api-key
--- request
GET /v1/models
--- more_headers
x-api-key: sk-aig-test-beta-00001
--- error_code: 200
--- response_headers
X-Key-Id: beta-1
X-Tenant: beta
--- response_body
auth=[] xkey=[]



=== TEST 7: the provider's key set with proxy_set_header reaches the upstream
--- config
    location /v1/ {
        ai_guard on;
        proxy_set_header Authorization "Bearer sk-provider-secret";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        echo "auth=[$http_authorization] xkey=[$http_x_api_key]";
    }
--- request
GET /v1/models
--- more_headers
Authorization: Bearer sk-aig-test-valid-0001
x-api-key: sk-aig-test-beta-00001
--- error_code: 200
--- response_body
auth=[Bearer sk-provider-secret] xkey=[]



=== TEST 8: Basic credentials are not a key
--- request
GET /v1/models
--- more_headers
Authorization: Basic c2stYWlnLXRlc3QtdmFsaWQtMDAwMTo=
--- error_code: 401
--- response_body_like: "code":"missing_api_key"



=== TEST 9: the scheme is case-insensitive, extra blanks are trimmed
--- request
GET /v1/models
--- more_headers
Authorization: bearer   sk-aig-test-valid-0001
--- error_code: 200
--- response_body
auth=[] xkey=[]



=== TEST 10: a bearer token wins over x-api-key, and neither goes upstream
--- request
GET /v1/models
--- more_headers
x-api-key: sk-aig-test-unknown-9999
Authorization: Bearer sk-aig-test-beta-00001
--- error_code: 200
--- response_headers
X-Key-Id: beta-1
--- response_body
auth=[] xkey=[]



=== TEST 11: an empty bearer token is a missing key
--- request
GET /v1/models
--- more_headers
Authorization: Bearer
--- error_code: 401
--- response_body_like: "code":"missing_api_key"



=== TEST 12: a key far too long is invalid, never hashed
--- request
GET /v1/models
--- more_headers eval
"x-api-key: " . ("k" x 4000)
--- error_code: 401
--- response_body_like: "code":"invalid_api_key"



=== TEST 13: a key that expires in the future, with a UTC offset, works
--- request
GET /v1/models
--- more_headers
x-api-key: sk-aig-test-future-0001
--- error_code: 200
--- response_headers
X-Key-Id: acme-new



=== TEST 14: ai_guard_key_header names the one header the key comes in
--- config
    location /v1/ {
        ai_guard on;
        ai_guard_key_header X-Gateway-Key;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        echo "gw=[$http_x_gateway_key] xkey=[$http_x_api_key]";
    }
--- request eval
["GET /v1/models", "GET /v1/models"]
--- more_headers eval
["x-api-key: sk-aig-test-valid-0001",
 "X-Gateway-Key: sk-aig-test-valid-0001\r\nx-api-key: other"]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"missing_api_key"', '^gw=\[\] xkey=\[other\]$']



=== TEST 15: locations without ai_guard pay nothing and need no key
--- config
    location /v1/ {
        ai_guard on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /open/ {
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        echo "auth=[$http_authorization]";
    }
--- request
GET /open/x
--- more_headers
Authorization: Bearer something-else
--- error_code: 200
--- response_body
auth=[Bearer something-else]
--- no_error_log
ai_guard



=== TEST 16: a request body on a rejected request is discarded cleanly
--- request
POST /v1/chat/completions
{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}
--- error_code: 401
--- response_body_like: "code":"missing_api_key"



=== TEST 17: monitor mode lets a wrong key on, but never upstream
--- config
    location /v1/ {
        ai_guard on;
        ai_guard_mode monitor;
        add_header X-Decision $ai_guard_decision always;
        add_header X-Reason $ai_guard_reason always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        echo "auth=[$http_authorization] xkey=[$http_x_api_key]";
    }
--- request
GET /v1/models
--- more_headers
Authorization: Bearer sk-aig-test-unknown-9999
x-api-key: sk-aig-test-unknown-8888
--- error_code: 200
--- response_headers
X-Decision: monitor
X-Reason: invalid_api_key
--- response_body
auth=[] xkey=[]
--- error_log
ai_guard: monitor: would reject: invalid_api_key, key digest



=== TEST 18: two Authorization headers: nginx core logs both keys at info, ai_guard never sees the request
--- request
GET /v1/models
--- more_headers
Authorization: Bearer sk-aig-test-valid-0001
Authorization: Bearer sk-aig-test-beta-00001
--- error_code: 400
--- error_log
[info]
client sent duplicate header line: "Authorization: Bearer sk-aig-test-beta-00001", previous value: "Authorization: Bearer sk-aig-test-valid-0001"
--- no_error_log eval: $::no_key_but_core



=== TEST 19: a key header of an invalid name: nginx core logs the line at info and drops it, ai_guard logs no key
--- request
GET /v1/models
--- more_headers
x-api_key: sk-aig-test-valid-0001
--- error_code: 401
--- response_headers
X-Reason: missing_api_key
--- error_log
client sent invalid header line: "x-api_key: sk-aig-test-valid-0001"
ai_guard: rejected: missing_api_key, no key
--- no_error_log eval: $::no_key_but_core



=== TEST 20: at the recommended error_log level, notice, no line holds a key
--- log_level: notice
--- request
GET /v1/models
--- more_headers
Authorization: Bearer sk-aig-test-valid-0001
Authorization: Bearer sk-aig-test-beta-00001
--- error_code: 400
--- no_error_log
sk-aig-test
[info]



=== TEST 21: at notice, ai_guard_log_level notice keeps the rejections in the log, without the key
--- config eval
my $c = $::config;
$c =~ s/ai_guard on;/ai_guard on;\n        ai_guard_log_level notice;/;
$c
--- log_level: notice
--- request eval
["GET /v1/models", "GET /v1/models"]
--- more_headers eval
["x-api_key: sk-aig-test-valid-0001",
 "Authorization: Bearer sk-aig-test-unknown-9999"]
--- error_code eval
[401, 401]
--- error_log
ai_guard: rejected:
--- no_error_log
sk-aig-test
[info]



=== TEST 22: a digest equal to the key's in the 8 bytes the table matches, and not in the 9th, is refused
--- user_files eval
::keys_file(['acme-1', 'sk-aig-test-valid-0002', tenant => 'acme'],
            ['near-8', ::near('sk-aig-test-valid-0001', 8), tenant => 'acme'])
--- request
GET /v1/models
--- more_headers
Authorization: Bearer sk-aig-test-valid-0001
--- error_code: 401
--- response_headers
X-Reason: invalid_api_key
!X-Key-Id
--- response_body_like: "code":"invalid_api_key"
--- error_log
ai_guard: rejected: invalid_api_key, key digest



=== TEST 23: a digest equal to the key's in all but its last byte is refused
--- user_files eval
::keys_file(['acme-1', 'sk-aig-test-valid-0002', tenant => 'acme'],
            ['near-31', ::near('sk-aig-test-valid-0001', 31), tenant => 'acme'])
--- request
GET /v1/models
--- more_headers
Authorization: Bearer sk-aig-test-valid-0001
--- error_code: 401
--- response_headers
X-Reason: invalid_api_key
!X-Key-Id
--- response_body_like: "code":"invalid_api_key"
--- error_log
ai_guard: rejected: invalid_api_key, key digest



=== TEST 24: expiry with a UTC offset: ten minutes ago is expired, ten minutes ahead is not, in every zone
--- user_files eval
::keys_file(map { ["exp-$_->[0]", "sk-aig-test-exp-$_->[0]", tenant => 'acme',
                   expires => ::at($_->[1], $_->[2])] } @::expiring)
--- request eval
[("GET /v1/models") x @::expiring]
--- more_headers eval
[map { "Authorization: Bearer sk-aig-test-exp-$_->[0]" } @::expiring]
--- error_code eval
[map { $_->[3] } @::expiring]
--- response_headers eval
[map { "X-Key-Id: exp-$_->[0]\nX-Reason: "
       . ($_->[3] == 401 ? 'key_expired' : '') } @::expiring]
--- response_body_like eval
[map { $_->[3] == 401 ? '"code":"key_expired"' : '^auth=\[\] ' } @::expiring]



=== TEST 25: the key headers' names in any case, and neither goes upstream
--- request eval
["GET /v1/models", "GET /v1/models"]
--- more_headers eval
["AUTHORIZATION: BEARER sk-aig-test-valid-0001",
 "X-API-KEY: sk-aig-test-beta-00001"]
--- error_code eval
[200, 200]
--- response_headers eval
["X-Key-Id: acme-1", "X-Key-Id: beta-1"]
--- response_body eval
["auth=[] xkey=[]\n", "auth=[] xkey=[]\n"]



=== TEST 26: near misses of the names and the scheme are no key
--- request
GET /v1/models
--- more_headers
Authorizations: Bearer sk-aig-test-valid-0001
X-Api-Keys: sk-aig-test-valid-0001
Authorization: Bearerx sk-aig-test-valid-0001
--- error_code: 401
--- response_body_like: "code":"missing_api_key"
