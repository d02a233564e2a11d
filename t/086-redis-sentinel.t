# Redis Sentinel (ai_guard_redis <master name> sentinels=...): three
# sentinels, a master and a replica on loopback ports of this test's own.
# The node finds the master through the sentinels; the master is killed
# (kill -9) while requests keep coming: they are admitted per fail=open
# (200, decided locally while no master answers), the sentinels promote
# the replica, the node follows it without a reload, and the cluster's
# report (read from the new master) equals what the mock upstream served:
# the outbox batches the old master never applied went to the new one,
# once.
#
# Plain Perl: five Redis processes of the test's own, one killed with a
# signal mid-way; Test::Nginx runs one nginx.
#
# Runs without make test's Redis: the sentinels are `redis-server
# --sentinel` (Debian's redis-sentinel package is that binary, a link).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use File::Path qw(make_path);
use JSON::PP;
use POSIX qw(WNOHANG);
use Test::More;
use Time::HiRes qw(sleep time);
use AiGuardNginx;

plan skip_all => 'no redis-server' unless `redis-server --version 2>&1` =~ /v=/;
plan tests => 17;

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 400;
my ($mport, $rport) = ($base + 1, $base + 2);
my @sports = ($base + 3, $base + 4, $base + 5);
my $name = 't086';
my $prefix = "t086-$$:";

my $n = AiGuardNginx->new(name => 'sentinel', port => $base);
my $root = $n->root;
my $dir = "$root/redis";
make_path($dir);

my %pid;

# the test's Redis processes go with it, whatever way it ends (waitpid
# sets $?, which an END block's caller makes the test's exit status)
END {
    local $?;
    kill 'TERM', values %pid;
    waitpid($_, 0) for values %pid;
}

# a redis-server of the test's own, in the foreground of a child
sub redis {
    my ($what, @args) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$dir/$what.log";
        open STDERR, '>&', \*STDOUT;
        exec 'redis-server', @args;
        exit 127;
    }
    $pid{$what} = $pid;
}

sub cli {
    my ($port, @cmd) = @_;
    my $out = `redis-cli -p $port @cmd 2>&1`;
    chomp $out;
    return $out;
}

sub wait_for {
    my ($what, $cond, $tenths) = @_;
    for (1 .. $tenths || 200) {
        return 1 if $cond->();
        sleep 0.1;
    }
    diag("timed out waiting for $what");
    return 0;
}

my @plain = ('--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
             '--dir', $dir);

redis('master', '--port', $mport, @plain);
redis('replica', '--port', $rport, @plain,
      '--replicaof', '127.0.0.1', $mport);

for my $i (0 .. 2) {
    my $conf = "$dir/sentinel-$i.conf";
    open my $fh, '>', $conf or die "$conf: $!";
    print $fh <<"_EOS_";
port $sports[$i]
bind 127.0.0.1
dir $dir
sentinel monitor $name 127.0.0.1 $mport 2
sentinel down-after-milliseconds $name 300
sentinel failover-timeout $name 3000
_EOS_
    close $fh;
    redis("sentinel-$i", $conf, '--sentinel');
}

ok(wait_for('the replica in sync', sub {
       cli($rport, 'INFO replication') =~ /master_link_status:up/ }),
   'the replica follows the master');
ok(wait_for('the sentinels to know each other and the replica', sub {
       my $ok = 1;
       for my $p (@sports) {
           my $m = cli($p, "SENTINEL master $name");
           $ok &&= $m =~ /num-other-sentinels\n2\b/
                   && $m =~ /num-slaves\n1\b/;
       }
       $ok }),
   'three sentinels monitor the master, each knows the others and the '
   . 'replica');

$n->write_file('html/keys.json', <<'_EOF_');
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "pro",
   "sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"}
]}
_EOF_

my $sentinels = join ',', map { "127.0.0.1:$_" } @sports;

my $server = AiGuardNginx::tenant_server(<<'_EOX_');
        access_log logs/served.log served;

        location = /ai-guard/usage {
            ai_guard_usage;
        }
_EOX_

$n->write_config(<<"_EOC_");
    ai_guard_zone   ai_guard 1m;
    ai_guard_tier   pro  rpm=100000;
    ai_guard_keys   \$TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_redis  $name sentinels=$sentinels replicas=1 timeout=100ms
                    sync=strict fail=open prefix=$prefix;

    log_format  served  '\$uri';

$server
_EOC_

$n->start;

my @bearer = ('Authorization: Bearer sk-aig-test-valid-0001');

# what the mock upstream served
sub served { scalar(() = $n->log('served.log') =~ m{^/mock/}mg) }

# the cluster's report of acme's requests; -1 while Redis does not answer
sub reported {
    my (undef, $h, $body) = $n->request('GET', '/ai-guard/usage');
    return -1 if $h->{'x-ai-guard-warning'};
    my $j = eval { decode_json($body) } or return -1;
    my ($t) = grep { $_->{tenant} eq 'acme' } @{ $j->{tenants} };
    return $t ? $t->{requests} : 0;
}

my ($sent, $ok) = (0, 0);

sub one {
    my ($s) = $n->request('POST', '/v1/chat', \@bearer,
                          '{"model":"gpt-4o-mini","prompt":"hi"}');
    $sent++;
    $ok++ if $s == 200;
}

ok(wait_for('the node to find the master', sub {
       $n->log =~ /master "$name" is at 127\.0\.0\.1:$mport/ }),
   'the sentinels name the master to the node');

one() for 1 .. 10;
ok(wait_for('the report', sub { reported() == 10 }),
   'requests before the failover reach the master');

# the master dies under load: requests go on until the node is on the
# new master

kill 'KILL', $pid{master};
waitpid($pid{master}, 0);

my $t0 = time;
my $followed = 0;

while (time - $t0 < 30) {
    one();
    sleep 0.02;
    if ($n->log =~ /master "$name" is at 127\.0\.0\.1:$rport/) {
        $followed = 1;
        last;
    }
}

ok($followed, 'the node follows the replica the sentinels promoted');
note(sprintf 'followed after %.1f s', time - $t0);
one() for 1 .. 10;
is($ok, $sent, "all $sent requests were served (fail=open) across the "
               . 'failover');
like(cli($rport, 'ROLE'), qr/^master/, 'the replica is the master now');
ok($sent > 20, "requests kept coming during the failover ($sent)");

my $want = served();
is($want, $sent, 'the upstream served each of them');
ok(wait_for('the report after the failover', sub { reported() == $want }),
   "the report from the new master counts all $want");
is(reported(), $want, '... and not one twice');

# replicas=1: the new master has no replica yet, so its batches stay in
# the outbox (applied, and sent again under their ids) until one has them

sub pending {
    my (undef, undef, $m) = $n->request('GET', '/metrics');
    return $m =~ /^ai_guard_redis_outbox_pending (\d+)/m ? $1 : -1;
}

ok(pending() > 0, 'batches no replica has yet stay in the outbox');

# the old master comes back; the sentinels make it the new one's replica
redis('old-master', '--port', $mport, @plain);

# the sentinels see it as a master that should be a replica at their
# next INFO of it, every 10 s
ok(wait_for('the outbox to drain', sub { pending() == 0 }, 600),
   'once the old master replicates the new one, the outbox drains');
is(reported(), $want, 'and the report still counts each request once');

like($n->log, qr/redis t086 unavailable/, 'the outage was logged');
like($n->log, qr/redis t086 is available again/, '... and its end');
unlike($n->log, qr/\[(alert|emerg|crit)\]/, 'no alert');

$n->stop;
