# ai_guard_pii_action redact: the upstream gets the body with each PII
# finding replaced by a placeholder, as valid JSON, with the right
# Content-Length, whatever shape the body came in (in memory, in a temp
# file, chunked); the log names detectors, never values; the metrics count
# by detector; the cache key is made of what the upstream got.  The mock
# upstream echoes the length it was told and the body it got.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(2);

# 15 requests, each its status; the default --- no_error_log's three
# patterns after 11 of them, 4 of their own after 4 (TEST 1, 3, 4, 5 add
# values that must not be logged); 15 bodies, 4 header lines, 4 error_log
# lines
plan tests => repeat_each() * (15 + 3 * 11 + 4 * 4 + 15 + 4 + 4);

no_shuffle();

our $http_config = <<'_EOC_';
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;

    proxy_cache_path  cache levels=1 keys_zone=redact:1m;
_EOC_

our $mock = <<'_EOC_';
    location /mock/ {
        client_body_buffer_size 1m;
        echo_read_request_body;
        echo "length=$content_length te=$http_transfer_encoding";
        echo_request_body;
    }
_EOC_

our $config = <<'_EOC_' . $mock;
    location /v1/ {
        ai_guard on;
        ai_guard_pii email card ssn phone secret;
        ai_guard_pii_action redact;
        add_header X-Decision $ai_guard_decision always;
        add_header X-Reason $ai_guard_reason always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /file/ {
        ai_guard on;
        ai_guard_pii email card;
        ai_guard_pii_action redact;
        client_body_in_file_only clean;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /own/ {
        ai_guard on;
        ai_guard_pii all;
        ai_guard_pii_action redact;
        ai_guard_pii_placeholder "<%D#%N 100%%>";
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /cached/ {
        ai_guard on;
        ai_guard_pii email;
        ai_guard_pii_action redact;
        ai_guard_cache_key always;
        proxy_cache          redact;
        proxy_cache_methods  POST;
        proxy_cache_key      $ai_guard_cache_key;
        proxy_cache_valid    200 1m;
        proxy_no_cache       $ai_guard_no_cache;
        proxy_cache_bypass   $http_x_bypass;
        add_header X-Cache $upstream_cache_status always;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location = /metrics {
        ai_guard_metrics;
    }
_EOC_

our $key = "Authorization: Bearer sk-aig-test-valid-0001";

sub chat {
    my ($content, $uri) = @_;
    $uri //= '/v1/chat/completions';
    return "POST $uri\n{\"model\":\"gpt-4o-mini\",\"messages\":"
           . "[{\"role\":\"user\",\"content\":\"$content\"}]}";
}

# what the mock answers for a body: the length it was told, then the body
sub got {
    my ($body) = @_;
    return "length=" . length($body) . " te=\n$body";
}

sub chat_body {
    my ($content) = @_;
    return "{\"model\":\"gpt-4o-mini\",\"messages\":"
           . "[{\"role\":\"user\",\"content\":\"$content\"}]}";
}

defaults(http_config => $http_config, config => $config);

run_tests();

__DATA__

=== TEST 1: an address in a message: the upstream gets the placeholder
--- request eval: ::chat("write to jane.doe\@example.com please")
--- more_headers eval: $::key
--- error_code: 200
--- response_headers
X-Decision: allow
--- response_body eval
::got(::chat_body("write to [EMAIL_1] please"))
--- error_log
ai_guard: redacted in the prompt: pii:email:1
--- no_error_log
jane.doe
[error]
[alert]
[crit]



=== TEST 2: escapes around the findings, the same address twice, a card
The text is decoded, the findings replaced and the text re-escaped: an
escaped "@" is found, quotes and newlines stay escaped, the repeated
address gets the same number, a second one the next.
--- request eval
::chat('a \"q\" x\u0040y.com\nb@c.org x@y.com, card 4111 1111 1111 1111')
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::got(::chat_body('a \"q\" [EMAIL_1]\n[EMAIL_2] [EMAIL_1], card [CARD_1]'))



=== TEST 3: a 60 KB body that goes to a temp file, addresses in two parts
--- config eval
"client_body_buffer_size 8k;\n" . $::config
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"gpt-4o-mini","messages":[{"role":"system","content":"'
. ("resume text " x 5000) . 'mail \u00e9 a@example.com"},'
. '{"role":"user","content":[{"type":"text","text":"call 415-555-0132"}]}]}'
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::got('{"model":"gpt-4o-mini","messages":[{"role":"system","content":"'
. ("resume text " x 5000) . "mail \xc3\xa9 [EMAIL_1]\"},"
. '{"role":"user","content":[{"type":"text","text":"call [PHONE_1]"}]}]}')
--- error_log
ai_guard: redacted in the prompt: pii:email:1 pii:phone:1
--- no_error_log
example.com
415-555
[error]
[alert]



=== TEST 4: client_body_in_file_only: the body is read back from its file
--- request eval: ::chat("card 4111-1111-1111-1111 to bob\@example.org", "/file/chat/completions")
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::got(::chat_body("card [CARD_1] to [EMAIL_1]"))
--- error_log
ai_guard: redacted in the prompt: pii:email:1 pii:card:1
--- no_error_log
4111
bob@
[error]
[alert]



=== TEST 5: a chunked body, the address split across chunks
The upstream is told a Content-Length, not chunked: the body it gets is
the rewritten one, whole.
--- raw_request eval
my @chunks = ('{"model":"gpt-4o-mini","messages":[{"role":"user",',
              '"content":"ssn 123-45-67', '89 and sam@exa', 'mple.net"}]}');
AiGuardBlocks::chunked_request("POST /v1/chat/completions",
    "Authorization: Bearer sk-aig-test-valid-0001", @chunks)
--- error_code: 200
--- response_body eval
::got(::chat_body("ssn [SSN_1] and [EMAIL_1]"))
--- error_log
ai_guard: redacted in the prompt: pii:email:1 pii:ssn:1
--- no_error_log
sam@
6789
[error]
[alert]



=== TEST 6: Anthropic: system blocks, tool input, a tool's schema key
--- request eval
"POST /v1/messages\n"
. '{"model":"claude-3","max_tokens":10,"system":[{"type":"text",'
. '"text":"admin is root@example.com"}],"messages":[{"role":"user",'
. '"content":[{"type":"tool_use","id":"t","name":"f","input":'
. '{"to":"ann@example.com"}}]}],"tools":[{"name":"f","input_schema":'
. '{"properties":{"x@example.com":{"type":"string"}}}}]}'
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::got('{"model":"claude-3","max_tokens":10,"system":[{"type":"text",'
. '"text":"admin is [EMAIL_1]"}],"messages":[{"role":"user",'
. '"content":[{"type":"tool_use","id":"t","name":"f","input":'
. '{"to":"[EMAIL_2]"}}]}],"tools":[{"name":"f","input_schema":'
. '{"properties":{"[EMAIL_3]":{"type":"string"}}}}]}')



=== TEST 7: nothing found: the body goes as it came, byte for byte
--- request eval
"POST /v1/chat/completions\n"
. '{"model":"gpt-4o-mini", "messages":[{"role":"user","content":"hi \u0040 you"}]}'
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::got('{"model":"gpt-4o-mini", "messages":[{"role":"user","content":"hi \u0040 you"}]}')



=== TEST 8: an address only the normal form shows is refused, as block does
A fullwidth "@" cannot be placed in the text as sent: the request is
refused with the detector's reason rather than passed unmasked.
--- request eval: ::chat("mail x\xef\xbc\xa0example.com")
--- more_headers eval: $::key
--- error_code: 400
--- response_headers
X-Reason: pii:email
--- response_body_like: "code":"prompt_blocked"



=== TEST 9: the operator's own placeholder
--- request eval: ::chat("key sk-proj-abc123def456ghi789jkl0 from 10.1.2.3", "/own/chat/completions")
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::got(::chat_body("key <SECRET#1 100%> from <IPV4#1 100%>"))



=== TEST 10: the metrics count by detector
--- request eval
[::chat("a\@example.com b\@example.com a\@example.com card 4111 1111 1111 1111"),
 "GET /metrics"]
--- more_headers eval: [$::key, ""]
--- error_code eval: [200, 200]
--- response_body_like eval
[qr/\[EMAIL_1\] \[EMAIL_2\] \[EMAIL_1\] card \[CARD_1\]/,
 qr/ai_guard_pii_redacted_total\{detector="email"\} (?:3|6)\nai_guard_pii_redacted_total\{detector="card"\} (?:1|2)\nai_guard_pii_redacted_total\{detector="ssn"\} 0\n/]



=== TEST 11: the cache key is made of what the upstream got
Two requests that differ only in the address they name are one request
to the upstream once masked: the first (bypassing the cache, so that
every round starts the same) is stored, the second is a hit.
--- request eval
[::chat("mail amy\@example.com", "/cached/chat/completions"),
 ::chat("mail bob\@example.com", "/cached/chat/completions")]
--- more_headers eval: ["$::key\nX-Bypass: 1", $::key]
--- error_code eval: [200, 200]
--- response_headers eval
["X-Cache: BYPASS", "X-Cache: HIT"]
--- response_body eval
[::got(::chat_body("mail [EMAIL_1]")), ::got(::chat_body("mail [EMAIL_1]"))]



=== TEST 12: 2,000 distinct addresses in one text: each its own number
A client chooses how many findings a body has: they are numbered in one
pass (a tree of the values seen, not a scan of a list), and the body
stays within ai_guard_max_body.
--- request eval
::chat(join(' ', map { "u$_\@example.com" } 1 .. 2000) . ' u1@example.com')
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::got(::chat_body(join(' ', map { "[EMAIL_$_]" } 1 .. 2000) . ' [EMAIL_1]'))



=== TEST 13: a GET with a chunked body is masked as a POST is
--- raw_request eval
AiGuardBlocks::chunked_request("GET /v1/chat/completions",
    "Authorization: Bearer sk-aig-test-valid-0001",
    '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"',
    'to kim@example.com"}]}')
--- error_code: 200
--- response_body eval
::got(::chat_body("to [EMAIL_1]"))
