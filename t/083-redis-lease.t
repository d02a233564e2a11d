# Redis, sync=lease: two nginx nodes take slices of a quota from one
# redis-server and admit from them.  The quota is exact across the nodes
# (every admission comes out of a slice Redis granted, so the nodes admit
# the quota and not one request more), the slices are taken in far fewer
# script calls than requests, an idle slice goes back to Redis (the
# counter is then exactly what was used), and a token quota's slice gets
# back what a request's estimate reserved beyond its real usage.
#
# Plain Perl rather than blocks: two nginx instances at once, and Redis's
# own counters read between requests; Test::Nginx runs one nginx.
#
# Needs $TEST_NGINX_REDIS_PORT (make test starts a redis-server).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use Time::HiRes qw(sleep time);
use POSIX qw(floor);
use AiGuardNginx;

my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan skip_all => 'TEST_NGINX_REDIS_PORT is not set (make test sets it)'
    unless $rport;
plan tests => 17;

sub rcli { AiGuardNginx::redis(@_) }

# a prefix of this run's own: no counter of an earlier run is in the way
my $prefix = "t083-$$:";

my $keys = AiGuardNginx::keys_json(['ten-1', 'ten', 'day', 1],
                                   ['tok-1', 'tok', 'tok', 2],
                                   ['bur-1', 'bur', 'burst', 3]);

my $limit = 400;

# the upstream answers 10 prompt and 5 completion tokens
my $http = <<"_EOC_" . AiGuardNginx::tenant_server();
    ai_guard_zone   ai_guard 1m;
    ai_guard_tier   day  rpd=$limit;
    ai_guard_tier   tok  tpd=100000;
    ai_guard_tier   burst  rpd=40;
    ai_guard_keys   \$TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_redis  127.0.0.1:$rport timeout=500ms sync=lease lease=2s
                    prefix=$prefix;
_EOC_

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 250;

my $a = AiGuardNginx->started(name => 'redis-lease-a', port => $base,
                              workers => 2, keys => $keys, http => $http);
my $b = AiGuardNginx->started(name => 'redis-lease-b', port => $base + 1,
                              keys => $keys, http => $http);

my $ten = ['Authorization: Bearer sk-aig-test-valid-0001'];

my $day = floor(time() / 86400);
my $counter = "${prefix}l:t3:ten:rpd:$day";

# lease calls: the script reads a limit's leases once (HGETALL), and
# nothing else in the module calls HGETALL
sub lease_calls {
    my ($n) = rcli('INFO commandstats') =~ /^cmdstat_hgetall:calls=(\d+)/m;
    return $n || 0;
}

# wait for the connections
for (1 .. 100) {
    my $n = () = rcli('CLIENT LIST') =~ /cmd=(?!client)/g;
    last if $n >= 3;
    sleep 0.05;
}

# exhaustion: 600 requests, alternating, through a quota of 400

my $calls0 = lease_calls();
my (%st, %by);
for my $i (1 .. 600) {
    my $n = $i % 2 ? $a : $b;
    my ($s, $h) = $n->request('GET', '/v1/models', $ten);
    $st{$s}++;
    $by{$i % 2 ? 'a' : 'b'}++ if $s == 200;
}
my $calls = lease_calls() - $calls0;

is($st{200}, $limit, "exactly the quota admitted across two nodes "
                     . "($limit of 600)");
is($st{429}, 600 - $limit, 'the rest refused with 429');
ok($by{a} && $by{b}, "both nodes admitted ($by{a} on a, $by{b} on b)");
ok($calls > 0 && $calls * 10 <= $limit,
   "$calls lease calls for $limit admissions (a slice a call, not a "
   . "request)");

my ($s, $h, $body) = $b->request('GET', '/v1/models', $ten);
is($s, 429, 'a refusal once the cluster has no more');
like($body, qr/"code":"insufficient_quota"/, 'in the quota\'s words');

# the counter is the quota: every slice used, nothing outstanding
is(rcli("GET $counter"), $limit, "Redis's counter is $limit");

# an idle slice goes back: one request takes a slice, the sweep returns
# what the request did not use once the slice is idle half its lifetime

my $tok = ['Authorization: Bearer sk-aig-test-valid-0002',
           'Content-Type: application/json'];
my $req = '{"model":"gpt-4o-mini","max_tokens":100,'
          . '"messages":[{"role":"user","content":"hi"}]}';

($s) = $a->request('POST', '/v1/chat/completions', $tok, $req);
is($s, 200, 'a token-quota request admitted');

my $tcounter = "${prefix}l:t3:tok:tpd:$day";
my $taken = rcli("GET $tcounter");
ok($taken > 15, "its slice is taken from the token quota ($taken)");

my $back;
for (1 .. 60) {
    $back = rcli("GET $tcounter");
    last if $back == 15;
    sleep 0.1;
}
is($back, 15, 'the unused slice and the estimate beyond the real usage '
              . 'went back: the counter is the 15 tokens used');

# two more on node b, each a slice: the counter ends at the usage again
for (1 .. 2) {
    ($s) = $b->request('POST', '/v1/chat/completions', $tok, $req);
}
for (1 .. 60) {
    $back = rcli("GET $tcounter");
    last if $back == 45;
    sleep 0.1;
}
is($back, 45, 'node b\'s slice went back too: 45 tokens used, 45 counted');

# bursts: 30 requests at once on each node (two workers on a), every
# one of them short of a slice at first, so calls cross: never more than
# the quota, during the bursts nor after them, and all of it once the
# slices that lost a race have expired (both nodes polled)

my $bur = ['Authorization: Bearer sk-aig-test-valid-0003'];
my $burst = 0;

for my $n ($a, $b) {
    for my $r ($n->parallel(map { ['GET', '/v1/models', $bur] } 1 .. 30)) {
        $burst++ if $r->[0] == 200;
    }
}

ok($burst <= 40, "bursts of 30 on each node: $burst admitted, at most the "
                 . 'quota of 40');

# until the quota is reached or 15 s have passed: a count of tries ran
# out first on a loaded machine, where each node refuses from memory
# for half a lifetime after a short grant
my $total = $burst;
my $until = time + 15;
for (my $i = 1; $total < 40 && time < $until; $i++) {
    ($s) = ($i % 2 ? $a : $b)->request('GET', '/v1/models', $bur);
    $total++ if $s == 200;
    sleep 0.05 if $s != 200;
}
is($total, 40, 'then exactly the quota, no unit stranded by the crossed '
              . 'calls');
($s) = $a->request('GET', '/v1/models', $bur);
is($s, 429, 'and a refusal at the end');

$a->stop;
$b->stop;

for my $n ($a, $b) {
    unlike($n->log, qr/\[(alert|crit|emerg|error)\]|exited on signal/,
           'no error, no crash in ' . $n->root);
}

ok(rcli("HLEN $counter:L") >= 1, 'the leases are recorded in Redis');

rcli("--scan --pattern '$prefix*' | xargs -r redis-cli -p $rport DEL "
     . '>/dev/null');
