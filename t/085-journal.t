# The outbox's journal (ai_guard_redis journal=): usage a node settled
# but had not yet delivered to Redis survives a kill -9 of the master and
# the workers, and is counted once after the restart.  Redis is frozen
# (kill -STOP) while requests are served, so the outbox cannot drain; the
# node is killed, Redis thawed, the node started again: the cluster's
# report is then what the mock upstream served, not more (the batch Redis
# read from the dead connection's socket after the thaw is applied once,
# by its id) and not less.  Two rounds, then a journal older than Redis's
# state (a batch applied but not acknowledged) is replayed and counts
# nothing twice.  The journal shrinks back to its head once Redis has
# everything.
#
# Plain Perl: signals to nginx and Redis between requests, and a restart
# of the same server root; Test::Nginx runs one nginx and wipes it.
#
# Needs $TEST_NGINX_REDIS_PORT (make test starts a redis-server).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use File::Copy qw(copy);
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);
use AiGuardNginx;

my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan skip_all => 'TEST_NGINX_REDIS_PORT is not set (make test sets it)'
    unless $rport;
plan tests => 27;

sub rcli { my $out = `redis-cli -p $rport @_ 2>&1`; chomp $out; $out }

my ($rpid) = rcli('INFO server') =~ /process_id:(\d+)/;
ok($rpid, "redis-server runs as pid $rpid");

# a prefix of this run's own: nothing of an earlier run is counted
my $prefix = "t085-$$:";

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 300;

my $n = AiGuardNginx->new(name => 'journal', port => $base, workers => 2);
my $root = $n->root;

mkdir "$root/journal" or die "$root/journal: $!";

$n->write_file('html/keys.json', <<'_EOF_');
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "pro",
   "sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"}
]}
_EOF_

# the mock's requests are what the upstream served
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
    ai_guard_redis  127.0.0.1:$rport timeout=100ms sync=strict fail=open
                    prefix=$prefix journal=$root/journal/usage;

    log_format  served  '\$uri';

$server
_EOC_

$n->start;

my @bearer = ('Authorization: Bearer sk-aig-test-valid-0001');

# what the mock upstream served (the requests to /v1/ log lines of their own)
sub served { scalar(() = $n->log('served.log') =~ m{^/mock/}mg) }

sub journal_bytes { (-s "$root/journal/usage.0" || 0)
                    + (-s "$root/journal/usage.1" || 0) }

sub send_n {
    my ($count, $what) = @_;
    my $ok = 0;
    for (1 .. $count) {
        my ($s) = $n->request('POST', '/v1/chat', \@bearer,
                              '{"model":"gpt-4o-mini","prompt":"hi"}');
        $ok++ if $s == 200;
    }
    is($ok, $count, "$what: $count requests served");
}

sub taken_back {
    scalar(() = $n->log =~ /redis journal "[^"]+": [1-9]\d* settled requests not yet in Redis taken back into the outbox, 0 that did not fit in it lost/g);
}

# the cluster's report (Redis's) of acme's requests
sub reported {
    my (undef, $h, $body) = $n->request('GET', '/ai-guard/usage');
    return -1 if $h->{'x-ai-guard-warning'};
    my $j = eval { decode_json($body) } or return -1;
    my ($t) = grep { $_->{tenant} eq 'acme' } @{ $j->{tenants} };
    return $t ? $t->{requests} : 0;
}

sub wait_reported {
    my ($want) = @_;
    my $got;
    for (1 .. 100) {
        $got = reported();
        return $got if $got == $want;
        sleep 0.1;
    }
    return $got;
}

sub wait_journal_head {
    my $bytes;
    for (1 .. 50) {
        $bytes = journal_bytes();
        return $bytes if $bytes == 56;
        sleep 0.1;
    }
    return $bytes;
}

# the master and its workers, all at once, as a crash takes them
sub kill_node {
    my $master = $n->{pid};
    my @workers;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // '';
        close $fh;
        push @workers, $1 if $line =~ /^(\d+) \(.*\) \S (\d+) / && $2 == $master;
    }
    ok(@workers == 2, 'two workers to kill with the master');
    kill 'KILL', $master, @workers;
    waitpid($master, 0);
    delete $n->{pid};

    # the workers' listening sockets close when they are gone
    for (1 .. 100) {
        last unless grep { kill 0, $_ } @workers;
        sleep 0.05;
    }
}

ok(-f "$root/journal/usage.0" && -f "$root/journal/usage.1",
   'the master made the journal\'s two files');
is((stat "$root/journal/usage.0")[2] & 0777, 0600,
   'readable by their owner only');

send_n(5, 'Redis up');
is(wait_reported(5), 5, 'the report has them');
is(wait_journal_head(), 56,
   'once Redis has everything the journal is its head again (56 bytes)');

my $want = 5;

for my $round (1 .. 2) {
    kill 'STOP', $rpid;
    send_n(20, "round $round, Redis frozen");
    $want += 20;
    ok(journal_bytes() > 56 * 20, "round $round: the journal holds them");

    kill_node();
    kill 'CONT', $rpid;

    is(served(), $want, "round $round: the upstream served $want");

    $n->start;
    is(taken_back(), $round,
       "round $round: the restart takes the journal back");
    is(wait_reported($want), $want,
       "round $round: the report equals what the upstream served");
    is(wait_journal_head(), 56, "round $round: the journal is drained");
}

# A batch applied but not acknowledged: the journal as it was while
# Redis was frozen, put back after Redis has applied all of it.

kill 'STOP', $rpid;
send_n(10, 'Redis frozen again');
$want += 10;
copy("$root/journal/usage.$_", "$root/journal/saved.$_") for 0, 1;
kill 'CONT', $rpid;
is(wait_reported($want), $want, 'Redis has the 10 once thawed');

kill_node();
copy("$root/journal/saved.$_", "$root/journal/usage.$_") for 0, 1;
$n->start;

is(taken_back(), 3, 'the stale journal is replayed');
is(wait_journal_head(), 56, 'its batches go to Redis again');
is(reported(), $want,
   'and count nothing twice: Redis had applied them under the same ids');

unlike($n->log, qr/\[(alert|emerg|crit)\]/, 'no alert in the error log');
