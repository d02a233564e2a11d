# Faults around the module: an upstream that closes mid-JSON and
# mid-stream, one that never answers (proxy_read_timeout), upstream 5xx with
# and without bodies, a client that goes away mid-stream, proxy_next_upstream
# to a second upstream (metered once), ten reloads under load (no failed
# request, counters kept) and a zone too small (evicts, serves on).  After
# each fault the tier's one concurrency slot must be free again and the
# request settled (its access log line written).
#
# Plain Perl rather than blocks: two forked raw-TCP upstreams that close
# mid-body or never answer, two workers, ten reloads while a forked client
# runs, and a second nginx; Test::Nginx has no section for a reload or a
# raw upstream, and restarts its one nginx between blocks.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Test::More tests => 44;
use Time::HiRes qw(sleep time);
use AiGuardNginx;

my %digest = (
    'sk-aig-test-valid-0001' =>
        '86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e',
    'sk-aig-test-beta-00001' =>
        '39c81276bc9edac2614e74ea48f6f4b687a3562ca7ba8b0d19806b3e69afde2c',
    'sk-aig-test-future-0001' =>
        '5ce7fee67f99f77555e6fe5192f9841a0709966866a04b289848357f584a8db6',
);

my $keys = <<"_EOF_";
{"keys": [
  {"id": "one", "tenant": "one", "tier": "one",
   "sha256": "$digest{'sk-aig-test-valid-0001'}"},
  {"id": "retry", "tenant": "retry", "tier": "one",
   "sha256": "$digest{'sk-aig-test-beta-00001'}"},
  {"id": "load", "tenant": "load", "tier": "pro",
   "sha256": "$digest{'sk-aig-test-future-0001'}"}
]}
_EOF_

my $one = ['Authorization: Bearer sk-aig-test-valid-0001'];
my $retry = ['Authorization: Bearer sk-aig-test-beta-00001'];
my $load = ['Authorization: Bearer sk-aig-test-future-0001'];

my $chat = '{"model":"gpt-4o-mini","max_tokens":50,'
           . '"messages":[{"role":"user","content":"hi"}]}';

my $n = AiGuardNginx->new(name => 'faults', workers => 2);

# Two mock upstreams of our own, on loopback: $good answers by path, $bad
# answers everything with a 502 that carries a usage object (which must
# never be metered: nginx retries before any filter sees it).

my $usage = '{"id":"c1","model":"gpt-4o-mini","choices":[],'
            . '"usage":{"prompt_tokens":11,"completion_tokens":5}}';

my $good = $n->port + 1;
my $bad = $n->port + 2;
my @servers = (mock_upstream($good, \&good), mock_upstream($bad, \&bad));

# a test that dies stops its mock upstreams too, or prove waits on them
my $parent = $$;
END { kill 'TERM', @servers if $$ == $parent && @servers; }

sub good {
    my ($c, $path) = @_;

    if ($path =~ m{/usage}) {
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 . "Content-Length: " . length($usage) . "\r\n"
                 . "Connection: close\r\n\r\n$usage";

    } elsif ($path =~ m{/cut_json}) {
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 . "Content-Length: 400\r\nConnection: close\r\n\r\n"
                 . '{"id":"c1","usage":{"prompt_tokens":1';

    } elsif ($path =~ m{/cut_sse}) {
        my $ev = qq(data: {"choices":[{"delta":{"content":"Hel"}}]}\n\n);
        print $c "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 . "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
                 . sprintf("%x\r\n%s\r\n", length $ev, $ev)
                 . "40\r\ndata: {\"usage\":{\"prompt_to";

    } elsif ($path =~ m{/hang}) {
        sleep 2.5;

    } elsif ($path =~ m{/status/(\d+)(/empty)?}) {
        my ($code, $empty) = ($1, $2);
        my $body = $empty ? ''
                   : qq({"error":{"message":"upstream says $code"}});
        print $c "HTTP/1.1 $code Oops\r\nContent-Type: application/json\r\n"
                 . "Content-Length: " . length($body) . "\r\n"
                 . "Connection: close\r\n\r\n$body";

    } elsif ($path =~ m{/slow_sse}) {
        local $SIG{PIPE} = 'IGNORE';
        print $c "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                 . "Connection: close\r\n\r\n";
        for my $i (1 .. 20) {
            print $c qq(data: {"choices":[{"delta":{"content":"$i"}}]}\n\n)
                or last;
            sleep 0.2;
        }
    }
}

sub bad {
    my ($c) = @_;
    my $body = '{"error":"down","usage":{"prompt_tokens":999}}';
    print $c "HTTP/1.1 502 Bad Gateway\r\nContent-Type: application/json\r\n"
             . "Content-Length: " . length($body) . "\r\n"
             . "Connection: close\r\n\r\n$body";
}

