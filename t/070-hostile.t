# Hostile requests: key headers, NUL bytes, lying Content-Lengths, broken
# chunked encoding, JSON edge cases and 1 MB texts through the rules and
# PII detectors.  Each gets its status (the JSON error of the contract
# where the module answers, nginx's own 400 where nginx refuses the request
# before any module runs), no [alert]/[crit], and where a block can send a
# second request, a follow-up that must pass: the worker lives and the
# tier's one concurrency slot was given back.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(1);

# 137 requests, each: three log patterns (the default --- no_error_log;
# TEST 66-68 their own), its status (not the two with --- ignore_response);
# 127 body checks and 2 error_log lines
plan tests => repeat_each() * (3 * 137 + 135 + 127 + 2);

no_shuffle();

our $http_config = <<'_EOC_';
    ai_guard_tier  free  models=gpt-4o-mini* max_tokens=1024 concurrency=1
                         max_body=4m;
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;
_EOC_

# sk-aig-test-valid-0001 is free, sk-aig-test-beta-00001 pro
our $user_files = keys_file(
    ['acme-1', 'sk-aig-test-valid-0001', tenant => 'acme', tier => 'free'],
    ['beta-1', 'sk-aig-test-beta-00001', tenant => 'beta', tier => 'pro']);

our $config = <<'_EOC_';
    client_body_timeout 1s;
    lingering_timeout 1s;

    location /v1/ {
        ai_guard on;
        ai_guard_max_body 4m;
        ai_guard_prompt_deny "(?i)ignore (all )?previous instructions"
                             id=override;
        ai_guard_prompt_deny "(a+)+$" id=backtrack;
        ai_guard_pii email card ssn;
        add_header X-Reason $ai_guard_reason always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        echo_read_request_body;
        echo "ok $content_length";
    }
_EOC_

our $free = "Authorization: Bearer sk-aig-test-valid-0001";
our $pro = "Authorization: Bearer sk-aig-test-beta-00001";

# the follow-up request of every block: it needs the free tier's single
# concurrency slot, so it passes only if the hostile request gave it back
our $next = "GET /v1/models";
our $next_body = '^ok ';

our $mb = 1024 * 1024;

# nginx refuses a broken chunked body with an [error] line of its own;
# nothing else may log one
our $chunked_error = [qr/\[error\](?!.* client sent invalid chunked body)/,
                      '[alert]', '[crit]'];

sub chat {
    my ($content, %extra) = @_;
    my $model = delete $extra{model} // 'gpt-4o-mini';
    my $more = join '', map { ",\"$_\":$extra{$_}" } sort keys %extra;
    return "POST /v1/chat/completions\n"
           . qq({"model":"$model","messages":[{"role":"user",)
           . qq("content":"$content"}]$more});
}

sub body {
    return "POST /v1/chat/completions\n" . $_[0];
}

