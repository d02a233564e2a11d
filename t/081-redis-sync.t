# Redis, sync=<interval>: two nginx nodes sharing one redis-server decide
# locally and converge every interval.  Once both nodes' counts have been
# pushed, each node's x-ratelimit-remaining-requests counts the other
# node's requests too; and the requests themselves make no Redis round
# trip: Redis's own count of script calls grows with the intervals, not
# with the requests.
#
# Plain Perl rather than blocks: two nginx instances at once, polled until
# they converge, and Redis's own counters read between requests;
# Test::Nginx runs one nginx.
#
# Needs $TEST_NGINX_REDIS_PORT (make test starts a redis-server).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use Time::HiRes qw(sleep time);
use AiGuardNginx;

my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan skip_all => 'TEST_NGINX_REDIS_PORT is not set (make test sets it)'
    unless $rport;
plan tests => 43;

sub rcli { my $out = `redis-cli -p $rport @_ 2>&1`; chomp $out; $out }

# a prefix of this run's own: no counter of an earlier run is in the way
my $prefix = "t081-$$:";

my $keys = <<'_EOF_';
{"keys": [
  {"id": "ten-1", "tenant": "ten", "tier": "day",
   "sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"}
]}
_EOF_

# a calendar quota: no refill, so the numbers are exact
my $limit = 1000;

my $http = <<"_EOC_";
    ai_guard_zone   ai_guard 1m;
    ai_guard_tier   day  rpd=$limit;
    ai_guard_keys   \$TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_redis  127.0.0.1:$rport timeout=200ms sync=100ms
                    prefix=$prefix;

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

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 185;

my $a = AiGuardNginx->new(name => 'redis-sync-a', port => $base,
                          workers => 2);
$a->write_file('html/keys.json', $keys);
$a->write_config($http);
$a->start;

my $b = AiGuardNginx->new(name => 'redis-sync-b', port => $base + 1);
$b->write_file('html/keys.json', $keys);
$b->write_config($http);
$b->start;

my $ten = ['Authorization: Bearer sk-aig-test-valid-0001'];

my $sent = 0;

sub one {
    my ($n) = @_;
    my ($s, $h) = $n->request('GET', '/v1/models', $ten);
    $sent++ if $s == 200;
    return ($s, $h->{'x-ratelimit-remaining-requests'});
}

sub scripts {
    my ($n) = rcli('INFO commandstats') =~ /^cmdstat_evalsha:calls=(\d+)/m;
    return $n || 0;
}

# wait for the connections: a node decides locally until it has one
for (1 .. 100) {
    my $n = () = rcli('CLIENT LIST') =~ /cmd=(?!client)/g;
    last if $n >= 3;
    sleep 0.05;
}

# traffic on both nodes, more on a

my %rem;
for my $i (1 .. 30) {
    my $n = $i % 3 ? $a : $b;
    my ($s, $r) = one($n);
    is($s, 200, "request $i on node " . ($n == $a ? 'a' : 'b'));
}

is($sent, 30, '30 requests admitted');

# converged: a request on one node counts every request of both nodes
# (including the last probe of the other node); bounded by 50 intervals

for my $pair ([$b, 'b'], [$a, 'a']) {
    my ($n, $name) = @$pair;
    my ($r, $want);
    for (1 .. 50) {
        sleep 0.1;
        (undef, $r) = one($n);
        $want = $limit - $sent;
        last if $r == $want;
    }
    is($r, $want, "node $name converged: remaining $want of $limit counts "
                  . "both nodes' $sent requests");
}

# and stays converged: one request on each node, a few intervals apart

sleep 0.5;
my (undef, $ra) = one($a);
is($ra, $limit - $sent, 'node a counts node b after a few intervals');
sleep 0.5;
my (undef, $rb) = one($b);
is($rb, $limit - $sent, 'node b counts node a after a few intervals');

# no round trip on the request path: script calls in a quiet second, then
# during 200 requests

my $t0 = time;
my $s0 = scripts();
sleep 1;
my $idle = scripts() - $s0;
my $idle_dt = time - $t0;

$t0 = time;
$s0 = scripts();
my $ok = 0;
for (1 .. 200) {
    my ($s) = one($_ % 2 ? $a : $b);
    $ok++ if $s == 200;
}
my $busy = scripts() - $s0;
my $busy_dt = time - $t0;

is($ok, 200, '200 requests admitted');

# each node: one sync and at most one outbox batch an interval (100 ms)
my $bound = int(2 * 2 * ($busy_dt / 0.1 + 2));

ok($busy <= $bound,
   sprintf('200 requests in %.2fs: %d script calls, at most %d (2 nodes x '
           . 'sync and outbox x intervals)', $busy_dt, $busy, $bound));
ok($busy < 100, "far fewer script calls than requests ($busy)");
ok($idle > 0, sprintf('the intervals call scripts without requests too '
                      . '(%d in %.2fs)', $idle, $idle_dt));

# the requests converge as well

for my $pair ([$a, 'a'], [$b, 'b']) {
    my ($n, $name) = @$pair;
    my ($r, $want);
    for (1 .. 50) {
        sleep 0.1;
        (undef, $r) = one($n);
        $want = $limit - $sent;
        last if $r == $want;
    }
    is($r, $want, "after the batch, node $name converged ($want left)");
}

$a->stop;
$b->stop;

for my $n ($a, $b) {
    unlike($n->log, qr/\[(alert|crit|emerg)\]|exited on signal/,
           'no alert, no crash in ' . $n->root);
}

rcli("--scan --pattern '$prefix*' | xargs -r redis-cli -p $rport DEL "
     . '>/dev/null');

