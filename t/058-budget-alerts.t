# Budget alerts: each threshold of budget_alert= is alerted exactly once
# a budget window.  One nginx with two workers and a burst of parallel
# requests across the thresholds: one warn line and one count of
# ai_guard_budget_alerts_total a threshold, none for the requests after;
# a key's budget (ai_guard_limit_by key) alerts with its key.  Two nodes
# sharing Redis (sync=strict), a burst on both at once: one line and one
# count a threshold across both nodes, and one event a threshold in the
# Redis stream, with its fields.
#
# Plain Perl rather than blocks: parallel bursts across two workers, two
# nginx instances at once, and Redis read between them.

use strict;
use warnings;

use FindBin;
use IO::Socket::INET;
use lib "$FindBin::Bin/helper";
use POSIX ();
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep);
use AiGuardNginx;
use AiGuardMetrics;

plan tests => 27;

my %digest = (
    'sk-aig-test-valid-0001' =>
        '86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e',
    'sk-aig-test-beta-00001' =>
        '39c81276bc9edac2614e74ea48f6f4b687a3562ca7ba8b0d19806b3e69afde2c',
);

my $keys = <<"_EOF_";
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "pro",
   "sha256": "$digest{'sk-aig-test-valid-0001'}"},
  {"id": "beta-1", "tenant": "beta", "tier": "pro",
   "sha256": "$digest{'sk-aig-test-beta-00001'}"}
]}
_EOF_

# 10 input and 5 output tokens at $1 and $2 a million: $0.00002 a
# request, so a budget of $0.001 a day is 50 requests: 25% is the 13th,
# 50% the 25th, 80% the 40th
sub http_conf {
    my ($redis) = @_;
    return <<"_EOC_";
    ai_guard_zone   ai_guard 1m;
    ai_guard_tier   pro  budget=0.001/day budget_alert=80%,25%,50%;
    ai_guard_price  *  input=1 output=2;
    ai_guard_keys   \$TEST_NGINX_HTML_DIR/keys.json;
    $redis
@{[ AiGuardNginx::tenant_server() ]}
_EOC_
}

my $body = '{"model":"gpt-4o-mini","max_tokens":5,'
           . '"messages":[{"role":"user","content":"hi"}]}';
my $acme = ['Authorization: Bearer sk-aig-test-valid-0001'];
my $beta = ['Authorization: Bearer sk-aig-test-beta-00001'];

sub burst {
    my ($n, $count, $path, $key) = @_;
    my @r = $n->parallel(map { ['POST', $path, $key, $body] } 1 .. $count);
    return scalar grep { $_->[0] == 200 } @r;
}

# the alert lines of the logs, counted: { 'tenant "acme" 25' => 1 }
sub alerts {
    my %a;
    for my $n (@_) {
        my $log = $n->log;
        $a{"$1 $2"}++
            while $log =~ /\[warn\].*budget alert: (.*?) has spent (\d+)%/g;
    }
    return %a;
}

# the log phase runs after the answer: wait for the lines it writes
sub wait_alerts {
    my ($want, @nodes) = @_;
    my %a;
    for (1 .. 100) {
        %a = alerts(@nodes);
        last if keys %a >= $want;
        sleep 0.05;
    }
    sleep 0.2;
    return alerts(@nodes);
}

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 231;
my $day = strftime('%Y-%m-%d', gmtime);

# one node, two workers

my $n = AiGuardNginx->new(name => 'budget', port => $base, workers => 2);
$n->write_file('html/keys.json', $keys);
$n->write_config(http_conf(''));
$n->start;

is burst($n, 40, '/v1/chat/completions', $acme), 40,
   'a burst of 40 on two workers: all pass';

my %a = wait_alerts(3, $n);
is_deeply \%a, { 'tenant "acme" 25' => 1, 'tenant "acme" 50' => 1,
                 'tenant "acme" 80' => 1 },
    'one warn line a threshold crossed';

my $said = 'tenant "acme" has spent 80% of its day budget: '
           . "0\\.000800 of 0\\.001000 USD in $day";
like $n->log, qr/$said/, 'the line says what was spent of what, and when';

is burst($n, 5, '/v1/chat/completions', $acme), 5, 'five more pass';
%a = wait_alerts(4, $n);
is scalar(keys %a), 3, '... and alert nothing again';

