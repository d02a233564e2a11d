# Redis: two nginx instances sharing one redis-server.  sync=strict
# enforces the rpm bucket, the day quotas (rpd, tpd, budget) and the
# concurrency slots exactly across them; a frozen Redis answers by the
# failure policy (fail=open: locally, within the timeout; fail=closed:
# 503 limiter_unavailable); the module reconnects by itself after SIGCONT
# and after CLIENT KILL; the usage in Redis counts every admitted request
# once, including those served while Redis was away; a reload with
# requests waiting on Redis leaves no connection behind.
#
# Plain Perl rather than blocks: two nginx instances at once, Redis frozen
# and thawed with signals and its clients killed between requests, and a
# reload while requests wait; Test::Nginx runs one nginx, restarted
# between blocks.
#
# Needs $TEST_NGINX_REDIS_PORT (make test starts a redis-server).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);
use AiGuardNginx;

my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan skip_all => 'TEST_NGINX_REDIS_PORT is not set (make test sets it)'
    unless $rport;
plan tests => 43;

sub rcli { my $out = `redis-cli -p $rport @_ 2>&1`; chomp $out; $out }

rcli('FLUSHALL');

my ($rpid) = rcli('INFO server') =~ /process_id:(\d+)/;
ok($rpid, "redis-server runs as pid $rpid");

my %digest = (
    'sk-aig-test-valid-0001' =>
        '86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e',
    'sk-aig-test-beta-00001' =>
        '39c81276bc9edac2614e74ea48f6f4b687a3562ca7ba8b0d19806b3e69afde2c',
);

my $keys = <<"_EOF_";
{"keys": [
  {"id": "ten-1", "tenant": "ten", "tier": "ten",
   "sha256": "$digest{'sk-aig-test-valid-0001'}"},
  {"id": "big-1", "tenant": "big", "tier": "big", "stripe_customer": "cus_9",
   "sha256": "$digest{'sk-aig-test-beta-00001'}"}
]}
_EOF_

sub http_conf {
    my ($fail) = @_;
    return <<"_EOC_";
    ai_guard_zone   ai_guard 1m;
    ai_guard_tier   ten  rpm=10;
    ai_guard_tier   big  rpm=100000;
    ai_guard_keys   \$TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_redis  127.0.0.1:$rport timeout=200ms sync=strict fail=$fail
                    prefix=t080:;

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /mock/ {
            default_type application/json;
            echo '{"model":"gpt-4o-mini","usage":{"prompt_tokens":10,"completion_tokens":5}}';
        }
    }
_EOC_
}

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 180;

my $a = AiGuardNginx->new(name => 'redis-a', port => $base, workers => 2);
$a->write_file('html/keys.json', $keys);
$a->write_config(http_conf('open'));
$a->start;

my $b = AiGuardNginx->new(name => 'redis-b', port => $base + 1);
$b->write_file('html/keys.json', $keys);
$b->write_config(http_conf('closed'));
$b->start;

my $ten = ['Authorization: Bearer sk-aig-test-valid-0001'];
my $big = ['Authorization: Bearer sk-aig-test-beta-00001'];

sub connected {
    my ($want) = @_;
    my $n;
    for (1 .. 100) {
        # the clients of this test's instances, not redis-cli itself
        $n = () = rcli('CLIENT LIST') =~ /cmd=(?!client)/g;
        return $n if $n == $want;
        sleep 0.05;
    }
    return $n;
}

is(connected(3), 3, 'one connection a worker: 2 + 1');

# rpm=10 across two nodes: exactly 10 of 20 alternating requests pass

my %st;
for my $i (1 .. 20) {
    my ($s) = ($i % 2 ? $a : $b)->request('GET', '/v1/models', $ten);
    $st{$s}++;
}

is($st{200}, 10, 'rpm=10 on two nodes, 20 alternating requests: 10 pass');
is($st{429}, 10, '... and 10 are 429');