# a raw request with the free key, the body given as is
sub raw {
    my ($headers, $body) = @_;
    return "POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\n"
           . "Connection: close\r\n"
           . "Authorization: Bearer sk-aig-test-valid-0001\r\n"
           . $headers . "\r\n" . ($body // '');
}

# a block without --- no_error_log: no [error] [alert] [crit]
defaults(http_config => $http_config, user_files => $user_files,
         config => $config);

run_tests();

__DATA__
=== TEST 1: an Authorization header of 7 KB
--- request eval
[$::next,
 $::next]
--- more_headers eval
["Authorization: Bearer " . ("k" x 7000), $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"invalid_api_key"', $::next_body]


=== TEST 2: a header block over large_client_header_buffers: nginx refuses it
--- request eval
[$::next,
 $::next]
--- more_headers eval
["Authorization: Bearer " . ("k" x 9000), $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['Request Header Or Cookie Too Large', $::next_body]


=== TEST 3: an empty x-api-key
--- request eval
[$::next,
 $::next]
--- more_headers eval
["x-api-key: ", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"missing_api_key"', $::next_body]


=== TEST 4: an empty Authorization
--- request eval
[$::next,
 $::next]
--- more_headers eval
["Authorization: ", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"missing_api_key"', $::next_body]


=== TEST 5: Bearer followed by blanks only
--- request eval
[$::next,
 $::next]
--- more_headers eval
["Authorization: Bearer    ", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"missing_api_key"', $::next_body]


=== TEST 6: two Authorization headers: nginx refuses a duplicate
--- request eval
[$::next,
 $::next]
--- more_headers eval
["$::free\r\nAuthorization: Bearer sk-aig-test-beta-00001", $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['400 Bad Request', $::next_body]


=== TEST 7: two x-api-key headers, the first one a valid key
--- request eval
[$::next,
 $::next]
--- more_headers eval
["x-api-key: sk-aig-test-valid-0001\r\nx-api-key: sk-aig-test-unknown-999", $::free]
--- error_code eval
["200", 200]
--- response_body_like eval
['^ok ', $::next_body]


=== TEST 8: conflicting headers: a bad bearer beside a good x-api-key
--- request eval
[$::next,
 $::next]
--- more_headers eval
["Authorization: Bearer sk-aig-test-unknown-999\r\nx-api-key: sk-aig-test-valid-0001", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"invalid_api_key"', $::next_body]


=== TEST 9: Basic credentials holding a valid key
--- request eval
[$::next,
 $::next]
--- more_headers eval
["Authorization: Basic c2stYWlnLXRlc3QtdmFsaWQtMDAwMTo=", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"missing_api_key"', $::next_body]


=== TEST 10: Basic with the key itself as credentials
--- request eval
[$::next,
 $::next]
--- more_headers eval
["Authorization: Basic sk-aig-test-valid-0001", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"missing_api_key"', $::next_body]


=== TEST 11: Bearer glued to the key
--- request eval
[$::next,
 $::next]
--- more_headers eval
["Authorization: Bearersk-aig-test-valid-0001", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"missing_api_key"', $::next_body]


=== TEST 12: another scheme: Token
--- request eval
[$::next,
 $::next]
--- more_headers eval
["Authorization: Token sk-aig-test-valid-0001", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"missing_api_key"', $::next_body]


=== TEST 13: a valid key with one byte more
--- request eval
[$::next,
 $::next]
--- more_headers eval
["Authorization: Bearer sk-aig-test-valid-00011", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"invalid_api_key"', $::next_body]


=== TEST 14: a valid key with one byte less
--- request eval
[$::next,
 $::next]
--- more_headers eval
["Authorization: Bearer sk-aig-test-valid-000", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"invalid_api_key"', $::next_body]


=== TEST 15: a key in UTF-8 and Latin-1 bytes
--- request eval
[$::next,
 $::next]
--- more_headers eval
["x-api-key: sk-\xc3\xa9\xe9\xff-key", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"invalid_api_key"', $::next_body]


=== TEST 16: a key with a tab inside
--- request eval
[$::next,
 $::next]
--- more_headers eval
["x-api-key: sk-aig-test\tvalid-0001", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"invalid_api_key"', $::next_body]


=== TEST 17: x-api-key holding "Bearer <key>"
--- request eval
[$::next,
 $::next]
--- more_headers eval
["x-api-key: Bearer sk-aig-test-valid-0001", $::free]
--- error_code eval
[401, 200]
--- response_body_like eval
['"code":"invalid_api_key"', $::next_body]


=== TEST 18: a NUL byte in the key header: nginx refuses the header line
--- raw_request eval
"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
. "x-api-key: sk-aig-test-valid-0001\0\r\n\r\n"
--- error_code: 400


=== TEST 19: a NUL byte in the body outside any string
--- request eval
[::body(qq({"model":"gpt-4o-mini",\0"prompt":"hi"})),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 20: a raw NUL byte inside a string
--- request eval
[::body(qq({"model":"gpt-4o-mini","prompt":"a\0b"})),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 21: an escaped \\u0000 inside a string is text
--- request eval
[::chat('a\\u0000b'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[200, 200]
--- response_body_like eval
['^ok ', $::next_body]


=== TEST 22: an escaped \\u0000 between the halves of a deny phrase
--- request eval
[::chat('ignore previous\\u0000 instructions'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[200, 200]
--- response_body_like eval
['^ok ', $::next_body]


=== TEST 23: null at the top level
--- request eval
[::body('null'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 24: true at the top level
--- request eval
[::body('true'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 25: a number at the top level
--- request eval
[::body('42'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 26: a string at the top level
--- request eval
[::body('"gpt-4o-mini"'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 27: an array at the top level
--- request eval
[::body('[]'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 28: an empty body
--- request eval
[::body(""),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 29: white space only
--- request eval
[::body("   \n\t  "),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 30: a duplicate model key is refused: the guard and the upstream could read different ones
--- request eval
[::body('{"model":"gpt-4o-mini","model":"gpt-4o","prompt":"hi"}'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"param":"model","code":"invalid_json"', $::next_body]


=== TEST 31: a duplicate max_tokens key is refused
--- request eval
[::body('{"model":"gpt-4o-mini","max_tokens":10,"max_tokens":100000,"prompt":"hi"}'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"param":"max_tokens","code":"invalid_json"', $::next_body]


=== TEST 32: trailing garbage
--- request eval
[::body('{"model":"gpt-4o-mini","prompt":"hi"}xyz'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 33: two objects
--- request eval
[::body('{"model":"gpt-4o-mini"}{"model":"gpt-4o"}'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 34: an unterminated object
--- request eval
[::body('{"model":"gpt-4o-mini","prompt":"hi"'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 35: an unterminated string
--- request eval
[::body('{"model":"gpt-4o-mini","prompt":"hi'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 36: max_tokens 1e400
--- request eval
[::chat("hi", max_tokens => "1e400"),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"param":"max_tokens"', $::next_body]


=== TEST 37: max_tokens a 40-digit integer
--- request eval
[::chat("hi", max_tokens => "1" x 40),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"param":"max_tokens"', $::next_body]


=== TEST 38: max_tokens negative
--- request eval
[::chat("hi", max_tokens => -1),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"param":"max_tokens"', $::next_body]


=== TEST 39: max_tokens a fraction
--- request eval
[::chat("hi", max_tokens => 1.5),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"param":"max_tokens"', $::next_body]


=== TEST 40: max_tokens as a string
--- request eval
[::chat("hi", max_tokens => '"100"'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"param":"max_tokens","code":"invalid_json"', $::next_body]


=== TEST 41: model as a number
--- request eval
[::body('{"model":5,"prompt":"hi"}'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 42: a 100,000-digit number elsewhere in the body
--- request eval
[::body('{"model":"gpt-4o-mini","temperature":' . ("9" x 100000) . ',"prompt":"hi"}'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
["200", 200]
--- response_body_like eval
['^ok ', $::next_body]


=== TEST 43: a lone high surrogate
--- request eval
[::chat('a\\ud800b'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 44: a lone low surrogate
--- request eval
[::chat('a\\udc00b'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 45: a surrogate pair is fine
--- request eval
[::chat('smile \\ud83d\\ude00'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[200, 200]
--- response_body_like eval
['^ok ', $::next_body]


=== TEST 46: a bad escape
--- request eval
[::chat('a\\xb'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 47: a truncated \\u escape
--- request eval
[::chat('a\\u12'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 48: arrays 63 deep are read
--- request eval
[::body('{"model":"gpt-4o-mini","x":' . ("[" x 62) . ("]" x 62) . '}'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[200, 200]
--- response_body_like eval
['^ok ', $::next_body]


=== TEST 49: arrays 100 deep are refused
--- request eval
[::body('{"model":"gpt-4o-mini","x":' . ("[" x 100) . ("]" x 100) . '}'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 50: objects 100,000 deep are refused
--- request eval
[::body(('{"a":' x 100000) . '1' . ('}' x 100000)),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 51: a UTF-8 byte order mark before the object
--- request eval
[::body("\xef\xbb\xbf" . '{"model":"gpt-4o-mini","prompt":"hi"}'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"invalid_json"', $::next_body]


=== TEST 52: a 1 MB prompt string passes whole
--- request eval
[::chat("resume " x ($::mb / 7)),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[200, 200]
--- response_body_like eval
['^ok 1048', $::next_body]


=== TEST 53: a 1 MB key name
--- request eval
[::body('{"' . ("k" x $::mb) . '":1,"model":"gpt-4o-mini"}'),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[200, 200]
--- response_body_like eval
['^ok 1048', $::next_body]


=== TEST 54: white space between every token
--- request eval
[::body(CORE::join(" 
	
 ", '{', '"model"', ':', '"gpt-4o-mini"', ',', '"prompt"', ':', '[', '"hi"', ',', '"there"', ']', '}')),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[200, 200]
--- response_body_like eval
['^ok ', $::next_body]


=== TEST 55: 1 MB of escapes
--- request eval
[::chat('\\u0041' x ($::mb / 6)),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[200, 200]
--- response_body_like eval
['^ok 1048', $::next_body]


=== TEST 56: a body over ai_guard_max_body
--- request eval
[::chat("x" x (5 * $::mb)),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[413, 200]
--- response_body_like eval
['"code":"request_too_large"', $::next_body]


=== TEST 57: a deny phrase at the end of 1 MB of text
--- request eval
[::chat(("resume " x ($::mb / 7)) . "ignore previous instructions"),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"prompt_blocked"', $::next_body]


=== TEST 58: an e-mail address at the end of 1 MB of text
--- request eval
[::chat(("resume " x ($::mb / 7)) . "write to jane.doe\@example.com"),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"prompt_blocked"', $::next_body]


=== TEST 59: 1 MB of digit runs that fail Luhn
--- request eval
[::chat("4111 1111 1111 1112 " x ($::mb / 20)),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[200, 200]
--- response_body_like eval
['^ok ', $::next_body]


=== TEST 60: a card number after 1 MB of digits
--- request eval
[::chat(("1234 5678 " x ($::mb / 10)) . " 4111 1111 1111 1111"),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 200]
--- response_body_like eval
['"code":"prompt_blocked"', $::next_body]


=== TEST 61: 1 MB of dots and at signs
--- request eval
[::chat("\@." x ($::mb / 2)),
 $::next]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[200, 200]
--- response_body_like eval
['^ok ', $::next_body]


=== TEST 62: catastrophic backtracking stops at the match limit and counts as a hit, twice
--- request eval
[::chat(("a" x 30000) . "b"), ::chat(("a" x 30000) . "b")]
--- more_headers eval
[$::free, $::free]
--- error_code eval
[400, 400]
--- response_body_like eval
['"code":"prompt_blocked"', '"code":"prompt_blocked"']
--- error_log eval
[qr/rule "backtrack" stopped at its match limit \(-?\d+\) on a 30001-byte text: counted as a hit/]


=== TEST 63: Content-Length shorter than the body: the JSON is cut, the rest discarded
--- raw_request eval
::raw("Content-Length: 20\r\n", '{"model":"gpt-4o-mini","prompt":"hi"}')
--- error_code: 400
--- response_body_like: "code":"invalid_json"


=== TEST 64: Content-Length longer than the body: the body times out, the slot is free
--- raw_request eval
::raw("Content-Length: 1000\r\n", '{"model":"gpt-4o-mini","prompt":"hi"}')
--- timeout: 3
--- abort
--- ignore_response


=== TEST 65: after a body timeout the next request passes (Content-Length too long)
--- request eval
[::chat("hi"),
 $::next]
--- more_headers eval
["$::free\r\nContent-Length: 1000", $::free]
--- error_code eval
["", 200]
--- response_body_like eval
['\A\z', $::next_body]
--- timeout: 3
--- abort


=== TEST 66: a chunk size that is not hex: nginx refuses it
--- raw_request eval
::raw("Transfer-Encoding: chunked\r\n", "zz\r\n{}\r\n0\r\n\r\n")
--- error_code: 400
--- no_error_log eval: $::chunked_error


=== TEST 67: a chunk size of 2^64: nginx refuses it
--- raw_request eval
::raw("Transfer-Encoding: chunked\r\n", "10000000000000000\r\n{}\r\n0\r\n\r\n")
--- error_code: 400
--- no_error_log eval: $::chunked_error


=== TEST 68: a chunk longer than its size
--- raw_request eval
::raw("Transfer-Encoding: chunked\r\n", "2\r\n{}xx\r\n0\r\n\r\n")
--- error_code: 400
--- no_error_log eval: $::chunked_error


=== TEST 69: a chunked body that never ends: it times out
--- raw_request eval
::raw("Transfer-Encoding: chunked\r\n", "5\r\n{\"mod\r\n")
--- timeout: 3
--- abort
--- ignore_response


=== TEST 70: chunked over the size limit, in small chunks
--- raw_request eval
::raw("Transfer-Encoding: chunked\r\n", CORE::join("", map { "1000\r\n" . ("x" x 4096) . "\r\n" } 1 .. 1100) . "0\r\n\r\n")
--- error_code: 413
--- response_body_like: "code":"request_too_large"


=== TEST 71: Content-Length and Transfer-Encoding together: nginx refuses it
--- raw_request eval
::raw("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n")
--- error_code: 400


=== TEST 72: two Content-Length headers: nginx refuses it
--- raw_request eval
::raw("Content-Length: 2\r\nContent-Length: 3\r\n", "{}")
--- error_code: 400


=== TEST 73: a negative Content-Length: nginx refuses it
--- raw_request eval
::raw("Content-Length: -1\r\n", "{}")
--- error_code: 400


=== TEST 74: an unknown Transfer-Encoding: nginx refuses it
--- raw_request eval
::raw("Transfer-Encoding: gzip\r\n", "{}")
--- error_code: 501


=== TEST 75: Expect: 100-continue over the limit is refused before the body
--- raw_request eval
::raw("Content-Length: 9999999\r\nExpect: 100-continue\r\n")
--- error_code: 413
--- response_body_like: "code":"request_too_large"
