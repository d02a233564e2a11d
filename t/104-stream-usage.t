# ai_guard_stream_usage inject: an OpenAI streaming request without
# stream_options.include_usage reaches the upstream with it, the stream is
# settled on the upstream's usage (estimated_requests 0), and the client
# that did not ask gets the stream without the usage chunk, however the
# upstream's bytes are split; a client that asked gets it as before.  The
# mock upstream answers the usage chunk only when the body asks for it, as
# OpenAI does, and echoes the body it got in a comment line.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(2);

# 11 requests, each its status, its body and the three patterns of the
# default --- no_error_log
plan tests => repeat_each() * (11 * 5);

no_shuffle();

our $chunk1 = 'data: {"id":"c","object":"chat.completion.chunk",'
    . '"model":"gpt-4o-mini","choices":[{"index":0,"delta":'
    . '{"content":"Hel"},"finish_reason":null}]}' . "\n\n";
our $chunk2 = 'data: {"id":"c","object":"chat.completion.chunk",'
    . '"model":"gpt-4o-mini","choices":[{"index":0,"delta":'
    . '{"content":"lo"},"finish_reason":"stop"}]}' . "\n\n";
our $usage = $SSE_USAGE;
our $done = "data: [DONE]\n\n";

# nginx's quoted string of a piece of the stream
sub nq {
    my ($s) = @_;
    $s =~ s/\n/\\n/g;
    $s =~ s/\r/\\r/g;
    return "'$s'";
}

# the mock: the pieces, each flushed, with a pause between so that each
# reaches ai_guard in a read of its own; the usage chunk only when asked
sub mock {
    my (@pieces) = @_;
    my $conf = <<"_EOC_";
    location /mock/ {
        default_type text/event-stream;
        client_body_buffer_size 64k;
        echo_read_request_body;
        echo -n ': got \$request_body\\n';
_EOC_
    for my $p (@pieces) {
        if ($p eq 'USAGE') {
            $conf .= "        echo -n \$usage_chunk;\n";
        } else {
            $conf .= "        echo -n " . nq($p) . ";\n";
        }
        $conf .= "        echo_flush;\n        echo_sleep 0.002;\n";
    }
    $conf .= "    }\n";
    return $conf;
}

our $http_config = <<'_EOC_';
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;
    proxy_buffering off;
_EOC_

$http_config .= "    map \$request_body \$usage_chunk {\n"
    . "        \"~\\\"include_usage\\\":\\s*true\" " . nq($usage) . ";\n"
    . "        default \"\";\n    }\n";

our $guard = <<'_EOC_';
    location /v1/ {
        ai_guard on;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /off/ {
        ai_guard on;
        ai_guard_stream_usage off;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }

    location = /usage {
        ai_guard_usage;
    }
_EOC_

our $config = $guard . mock($chunk1, $chunk2, 'USAGE', $done);

our $key = "Authorization: Bearer sk-aig-test-valid-0001";

sub stream {
    my ($uri, $extra) = @_;
    return "POST $uri\n{\"model\":\"gpt-4o-mini\",\"stream\":true,$extra"
           . "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
}

# what the client sees: the body the upstream got, then the stream
sub seen {
    my ($got, @pieces) = @_;
    return ": got $got\n" . join('', @pieces);
}

# two streams a round, 7 + 2 tokens each, none on the estimate
our $report = qr/"requests":(?:2|4),"input_tokens":(?:14|28),"output_tokens":(?:4|8),"cached_tokens":0,"estimated_requests":0,/;

defaults(http_config => $http_config, config => $config);

run_tests();

__DATA__

=== TEST 1: no include_usage: injected, settled on the upstream's usage, stripped
--- request eval
[::stream("/v1/chat/completions", ""), ::stream("/v1/chat/completions", ""), "GET /usage"]
--- more_headers eval: [$::key, $::key, ""]
--- error_code eval: [200, 200, 200]
--- response_body_like eval
my $s = ::seen('{"stream_options":{"include_usage":true},"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}', $::chunk1, $::chunk2, $::done);
[qr/\A\Q$s\E\z/, qr/\A\Q$s\E\z/, $::report]



=== TEST 2: include_usage asked for: the body as it came, the usage chunk as before
--- request eval
::stream("/v1/chat/completions", '"stream_options":{"include_usage":true},')
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::seen('{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}', $::chunk1, $::chunk2, $::usage, $::done)



=== TEST 3: include_usage false: set to true, the chunk stripped
--- request eval
::stream("/v1/chat/completions", '"stream_options":{"include_usage":false},')
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::seen('{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}', $::chunk1, $::chunk2, $::done)



=== TEST 4: ai_guard_stream_usage off: the body as it came, no usage chunk
--- request eval
::stream("/off/chat/completions", "")
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::seen('{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}', $::chunk1, $::chunk2, $::done)



=== TEST 5: not a stream, or not chat/completions: the body as it came
--- request eval
["POST /v1/chat/completions\n{\"model\":\"gpt-4o-mini\",\"messages\":[]}",
 "POST /v1/responses\n{\"model\":\"gpt-4o-mini\",\"stream\":true,\"input\":\"hi\"}"]
--- more_headers eval: [$::key, $::key]
--- error_code eval: [200, 200]
--- response_body eval
[::seen('{"model":"gpt-4o-mini","messages":[]}', $::chunk1, $::chunk2, $::done),
 ::seen('{"model":"gpt-4o-mini","stream":true,"input":"hi"}', $::chunk1, $::chunk2, $::done)]



=== TEST 6: the usage chunk split inside "data:", its JSON and its blank line
--- config eval
$::guard . ::mock($::chunk1, substr($::chunk2, 0, 20), substr($::chunk2, 20)
                  . substr($::usage, 0, 3), substr($::usage, 3, 60),
                  substr($::usage, 63, -1), substr($::usage, -1) . $::done)
--- request eval
::stream("/v1/chat/completions", "")
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::seen('{"stream_options":{"include_usage":true},"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}', $::chunk1, $::chunk2, $::done)



=== TEST 7: the stream a byte a read: the same stream, less the usage chunk
--- config eval
$::guard . ::mock(split(//, $::chunk2 . $::usage), $::done)
--- request eval
::stream("/v1/chat/completions", "")
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::seen('{"stream_options":{"include_usage":true},"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}', $::chunk2, $::done)



=== TEST 8: CRLF lines, a usage chunk with content kept, a long event kept
An event with content and usage is not the usage chunk; an event longer
than the hold goes on as it is.
--- config eval
my $u = $::usage; $u =~ s/\n/\r\n/g;
my $c = $::chunk1; $c =~ s/\n/\r\n/g;
my $both = $::chunk2; $both =~ s/\]\}\n\n/],"usage":{"prompt_tokens":1}}\n\n/;
my $long = 'data: {"choices":[{"delta":{"content":"' . ('x' x 9000) . '"}}]}' . "\n\n";
$::guard . ::mock($c, $both, unpack("(a1000)*", $long), "USAGE", $u, $::done)
--- request eval
::stream("/v1/chat/completions", "")
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
my $c = $::chunk1; $c =~ s/\n/\r\n/g;
my $both = $::chunk2; $both =~ s/\]\}\n\n/],"usage":{"prompt_tokens":1}}\n\n/;
my $long = 'data: {"choices":[{"delta":{"content":"' . ('x' x 9000) . '"}}]}' . "\n\n";
::seen('{"stream_options":{"include_usage":true},"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}', $c, $both, $long, $::done)