my ($s, $h, $body) = $a->request('GET', '/v1/models', $ten);
is($h->{'x-ratelimit-limit-requests'}, 10, 'x-ratelimit-limit-requests');
is($h->{'x-ratelimit-remaining-requests'}, 0,
   'x-ratelimit-remaining-requests from the cluster');

sub usage_requests {
    my ($tenant) = @_;
    my $day = strftime('%Y-%m-%d', gmtime);
    my $n = 0;
    for my $k (split /\n/, rcli("SMEMBERS t080:days:$day")) {
        next unless index($k, "t080:u:$day:" . length($tenant) . ":$tenant")
                    == 0;
        $n += rcli("HGET '$k' requests");
    }
    return $n;
}

sub settle_usage {
    my ($tenant, $want) = @_;
    my $n;
    for (1 .. 60) {
        $n = usage_requests($tenant);
        return $n if $n == $want;
        sleep 0.1;
    }
    return $n;
}

is(settle_usage('ten', 10), 10,
   'the usage in Redis counts the 10 admitted requests');

my $day = strftime('%Y-%m-%d', gmtime);
# the day, then tenant, key id, model and customer, length-prefixed
my $k = "t080:u:$day:3:ten5:ten-111:gpt-4o-mini0:";
is(rcli("HGET $k input_tokens"), 100, 'input_tokens in the usage hash');
is(rcli("HGET $k cost_pico_usd"), 0, 'cost_pico_usd (no price: 0)');
is(rcli("HGET $k tenant"), 'ten', 'the tenant field');

# Redis frozen

my $served = 0;
for (1 .. 4) {
    ($s) = $a->request('GET', '/v1/models', $big);
    $served++ if $s == 200;
}

kill 'STOP', $rpid;

my $t0 = time;
($s) = $a->request('GET', '/v1/models', $big);
my $dt = time - $t0;
is($s, 200, 'Redis frozen, fail=open: the request passes, decided locally');
ok($dt < 0.2 + 0.3, sprintf('... within the timeout and a little (%.3fs)',
                            $dt));
$served++ if $s == 200;

for (1 .. 5) {
    $t0 = time;
    ($s) = $a->request('GET', '/v1/models', $big);
    $served++ if $s == 200;
    $dt = time - $t0 if time - $t0 > $dt;
}
ok($dt < 0.5, sprintf('further requests do not wait longer (%.3fs)', $dt));

($s, $h, $body) = $b->request('GET', '/v1/models', $big);
is($s, 503, 'Redis frozen, fail=closed: 503');
like($body, qr/"code":"limiter_unavailable"/, '... limiter_unavailable');

my $warns = () = $a->log =~ /\[warn\].*redis .* unavailable/g;
is($warns, 1, 'one warning for the outage');

kill 'CONT', $rpid;

my $back;
for (1 .. 100) {
    $back = () = ($a->log . $b->log) =~ /redis \S+ is available again/g;
    last if $back >= 2;
    sleep 0.05;
}
ok($back >= 2, 'after SIGCONT both nodes reconnect by themselves');
is(connected(3), 3, '... one connection a worker again');

($s) = $b->request('GET', '/v1/models', $big);
is($s, 200, 'fail=closed node admits again');
$served++;

is(settle_usage('big', $served), $served,
   "after the outage Redis counts each of the $served admitted requests once");

# CLIENT KILL: the module reconnects

rcli('CLIENT KILL TYPE normal SKIPME yes');
is(connected(3), 3, 'after CLIENT KILL the connections come back');

($s) = $b->request('GET', '/v1/models', $big);
is($s, 200, 'and a fail=closed node admits through Redis again');
$served++;

is(settle_usage('big', $served), $served, 'still counted once');

# a reload with requests waiting on Redis

kill 'STOP', $rpid;

my @socks;
for (1 .. 6) {
    my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $a->port, Timeout => 10)
        or die "connect: $!";
    print $c "GET /v1/models HTTP/1.1\r\nHost: localhost\r\n"
             . "Authorization: Bearer sk-aig-test-beta-00001\r\n"
             . "Connection: close\r\n\r\n";
    push @socks, $c;
}

