# The key store across nodes (docs/admin.md, "Across nodes"): two nginx
# nodes with one Redis.  A key made on node a works on node b within a
# second, a revocation on a is refused on b within a second; Redis losing
# the store's keys (deleted under the prefix, as a FLUSHALL or a restart
# without persistence would) is noticed and both nodes push what they
# have again, and a change made then reaches b; node b stopped while a
# makes and revokes keys (300 more than a read carries) has them all
# once started again, and its older lines do not undo a's in Redis; a
# stale line put into Redis by hand does not bring a revoked key back;
# the same key changed on both nodes at once ends the same on both; a
# revocation Redis lost with a's connection is pushed again; b restarted
# with no Redis serves what it last knew; a key's metadata and own limits
# made or changed on a are the same on b; Redis never holds a secret.
#
# Plain Perl rather than blocks: two nginx instances at once, one stopped
# and started again, and Redis's keys read and written between requests.
#
# Needs $TEST_NGINX_REDIS_PORT (make test starts a redis-server).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use Time::HiRes qw(sleep time);
use Digest::SHA;
use AiGuardNginx;
use AiGuardNodes;

my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan skip_all => 'TEST_NGINX_REDIS_PORT is not set (make test sets it)'
    unless $rport;
plan tests => 41;

sub rcli { AiGuardNginx::redis(@_) }

# a prefix of this run's own: no key of an earlier run is in the way
my $prefix = "t117-$$:";

sub http { AiGuardNodes::http($_[0], $prefix, 'pro', 'free') }

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 617;
my ($a, $b) = AiGuardNodes::pair('admin-nodes', 617, $prefix, 'pro', 'free');

sub create {
    my ($id, $tier) = @_;
    return AiGuardNodes::create($a, $id, 'acme', $tier // 'pro');
}

sub status { AiGuardNodes::status(@_) }
sub until_status { AiGuardNodes::until_status(@_) }

# both nodes are connected to Redis and b has read the (empty) store
AiGuardNodes::connected(3);

# made on a, in force on b within a second

my $k1 = create('k1');
my $t = until_status($b, $k1, 200, 1);
ok(defined $t, 'a key made on node a works on node b within 1 s ('
               . (defined $t ? sprintf('%.3f s', $t) : 'not at all') . ')');
is(status($a, $k1), 200, 'and on node a');

my $k2 = create('k2');
ok(defined until_status($b, $k2, 200, 1), 'a second key too');

# revoked on a, refused on b within a second

my ($s) = $a->request('DELETE', '/admin/keys/k1', []);
is($s, 200, 'k1 revoked on node a');
$t = until_status($b, $k1, 401, 1);
ok(defined $t, 'the revocation is in force on node b within 1 s ('
               . (defined $t ? sprintf('%.3f s', $t) : 'not at all') . ')');

# an update on a: b follows (the tier is gone from a key of b's)

($s) = $a->request('PATCH', '/admin/keys/k2', [], '{"disabled":true}');
is($s, 200, 'k2 disabled on node a');
ok(defined until_status($b, $k2, 401, 1), 'k2 is disabled on node b too');
($s) = $a->request('PATCH', '/admin/keys/k2', [], '{"disabled":false}');
ok(defined until_status($b, $k2, 200, 1), 'and enabled again');

# when a key was last used is each node's own: b used k2 (just above),
# a change of k2 from a keeps b's time

($s) = $a->request('PATCH', '/admin/keys/k2', [],
                   '{"stripe_customer":"cus_117"}');
my $shown = '';
for (1 .. 100) {
    (undef, undef, $shown) = $b->request('GET', '/admin/keys/k2', []);
    last if $shown =~ /cus_117/;
    sleep 0.02;
}
like($shown, qr/"last_used":"\d{4}-/,
     'a change from a keeps when b last used the key');

# a key's metadata and own limits travel with its line: made on a, the
# same on b; changed on a (a label replaced, a limit removed and another
# set), b follows

sub labels {
    my ($n, $id) = @_;
    my (undef, undef, $body) = $n->request('GET', "/admin/keys/$id", []);
    my ($meta) = $body =~ /"metadata":(\{[^}]*\})/;
    my ($lim) = $body =~ /"limits":(\{[^}]*\})/;
    return ($meta // 'none') . ' ' . ($lim // 'none');
}

