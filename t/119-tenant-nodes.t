# A tenant's limits across nodes (docs/admin.md, "Across nodes"): two
# nginx nodes with one Redis.  A tenant's rpm set on node a refuses on
# node b within a second; removed on a, gone on b; the tenant's field in
# Redis is its own (a key with the tenant's name as its id keeps its
# line); Redis losing the store's keys is noticed and the nodes push the
# tenants' limits and removals back, and a change made then reaches b; a
# stale line put into Redis by hand does not bring a removed tenant's
# limits back on either node; one tenant's limits set on both nodes at
# once end the same on both.
#
# Plain Perl rather than blocks: two nginx instances at once, and Redis's
# keys read and written between requests.
#
# Needs $TEST_NGINX_REDIS_PORT (make test starts a redis-server).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use Time::HiRes qw(sleep time);
use AiGuardNginx;
use AiGuardNodes;

my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan skip_all => 'TEST_NGINX_REDIS_PORT is not set (make test sets it)'
    unless $rport;
plan tests => 21;

sub rcli { AiGuardNginx::redis(@_) }

# a prefix of this run's own: no key of an earlier run is in the way
my $prefix = "t119-$$:";

my ($a, $b) = AiGuardNodes::pair('tenant-nodes', 621, $prefix, 'pro');

sub create { AiGuardNodes::create($a, $_[0], $_[1], 'pro') }
sub status { AiGuardNodes::status(@_) }
sub until_status { AiGuardNodes::until_status(@_) }

# the tenant's limits as node n shows them
sub limits {
    my ($n, $tenant) = @_;
    my (undef, undef, $body) = $n->request('GET', "/admin/tenants/$tenant",
                                           []);
    my ($l) = $body =~ /"limits":(\{[^}]*\})/;
    return $l // "none in: $body";
}

# polls node n until the tenant's limits read "want", within "limit" s
sub until_limits {
    my ($n, $tenant, $want, $limit) = @_;
    my $t0 = time;
    my $l;
    while (1) {
        $l = limits($n, $tenant);
        return $l if $l eq $want || time - $t0 > $limit;
        sleep 0.02;
    }
}

# both nodes are connected to Redis and b has read the (empty) store
AiGuardNodes::connected(3);

# a key whose id is its tenant's name: the tenant's field is not its own

my $k1 = create('acme', 'acme');
ok(defined until_status($b, $k1, 200, 1), 'a key of acme works on node b');

# the tenant's rpm set on a: b refuses within a second

my ($s, undef, $body) = $a->request('PUT', '/admin/tenants/acme', [],
                                    '{"limits":{"rpm":1}}');
is($s, 200, 'acme\'s rpm set on node a');
my $t = until_status($b, $k1, 429, 1);
ok(defined $t, 'node b refuses acme\'s key over the tenant\'s rpm within '
               . '1 s (' . (defined $t ? sprintf('%.3f s', $t) : 'not at all')
               . ')');
is(limits($b, 'acme'), '{"rpm":1}', 'and shows acme\'s limits');

like(rcli("HGET ${prefix}keys tenant:acme"),
     qr/^\{"seq":\d+,"tenant":"acme","limits":\{"rpm":1\}\}$/,
     'Redis holds the tenant\'s line in a field of its own');
like(rcli("HGET ${prefix}keys acme"), qr/"id":"acme"/,
     'and the key of that name keeps its line');

# removed on a: gone on b (its key works again there)

($s) = $a->request('DELETE', '/admin/tenants/acme', []);
is($s, 200, 'acme\'s limits removed on node a');
is(until_limits($b, 'acme', '{}', 1), '{}',
   'acme has no limits on node b within 1 s');
ok(defined until_status($b, $k1, 200, 1), 'and its key works on b again');
like(rcli("HGET ${prefix}keys tenant:acme"), qr/"deleted":true\}$/,
     'the removal stays in Redis as its line');

# Redis loses the store's keys: the nodes push the tenants' limits and
# removals back with the keys, and a change made then reaches b

($s) = $a->request('PUT', '/admin/tenants/beta', [],
                   '{"limits":{"tpm":5000}}');
is(until_limits($b, 'beta', '{"tpm":5000}', 1), '{"tpm":5000}',
   'beta\'s limits set on a reach b');

rcli("DEL ${prefix}keys ${prefix}keys:version ${prefix}keys:changes "
     . "${prefix}keys:epoch");

($s) = $a->request('PUT', '/admin/tenants/gamma', [],
                   '{"limits":{"rpd":7}}');
is($s, 200, 'gamma\'s limits set on a after Redis lost the keys');
is(until_limits($b, 'gamma', '{"rpd":7}', 5), '{"rpd":7}',
   'and they reach b');

my %field;
for (1 .. 100) {
    %field = map { $_ => rcli("HGET ${prefix}keys $_") }
             qw(acme tenant:acme tenant:beta);
    last if $field{'tenant:acme'} && $field{'tenant:beta'};
    sleep 0.05;
}
like($field{'tenant:beta'}, qr/"limits":\{"tpm":5000\}/,
     'beta\'s limits were pushed back to Redis');
like($field{'tenant:acme'}, qr/"deleted":true\}$/,
     'acme\'s removal was pushed back to Redis');

# a stale line put into Redis by hand (acme's limits, older than their
# removal) does not bring them back on either node

my $v = rcli("INCR ${prefix}keys:version");
rcli("HSET ${prefix}keys tenant:acme "
     . q('{"seq":1,"tenant":"acme","limits":{"rpm":1}}'));
rcli("ZADD ${prefix}keys:changes $v tenant:acme");

# a change after it: once b has that, it has read the stale line too
($s) = $a->request('PUT', '/admin/tenants/delta', [],
                   '{"limits":{"rpm":9}}');
is(until_limits($b, 'delta', '{"rpm":9}', 5), '{"rpm":9}',
   'a change after the stale line reached b');
is(limits($b, 'acme') . ' ' . limits($a, 'acme'), '{} {}',
   'the stale line did not bring acme\'s limits back on b nor on a');
is(scalar(grep { status($b, $k1) == 200 } 1 .. 3), 3,
   'acme\'s key is not held to the stale rpm on b');

# one tenant's limits set on both nodes at once: Redis is paused so that
# neither node sees the other's change before making its own (both get
# the same number); Redis keeps the first, and both nodes end with it

rcli('CLIENT PAUSE 600 ALL');
my ($sa) = $a->request('PUT', '/admin/tenants/eps', [],
                       '{"limits":{"rpm":11}}');
my ($sb) = $b->request('PUT', '/admin/tenants/eps', [],
                       '{"limits":{"rpm":22}}');
ok($sa == 200 && $sb == 200, 'eps\'s limits set on a and on b at once');

my ($la, $lb);
for (1 .. 100) {
    ($la, $lb) = (limits($a, 'eps'), limits($b, 'eps'));
    last if $la eq $lb;
    sleep 0.05;
}
ok($la eq $lb && ($la eq '{"rpm":11}' || $la eq '{"rpm":22}'),
   "both nodes end with one of the two changes (a: $la; b: $lb)");

$a->stop;
$b->stop;

my $bad = 0;
for my $n ($a, $b) {
    $bad++ if $n->log =~ /\[(alert|crit|emerg|error)\]|exited on signal/;
}
is($bad, 0, 'no error, no crash on either node');

AiGuardNodes::cleanup($prefix);