sleep 0.05;
$a->reload;
kill 'CONT', $rpid;

my $ok = 0;
for my $c (@socks) {
    local $/;
    my $resp = <$c> // '';
    $ok++ if $resp =~ m{^HTTP/1\.1 200};
    $served++ if $resp =~ m{^HTTP/1\.1 200};
}
is($ok, 6, 'the requests waiting on Redis during a reload are answered');

is(connected(3), 3, 'after the reload: no connection left behind');

is(settle_usage('big', $served), $served, 'every admitted request counted once');

# a client that leaves while Redis admits it: what Redis took for it
# (its concurrency slot) comes back through the outbox; before, the slot
# stayed taken until its key expired an hour later

my $c = AiGuardNginx->new(name => 'redis-c', port => $base + 2);
$c->write_file('html/keys.json', '{"keys": [{"id": "one-1", "tenant": "one", '
               . '"tier": "one", "sha256": "'
               . sha256_hex('sk-aig-test-redis-one-01') . '"}]}');
(my $conf_c = http_conf('closed')) =~ s/timeout=200ms/timeout=3s/;
$conf_c =~ s/ai_guard_tier   ten  rpm=10;/ai_guard_tier   one  concurrency=1;/;
$c->write_config($conf_c);
$c->start;

my $one = ['Authorization: Bearer sk-aig-test-redis-one-01'];

($s) = $c->request('GET', '/v1/models', $one);
is($s, 200, 'concurrency=1 through Redis: a request passes');

my $slots;
for (1 .. 60) {
    $slots = rcli('GET t080:l:t3:one:concurrency');
    last if $slots eq '0';
    sleep 0.05;
}
is($slots, '0', '... and its slot is back in Redis once the outbox flushed');

kill 'STOP', $rpid;

my $gone = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                 PeerPort => $c->port, Timeout => 10)
    or die "connect: $!";
print $gone "GET /v1/models HTTP/1.1\r\nHost: localhost\r\n"
            . "Authorization: Bearer sk-aig-test-redis-one-01\r\n"
            . "Connection: close\r\n\r\n";
sleep 0.3;
close $gone;
sleep 0.3;

kill 'CONT', $rpid;

for (1 .. 60) {
    $slots = rcli('GET t080:l:t3:one:concurrency');
    last if $slots eq '0';
    sleep 0.05;
}
is($slots, '0', 'a client gone while Redis admitted it: its slot comes back');

($s) = $c->request('GET', '/v1/models', $one);
is($s, 200, '... and the next request of the concurrency=1 tier passes');

$c->stop;

unlike($c->log, qr/\[(alert|crit|emerg)\]|exited on signal/,
       'no alert, no crash in ' . $c->root);

# sync=strict for the quotas and the concurrency slots, not the rpm
# bucket alone: the admission script's other branch.  Two nodes, each
# request on the other node than the one before; the mock reports more
# tokens than were reserved, so nothing given back can race the checks.

my %quota_key = map { $_ => "sk-aig-test-redis-$_-1" }
                qw(rpd tpd budget conc);

$keys = '{"keys": ['
        . join(', ', map { "{\"id\": \"$_-1\", \"tenant\": \"q$_\", "
                           . "\"tier\": \"$_\", \"sha256\": \""
                           . sha256_hex($quota_key{$_}) . '"}' }
               sort keys %quota_key)
        . "]}\n";

my $quota_conf = <<"_EOC_";
    ai_guard_zone   ai_guard 1m;
    ai_guard_tier   rpd     rpd=3;
    ai_guard_tier   tpd     tpd=1000;
    ai_guard_tier   budget  budget=0.001/day;
    ai_guard_tier   conc    concurrency=1;
    ai_guard_price  *  input=1 output=1;
    ai_guard_keys   \$TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_redis  127.0.0.1:$rport timeout=3s sync=strict fail=closed
                    prefix=t080q:;

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            add_header X-Reason \$ai_guard_reason always;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /mock/ {
            default_type application/json;
            echo_sleep \$arg_sleep;
            echo '{"model":"gpt-4o-mini","usage":{"prompt_tokens":10,"completion_tokens":\$arg_out}}';
        }
    }