$n->write_file('html/keys.json', $keys);
$n->write_config(<<"_EOC_");
    ai_guard_zone  ai_guard 1m;
    ai_guard_tier  one  concurrency=1;
    ai_guard_tier  pro;
    ai_guard_keys  \$TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_price  *  input=2.50 output=10.00;

    log_format  faults  'fault \$request_uri \$status '
                        'src=\$ai_guard_usage_source '
                        'in=\$ai_guard_prompt_tokens '
                        'out=\$ai_guard_completion_tokens';

    upstream good { server 127.0.0.1:$good; }

    upstream pair {
        server 127.0.0.1:$bad;
        server 127.0.0.1:$good backup;
    }

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;
        access_log logs/access.log faults;

        location /v1/ {
            ai_guard on;
            proxy_buffering off;
            proxy_read_timeout 1s;
            proxy_pass http://good;
        }

        location /retry/ {
            ai_guard on;
            proxy_next_upstream error timeout http_502 non_idempotent;
            proxy_pass http://pair/v1/;
        }

        location = /ai-guard/usage {
            ai_guard_usage;
        }
    }
_EOC_

$n->start;

# a request, and then its log line: nginx answers before its log phase,
# where the request is settled and its concurrency slot given back, so a
# client can be faster than that; the next request waits for it
sub req {
    my @lines = split /\n/, $n->log('access.log');
    my @r = $n->request(@_);

    for (1 .. 100) {
        last if (split /\n/, $n->log('access.log')) > @lines;
        sleep 0.02;
    }

    return @r;
}

# the concurrency=1 slot is free: the next request of the tier passes
sub slot_free {
    my ($label) = @_;
    my $status;

    for (1 .. 40) {
        ($status) = req('POST', '/v1/usage', $one, $chat);
        last if $status == 200;
        sleep 0.05;
    }

    is($status, 200, "$label: the concurrency slot is free afterwards");
}

# the access log line of the last request to $uri (written at settle)
sub settled {
    my ($uri) = @_;
    my $line;

    for (1 .. 40) {
        ($line) = reverse grep { /^fault \Q$uri\E / }
                  split /\n/, $n->log('access.log');
        last if $line;
        sleep 0.05;
    }

    return $line // '';
}

# a baseline
my ($status, $h, $body) = req('POST', '/v1/usage', $one, $chat);
is($status, 200, 'baseline: a metered request passes');
like(settled('/v1/usage'), qr/ 200 src=upstream in=11 out=5$/,
     'baseline: metered from the upstream\'s usage');

# the upstream closes mid-JSON
($status, $h, $body) = req('POST', '/v1/cut_json', $one, $chat);
is($status, 200, 'upstream closes mid-JSON: the header had gone out');
like($body, qr/^\{"id":"c1"/, '... with the part of the body it sent');
like(settled('/v1/cut_json'), qr/ 200 src=estimate /,
     '... settled on the estimate');
slot_free('upstream closes mid-JSON');

# the upstream closes mid-stream
($status, $h, $body) = req('POST', '/v1/cut_sse', $one, $chat);
is($status, 200, 'upstream closes mid-stream: the header had gone out');
like($body, qr/data: \{"choices"/, '... with the events it sent');
like(settled('/v1/cut_sse'), qr/ 200 src=estimate /,
     '... settled on the estimate');
slot_free('upstream closes mid-stream');

# the upstream never answers: proxy_read_timeout 1s
my $t0 = time;
($status) = req('POST', '/v1/hang', $one, $chat);
is($status, 504, 'upstream timeout: 504');
# the upstream has the request: billed the reservation, "hi" estimated at
# 5 tokens and max_tokens 50 (see docs/metering.md)
like(settled('/v1/hang'), qr/ 504 src=estimate in=5 out=50$/,
     '... billed the full reservation');
slot_free('upstream timeout');

# 5xx with and without bodies
for my $code (500, 502, 503) {
    for my $empty ('', '/empty') {
        my $uri = "/v1/status/$code$empty";
        ($status, $h, $body) = req('POST', $uri, $one, $chat);
        is($status, $code, "upstream $code" . ($empty ? ' without a body'
                                                      : ' with a body'));
        like(settled($uri), qr/ $code src=estimate in=0 out=0$/,
             "... settled at no cost");
    }
}
slot_free('upstream 5xx');

# the client goes away mid-stream
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $n->port)
        or die "connect: $!";
    print $s "POST /v1/slow_sse HTTP/1.1\r\nHost: localhost\r\n"
             . "$one->[0]\r\nContent-Length: " . length($chat) . "\r\n"
             . "Connection: close\r\n\r\n$chat";
    my $got = '';
    sysread($s, $got, 4096);
    like($got, qr/^HTTP\/1\.1 200/, 'client abort: the stream had started');
    close $s;
}
like(settled('/v1/slow_sse'), qr/ 200 src=estimate /,
     'client abort mid-stream: settled on the estimate');
