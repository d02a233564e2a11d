# Every shape an upstream may answer in, through an nginx with two workers
# and a raw-TCP mock upstream: no Content-Type, 204, 304, an empty 200,
# HEAD, Content-Type with parameters and odd case, a 100 Continue before
# the answer, bodies larger than the proxy buffers (through temp files),
# a 502/503 HTML page, chunked, Content-Length and close-delimited bodies,
# a body written one byte at a time, counts too large; JSON and SSE.  For
# each: no worker died and a follow-up request passes, the client gets
# the upstream's bytes unchanged, and the access log variables and the
# usage report say the right numbers: the upstream's usage where the body
# has it, else the estimate (docs/metering.md).
#
# Then the requests that reached the upstream without an answer (504 on
# proxy_read_timeout, 499 before the response header, a reset or a close
# after the request was sent) are billed the full reservation, a request
# that never reached it is not billed, and an "error_page ... =
# @fallback" into a location without ai_guard is metered and billed once,
# to the original key, with the fallback's usage.
#
# Plain Perl rather than blocks: the upstream is a forked raw-TCP server
# (bytes HTTP allows that no nginx location writes: a 100 Continue first,
# a body a byte a packet, a reset), behind two workers; Test::Nginx's
# mocks are nginx locations.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Socket qw(SOL_SOCKET SO_LINGER);
use Test::More tests => 250;
use Time::HiRes qw(sleep time);
use AiGuardNginx;

my $n = AiGuardNginx->new(name => 'shapes', workers => 2,
                          port => ($ENV{TEST_NGINX_PORT} || 1984) + 172);

my $mock = $n->port + 1;        # answers by path
my $fallback = $n->port + 2;    # the @fallback location's upstream
my $refused = $n->port + 3;     # nothing listens there

# the request every case sends: its prompt estimate is 5 tokens ("hi":
# a quarter token a byte, rounded up, and four of framing, see
# docs/estimate.md), and max_tokens reserves 50 more
my $chat = '{"model":"gpt-4o-mini","max_tokens":50,'
           . '"messages":[{"role":"user","content":"hi"}]}';
my $EST_IN = 5;
my $EST_OUT = 50;

# the error log up to here was checked for dead workers
my $checked = 0;

# what the upstream says, JSON and SSE

my $json = '{"id":"c1","object":"chat.completion","model":"gpt-4o-mini",'
           . '"choices":[{"index":0,"message":{"role":"assistant",'
           . '"content":"Hello there"},"finish_reason":"stop"}],'
           . '"usage":{"prompt_tokens":11,"completion_tokens":5,'
           . '"total_tokens":16}}';

my $json_nousage = '{"id":"c1","object":"chat.completion",'
                   . '"model":"gpt-4o-mini","choices":[{"index":0,'
                   . '"message":{"role":"assistant","content":'
                   . '"Hello there"}}]}';

my $sse = qq(data: {"id":"c1","object":"chat.completion.chunk",)
          . qq("model":"gpt-4o-mini","choices":[{"index":0,"delta":)
          . qq({"content":"Hel"}}],"usage":null}\n\n)
          . qq(data: {"id":"c1","object":"chat.completion.chunk",)
          . qq("model":"gpt-4o-mini","choices":[{"index":0,"delta":)
          . qq({"content":"lo"}}],"usage":null}\n\n)
          . qq(data: {"id":"c1","object":"chat.completion.chunk",)
          . qq("model":"gpt-4o-mini","choices":[],"usage":)
          . qq({"prompt_tokens":33,"completion_tokens":7,)
          . qq("total_tokens":40}}\n\n)
          . qq(data: [DONE]\n\n);

(my $sse_nousage = $sse) =~ s/^data: \{[^\n]*"usage":\{[^\n]*\n\n//m;

my $html = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n"
           . "<body><h1>the provider is down</h1></body>\r\n</html>\r\n";

# counts past what any model produces: clamped to 10^15 each, and the sum
# of the two does not wrap
my $huge = '9' x 20;
(my $json_huge = $json) =~ s/("(?:prompt|completion)_tokens"):\d+/$1:$huge/g;

my $fb_json = '{"id":"f1","object":"chat.completion","model":"gpt-4o-mini",'
              . '"choices":[{"index":0,"message":{"role":"assistant",'
              . '"content":"from the fallback"}}],'
              . '"usage":{"prompt_tokens":21,"completion_tokens":8}}';

# larger than every proxy buffer many times over: through temp files
my $big = 8 * 1024 * 1024;
my $big_text = 'A' x $big;
my $json_large = '{"id":"c1","object":"chat.completion","model":"gpt-4o-mini",'
                 . '"choices":[{"index":0,"message":{"role":"assistant",'
                 . qq("content":"$big_text"}}],)
                 . '"usage":{"prompt_tokens":11,"completion_tokens":5}}';
