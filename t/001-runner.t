# Self-test of the Test::Nginx::Socket runner: stock nginx and Debian's echo
# module only, no ai_guard directive.  Passes under t/lib's runner and under
# CPAN's Test::Nginx (docs/testing.md).

use Test::Nginx::Socket;

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

repeat_each(2);

# 3 a block (status, body, [error]) and 15 more; the body check below one
# per response of TEST 16
plan tests => repeat_each() * (3 * blocks() + 15 + 1);

# add_response_body_check: called with each response the runner checks,
# its body after chunked decoding and the request's index
add_response_body_check(sub {
    my ($block, $body, $idx) = @_;
    return unless $block->name =~ /add_response_body_check/;
    is("$idx $body", "0 hello, chunked\n",
       $block->name . ' - the body check sees the decoded body');
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: echo a body
--- config
    location = /t {
        echo hello;
    }
--- request
GET /t
--- response_body
hello
--- no_error_log
[error]



=== TEST 2: response_headers: exact values and absent headers
--- config
    location = /t {
        add_header X-Foo bar;
        add_header X-Baz "a b";
        echo ok;
    }
--- request
GET /t
--- response_headers
X-Foo: bar
X-Baz: a b
Content-Type: text/plain
!X-Missing
--- response_body
ok
--- no_error_log
[error]



=== TEST 3: several requests in one block, error_code eval array
--- config
    location = /a {
        return 200 "a\n";
    }
    location = /b {
        return 403;
    }
    location = /c {
        return 404;
    }
--- request eval
["GET /a", "GET /b", "GET /c"]
--- error_code eval
[200, 403, 404]
--- response_body_like eval
["^a\n\\z", "403 Forbidden", "404 Not Found"]
--- no_error_log
[error]



=== TEST 4: response_body_like chomp
--- config
    location = /t {
        echo "value=42 port=$server_port";
    }
--- request
GET /t
--- response_body_like chomp
^value=\d+ port=\d+$
--- no_error_log
[error]



=== TEST 5: user_files under the html dir, by the default location and by alias
--- config
    location /files/ {
        alias $TEST_NGINX_HTML_DIR/;
    }
--- user_files
>>> foo.txt
hello file
>>> sub/bar.txt
bar
--- request eval
["GET /foo.txt", "GET /files/sub/bar.txt"]
--- response_body eval
["hello file\n", "bar\n"]
--- no_error_log
[error]



=== TEST 6: POST body echoed back
--- config
    location = /echo {
        echo_read_request_body;
        echo_request_body;
    }
--- request
POST /echo
hello world
--- response_body chomp
hello world
--- no_error_log
[error]



=== TEST 7: proxy_pass to a mock location on the same server, more_headers
--- config
    location = /mock {
        echo "mock got $request_method $uri token=$http_x_token a=$http_x_a";
    }
    location = /p {
        proxy_set_header X-Token abc;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock;
    }
--- request
GET /p
--- more_headers
X-A: 1
X-Token: client
--- response_body
mock got GET /mock token=abc a=1
--- no_error_log
[error]



=== TEST 8: streamed response (echo_flush / echo_sleep), chunked decoding
--- config
    location = /stream {
        echo "data: 1";
        echo_flush;
        echo_sleep 0.1;
        echo "data: 2";
    }
--- request
GET /stream
--- response_headers
Transfer-Encoding: chunked
--- response_body
data: 1
data: 2
--- no_error_log
[error]



=== TEST 9: error_log patterns, strings and regexes
--- config
--- request
GET /missing.html
--- error_code: 404
--- error_log eval
["[error]", qr/open\(\) ".*?missing\.html" failed/]
--- no_error_log
[crit]
[alert]



=== TEST 10: raw_request with a chunked body
--- config
    location = /echo {
        echo_read_request_body;
        echo_request_body;
    }
--- raw_request eval
"POST /echo HTTP/1.1\r
Host: localhost\r
Connection: close\r
Transfer-Encoding: chunked\r
\r
5\r
hello\r
6\r
 world\r
0\r
\r
"
--- response_body chomp
hello world
--- no_error_log
[error]



=== TEST 11: request eval with a hand-made chunked body
--- config
    location = /echo {
        echo_read_request_body;
        echo_request_body;
    }
--- more_headers
Transfer-Encoding: chunked
--- request eval
"POST /echo\n" . "3\r\nabc\r\n" . "2\r\nde\r\n" . "0\r\n\r\n"
--- response_body chomp
abcde
--- no_error_log
[error]



=== TEST 12: timeout with abort: the client gives up, not a failure
--- config
    location = /slow {
        echo_sleep 1;
        echo done;
    }
--- request
GET /slow
--- timeout: 0.3
--- abort
--- ignore_response
--- no_error_log
[error]



=== TEST 13: http_config and main_config
--- main_config
worker_rlimit_nofile 1024;
--- http_config
    map $uri $flavor {
        default  vanilla;
        /t       chocolate;
    }
--- config
    location = /t {
        echo $flavor;
    }
--- request
GET /t
--- response_body
chocolate
--- no_error_log
[error]



=== TEST 14: response_headers_like
--- config
    location = /t {
        return 200 "xyz";
    }
--- request
GET /t
--- response_headers_like
Content-Length: \d
Server: nginx(/[\d.]+)?
--- response_body chomp
xyz
--- no_error_log
[error]



=== TEST 15: must_die: a bad config stops nginx, the error log says why
--- config
    location = /t {
        no_such_directive_here;
    }
--- must_die
--- error_log
[emerg]
--- request
GET /t



=== TEST 16: add_response_body_check sees each decoded body
--- config
    location = /t {
        echo -n "hello, ";
        echo_flush;
        echo "chunked";
    }
--- request
GET /t
--- response_body
hello, chunked
--- no_error_log
[error]