slot_free('client abort mid-stream');

# proxy_next_upstream: the first upstream's 502 (with a usage object) is
# not metered, the backup's answer is, once
($status, $h, $body) = req('POST', '/retry/usage', $retry, $chat);
is($status, 200, 'proxy_next_upstream: the second upstream answers');
is($body, $usage, '... with its body');
like(settled('/retry/usage'), qr/ 200 src=upstream in=11 out=5$/,
     '... metered once, by the upstream that answered');

{
    my ($s2) = req('POST', '/retry/usage', $retry, $chat);
    is($s2, 200, '... and the slot was given back');
}

my $report = report('retry');
like($report, qr/"tenant":"retry","requests":2,"input_tokens":22,"output_tokens":10,/,
     'the usage report counts two requests, 22 input tokens');

# ten reloads while a loop of requests runs: no failed request, counters
# kept (every admitted request is in the report)
{
    pipe(my $rd, my $wr) or die "pipe: $!";
    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        close $rd;
        my ($ok, $fail, %codes) = (0, 0);
        my $end = time + 4;

        for (1 .. 3000) {
            last if time > $end;
            my ($s) = eval { $n->request('POST', '/v1/usage', $load, $chat) };
            $s //= 0;
            if ($s == 200) { $ok++ } else { $fail++; $codes{$s}++ }
        }

        print $wr "$ok $fail " . join(',', map { "$_:$codes{$_}" }
                                           sort keys %codes) . "\n";
        close $wr;
        POSIX::_exit(0);
    }

    close $wr;
    sleep 0.3;
    $n->reload for 1 .. 10;
    my $res = <$rd> // '';
    waitpid($pid, 0);
    chomp $res;
    my ($ok, $fail, $codes) = split / /, $res;
    $codes //= '';

    ok($ok > 20, "requests ran during the reloads ($ok)");
    is($fail, 0, "ten reloads under load: no failed request ($codes)");

    # the last answer reaches the client before its worker's log phase
    # settles it: read until the report has them all, or 5 s have passed
    my $reqs;
    for (1 .. 100) {
        ($reqs) = report('load') =~ /"tenant":"load","requests":(\d+)/;
        last if defined $reqs && defined $ok && $reqs == $ok;
        sleep 0.05;
    }
    is($reqs, $ok, 'the report counts every one of them across the reloads');
}

slot_free('after the reloads');

$n->stop;

my $log = $n->log;
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert or crit in the error log');
like($log, qr/upstream prematurely closed connection/,
     'nginx saw the upstream close early');
like($log, qr/upstream timed out/, 'nginx saw the upstream time out');

# a limits part too small for its users: the entries that are fresh
# again (a bucket drained in a millisecond) make room, as limit_req's
# expire does; every request served, the concurrency slot still right

my $small = AiGuardNginx->new(name => 'faults-small');
$small->write_file('html/keys.json', $keys);
$small->write_config(<<"_EOC_");
    ai_guard_zone  small 128k;
    ai_guard_metrics_max_series 16;
    ai_guard_tier  one  concurrency=1;
    ai_guard_tier  pro  rpm=60000;
    ai_guard_keys  \$TEST_NGINX_HTML_DIR/keys.json;

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            ai_guard_limit_by \$http_x_user;
            proxy_pass http://127.0.0.1:$good;
        }
    }
_EOC_
$small->start;

my $served = 0;

for my $u (1 .. 300) {
    my ($s) = $small->request('POST', '/v1/usage',
                              [$load->[0], "X-User: user-$u"], $chat);
    $served++ if $s == 200;
}

is($served, 300, 'a limits part too small for 300 users serves all of them');

($status) = $small->request('POST', '/v1/usage', [$one->[0], 'X-User: x'],
                            $chat);
is($status, 200, '... and a concurrency=1 tier still passes');

$small->stop;

unlike($small->log, qr/\[(alert|crit|emerg)\]/,
       'nothing was refused: no alert');

kill 'TERM', @servers;
waitpid($_, 0) for @servers;
@servers = ();



sub report {
    my ($tenant) = @_;
    my ($s, $hh, $b) = req('GET', "/ai-guard/usage?tenant=$tenant");
    return $b;
}

# a forking loopback server: each connection handled by a child that reads
# the request and calls $handler with the socket and the path
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
    my $deadline = time + 120;

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
            my ($path) = $req =~ /^\S+ (\S+)/;
            $c->autoflush(1);
            $handler->($c, $path // '/');
            close $c;
            POSIX::_exit(0);
        }

        close $c;
    }

    POSIX::_exit(0);
}