sub until_labels {
    my ($n, $id, $want) = @_;
    my $got;
    for (1 .. 100) {
        $got = labels($n, $id);
        last if $got eq $want;
        sleep 0.02;
    }
    return $got;
}

($s) = $a->request('POST', '/admin/keys', [],
                   '{"id":"k6","tenant":"acme","tier":"pro",'
                   . '"metadata":{"team":"search","cc":"42"},'
                   . '"limits":{"rpm":1000,"budget_month":"20.00"}}');
is($s, 201, 'k6 made on a with metadata and limits of its own');
my $want = '{"team":"search","cc":"42"} '
           . '{"rpm":1000,"budget_month":"20.000000"}';
is(labels($a, 'k6'), $want, 'a shows them');
is(until_labels($b, 'k6', $want), $want,
   'b shows the same metadata and limits');

($s) = $a->request('PATCH', '/admin/keys/k6', [],
                   '{"metadata":{"team":"ads"},'
                   . '"limits":{"rpm":null,"tpd":5000}}');
is($s, 200, 'k6\'s metadata and limits changed on a');
$want = '{"team":"ads"} {"tpd":5000,"budget_month":"20.000000"}';
is(labels($a, 'k6'), $want, 'a shows the change');
is(until_labels($b, 'k6', $want), $want, 'b shows the same change');

# Redis holds lines, never a secret: digests only

my $lines = rcli("HGETALL ${prefix}keys");
like($lines, qr/"sha256":"[0-9a-f]{64}"/, 'Redis holds the keys\' digests');
ok($lines !~ /sk-aig-/ && $lines !~ /\Q$k2\E/, 'and no secret');
like($lines, qr/\{"seq":\d+,"id":"k1","deleted":true\}/,
     'a revocation stays in Redis as its line');

# Redis loses the store's keys: the nodes notice and push what they
# have; a change made then reaches b

rcli("DEL ${prefix}keys ${prefix}keys:version ${prefix}keys:changes "
     . "${prefix}keys:epoch");

my $k3 = create('k3');
ok(defined until_status($b, $k3, 200, 5),
   'after Redis lost the keys, a key made on a works on b');

my $hlen = 0;
for (1 .. 100) {
    $hlen = rcli("HLEN ${prefix}keys");
    last if $hlen >= 4;
    sleep 0.05;
}
is($hlen, 4, 'the nodes pushed their keys back to Redis (k1\'s '
             . 'revocation, k2, k3, k6)');
is(status($b, $k1), 401, 'k1 is still revoked on b');
is(status($b, $k2), 200, 'k2 still works on b');
like(rcli("HGET ${prefix}keys k1"), qr/"deleted":true/,
     'and k1 is revoked in Redis again');

# node b stopped: a makes, revokes and updates keys; b started again
# has them all (its own files had k2 and k3 working)

$b->stop;

my $k4 = create('k4');

# more changes than one read carries (256 lines): b reads them in
# batches, back to back, and misses none
my @many = map { create("m$_") } 1 .. 300;
($s) = $a->request('DELETE', '/admin/keys/k3', []);
is($s, 200, 'k3 revoked while b is down');
($s) = $a->request('PATCH', '/admin/keys/k2', [], '{"disabled":true}');
is($s, 200, 'k2 disabled while b is down');

$b->start;

ok(defined until_status($b, $k4, 200, 5),
   'node b started again: the key made while it was down works');
ok(defined until_status($b, $k3, 401, 5),
   'the key revoked while it was down is refused');
ok(defined until_status($b, $k2, 401, 5),
   'the key disabled while it was down is refused');
is(scalar(grep { status($b, $_) == 200 } @many[0, 149, 255, 256, 299]),
   5, 'and the 300 keys made meanwhile, read in two batches, work on b');

