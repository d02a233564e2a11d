# The request-body rewriter as a hostile client uses it: names the parser
# reads decoded, written with escapes the rewriter must read the same way,
# so that the upstream gets one stream_options, the one the guard set,
# and never a second member beside the client's.  The mock upstream
# echoes the body it got in a comment line, then a stream.

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
our $done = "data: [DONE]\n\n";

our $http_config = <<'_EOC_';
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;
    proxy_buffering off;
_EOC_

our $config = <<"_EOC_";
    location /v1/ {
        ai_guard on;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /cached/ {
        ai_guard on;
        ai_guard_cache_key always;
        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
    }

    location /mock/ {
        default_type text/event-stream;
        client_body_buffer_size 64k;
        echo_read_request_body;
        echo -n ': got \$request_body\\n';
        echo -n '$chunk$done';
    }
_EOC_

our $key = "Authorization: Bearer sk-aig-test-valid-0001";

# every character of a name as a \u escape: longer than the name
sub esc {
    return join('', map { sprintf('\\u%04x', ord($_)) } split(//, $_[0]));
}

sub stream {
    my ($uri, $extra) = @_;
    return "$uri\n{\"model\":\"gpt-4o-mini\",\"stream\":true,$extra"
           . "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
}

sub seen {
    return ": got $_[0]\n$::chunk$::done";
}

defaults(http_config => $http_config, config => $config);

run_tests();

__DATA__

=== TEST 1: stream_options's name all escapes: its value set, no second member
With the cache key on, the rewritten body is parsed again: it must parse.
--- request eval
my $b = ::stream("/chat/completions",
                 '"' . ::esc("stream_options") . '":{"include_usage":false},');
["POST /v1$b", "POST /cached$b"]
--- more_headers eval: [$::key, $::key]
--- error_code eval: [200, 200]
--- response_body eval
my $s = ::seen('{"model":"gpt-4o-mini","stream":true,"'
               . ::esc("stream_options") . '":{"include_usage":true},'
               . '"messages":[{"role":"user","content":"hi"}]}');
[$s, $s]



=== TEST 2: include_usage's name all escapes: its value is set, no second member
--- request eval
"POST " . ::stream("/v1/chat/completions",
         '"stream_options":{"' . ::esc("include_usage") . '":false},')
--- more_headers eval: $::key
--- error_code: 200
--- response_body eval
::seen('{"model":"gpt-4o-mini","stream":true,"stream_options":{"'
       . ::esc("include_usage")
       . '":true},"messages":[{"role":"user","content":"hi"}]}')
