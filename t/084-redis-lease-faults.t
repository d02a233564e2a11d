# Redis, sync=lease, when things fail (docs/redis.md "Leases"):
#
# - a node killed (kill -9, master and worker) with a slice it did not
#   return: the other node admits exactly the quota less that slice, and
#   still none of it once the slice expired a lifetime (lease=2s here)
#   after Redis granted it: a quota ends under, never over;
# - Redis frozen (kill -STOP) under fail=closed: the node admits exactly
#   what its slices hold, then answers 503; Redis back: once the slices
#   go back, Redis's counter is exactly what the node admitted (the call
#   that timed out, whose grant Redis made while the node had given up on
#   it, counts nothing);
# - Redis restarted without persistence (FLUSHALL and CLIENT KILL: every
#   counter and lease gone) with slices outstanding: the node goes on from
#   its slice, and reports all the lease's use once: the counter is
#   exactly the node's admissions since the lease began.
#
# Plain Perl: two nginx instances, signals, Redis's own state read.
#
# Needs $TEST_NGINX_REDIS_PORT (make test starts a redis-server).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use Time::HiRes qw(sleep);
use POSIX qw(floor);
use IO::Socket::INET;
use AiGuardNginx;

my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan skip_all => 'TEST_NGINX_REDIS_PORT is not set (make test sets it)'
    unless $rport;
plan tests => 22;

sub rcli { AiGuardNginx::redis(@_) }

my $prefix = "t084-$$:";

my $keys = AiGuardNginx::keys_json(['ten-1', 'ten', 'day', 1],
                                   ['two-1', 'two', 'day', 2],
                                   ['three-1', 'three', 'day', 3],
                                   ['four-1', 'four', 'day', 4],
                                   ['five-1', 'five', 'day', 5]);

my $limit = 400;

my $http = <<"_EOC_" . AiGuardNginx::tenant_server();
    ai_guard_zone   ai_guard 1m;
    ai_guard_tier   day  rpd=$limit;
    ai_guard_keys   \$TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_redis  127.0.0.1:$rport timeout=200ms sync=lease lease=2s
                    fail=closed prefix=$prefix;
_EOC_

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 252;

my $a = AiGuardNginx->started(name => 'redis-lease-fa', port => $base,
                              keys => $keys, http => $http);
my $b = AiGuardNginx->started(name => 'redis-lease-fb', port => $base + 1,
                              keys => $keys, http => $http);

# each part a tenant of its own: its own counter, its own slices
my ($ten, $counter);
my $day = floor(time() / 86400);

sub tenant {
    my ($name, $n) = @_;
    $ten = ["Authorization: Bearer sk-aig-test-valid-000$n"];
    $counter = "${prefix}l:t" . length($name) . ":$name:rpd:$day";
}

sub one {
    my ($n) = @_;
    my ($s) = $n->request('GET', '/v1/models', $ten);
    return $s;
}

# the live leases of the counter: "id granted used expires dead"
sub lease_of {
    my %h = split /\n/, rcli("HGETALL $counter:L");
    return grep { !(split / /)[4] } values %h;
}

# a live lease, once its call's reply is in
sub lease_now {
    my @l;
    for (1 .. 50) {
        @l = lease_of();
        last if @l == 1;
        sleep 0.05;
    }
    sleep 0.2;
    return split / /, (lease_of())[0] // '0 0 0';
}

for (1 .. 100) {
    my $n = () = rcli('CLIENT LIST') =~ /cmd=(?!client)/g;
    last if $n >= 2;
    sleep 0.05;
}

# 1. a dead node's slice expires, and stays used: a quota ends exact

tenant('ten', 1);

is(one($a), 200, 'node a admits, from a slice');

my ($aid, $granted) = lease_now();
ok($granted > 1, "node a holds a slice of $granted");

# the workers first found, then all at once: an orphan would hold the port
my @workers = `pgrep -P $a->{pid}`;
chomp @workers;
kill 'KILL', $a->{pid}, @workers;
waitpid($a->{pid}, 0);
delete $a->{pid};

# b takes all the rest of the quota, and no more
my $more = 0;
for (1 .. $limit + 5) {
    $more++ if one($b) == 200;
}
is($more, $limit - $granted,
   "node b admitted the quota less a's slice ($limit - $granted)");

