# sync=lease (docs/redis.md "Leases").  Budget alerts: a budget's
# threshold is told once across two nodes that admit from their slices,
# not before the spend less the slices out reaches it.  A node stopped
# gracefully: on
# `nginx -s quit` worker 0 gives the node's slices back to Redis before
# it exits, so the other node can admit the whole rest of a quota at
# once, where a killed node's slice stays used until its window ends
# (t/084).  A reload gives nothing back: the new workers go on with the
# slices, under the same lease.
#
# Plain Perl: two nginx instances, a reload and a stop between requests,
# Redis's own state read.
#
# Needs $TEST_NGINX_REDIS_PORT (make test starts a redis-server).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use Time::HiRes qw(sleep);
use POSIX qw(floor);
use AiGuardNginx;

my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan skip_all => 'TEST_NGINX_REDIS_PORT is not set (make test sets it)'
    unless $rport;
plan tests => 15;

sub rcli { AiGuardNginx::redis(@_) }

my $prefix = "t088-$$:";
my $limit = 80;

my $keys = AiGuardNginx::keys_json(['ten-1', 'ten', 'day', 1],
                                   ['bud-1', 'bud', 'money', 2]);

# a lease of 60 s: nothing expires while the test runs, so what goes
# back goes back because the node gave it
my $http = <<"_EOC_" . AiGuardNginx::tenant_server();
    ai_guard_zone   ai_guard 1m;
    ai_guard_tier   day  rpd=$limit;
    ai_guard_tier   money  budget=0.001/day budget_alert=50%;
    ai_guard_price  *  input=1 output=2;
    ai_guard_keys   \$TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_redis  127.0.0.1:$rport timeout=200ms sync=lease lease=60s
                    fail=closed prefix=$prefix;
_EOC_

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 530;

my $a = AiGuardNginx->started(name => 'redis-lease-qa', port => $base,
                              keys => $keys, http => $http);
my $b = AiGuardNginx->started(name => 'redis-lease-qb', port => $base + 1,
                              keys => $keys, http => $http);

my $ten = ['Authorization: Bearer sk-aig-test-valid-0001'];
my $day = floor(time() / 86400);
my $counter = "${prefix}l:t3:ten:rpd:$day";

sub one {
    my ($n) = @_;
    my ($s) = $n->request('GET', '/v1/models', $ten);
    return $s;
}

# the leases of the counter: "id granted used expires dead" each
sub leases {
    my %h = split /\n/, rcli("HGETALL $counter:L");
    return values %h;
}

sub live { grep { !(split / /)[4] } leases() }

# Budget alerts.  10 input and 5 output tokens at $1 and $2 a million:
# $0.00002 a request, so $0.001 a day is 50 requests and 50% the 25th.
# A node's slice of it is an eighth ($0.000125, about 6 requests).

my $bud = ['Authorization: Bearer sk-aig-test-valid-0002'];
my $body = '{"model":"gpt-4o-mini","max_tokens":5,'
           . '"messages":[{"role":"user","content":"hi"}]}';
my $stream = "${prefix}budget_alerts";

sub spend {
    my ($count) = @_;
    my $ok = 0;
    for my $i (1 .. $count) {
        my ($s) = ($i % 2 ? $a : $b)->request('POST', '/v1/chat', $bud, $body);
        $ok++ if $s == 200;
    }
    return $ok;
}

sub alert_lines {
    my $n = 0;
    $n += () = $_->log =~ /budget alert: tenant "bud" has spent 50% of its day budget/g
        for $a, $b;
    return $n;
}

is(spend(12), 12, '12 requests of tenant bud on two nodes, 24% of its budget');
is(rcli("XLEN $stream") . ' ' . alert_lines(), '0 0',
   'no alert: the spend and the slices out are under 50%');

is(spend(26), 26, '26 more, 76% of its budget');
my $events;
for (1 .. 50) {
    $events = rcli("XLEN $stream");
    last if $events >= 1;
    sleep 0.05;
}
is($events . ' ' . alert_lines(), '1 1',
   '50% is told once across the nodes: one event, one log line');
like(rcli("--raw XRANGE $stream - +"), qr/\nthreshold\n50\n/,
     'the event is the 50% threshold');

# a live lease of node a, once its call's reply is in
my @l;
is(one($a), 200, 'node a admits, from a slice') for 1 .. 3;

for (1 .. 50) {
    @l = live();
    last if @l == 1 && (split / /, $l[0])[2] == 3;
    sleep 0.05;
}
my ($id, $granted, $used) = split / /, $l[0] // '0 0 0';
ok($granted > 3, "node a holds a slice of $granted (Redis knows of $used used)");

# a reload: the same lease goes on in the new workers
$a->reload;
is(one($a), 200, 'after a reload node a admits again');
@l = live();
is(scalar(@l) . ' ' . (split / /, $l[0] // '0')[0], "1 $id",
   'under the same lease: a reload gives nothing back');

# a graceful stop gives the slice back
$a->stop;

# the replies may come after the master is gone (AiGuardNginx's stop
# waits 5 s for it): what Redis holds once they are in
for (1 .. 100) {
    last if !live() && rcli("GET $counter") == 4;
    sleep 0.05;
}
is(scalar(live()), 0, 'once node a stopped, its lease has ended');
is(rcli("GET $counter"), 4, 'and the counter is what it used: 4, not its slice');
like($a->log, qr/ai_guard: redis lease: the node stops, the slices of [12] scopes go back/,
     'its worker 0 said so');

# the other node can take the whole rest of the quota

my $ok = 0;
for (1 .. $limit) {
    $ok++ if one($b) == 200;
}
is($ok, $limit - 4, 'node b admits the whole rest of the quota: ' . ($limit - 4));

$b->stop;
