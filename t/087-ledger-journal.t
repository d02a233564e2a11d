# The local ledger's journal (ai_guard_journal, no Redis): the usage
# report of a node survives a kill -9 of its master and workers.  Each
# round serves requests, kills the node, starts it again: the report is
# then exactly what the mock upstream served (its access log), counted
# once, however many restarts replay the same journal.  A reload
# replays nothing (the zone is adopted).  A burst of requests past the
# snapshot threshold (1 MB of tail) makes worker 0 rewrite the journal
# to a snapshot of the rows: the files stay small, and a restart still
# finds every request.  A torn last frame is read up to, with a warning.
# Requests the upstream holds when the node is killed count on their
# estimate, as estimated requests.  A journal that cannot be opened is
# a clear error of nginx -t.
#
# Plain Perl: signals to nginx between requests, and a restart of the
# same server root; Test::Nginx runs one nginx and wipes it.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep);
use AiGuardNginx;

plan tests => 31;

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 520;

my $n = AiGuardNginx->crash_node(name => 'ledger-journal', port => $base,
                                 workers => 2);
my $root = $n->root;

# the mock's requests are what the upstream served; the holding one
# (port + 1) logs what it holds in held.log
my $server = AiGuardNginx::held_server($base + 1);

sub config {
    my ($journal) = @_;
    $n->write_config(<<"_EOC_");
    ai_guard_zone     ai_guard 1m;
    ai_guard_tier     pro  rpm=1000000;
    ai_guard_keys     \$TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_journal  $journal;

    log_format  served  '\$uri';
    keepalive_requests  10000;

$server
_EOC_
}

config("$root/journal/usage fsync=batch");

# not writable: a directory where the journal's file would be
mkdir "$root/journal/bad.0" or die;
config("$root/journal/bad");
my ($rc, $out) = $n->test_config;
isnt($rc, 0, 'a journal that cannot be opened: nginx -t fails');
like($out, qr/ai_guard_journal: cannot open journal "\Q$root\E\/journal\/bad\.0": its directory must exist and be writable by the master process \(21: Is a directory\)/,
     'and says which file, and why');

config("$root/journal/usage fsync=sometimes");
($rc, $out) = $n->test_config;
like($out, qr/ai_guard_journal: invalid fsync "sometimes", it must be "off", "batch" or "always"/,
     'a fsync policy that is not one');

config("$root/journal/usage fsync=batch");
$n->start;

my @bearer = ('Authorization: Bearer sk-aig-test-valid-0001');

# what the mock upstream served (the guarded requests log lines of their own)
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

# many requests on one connection, pipelined: a burst without a
# connection each
sub burst {
    my ($count) = @_;
    my $body = '{"model":"gpt-4o-mini","prompt":"hi"}';
    my $req = "POST /v1/chat HTTP/1.1\r\nHost: localhost\r\n$bearer[0]\r\n"
              . "Content-Length: " . length($body) . "\r\n\r\n$body";
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $base)
        or die "connect: $!";
    my $writer = fork // die "fork: $!";
    if ($writer == 0) {
        print $s $req x ($count - 1);
        print $s $req =~ s/\r\n\r\n/\r\nConnection: close\r\n\r\n/r;
        close $s;
        POSIX::_exit(0);
    }
    local $/;
    my $all = <$s> // '';
    waitpid($writer, 0);
    $sent += $count;
    $n->wait_logged($sent);
    return scalar(() = $all =~ m{^HTTP/1\.1 200 }mg);
}

# the node's own report of acme's requests, or another field
sub reported {
    my ($field) = @_;
    my (undef, undef, $body) = $n->request('GET', '/ai-guard/usage');
    my $j = eval { decode_json($body) } or return -1;
    my ($t) = grep { $_->{tenant} eq 'acme' } @{ $j->{tenants} };
    return $t ? $t->{$field // 'requests'} : 0;
}

# the master and its workers, all at once, as a crash takes them
sub kill_node { $n->kill9 }

sub taken_back {
    scalar(() = $n->log =~ /journal "[^"]+": \d+ rows, \d+ settled requests and \d+ requests admitted but never settled \(counted on their estimate\) taken back into the ledger, 0 that found no room in it lost/g);
}

ok(-f "$root/journal/usage.0" && -f "$root/journal/usage.1",
   'the master made the journal\'s two files');
is((stat "$root/journal/usage.0")[2] & 0777, 0600,
   'readable by their owner only');

my $want = 0;

for my $round (1 .. 2) {
    send_n(15, "round $round");
    $want += 15;
    kill_node();
    is(served(), $want, "round $round: the upstream served $want");
    $n->start;

    # an answer of a worker first: the master's replay, and its log line,
    # came before the workers (the port listens before either)
    my $reported = reported();
    is(taken_back(), $round, "round $round: the restart replays the journal");
    is($reported, $want,
       "round $round: the report equals what the upstream served");
    is(reported('input_tokens'), 10 * $want, "round $round: and its tokens");
}

is(reported('estimated_requests'), 0, 'none on an estimate');

# a reload adopts the zone: nothing replayed, nothing counted twice
$n->reload;
is(taken_back(), 2, 'a reload replays nothing');
is(reported(), $want, 'and the report is unchanged');

# Requests the upstream holds (the node is killed before it answers
# them), and meanwhile a burst past 1 MB of tail: worker 0 makes a
# snapshot with the 3 in flight in it, and the files shrink.

my $snap = journal_bytes();
ok($snap < 4096, "after the restart the journal is a snapshot ($snap bytes)");

my ($clients, $held) = $n->send_held(3, $bearer[0], "$root/held.log");
is($held, 3, 'the upstream has 3 requests it does not finish');

my $ok = burst(4000);
is($ok, 4000, 'a burst of 4000 requests on one connection');
$want += 4000;
is(served(), $want, "the upstream served $want");

my $bytes;
for (1 .. 40) {
    $bytes = journal_bytes();
    last if $bytes < 512 * 1024;
    sleep 0.05;
}
ok($bytes < 512 * 1024,
   "the journal was rewritten to a snapshot on the way ($bytes bytes, "
   . "where the burst's frames alone are over 1 MB)");

kill_node();
close $_ for @$clients;
$want += 3;

# a write torn by the crash: half a frame at the end of the active file
my ($active) = sort { (-s $b) <=> (-s $a) } map { "$root/journal/usage.$_" } 0, 1;
open my $fh, '>>', $active or die;
print $fh "J\x{52}\0\0\x{ff}\x{ff}";
close $fh;

$n->start;
like($n->log_when(qr/never settled/), qr/journal "[^"]+": \d+ rows, \d+ settled requests and 3 requests admitted but never settled \(counted on their estimate\) taken back into the ledger, 0 that found no room in it lost/,
     'the restart replays the snapshot and its tail, and the 3 begun');
like($n->log_when(qr/past the last whole frame/), qr/journal "[^"]+\.[01]": 6 bytes past the last whole frame are ignored \(a write torn by a crash\)/,
     'and says it read up to the torn frame');
is(reported(), $want, "the report is the $want the upstreams had");
is(reported('estimated_requests'), 3,
   'the 3 held on their estimate, as estimated requests');
is(reported('output_tokens'), 5 * ($want - 3) + 3 * 7,
   'the served ones on their real tokens, the held ones on max_tokens');

# once more, with nothing new: the same journal replays to the same rows
kill_node();
$n->start;
is(reported(), $want, 'a restart with nothing new counts nothing twice');
is(reported('estimated_requests'), 3, 'the estimated ones neither');

unlike($n->log, qr/\[(alert|emerg|crit)\]/, 'no alert in the error log');

$n->stop;
