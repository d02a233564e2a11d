# ai_guard_stream_usage inject against upstreams and clients of every
# shape: a stream that ends inside an event (its last line without the
# blank line) reaches an HTTP/1.0 client whole, as it does an HTTP/1.1
# one, with no zero-size buffer for nginx's writer to refuse (there is no
# chunked encoding to hide one from it for HTTP/1.0 and HTTP/2 clients).
# The mock upstream answers the usage chunk only when asked, as OpenAI
# does.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(2);

# 3 requests, each its status, its body and the three patterns of the
# default --- no_error_log
plan tests => repeat_each() * (3 * 5);

no_shuffle();

our $chunk = $SSE_CHUNK;
our $usage = $SSE_USAGE;

sub nq {
    my ($s) = @_;
    $s =~ s/\n/\\n/g;
    return "'$s'";
}

our $http_config = <<'_EOC_';
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;
_EOC_

# each piece in a read of its own; the last event without its blank line
our $config = <<"_EOC_";
    location /v1/ {
        ai_guard on;
        proxy_buffering off;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /buffered/ {
        ai_guard on;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        default_type text/event-stream;
        echo_read_request_body;
        echo -n @{[ nq($chunk) ]};
        echo_flush;
        echo_sleep 0.002;
        echo -n @{[ nq($usage) ]};
        echo_flush;
        echo_sleep 0.002;
        echo -n 'data: [DONE]\\n';
    }
_EOC_

our $body = '{"model":"gpt-4o-mini","stream":true,'
    . '"messages":[{"role":"user","content":"hi"}]}';

sub raw {
    my ($uri, $version) = @_;
    return "POST $uri HTTP/$version\r\nHost: localhost\r\n"
           . "Connection: close\r\n"
           . "Authorization: Bearer sk-aig-test-valid-0001\r\n"
           . "Content-Length: " . length($body) . "\r\n\r\n$body";
}

# what the client reads: the stream less the usage chunk, its end as sent
our $seen = qr/\A\Q$chunk\Edata: \[DONE\]\n\z/;

defaults(http_config => $http_config, config => $config);

run_tests();

__DATA__

=== TEST 1: HTTP/1.0, unbuffered: the stream whole, its unfinished last event too
--- raw_request eval
::raw("/v1/chat/completions", "1.0")
--- response_body_like eval: $::seen



=== TEST 2: HTTP/1.0, buffered: the same
--- raw_request eval
::raw("/buffered/chat/completions", "1.0")
--- response_body_like eval: $::seen



=== TEST 3: HTTP/1.1, chunked to the client: the same
--- raw_request eval
::raw("/v1/chat/completions", "1.1")
--- response_body_like eval: $::seen
