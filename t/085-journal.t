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
# everything.  Last, requests the upstream has (a mock that answers part
# of a response and holds the rest) when the node is killed: journaled
# as begun before they went upstream, they are counted after the
# restart on their estimate, as estimated requests.
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
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);
use AiGuardNginx;

my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan skip_all => 'TEST_NGINX_REDIS_PORT is not set (make test sets it)'
    unless $rport;
plan tests => 37;

sub rcli { my $out = `redis-cli -p $rport @_ 2>&1`; chomp $out; $out }

my ($rpid) = rcli('INFO server') =~ /process_id:(\d+)/;
ok($rpid, "redis-server runs as pid $rpid");

# a prefix of this run's own: nothing of an earlier run is counted
my $prefix = "t085-$$:";

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 300;

my $n = AiGuardNginx->crash_node(name => 'journal', port => $base,
                                 workers => 2);
my $root = $n->root;

# the mock's requests are what the upstream served; the holding one
# (port + 1) logs what it holds in held.log
my $server = AiGuardNginx::held_server($base + 1);

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

my $sent = 0;

# $count requests, answered and settled: a kill after the answer but
# before the log phase would leave one begun, counted on its estimate
sub send_n {
    my ($count, $what) = @_;
    $sent += $count;
    is($n->send_logged($count, '/v1/chat', \@bearer,
                       '{"model":"gpt-4o-mini","prompt":"hi"}', $sent),
       $count, "$what: $count requests served");
}

sub taken_back {
    scalar(() = $n->log =~ /redis journal "[^"]+": [1-9]\d* settled requests not yet in Redis taken back into the outbox, 0 that did not fit in it lost/g);
}

# the cluster's report (Redis's) of acme's requests, or another field
sub reported {
    my ($field) = @_;
    my (undef, $h, $body) = $n->request('GET', '/ai-guard/usage');
    return -1 if $h->{'x-ai-guard-warning'};
    my $j = eval { decode_json($body) } or return -1;
    my ($t) = grep { $_->{tenant} eq 'acme' } @{ $j->{tenants} };
    return $t ? $t->{$field // 'requests'} : 0;
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
    my @workers = $n->kill9;
    ok(@workers == 2, 'two workers to kill with the master');
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
    is(reported('estimated_requests'), 0,
       "round $round: on their real usage, none on an estimate");
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

# Requests the upstream has, the node killed before it answers them

my ($clients, $held) = $n->send_held(3, $bearer[0], "$root/held.log");
is($held, 3, 'the upstream has 3 requests it does not finish');

# a batch goes and the journal is rewritten while they are in flight
send_n(1, 'with 3 in flight');
$want += 1;
is(wait_reported($want), $want, 'Redis has it');

kill_node();
close $_ for @$clients;
$want += 3;
$n->start;

like($n->log, qr/redis journal "[^"]+": 3 requests admitted but never settled are counted on their estimate, 0 that did not fit in the outbox lost/,
     'the restart counts the 3 begun and never settled');
is(wait_reported($want), $want,
   'the report equals every request the upstream had');

is(reported('estimated_requests'), 3, 'those 3 as estimated requests');
is(wait_journal_head(), 56, 'and the journal is drained');

unlike($n->log, qr/\[(alert|emerg|crit)\]/, 'no alert in the error log');
