# The keys file: every malformed file stops nginx at its configuration,
# the [emerg] naming the file and the entry, and an empty key list with
# fields the module does not know is valid.  (A removed key across
# `nginx -s reload`, and a broken file on reload: t/021-keys-reload.t.)

use Test::Nginx::Socket;
use Digest::SHA ();
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(1);

# each block: nginx's exit (or TEST 14's status and body), its error_log
# patterns and the default --- no_error_log's three: 13 blocks that die,
# with 2 patterns each but TEST 13 (1); TEST 14 with none
plan tests => repeat_each() * (13 * (1 + 3) + 2 * 12 + 1 + (2 + 3));

our $valid = Digest::SHA::sha256_hex('sk-aig-test-valid-0001');

# the keys.json of a block: ">>> keys.json", then the content given
sub broken {
    return ">>> keys.json\n$_[0]\n";
}

# the [emerg] names the file, then the problem
our $file = qr/\[emerg\] .*ai_guard_keys "[^"]*keys\.json"(?:, line \d+(?:, column \d+)?)?: /;

# the standard http_config (tier pro, keys.json) and config
defaults(user_files => undef);

run_tests();

__DATA__

=== TEST 1: not JSON
--- user_files eval: ::broken('{"keys": [ {"id": ')
--- must_die
--- error_log eval
[$::file, qr/invalid JSON/]



=== TEST 2: not an object
--- user_files eval: ::broken('[1, 2]')
--- must_die
--- error_log eval
[$::file, qr/the file is an array, not an object/]



=== TEST 3: no keys array
--- user_files eval: ::broken('{"key": []}')
--- must_die
--- error_log eval
[$::file, qr/no "keys" array/]



=== TEST 4: duplicate digest
--- user_files eval
::broken(qq({"keys": [{"id": "a", "sha256": "$::valid"},
                   {"id": "b", "sha256": "$::valid"}]}))
--- must_die
--- error_log eval
[$::file,
 qr/entry 2 \("b"\): duplicate sha256, the same as entry 1 \("a"\)/]



=== TEST 5: bad date
--- user_files eval
::broken(qq({"keys": [{"id": "a", "sha256": "$::valid",
                    "expires": "2027-02-30T00:00:00Z"}]}))
--- must_die
--- error_log eval
[$::file, qr/entry 1: "expires" is not an RFC 3339 date/]



=== TEST 6: short digest
--- user_files eval
::broken(qq({"keys": [{"id": "a", "sha256": "abc123"}]}))
--- must_die
--- error_log eval
[$::file, qr/entry 1: "sha256" must be 64 hex digits/]



=== TEST 7: digest not hex
--- user_files eval
::broken(qq({"keys": [{"id": "a", "sha256": "${\ ('z' x 64)}"}]}))
--- must_die
--- error_log eval
[$::file, qr/entry 1: "sha256" must be 64 hex digits/]



=== TEST 8: no id
--- user_files eval
::broken(qq({"keys": [{"sha256": "$::valid"}]}))
--- must_die
--- error_log eval
[$::file, qr/entry 1: no "id"/]



=== TEST 9: no digest
--- user_files eval
::broken(qq({"keys": [{"id": "a"}]}))
--- must_die
--- error_log eval
[$::file, qr/entry 1 \("a"\): no "sha256"/]



=== TEST 10: disabled not a boolean
--- user_files eval
::broken(qq({"keys": [{"id": "a", "sha256": "$::valid", "disabled": "yes"}]}))
--- must_die
--- error_log eval
[$::file, qr/entry 1: "disabled" is a string/]



=== TEST 11: undeclared tier
--- user_files eval
::broken(qq({"keys": [{"id": "a", "sha256": "$::valid", "tier": "gold"}]}))
--- must_die
--- error_log eval
[$::file,
 qr/entry 1 \("a"\): tier "gold" is not declared by ai_guard_tier/]



=== TEST 12: an entry not an object
--- user_files eval: ::broken('{"keys": ["x"]}')
--- must_die
--- error_log eval
[$::file, qr/entry 1: a string, not an object/]



=== TEST 13: a missing keys file, named
--- user_files
>>> other.json
{"keys": []}
--- must_die
--- error_log eval
qr/\[emerg\] .*keys\.json" failed/



=== TEST 14: an empty key list with extra fields is valid: nginx starts, knows no key
--- user_files eval: ::broken('{"keys": [], "comment": {"a": [1]}}')
--- request
GET /v1/models
--- more_headers
Authorization: Bearer sk-aig-test-valid-0001
--- error_code: 401
--- response_body_like: "code":"invalid_api_key"