_EOC_

my @q = map {
    my $n = AiGuardNginx->new(name => "redis-quota-$_", port => $base + 2 + $_);
    $n->write_file('html/keys.json', $keys);
    $n->write_config($quota_conf);
    $n->start;
    $n;
} 1, 2;

# a chat request of max_tokens, the mock answering $out output tokens
sub quota_req {
    my ($node, $kind, $max, $out, $sleep) = @_;
    my ($st, $hd) = $node->request('POST',
        '/v1/chat/completions?out=' . ($out // 0) . '&sleep=' . ($sleep // 0),
        ["Authorization: Bearer $quota_key{$kind}"],
        '{"model":"gpt-4o-mini","max_tokens":' . $max
        . ',"messages":[{"role":"user","content":"hi"}]}');
    return "$st " . ($hd->{'x-reason'} // '');
}

is(join(', ', map { quota_req($q[$_ % 2], 'rpd', 1, 1) } 0 .. 4),
   '200 , 200 , 200 , 429 rpd, 429 rpd',
   'rpd=3 on two nodes: three requests a day, then both refuse');

is(join(', ', quota_req($q[0], 'tpd', 600, 600),
              quota_req($q[1], 'tpd', 600, 600),
              quota_req($q[1], 'tpd', 300, 300),
              quota_req($q[0], 'tpd', 300, 300)),
   '200 , 429 tpd, 200 , 429 tpd',
   'tpd=1000 on two nodes: what one node took counts on the other');

# 1e-6 USD a token: 0.001 USD is 1,000 tokens, as above
is(join(', ', quota_req($q[0], 'budget', 600, 600),
              quota_req($q[1], 'budget', 600, 600),
              quota_req($q[1], 'budget', 300, 300),
              quota_req($q[0], 'budget', 300, 300)),
   '200 , 429 budget_day, 200 , 429 budget_day',
   'budget=0.001/day on two nodes: what one node spent counts on the other');

# concurrency=1: a slow request holds the slot on one node
my $slow = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                 PeerPort => $q[0]->port, Timeout => 10)
    or die "connect: $!";
my $one_body = '{"model":"gpt-4o-mini","max_tokens":1,"messages":[]}';
print $slow "POST /v1/chat/completions?out=1&sleep=1 HTTP/1.1\r\n"
            . "Host: localhost\r\nConnection: close\r\n"
            . "Authorization: Bearer $quota_key{conc}\r\n"
            . "Content-Length: " . length($one_body) . "\r\n\r\n$one_body";

my $held;
for (1 .. 50) {
    $held = rcli('GET t080q:l:t5:qconc:concurrency');
    last if $held eq '1';
    sleep 0.02;
}
is($held, '1', 'concurrency=1: a slow request holds the slot in Redis');

is(quota_req($q[1], 'conc', 1, 1), '429 concurrency',
   '... and the other node refuses the second request');

my $resp = do { local $/; <$slow> } // '';
like($resp, qr{^HTTP/1\.1 200}, '... while the first is served');
close $slow;

for (1 .. 60) {
    $held = rcli('GET t080q:l:t5:qconc:concurrency');
    last if $held eq '0';
    sleep 0.05;
}
is($held, '0', '... whose slot comes back to Redis');
is(quota_req($q[1], 'conc', 1, 1), '200 ',
   '... and then the other node admits one');

for my $n (@q) {
    $n->stop;
    unlike($n->log, qr/\[(alert|crit|emerg)\]|exited on signal/,
           'no alert, no crash in ' . $n->root);
}

$a->stop;
$b->stop;

for my $n ($a, $b) {
    unlike($n->log, qr/\[(alert|crit|emerg)\]|exited on signal/,
           'no alert, no crash in ' . $n->root);
}