my $json_large_nousage = '{"id":"c1","choices":[{"index":0,"message":'
                         . qq({"role":"assistant","content":"$big_text"}}]});
my $sse_event = qq(data: {"choices":[{"index":0,"delta":{"content":")
                . ('B' x 1000) . qq("}}]}\n\n);
my $sse_large = ($sse_event x int($big / length $sse_event)) . $sse;

# wire pieces: [bytes, seconds to wait after them]

sub head {
    my ($status, @h) = @_;
    return join('', "HTTP/1.1 $status\r\n", map({ "$_\r\n" } @h), "\r\n");
}

sub with_length {
    my ($status, $type, $body, @h) = @_;
    return [[head($status, ($type ? "Content-Type: $type" : ()),
                  'Content-Length: ' . length($body), 'Connection: close',
                  @h) . $body]];
}

sub chunked {
    my ($status, $type, $body, $size) = @_;
    my $wire = '';
    my $rest = $body;

    while (length $rest) {
        my $c = substr($rest, 0, $size, '');
        $wire .= sprintf("%x\r\n%s\r\n", length $c, $c);
    }

    return [[head($status, ($type ? "Content-Type: $type" : ()),
                  'Transfer-Encoding: chunked', 'Connection: close')
             . $wire . "0\r\n\r\n"]];
}

sub until_close {
    my ($status, $type, $body) = @_;
    return [[head($status, "Content-Type: $type", 'Connection: close')
             . $body]];
}

# the header whole, then the body one byte a packet
sub bytewise {
    my ($pieces) = @_;
    my ($wire) = map { $_->[0] } @$pieces;
    my ($hdr, $body) = split /(?<=\r\n\r\n)/, $wire, 2;
    return [[$hdr, 0.01], map { [$_, 0.002] } split //, $body];
}

# name => [how to ask, the upstream's wire, what the client must get:
#          status, body, and the usage: source, input, output]

my @cases = (
    [json_length => 'POST /v1/', with_length('200 OK', 'application/json',
                                             $json),
     200, $json, 'upstream', 11, 5],
    [json_chunked => 'POST /v1/', chunked('200 OK', 'application/json',
                                          $json, 7),
     200, $json, 'upstream', 11, 5],
    [json_close => 'POST /v1/', until_close('200 OK', 'application/json',
                                            $json),
     200, $json, 'upstream', 11, 5],
    [json_params => 'POST /v1/', with_length('200 OK',
                                     'Application/JSON; charset=utf-8',
                                     $json),
     200, $json, 'upstream', 11, 5],
    [json_no_type => 'POST /v1/', with_length('200 OK', undef, $json),
     200, $json, 'upstream', 11, 5],
    [json_no_type_chunked => 'POST /v1/', chunked('200 OK', undef, $json,
                                                  5),
     200, $json, 'upstream', 11, 5],
    [text_no_type => 'POST /v1/', with_length('200 OK', undef,
                                              'plain words, not json'),
     200, 'plain words, not json', 'estimate', $EST_IN, 6],
    [sse_no_type => 'POST /v1/', chunked('200 OK', undef, $sse, 64),
     200, $sse, 'estimate', $EST_IN, int((length($sse) + 3) / 4)],
    [json_empty => 'POST /v1/', with_length('200 OK', 'application/json',
                                            ''),
     200, '', 'estimate', $EST_IN, 0],
    [sse_empty => 'POST /v1/', chunked('200 OK', 'text/event-stream', '',
                                       1),
     200, '', 'estimate', $EST_IN, 0],
    [json_huge => 'POST /v1/', with_length('200 OK', 'application/json',
                                           $json_huge),
     200, $json_huge, 'upstream', '1000000000000000', '1000000000000000'],
    [json_no_usage => 'POST /v1/', with_length('200 OK', 'application/json',
                                               $json_nousage),
     200, $json_nousage, 'estimate', $EST_IN, 3],
    [json_204 => 'POST /v1/', [[head('204 No Content',
                                     'Content-Type: application/json',
                                     'Connection: close')]],
     204, '', 'estimate', $EST_IN, 0],
    [no_type_204 => 'POST /v1/', [[head('204 No Content',
                                        'Connection: close')]],
     204, '', 'estimate', $EST_IN, 0],
    [sse_304 => 'POST /v1/', [[head('304 Not Modified',
                                    'Content-Type: text/event-stream',
                                    'Connection: close')]],
     304, '', 'estimate', $EST_IN, 0],
    # a HEAD names no model and its answer has no body: not inference,
    # not billed (docs/metering.md), its usage variables empty
    [json_head => 'HEAD /v1/', with_length('200 OK', 'application/json',
                                           $json),
     200, '', 'none', '-', '-'],
    [sse_head => 'HEAD /v1/', chunked('200 OK', 'text/event-stream', $sse,
                                      64),
     200, '', 'none', '-', '-'],
    # nginx 1.22 does not skip an interim 1xx of the upstream's: it sends
    # it as the response, and the rest of what the upstream sent, the real
    # answer, header and all, as its body (nginx issue #1427); an HTTP
    # client then reads that as the final response.  No meter reads usage
    # in there: billed as sent and not answered, the whole reservation.
    [json_100 => 'POST /v1/',
     [[head('100 Continue')], @{ with_length('200 OK', 'application/json',
                                             $json) }],
     100, with_length('200 OK', 'application/json', $json)->[0][0],
     'estimate', $EST_IN, $EST_OUT],
    [sse_100 => 'POST /v1/',
     [[head('100 Continue')], @{ chunked('200 OK', 'text/event-stream',
                                         $sse, 100) }],
     100, chunked('200 OK', 'text/event-stream', $sse, 100)->[0][0],
     'estimate', $EST_IN, $EST_OUT],
    [sse_chunked => 'POST /v1/', chunked('200 OK', 'text/event-stream',
                                         $sse, 13),
     200, $sse, 'upstream', 33, 7],
    [sse_length => 'POST /v1/', with_length('200 OK', 'text/event-stream',
                                            $sse),
     200, $sse, 'upstream', 33, 7],
    [sse_close => 'POST /v1/', until_close('200 OK', 'text/event-stream',
                                           $sse),
     200, $sse, 'upstream', 33, 7],
    [sse_params => 'POST /v1/', chunked('200 OK',
                                        'text/event-stream;charset=UTF-8',
                                        $sse, 64),
     200, $sse, 'upstream', 33, 7],
    [sse_case => 'POST /v1/', chunked('200 OK', 'Text/Event-Stream', $sse,
                                      64),
     200, $sse, 'upstream', 33, 7],
    [sse_no_usage => 'POST /v1/', chunked('200 OK', 'text/event-stream',
                                          $sse_nousage, 64),
     200, $sse_nousage, 'estimate', $EST_IN, 2],
    [json_bytes => 'POST /v1/', bytewise(with_length('200 OK',
                                             'application/json', $json)),
     200, $json, 'upstream', 11, 5],
    [sse_bytes => 'POST /v1/', bytewise(chunked('200 OK',
                                            'text/event-stream', $sse, 40)),
     200, $sse, 'upstream', 33, 7],
    [html_502 => 'POST /v1/', with_length('502 Bad Gateway',
                                          'text/html', $html),
     502, $html, 'estimate', 0, 0],
    [html_503 => 'POST /v1/', chunked('503 Service Unavailable',
                                      'text/html; charset=iso-8859-1',
                                      $html, 10),
     503, $html, 'estimate', 0, 0],
    [json_large => 'POST /buf/', with_length('200 OK', 'application/json',
                                             $json_large),
     200, $json_large, 'upstream', 11, 5],
    [json_large_no_usage => 'POST /buf/', with_length('200 OK',
                                              'application/json',
                                              $json_large_nousage),
     200, $json_large_nousage, 'estimate', $EST_IN, $big / 4],
    [sse_large => 'POST /buf/', chunked('200 OK', 'text/event-stream',
                                        $sse_large, 65536),
     200, $sse_large, 'upstream', 33, 7],
);

my %wire = map { $_->[0] => $_->[2] } @cases;

# keys: one tenant a case, so each one has a row of its own in the report
my @tenants = ((map { $_->[0] } @cases),
               qw(hang abort reset close refused follow
                  fb_hang fb_refused fb_502 fb_sse fb_both_hang));
my %key = map { $_ => "sk-aig-shape-$_" } @tenants;

$n->write_file('html/keys.json',
    qq({"keys": [\n)
    . join(",\n", map { qq(  {"id": "$_", "tenant": "$_", "tier": "pro", )
                        . qq("sha256": ") . sha256_hex($key{$_}) . '"}' }
                  @tenants)
    . "\n]}\n");

my @servers = (mock_upstream($mock, \&answer),
               mock_upstream($fallback, \&fallback));

$n->write_config(<<"_EOC_");
    ai_guard_zone  ai_guard 1m;
    ai_guard_tier  pro;
    ai_guard_keys  \$TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_price  *  input=2.50 output=10.00;

    log_format  shapes  'shape \$request_uri \$status '
                        'src=\$ai_guard_usage_source '
                        'in=\$ai_guard_prompt_tokens '
                        'out=\$ai_guard_completion_tokens '
                        'total=\$ai_guard_total_tokens';

    upstream mock { server 127.0.0.1:$mock; }
    upstream fallback { server 127.0.0.1:$fallback; }
    upstream refused { server 127.0.0.1:$refused; }

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        access_log logs/access.log shapes;

        location /v1/ {
            ai_guard on;
            proxy_buffering off;
            proxy_read_timeout 1s;
            proxy_pass http://mock;
        }

        # small buffers, so a large body goes through temp files
        location /buf/ {
            ai_guard on;
            proxy_buffering on;
            proxy_buffer_size 4k;
            proxy_buffers 4 4k;
            proxy_busy_buffers_size 8k;
            proxy_pass http://mock;
        }

        location /down/ {
            ai_guard on;
            proxy_pass http://refused;
        }

        location /fb/ {
            ai_guard on;
            proxy_read_timeout 1s;
            proxy_intercept_errors on;
            error_page 502 504 = \@fallback;
            proxy_pass http://mock;
        }

        location /fbdown/ {
            ai_guard on;
            error_page 502 504 = \@fallback;
            proxy_pass http://refused;
        }

        # no ai_guard here: the original request's key is billed
        location \@fallback {
            proxy_read_timeout 1s;
            proxy_pass http://fallback;
        }

        location = /ai-guard/usage {
            ai_guard_usage;
        }
    }
_EOC_

$n->start;

for my $c (@cases) {
    my ($name, $how, undef, $status, $body, $src, $in, $out) = @$c;
    my ($method, $prefix) = split / /, $how;
    my $uri = "$prefix$name";
    my @r;

    if ($prefix eq '/buf/') {
        # the client reads only once the upstream has sent everything:
        # nginx has to keep what the client does not take yet
        @r = held($method, $uri, $key{$name}, $chat, "sent-$name");

        like($n->log, qr/buffered to a temporary file .* "POST \Q$uri\E /,
             "$name: through a temp file");

    } else {
        @r = req($method, $uri, ["Authorization: Bearer $key{$name}"],
                 $method eq 'HEAD' ? undef : $chat);
    }

    is($r[0], $status, "$name: $status");
    ok($r[2] eq $body, "$name: the upstream's body, unchanged ("
                       . length($r[2]) . ' of ' . length($body)
                       . ' bytes)');
    if ($src eq 'none') {
        is(settled($uri), "$status src=- in=- out=- total=-",
           "$name: the log variables, empty: not billed");
        is(report($name), 'none', "$name: not in the usage report");
        alive($name);
        next;
    }

    is(settled($uri), "$status src=$src in=$in out=$out total="
                      . ($in + $out),
       "$name: the log variables");
    is(report($name), "requests=1 input=$in output=$out estimated="
                      . ($src eq 'estimate' ? 1 : 0),
       "$name: the usage report");
    alive($name);
}

# sent and never answered: the full reservation, marked estimated

{
    my ($status) = req('POST', '/v1/hang',
                       ["Authorization: Bearer $key{hang}"], $chat);
    is($status, 504, 'upstream timeout: 504');
    is(settled('/v1/hang'),
       "504 src=estimate in=$EST_IN out=$EST_OUT total="
       . ($EST_IN + $EST_OUT),
       '... billed the full reservation');
    is(report('hang'),
       "requests=1 input=$EST_IN output=$EST_OUT estimated=1",
       '... in the report');
    alive('upstream timeout');
}

{
    # the client goes away once the upstream has the request, before the
    # response header: nginx logs 499
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $n->port, Timeout => 10)
        or die "connect: $!";
    print $s "POST /v1/abort HTTP/1.1\r\nHost: localhost\r\n"
             . "Authorization: Bearer $key{abort}\r\n"
             . "Content-Length: " . length($chat) . "\r\n"
             . "Connection: close\r\n\r\n$chat";
    ok(wait_file('got-abort'), 'client abort: the upstream got the request');
    close $s;

    is(settled('/v1/abort'),
       "499 src=estimate in=$EST_IN out=$EST_OUT total="
       . ($EST_IN + $EST_OUT),
       'client abort before the response header: 499, billed the full '
       . 'reservation');
    is(report('abort'),
       "requests=1 input=$EST_IN output=$EST_OUT estimated=1",
       '... in the report');
    alive('client abort before the header');
}

for my $how (qw(reset close)) {
    my ($status) = req('POST', "/v1/$how",
                       ["Authorization: Bearer $key{$how}"], $chat);
    is($status, 502, "upstream $how after the request: 502");
    is(settled("/v1/$how"),
       "502 src=estimate in=$EST_IN out=$EST_OUT total="
       . ($EST_IN + $EST_OUT),
       '... billed the full reservation');
    is(report($how),
       "requests=1 input=$EST_IN output=$EST_OUT estimated=1",
       '... in the report');
    alive("upstream $how");
}

{
    my ($status) = req('POST', '/down/x',
                       ["Authorization: Bearer $key{refused}"], $chat);
    is($status, 502, 'connection refused: 502');
    is(settled('/down/x'), '502 src=- in=- out=- total=-',
       '... the request never reached the upstream: no usage');
    is(report('refused'), 'none', '... and not in the report');
    alive('connection refused');
}

# error_page into a location without ai_guard: metered, billed once

for my $f (['fb_hang', '/fb/hang', 'upstream timeout', $fb_json, 21, 8],
           ['fb_refused', '/fbdown/x', 'connection refused', $fb_json, 21,
            8],
           ['fb_502', '/fb/html_502', 'an upstream 502', $fb_json, 21, 8],
           ['fb_sse', '/fb/hang_sse', 'a streamed fallback', $sse, 33, 7])
{
    my ($name, $uri, $what, $body, $in, $out) = @$f;
    my @r = req('POST', $uri, ["Authorization: Bearer $key{$name}"], $chat);

    is($r[0], 200, "fallback after $what: 200");
    ok($r[2] eq $body, '... with the fallback\'s body');
    is(settled($uri), "200 src=upstream in=$in out=$out total="
                      . ($in + $out),
       '... metered from the fallback\'s usage');
    is(report($name), "requests=1 input=$in output=$out estimated=0",
       '... billed once, to the original key');
    alive("fallback after $what");
}

{
    my ($status) = req('POST', '/fb/both_hang',
                       ["Authorization: Bearer $key{fb_both_hang}"], $chat);
    is($status, 504, 'the fallback times out too: 504');
    is(settled('/fb/both_hang'),
       "504 src=estimate in=$EST_IN out=$EST_OUT total="
       . ($EST_IN + $EST_OUT),
       '... billed the full reservation');
    is(report('fb_both_hang'),
       "requests=1 input=$EST_IN output=$EST_OUT estimated=1",
       '... once');
    alive('the fallback times out too');
}

$n->stop;

my $log = $n->log;
unlike($log, qr/exited on signal|\[(alert|crit|emerg)\]/,
       'no worker died, no alert or crit in the error log');

kill 'TERM', @servers;
waitpid($_, 0) for @servers;



# a request, then its log line: the request settles in its log phase,
# which may come after the client has the response
sub req {
    my $before = () = $n->log('access.log') =~ /\n/g;
    my @r = $n->request(@_);

    for (1 .. 200) {
        last if (() = $n->log('access.log') =~ /\n/g) > $before;
        sleep 0.02;
    }

    return @r;
}

# a request whose response is read only once the upstream has sent all of
# it (the mock writes the file $done then)
sub held {
    my ($method, $uri, $k, $body, $done) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $n->port, Timeout => 30)
        or die "connect: $!";
    print $s "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
             . "Authorization: Bearer $k\r\n"
             . "Content-Length: " . length($body) . "\r\n"
             . "Connection: close\r\n\r\n$body";

    wait_file($done);

    local $/;
    my $resp = <$s> // '';
    close $s;

    return AiGuardNginx::parse_response($resp);
}

sub wait_file {
    my ($name) = @_;

    for (1 .. 500) {
        return 1 if -e $n->root . "/logs/$name";
        sleep 0.02;
    }

    return 0;
}

# "status src=.. in=.. out=.. total=.." of the last request to $uri
sub settled {
    my ($uri) = @_;
    my $line;

    for (1 .. 100) {
        ($line) = reverse grep { /^shape \Q$uri\E / }
                  split /\n/, $n->log('access.log');
        last if $line;
        sleep 0.02;
    }

    return '' unless $line;
    $line =~ s/^shape \S+ //;
    return $line;
}

# the tenant's row of the usage report, or "none"
sub report {
    my ($tenant) = @_;
    my (undef, undef, $b) = $n->request('GET',
                                        "/ai-guard/usage?tenant=$tenant");

    return 'none' if $b =~ /"tenants":\[\]/;
    return "unparsed: $b"
        unless $b =~ /"tenant":"\Q$tenant\E","requests":(\d+),
                      "input_tokens":(\d+),"output_tokens":(\d+),
                      "cached_tokens":\d+,"estimated_requests":(\d+)/x;
    return "requests=$1 input=$2 output=$3 estimated=$4";
}

# no worker died since the last check, and the next request is served
sub alive {
    my ($label) = @_;
    my $log = $n->log;

    unlike(substr($log, $checked), qr/exited on signal/,
           "$label: no worker died");
    $checked = length $log;

    my @r = req('POST', '/v1/json_length',
                ["Authorization: Bearer $key{follow}"], $chat);
    ok($r[0] == 200 && $r[2] eq $json, "$label: a follow-up request passes");
}

# what the mock upstream answers on a path
sub answer {
    my ($c, $method, $path) = @_;
    my ($name) = $path =~ m{/([^/?]+)$};
    $name //= '';

    if ($name eq 'hang' || $name eq 'both_hang' || $name eq 'hang_sse') {
        sleep 2.5;
        return;
    }

    if ($name eq 'abort') {
        touch("got-abort");
        sleep 3;
        return;
    }

    if ($name eq 'reset') {
        setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
        return;
    }

    return if $name eq 'close';

    my $pieces = $wire{$name} or return;
    local $SIG{PIPE} = 'IGNORE';

    for my $i (0 .. $#$pieces) {
        my ($bytes, $wait) = @{ $pieces->[$i] };

        if ($method eq 'HEAD' && $i == $#$pieces) {
            # the header of the answer, without its body
            ($bytes) = split /(?<=\r\n\r\n)/, $bytes, 2;
        }

        print $c $bytes or last;
        sleep $wait if $wait;
    }

    touch("sent-$name");
}

sub fallback {
    my ($c, $method, $path) = @_;

    if ($path =~ /both_hang/) {
        sleep 2.5;
        return;
    }

    my $pieces = $path =~ /sse/
                 ? chunked('200 OK', 'text/event-stream', $sse, 50)
                 : with_length('200 OK', 'application/json', $fb_json);

    print $c $pieces->[0][0];
}

sub touch {
    my ($name) = @_;
    open my $fh, '>', $n->root . "/logs/$name" or return;
    close $fh;
}

# a forking loopback server: each connection handled by a child that reads
# the request and calls $handler with the socket, the method and the path
sub mock_upstream {
    my ($port, $handler) = @_;

    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                  LocalPort => $port, Listen => 64,
                                  ReuseAddr => 1)
        or die "listen $port: $!";

    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid) {
        close $l;
        return $pid;
    }

    local $SIG{CHLD} = 'IGNORE';
    my $deadline = time + 300;

    while (time < $deadline) {
        my $c = $l->accept or next;
        my $kid = fork;

        if (defined $kid && $kid == 0) {
            # the port is free once the listener is gone: a handler still
            # running (a hang) must not hold the listening socket
            close $l;

            my $req = '';
            while ($req !~ /\r\n\r\n/) {
                sysread($c, $req, 4096, length $req) or last;
            }
            my ($len) = $req =~ /^Content-Length:\s*(\d+)/mi;
            my ($head) = split /\r\n\r\n/, $req, 2;
            my $need = length($head) + 4 + ($len // 0);
            while (length $req < $need) {
                sysread($c, $req, 4096, length $req) or last;
            }
            my ($method, $path) = $req =~ /^(\S+) (\S+)/;
            $c->autoflush(1);
            $handler->($c, $method // 'GET', $path // '/');
            close $c;
            POSIX::_exit(0);
        }

        close $c;
    }

    POSIX::_exit(0);
}