# b pushed its keys when it started (k3 working, from its files): Redis
# kept the later line, the revocation
like(rcli("HGET ${prefix}keys k3"), qr/"deleted":true/,
     'b\'s older line of k3 did not replace its revocation in Redis');

# a stale line put into Redis by hand (k3 as it was before its
# revocation) does not bring it back on either node: the later change
# of a key wins, and the revocation's mark outlives the key

my $sha = Digest::SHA::sha256_hex($k3);
my $stale = qq({"seq":1,"id":"k3","tenant":"acme","tier":"pro",)
            . qq("created":1,"sha256":"$sha"}\n);
my $v = rcli("INCR ${prefix}keys:version");
rcli("HSET ${prefix}keys k3 '$stale'");
rcli("ZADD ${prefix}keys:changes $v k3");

# a change after it: once b has that, it has read the stale line too
my $k5 = create('k5');
ok(defined until_status($b, $k5, 200, 5), 'a change after the stale line '
                                          . 'reached b');
is(status($b, $k3), 401, 'the stale line did not bring k3 back on b');
is(status($a, $k3), 401, 'nor on a');
like(rcli("HGET ${prefix}keys k3"), qr/^\{"seq":1,/,
   'while Redis holds the stale line');

# the same key changed on both nodes at once: Redis is paused so that
# neither node sees the other's change before making its own (both get
# the same number); Redis keeps the first, and both nodes end with it

sub shown {
    my ($n) = @_;
    my (undef, undef, $body) = $n->request('GET', '/admin/keys/k5', []);
    my ($tier) = $body =~ /"tier":"?(\w+)/;
    my ($dis) = $body =~ /"disabled":(\w+)/;
    return "tier $tier, disabled $dis";
}

rcli('CLIENT PAUSE 600 ALL');
my ($sa) = $a->request('PATCH', '/admin/keys/k5', [], '{"tier":"free"}');
my ($sb) = $b->request('PATCH', '/admin/keys/k5', [], '{"disabled":true}');
ok($sa == 200 && $sb == 200, 'k5 changed on a and on b at once');

my ($ka, $kb);
for (1 .. 100) {
    ($ka, $kb) = (shown($a), shown($b));
    last if $ka eq $kb && $ka ne 'tier pro, disabled false';
    sleep 0.05;
}
ok($ka eq $kb && ($ka eq 'tier free, disabled false'
                  || $ka eq 'tier pro, disabled true'),
   "both nodes end with one of the two changes (a: $ka; b: $kb)");

# a revocation Redis never got: Redis takes no write for a while (the
# script waits in it), and the nodes' connections are cut, a's with its
# revocation of k4 in them; once a is connected again it pushes the
# revocation, and b refuses k4

rcli('CLIENT PAUSE 1500 WRITE');
($s) = $a->request('DELETE', '/admin/keys/k4', []);
is($s, 200, 'k4 revoked on a while Redis takes no write');
rcli('CLIENT KILL TYPE normal');
ok(defined until_status($b, $k4, 401, 10),
   'the revocation Redis lost with a\'s connection is pushed again: '
   . 'refused on b');

# b restarted with no Redis to reach (its address now a closed port):
# it serves what it last knew, the other node's changes included (they
# went to its journal as it took them)

$b->stop;
my $down = http($b->root . '/state');
my $closed = $base + 2;
$down =~ s/127\.0\.0\.1:$rport /127.0.0.1:$closed /;
$b->write_config($down);
$b->start;
# which of the two changes of k5 Redis kept is the order it took the
# paused clients in: k5 works unless b's disabling won
is(status($b, $k5), $ka =~ /disabled false/ ? 200 : 401,
   "b started without Redis: k5, made on a, is as both nodes left it "
   . "($ka)");
is(status($b, $k4), 401, 'k4, revoked on a, is refused');

$a->stop;
$b->stop;

my $bad = 0;
for my $n ($a, $b) {
    $bad++ if $n->log =~ /\[(alert|crit|emerg|error)\]|exited on signal/;
}
is($bad, 0, 'no error, no crash on either node');

AiGuardNodes::cleanup($prefix);