is burst($n, 13, '/k/chat/completions', $beta), 13,
   "a key's budget: 13 requests, 26%";
wait_alerts(4, $n);
like $n->log, qr/budget alert: key "beta-1" of tenant "beta" has spent 25%/,
    "... alerted with its key";

my ($s, $h, $text) = $n->request('GET', '/metrics');
my %m = samples($text);
my $c = 'ai_guard_budget_alerts_total';
is join(' ', map { $m{"$c\{tenant=\"acme\",key=\"\",period=\"day\","
                   . "threshold=\"$_\"}"} // 'none' } 25, 50, 80),
   '1 1 1', 'the counter: once a threshold';
is $m{"$c\{tenant=\"beta\",key=\"beta-1\",period=\"day\",threshold=\"25\"}"},
   1, "the counter: the key's";
is $m{'ai_guard_budget_used_ratio{tenant="acme",key="",period="day"}'}, 0.9,
   'the ratio: 45 requests of 50';
is $m{'ai_guard_budget_spent_usd{tenant="beta",key="beta-1",period="day"}'},
   '0.000260', "the key's spent USD";

$n->stop;

# two nodes, one Redis

SKIP: {
    my $rport = $ENV{TEST_NGINX_REDIS_PORT};

    skip 'TEST_NGINX_REDIS_PORT is not set (make test sets it)', 16
        unless $rport;

    sub rcli { my $out = `redis-cli -p $rport @_ 2>&1`; chomp $out; $out }

    rcli('FLUSHALL');

    my $redis = "ai_guard_redis 127.0.0.1:$rport timeout=500ms sync=strict "
                . "prefix=t058:;";

    my $na = AiGuardNginx->new(name => 'budget-a', port => $base + 1,
                              workers => 2);
    $na->write_file('html/keys.json', $keys);
    $na->write_config(http_conf($redis));
    $na->start;

    my $nb = AiGuardNginx->new(name => 'budget-b', port => $base + 2);
    $nb->write_file('html/keys.json', $keys);
    $nb->write_config(http_conf($redis));
    $nb->start;

    # both nodes at once: the child bursts on b while a bursts here

    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        my $ok = burst($nb, 15, '/v1/chat/completions', $acme);

        # no destructors: the parent's nginx objects stop their nginx
        POSIX::_exit($ok == 15 ? 0 : 1);
    }

    my $ok = burst($na, 15, '/v1/chat/completions', $acme);
    waitpid($pid, 0);

    is $ok + ($? == 0 ? 15 : 0), 30, 'a burst of 15 on each node: all pass';

    # The outbox takes each request's correction to Redis within 100 ms:
    # Redis's level lags the spend by the corrections on their way, so
    # 14 more, 44 in all, $0.00088, take it past 80% with room to spare

    sleep 0.3;
    is burst($na, 7, '/v1/chat/completions', $acme)
       + burst($nb, 7, '/v1/chat/completions', $acme), 14, '14 more pass';
    sleep 0.3;
    is burst($na, 1, '/v1/chat/completions', $acme), 1,
       'one more after the corrections';

    my %all = wait_alerts(3, $na, $nb);

    is_deeply \%all, { 'tenant "acme" 25' => 1, 'tenant "acme" 50' => 1,
                       'tenant "acme" 80' => 1 },
        'one warn line a threshold, across both nodes';

    my %sum;
    for my $node ($na, $nb) {
        my ($s, $h, $text) = $node->request('GET', '/metrics');
        my %m = samples($text);
        for my $t (25, 50, 80) {
            $sum{$t} += $m{"$c\{tenant=\"acme\",key=\"\",period=\"day\","
                           . "threshold=\"$t\"}"} // 0;
        }
    }
    is join(' ', @sum{25, 50, 80}), '1 1 1',
       'the counters of both nodes: once a threshold';

    is rcli('XLEN t058:budget_alerts'), 3, 'three events in the stream';

    # --raw XRANGE: an id, then a field and a value a line (the empty
    # key an empty line)
    my (%ev, $cur);
    my @lines = split /\n/, rcli('--raw XRANGE t058:budget_alerts - +'), -1;
    while (@lines) {
        my $l = shift @lines;
        if ($l =~ /^\d+-\d+$/) {
            $cur = {};
            next;
        }
        $cur->{$l} = shift @lines;
        $ev{$cur->{threshold}} = $cur if defined $cur->{threshold};
    }
    is join(' ', sort { $a <=> $b } keys %ev), '25 50 80',
       'an event a threshold';
    is join(' ', map { $ev{25}{$_} } qw(tenant key scope period window
                                        budget_usd)),
       "acme  tenant day $day 0.001000", "the event's fields";
    like $ev{80}{spent_usd}, qr/^0\.000[89]\d*$/, 'spent_usd: past 80%';
    like $ev{25}{node}, qr/\S/, 'the node';

    is rcli("SMEMBERS t058:a:t4:acme:budget_day:"
            . int(time / 86400)) =~ tr/\n//, 2,
       'the set of the window: the three thresholds';

    is burst($na, 2, '/v1/chat/completions', $acme), 2, 'two more pass';
    wait_alerts(4, $na, $nb);
    is rcli('XLEN t058:budget_alerts'), 3, '... and add no event';

    # docs/limits.md's webhook consumer, as the page shows it, posts the
    # three events to a webhook here and acknowledges them

    my ($code) = slurp("$FindBin::Bin/../docs/limits.md")
                 =~ /\n```python\n(.*?)```\n/s;
    my $hook = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                     LocalPort => $base + 3, Listen => 5,
                                     ReuseAddr => 1)
        or die "webhook: $!";

    my $cpid = consumer($code, $base + 3, $rport);

    # the spend of each is what the burst made it: a number
    (my $got = join "\n", sort(posts($hook, 3)))
        =~ s/: 0\.000\d+ of 0\.001000 USD \(\Q$day\E\)$/: SPENT/mg;
    is $got, join("\n", map { "tenant acme has spent $_% of its day budget: "
                             . 'SPENT' } 25, 50, 80),
       'the consumer of docs/limits.md posts each event as JSON text';

    # acknowledged: none pending in its group once the three are posted
    my $pending;
    for (1 .. 50) {
        $pending = (split /\n/,
                    rcli('XPENDING t058:budget_alerts webhook'))[0];
        last if defined $pending && $pending eq '0';
        sleep 0.1;
    }
    is $pending, '0', '... and acknowledges them';

    # started again (its group is there already), it posts the next
    # event only: a key's
    kill 'TERM', $cpid;
    waitpid($cpid, 0);
    $cpid = consumer($code, $base + 3, $rport);
    rcli('XADD t058:budget_alerts "*" tenant beta key beta-1 scope key '
         . "period month window 2026-11 threshold 90 spent_usd 9.000000 "
         . 'budget_usd 10.000000 node n2 time 0');
    is join("\n", posts($hook, 1)),
       'key beta-1 of tenant beta has spent 90% of its month budget: '
       . '9.000000 of 10.000000 USD (2026-11)',
       '... and started again, the next event only';

    kill 'TERM', $cpid;
    waitpid($cpid, 0);

    $na->stop;
    $nb->stop;
}


