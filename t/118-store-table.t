# The key store's digest table (docs/admin.md, "Lookup"): a request's key
# is one probe of an open-addressing table in the store's zone, never a
# walk of the keys.  What the table must survive, on two workers: keys
# rotated with a grace period (two digests a key, the table's worst
# case), a reload that raises max= (the table made larger, with every
# key in it), a reload that resizes the zone (a new zone, a table of its
# own built from the copied keys), revocations that take entries out of
# the middle of a probe run; each secret found, or refused, as it must,
# and the tenants' limits, entries of the same zone, never in the table.
#
# Plain Perl: the secrets a create and a rotation return are the keys
# the next requests use.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use AiGuardNginx;
use AiGuardNodes;

my $n = AiGuardNginx->new(name => 'store-table', workers => 2);

sub config {
    my ($store) = @_;

    $n->write_config(<<"_EOC_" . AiGuardNodes::server());
    ai_guard_tier  pro;
    ai_guard_key_store  $store;
_EOC_
}

sub admin {
    my ($method, $path, $body) = @_;
    return $n->request($method, "/admin/$path",
                       ['Content-Type: application/json'], $body);
}

sub secret {
    my ($body) = @_;
    return $body =~ /"key":"(sk-aig-[^"]+)"/ ? $1 : undef;
}

# each of six requests (both workers) with a secret: their statuses
sub use_key {
    my ($key) = @_;
    my @st;

    for (1 .. 6) {
        my ($st) = $n->request('POST', '/v1/chat/completions',
            ["Authorization: Bearer $key", 'Content-Type: application/json'],
            '{"model":"m","messages":[{"role":"user","content":"hi"}]}');
        push @st, $st;
    }

    return join ',', @st;
}

my $ok = join ',', (200) x 6;
my $refused = join ',', (401) x 6;
my (%live, %dead);

sub check_all {
    my ($when) = @_;
    my @bad = grep { use_key($live{$_}) ne $ok } sort keys %live;
    is("@bad", '', "$when: every live secret (" . keys(%live)
                   . ") works on both workers");
    return unless %dead;
    @bad = grep { use_key($dead{$_}) ne $refused } sort keys %dead;
    is("@bad", '', "$when: every revoked or expired secret ("
                   . keys(%dead) . ") is refused");
}

sub make {
    my ($id, $name) = @_;
    my ($st, $h, $b) = admin('POST', 'keys', qq({"id":"$id","tenant":"t"}));
    is($st, 201, $name);
    $live{$id} = secret($b);
}

sub revoke {
    my ($id, $name) = @_;
    my ($st) = admin('DELETE', "keys/$id");
    is($st, 200, $name);
    $dead{$_} = delete $live{$_} for grep { exists $live{$_} } $id, "$id-old";
}

# max=2: a table of 4 digests, full with two keys, one rotated
config('1m max=2');
$n->start;

my ($st, $h, $b);

make("k$_", "key k$_ made") for 1 .. 2;

($st, $h, $b) = admin('POST', 'keys/k1/rotate', '{"grace_seconds":3600}');
is($st, 200, 'k1 rotated with a grace period');
$live{'k1-old'} = $live{k1};
$live{k1} = secret($b);

check_all('max=2, k1 rotated');

# ten tenants with limits of their own: entries of the zone that are no
# key's, never in the table (a table rebuilt with them would not hold
# the keys' digests)
my @tenants = map { "t$_" } 1 .. 10;
my @put = map { (admin('PUT', "tenants/$_", '{"limits":{"rpm":1000}}'))[0] }
              @tenants;
is("@put", join(' ', (200) x 10), 'ten tenants given limits');

sub tenants_kept {
    my ($when) = @_;
    my @bad = grep { (admin('GET', "tenants/$_"))[2] !~ /"rpm":1000/ }
                   @tenants;
    is("@bad", '', "$when: every tenant keeps its limits");
}

# a reload raises max=: the table is made again, larger, with every key
config('1m max=6');
$n->reload;

check_all('after the reload to max=6');
tenants_kept('after the reload to max=6');

make("k$_", "key k$_ made") for 3 .. 6;

# every key rotated with a grace period: 12 digests, the table's most
my @rotated;

for my $i (2 .. 6) {
    ($st, $h, $b) = admin('POST', "keys/k$i/rotate",
                          '{"grace_seconds":3600}');
    push @rotated, $st;
    $live{"k$i-old"} = $live{"k$i"};
    $live{"k$i"} = secret($b);
}

is("@rotated", '200 200 200 200 200',
   'six keys each with two secrets fit the larger table');

check_all('max=6, all rotated');

# revocations: entries out of the middle of probe runs
revoke('k3', 'k3 revoked');

# a rotation without grace: the old secret's entry goes at once
($st, $h, $b) = admin('POST', 'keys/k4/rotate', '{"grace_seconds":0}');
is($st, 200, 'k4 rotated without grace');
$dead{$_} = delete $live{$_} for 'k4-old';
$dead{'k4-before'} = $live{k4};
$live{k4} = secret($b);

check_all('after the revocations');

# a reload that resizes the zone: a new zone, the keys copied into it,
# and a table of its own
config('2m max=6');
$n->reload;

like($n->log, qr/zone "ai_guard_key_store" resized: \d+ entries kept, 0 did not fit/,
     'the store was resized and kept its keys');

check_all('after the zone was resized');
tenants_kept('after the zone was resized');

revoke('k5', 'k5 revoked in the new zone');
make('k7', 'k7 made in the new zone');

check_all('the resized store, changed');

unlike($n->log, qr/\[(alert|crit|emerg)\]/, 'no alert: the workers lived on');

$n->stop;

done_testing();
