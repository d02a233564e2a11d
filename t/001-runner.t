# Self-test of the Test::Nginx::Socket runner: stock nginx and Debian's echo
# module only, no ai_guard directive.  Passes under t/lib's runner and under
# CPAN's Test::Nginx (docs/testing.md).
#
# First, t/lib's runner itself (whichever runner runs this file): it
# refuses, before any nginx starts, the checks that cannot fail; it
# listens on the loopback address only; it draws random ports from
# TEST_NGINX_PORT_RANGE.  Each case is a small test file run by a child
# perl with t/lib first on @INC.

use Test::Nginx::Socket;
use FindBin;
use File::Temp qw(tempdir);

$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();

repeat_each(2);

# what a block of the child says, and what the refusal names
our @refused = (
    ["--- response_headers_like\n.*\n", qr/"\.\*" is not "Name: value"/],
    ["--- response_headers_like\nX-Foo: .*\n",
     qr/the X-Foo pattern "\.\*" matches any value, and an absent header/],
    ["--- response_headers_like\n!X-Foo\n", qr/an absent header is said in/],
    ["--- response_headers_like\nX-.*: 1\n", qr/"X-\.\*" is not a header name/],
    ["--- response_headers\nX-Foo\n", qr/say "!Name" for an absent header/],
    ["--- response_headers\nX-Foo: 1\nx-foo: 2\n", qr/the header x-foo twice/],
    ["--- response_headers\nX-Foo: 1\n--- response_headers_like\nX-Foo: \\d\n",
     qr/--- response_headers_like is ignored when --- response_headers is given/],
    ["--- response_body\nok\n--- response_body_like\nok\n",
     qr/--- response_body_like is ignored when --- response_body is given/],
    ["--- error_code: 200\n--- error_code_like: 2..\n",
     qr/--- error_code_like is ignored when --- error_code is given/],
    ["--- response_body_like eval\n''\n", qr/"" matches any response/],
    ["--- response_body_like eval\nqr/x*/\n", qr/matches any response/],
    ["--- error_code eval\n[200, 200]\n",
     qr/--- error_code has 2 values for 1 requests/],
    ["--- error_log eval\nqr/(?:)/\n", qr/--- error_log: .* matches any line/],
);

# 3 a block (status, body, [error]) and 15 more; the body check below one
# per response of TEST 16; two checks a refused case, four of the ports
plan tests => repeat_each() * (3 * blocks() + 15 + 1) + 2 * @refused + 4;

# in the checkout, not /tmp: nginx of the version matrix may run in a
# chroot that sees only the checkout (util/nginx-build)
my $tmp = tempdir('runner-XXXXXX', DIR => $FindBin::Bin, CLEANUP => 1);

# runs a test file of one block under t/lib's runner; (exit status, output)
sub child {
    my ($block, %env) = @_;
    my $file = "$tmp/child.t";

    open my $fh, '>', $file or die "$file: $!";
    print $fh "use Test::Nginx::Socket;\nplan tests => 2;\n"
              . "\$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();\n"
              . "run_tests();\n__DATA__\n\n=== TEST 1: child\n"
              . "--- config\n    location = /t {\n        echo ok;\n    }\n"
              . "--- request\nGET /t\n$block";
    close $fh;

    local $ENV{TEST_NGINX_SERVROOT} = "$tmp/servroot";
    local @ENV{keys %env} = values %env;

    my $out = `$^X -I$FindBin::Bin/lib $file 2>&1`;
    return ($? >> 8, $out);
}

for my $case (@refused) {
    my ($block, $why) = @$case;
    my ($rc, $out) = child($block);
    (my $name = $block) =~ s/\n/ /g;
    isnt($rc, 0, "the runner refuses $name");
    like($out, qr/Bail out!.*$why/, "... saying why");
}

# the server on 127.0.0.1 only, and a random port from the range
{
    my $port = $ENV{TEST_NGINX_PORT} || $ENV{TEST_NGINX_SERVER_PORT} || 1984;
    my $rand = $port + 500;
    my ($rc, $out) = child("--- config\n    location = /t {\n"
                           . "        echo \$TEST_NGINX_RAND_PORT_1;\n"
                           . "    }\n--- response_body\n$rand\n",
                           TEST_NGINX_PORT_RANGE => "$rand-$rand");
    is($rc, 0, 'a block with a random port passes') or diag($out);
    like($out, qr/ok 2 /, '... the port is the range\'s one');

    open my $fh, '<', "$tmp/servroot/conf/nginx.conf" or die "conf: $!";
    my ($listen) = grep { /^\s*listen\s/ } <$fh>;
    close $fh;
    like($listen, qr/^\s*listen\s+127\.0\.0\.1:$port;$/,
         'the server listens on 127.0.0.1 only');

    ($rc, $out) = child("--- response_body\nok\n",
                        TEST_NGINX_PORT_RANGE => 'a lot');
    like($out, qr/TEST_NGINX_PORT_RANGE "a lot": not "low-high"/,
         'a range that is not one is refused');
}

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