# a's slice expires a lifetime after it was granted: what a used of it
# after its last call is unknown, so all of it stays used; b, which asks
# again every half lifetime, gets none of it
my ($after, $dead) = (0);
for (1 .. 100) {
    $after++ if one($b) == 200;
    my %h = split /\n/, rcli("HGETALL $counter:L");
    ($dead) = grep { (split / /)[0] == $aid && (split / /)[4] == 2 }
              values %h;
    last if $dead;
    sleep 0.05;
}
ok($dead, "a's lease expired, kept whole (dead 2): " . ($dead // ''));
$after++ if one($b) == 200;
is($after, 0, "node b admits none of a's expired slice");
is(rcli("GET $counter"), $limit, 'the counter is the quota, a\'s slice used');

# 2. Redis frozen: the slices, then fail=closed; back: no double count

tenant('two', 2);

my $ok = 0;
$ok++ if one($b) == 200;

# the node's slice as Redis granted it, before Redis stops
my (undef, $g) = lease_now();

my ($rpid) = rcli('INFO server') =~ /^process_id:(\d+)/m;
kill 'STOP', $rpid;

my ($held, $status) = (0, 0);
for (1 .. $g + 5) {
    $status = one($b);
    last if $status != 200;
    $held++;
}

kill 'CONT', $rpid;

is($held, $g - 1, "with Redis frozen, node b admitted what its slice held "
                  . '(' . ($g - 1) . ')');
is($status, 503, 'then fail=closed: 503');

$ok += $held;

my $count;
for (1 .. 100) {
    $count = rcli("GET $counter");
    last if defined $count && $count eq $ok && !lease_of();
    sleep 0.1;
}
is($count, $ok, "Redis back, the slices returned: the counter is the $ok "
                . 'admitted, no more, no less');

# 3. Redis restarted without persistence, a slice outstanding

tenant('three', 3);

my $n3 = 0;
for (1 .. 3) {
    $n3++ if one($b) == 200;
}
is($n3, 3, 'three admitted from a new slice');

rcli('FLUSHALL');
rcli('CLIENT KILL TYPE normal');

for (1 .. 3) {
    $n3++ if one($b) == 200;
}
is($n3, 6, 'the node goes on from its slice');

for (1 .. 100) {
    $count = rcli("GET $counter");
    last if defined $count && $count eq $n3 && !lease_of();
    sleep 0.1;
}
is($count, $n3, "the lease Redis forgot is counted once: $n3");

# the node takes new slices from the restarted Redis
is(one($b), 200, 'a new slice after the restart');

# 4. clients that leave while their request waits for a slice (Redis
# frozen): the calls end without them, and the node serves on

tenant('four', 4);

my $outages = () = $b->log =~ /redis .* unavailable/g;

kill 'STOP', $rpid;

my @gone = map {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $b->port) or die "connect: $!";
    print $s "GET /v1/models HTTP/1.1\r\nHost: localhost\r\n"
             . "$ten->[0]\r\n\r\n";
    $s;
} 1 .. 3;

sleep 0.05;
close $_ for @gone;

# the calls time out without their requests: a new outage is logged
my $now;
for (1 .. 100) {
    $now = () = $b->log =~ /redis .* unavailable/g;
    last if $now > $outages;
    sleep 0.05;
}

kill 'CONT', $rpid;

ok($now > $outages, 'the calls of the requests gone timed out');

my $back;
for (1 .. 100) {
    $back = one($b);
    last if $back == 200;
    sleep 0.05;
}
is($back, 200, 'Redis back: the node serves the tenant from a new slice');

# 5. a quota's lease of a live node that expired (a grant it never heard
# of: a call it gave up on, or calls that crossed) goes back at its next
# call, not kept as a dead node's

tenant('five', 5);

is(one($b), 200, 'node b admits, from a slice');
lease_now();

my ($field) = grep { !/^\d+ / } split /\n/, rcli("HGETALL $counter:L");
my ($node) = $field =~ /^(\d+):/;
my ($rs, $rus) = split /\n/, rcli('TIME');
my $past = $rs * 1000 + int($rus / 1000) - 1;
rcli("HSET $counter:L $node:999999 '999999 30 0 $past 0'");
rcli("INCRBY $counter 30");

my $orphan;
for (1 .. 100) {
    $orphan = rcli("HGET $counter:L $node:999999");
    last if (split / /, $orphan)[4] == 1 && !lease_of();
    sleep 0.05;
}
like($orphan, qr/ 1$/, "the live node's expired lease was given back");
is(rcli("GET $counter"), 1, 'the counter is the one request b admitted');

$b->stop;

unlike($b->log, qr/\[(alert|crit|emerg)\]|exited on signal/,
       'no alert, no crash in ' . $b->root);
like($b->log, qr/redis .* unavailable/, 'the outage was logged');
ok(!grep({ /exited on signal/ } $a->log), 'node a was killed, not crashed');
unlike($b->log, qr/lease script failed/, 'no script error');

rcli("--scan --pattern '$prefix*' | xargs -r redis-cli -p $rport DEL "
     . '>/dev/null');