sub slurp {
    my ($path) = @_;
    open my $fh, '<', $path or die "$path: $!";
    local $/;
    return <$fh>;
}


# the consumer's code run against the webhook's port and Redis
sub consumer {
    my ($code, $port, $rport) = @_;
    my $pid = fork // die "fork: $!";

    if ($pid == 0) {
        exec('python3', '-c', $code, "http://127.0.0.1:$port/hook",
             't058:budget_alerts', '-p', $rport)
            or POSIX::_exit(127);
    }

    return $pid;
}


# the texts of the next n JSON posts to the webhook (20 s at most)
sub posts {
    my ($hook, $n) = @_;
    my @posts;

    eval {
        local $SIG{ALRM} = sub { die "timeout\n" };
        alarm 20;
        while (@posts < $n) {
            my $c = $hook->accept or next;
            my ($head, $body) = ('', '');
            while (defined(my $l = <$c>)) {
                $head .= $l;
                last if $l eq "\r\n";
            }
            my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
            read($c, $body, $len // 0);
            push @posts, ($head =~ m{^POST /hook }
                          && $head =~ m{^content-type: application/json}mi
                          && $body =~ /^\{"text": "(.*)"\}$/)
                         ? $1 : "not a JSON text: $head$body";
            print $c "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                     . "Connection: close\r\n\r\nok";
            close $c;
        }
        alarm 0;
    };
    alarm 0;

    return @posts;
}
