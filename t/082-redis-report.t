# The usage report with Redis: two nginx nodes sharing one redis-server.
# The report of either node is the cluster's: its totals are the sum of
# both nodes' per-request log lines, the cost exact to the last digit, in
# JSON, CSV and Stripe alike.  With Redis frozen (kill -STOP) the report
# answers within the timeout from the node's own zone, with a warning;
# the usage made meanwhile is in the cluster's report once Redis is back.
# A client that leaves while its report waits on Redis leaves nothing
# behind.
#
# Plain Perl rather than blocks: two nginx instances at once, Redis frozen
# and thawed with signals between requests, and clients that leave before
# the answer; Test::Nginx runs one nginx.
#
# Needs $TEST_NGINX_REDIS_PORT (make test starts a redis-server).

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep time);
use AiGuardNginx;

my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan skip_all => 'TEST_NGINX_REDIS_PORT is not set (make test sets it)'
    unless $rport;
plan tests => 47;

sub rcli { my $out = `redis-cli -p $rport @_ 2>&1`; chomp $out; $out }

my ($rpid) = rcli('INFO server') =~ /process_id:(\d+)/;
ok($rpid, "redis-server runs as pid $rpid");

# a prefix of this run's own: nothing of an earlier run is counted
my $prefix = "t082-$$:";

my %digest = (
    'sk-aig-test-valid-0001' =>
        '86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e',
    'sk-aig-test-beta-00001' =>
        '39c81276bc9edac2614e74ea48f6f4b687a3562ca7ba8b0d19806b3e69afde2c',
    'sk-aig-test-future-0001' =>
        '5ce7fee67f99f77555e6fe5192f9841a0709966866a04b289848357f584a8db6',
);

my $keys = <<"_EOF_";
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "pro",
   "stripe_customer": "cus_acme",
   "sha256": "$digest{'sk-aig-test-valid-0001'}"},
  {"id": "acme-2", "tenant": "acme", "tier": "pro",
   "sha256": "$digest{'sk-aig-test-beta-00001'}"},
  {"id": "beta-1", "tenant": "beta", "tier": "pro",
   "stripe_customer": "cus_beta",
   "sha256": "$digest{'sk-aig-test-future-0001'}"}
]}
_EOF_

my %bearer = (
    'acme-1' => ['Authorization: Bearer sk-aig-test-valid-0001'],
    'acme-2' => ['Authorization: Bearer sk-aig-test-beta-00001'],
    'beta-1' => ['Authorization: Bearer sk-aig-test-future-0001'],
);

my $http = <<"_EOC_";
    ai_guard_zone   ai_guard 1m;
    ai_guard_tier   pro  rpm=100000 concurrency=50;
    ai_guard_keys   \$TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_redis  127.0.0.1:$rport timeout=200ms sync=strict fail=open
                    prefix=$prefix;

    ai_guard_price  gpt-4o-mini*  input=0.15 output=0.60 cached_input=0.075;
    ai_guard_price  *             input=2.50 output=10.00;

    ai_guard_usage_event_name  llm_tokens;

    log_format  meter  'meter tenant=\$ai_guard_tenant '
                       'key=\$ai_guard_key_id model=\$ai_guard_model '
                       'in=\$ai_guard_prompt_tokens '
                       'out=\$ai_guard_completion_tokens '
                       'cached=\$ai_guard_cached_tokens '
                       'cost=\$ai_guard_cost_usd';

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            access_log logs/meter.log meter;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

        location = /mock/mini {
            default_type application/json;
            echo '{"model":"gpt-4o-mini","usage":{"prompt_tokens":1234,"completion_tokens":56,"prompt_tokens_details":{"cached_tokens":200}}}';
        }

        location = /mock/four {
            default_type application/json;
            echo '{"model":"gpt-4o","usage":{"prompt_tokens":100,"completion_tokens":20}}';
        }

        location = /ai-guard/usage {
            ai_guard_usage;
        }
    }
_EOC_

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 190;

my $a = AiGuardNginx->new(name => 'redis-report-a', port => $base,
                          workers => 2);
$a->write_file('html/keys.json', $keys);
$a->write_config($http);
$a->start;

my $b = AiGuardNginx->new(name => 'redis-report-b', port => $base + 1);
$b->write_file('html/keys.json', $keys);
$b->write_config($http);
$b->start;

# "0.0002037" as pico-USD, the ledger's unit
sub pico {
    my ($usd) = @_;
    my ($i, $f) = $usd =~ /^(\d+)\.(\d+)$/ or die "not an amount: $usd";
    return $i * 10**12 + substr($f . '0' x 12, 0, 12);
}

sub meter_lines {
    my ($n) = @_;
    my @lines;
    my $log = $n->log('meter.log');
    while ($log =~ /^meter (.*)$/mg) {
        push @lines, { map { split /=/, $_, 2 } split / /, $1 };
    }
    return @lines;
}

# the log phase runs after the client has its response
sub wait_lines {
    my ($n, $want) = @_;
    for (1 .. 100) {
        last if meter_lines($n) >= $want;
        sleep 0.05;
    }
    return scalar meter_lines($n);
}

# what the log lines of these nodes add up to, by tenant
sub sums {
    my %sum;
    for my $l (map { meter_lines($_) } @_) {
        my $s = $sum{ $l->{tenant} } ||= {};
        $s->{requests}++;
        $s->{input_tokens} += $l->{in};
        $s->{output_tokens} += $l->{out};
        $s->{cached_tokens} += $l->{cached};
        $s->{cost} += pico($l->{cost});
    }
    return \%sum;
}

# the report's totals in the same shape
sub report_sums {
    my ($body) = @_;
    my $j = eval { decode_json($body) } or return {};
    my %sum;
    for my $t (@{ $j->{tenants} }) {
        $sum{ $t->{tenant} } = {
            map({ $_ => $t->{$_} }
                qw(requests input_tokens output_tokens cached_tokens)),
            cost => pico($t->{cost_usd}),
        };
    }
    return \%sum;
}

# poll: the outbox reaches Redis within a flush interval (100 ms)
sub wait_report {
    my ($n, $want) = @_;
    my ($s, $h, $body);
    for (1 .. 60) {
        ($s, $h, $body) = $n->request('GET', '/ai-guard/usage');
        return ($s, $h, $body)
            if $s == 200 && eq_hash(report_sums($body), $want);
        sleep 0.1;
    }
    return ($s, $h, $body);
}

sub send_plan {
    my @plan = @_;
    my $i = 0;
    my %count;
    for my $p (@plan) {
        my $n = $i++ % 2 ? $b : $a;
        my ($s) = $n->request('POST', "/v1/$p->[1]", $bearer{ $p->[0] },
                              '{"model":"m","prompt":"hi"}');
        $count{ $n == $a ? 'a' : 'b' }++;
        is($s, 200, "request $p->[0] $p->[1]");
    }
    return %count;
}

my @plan = (
    (['acme-1', 'mini']) x 3,
    (['acme-2', 'four']) x 2,
    ['beta-1', 'mini'],
    ['beta-1', 'four'],
);

my %count = send_plan(@plan);

is(wait_lines($a, $count{a}), $count{a}, "node a logged $count{a} requests");
is(wait_lines($b, $count{b}), $count{b}, "node b logged $count{b} requests");

my $cluster = sums($a, $b);

my ($s, $h, $ra) = wait_report($a, $cluster);
is($s, 200, 'report from node a: 200');
is_deeply(report_sums($ra), $cluster,
          'node a reports both nodes: the sum of their log lines, the '
          . 'cost to the last digit');
unlike($ra, qr/warning/, '... and no warning');
ok(!exists $h->{'x-ai-guard-warning'}, '... nor a warning header');

# the outbox gives the concurrency slots back in the same batches
my $slots;
for (1 .. 30) {
    $slots = rcli("GET ${prefix}l:t4:acme:concurrency");
    last if $slots eq '0';
    sleep 0.1;
}
is($slots, '0', 'the concurrency slots of both nodes are back in Redis');

my ($sb, $hb, $rb) = $b->request('GET', '/ai-guard/usage');
is($rb, $ra, 'node b answers the very same report');

# not what either node holds alone
isnt(report_sums($ra)->{acme}{requests}, sums($a)->{acme}{requests},
     'more than node a counted itself');

my $today = strftime('%Y-%m-%d', gmtime);

for my $args ('?group=key', '?group=model&tenant=acme', '?group=day',
              '?format=csv&group=model', '?format=stripe',
              "?from=$today&to=$today&format=csv")
{
    my (undef, undef, $x) = $a->request('GET', "/ai-guard/usage$args");
    my (undef, undef, $y) = $b->request('GET', "/ai-guard/usage$args");
    is($x, $y, "$args: the same on both nodes");
}

my (undef, undef, $csv) = $a->request('GET',
                                      '/ai-guard/usage?format=csv');
my $c = $cluster->{acme};
like($csv, qr/^acme,$c->{requests},$c->{input_tokens},$c->{output_tokens},$c->{cached_tokens},0,/m,
     'CSV: the cluster totals of acme');

my (undef, undef, $stripe) = $a->request('GET',
                                         '/ai-guard/usage?format=stripe');
my @events = map { decode_json($_) } split /\n/, $stripe;
is(scalar @events, 3, 'Stripe: one event a customer, day and model '
                      . '(acme-2 has no customer)');
my $mini_acme = (grep { $_->{payload}{stripe_customer_id} eq 'cus_acme' }
                 @events)[0];
is($mini_acme->{payload}{value}, 3 * (1234 + 56),
   'Stripe: the tokens of acme-1 on both nodes');

my (undef, undef, $beta) = $b->request('GET', '/ai-guard/usage?tenant=beta');
is_deeply([map { $_->{tenant} } @{ decode_json($beta)->{tenants} }],
          ['beta'], 'tenant=: only that tenant');

my (undef, undef, $past) = $a->request('GET',
    '/ai-guard/usage?from=2020-01-01&to=2020-01-31');
is($past, qq({"from":"2020-01-01","to":"2020-01-31","tenants":[]}\n),
   'a range without usage: no tenants');

# Redis frozen: the node's own zone, with a warning

kill 'STOP', $rpid;

my $t0 = time;
($s, $h, $ra) = $a->request('GET', '/ai-guard/usage');
my $dt = time - $t0;

is($s, 200, 'Redis frozen: the report still answers');
ok($dt < 0.2 + 0.3, sprintf('... within the timeout and a little (%.3fs)',
                            $dt));
like($ra, qr/^\{"from":"[-\d]+","to":"[-\d]+","warning":"redis unavailable: local usage of this node only","tenants":/,
     '... with the warning field');
is_deeply(report_sums($ra), sums($a),
          "... and node a's own usage: its log lines");

# a client that leaves while its report waits on Redis: node b still has
# its connection, the reply is due for 200 ms; the request's pool cleanup
# disarms the callback, and the timeout finds no request

my $gone = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                 PeerPort => $b->port, Timeout => 10)
    or die "connect: $!";
print $gone "GET /ai-guard/usage HTTP/1.1\r\nHost: localhost\r\n\r\n";
sleep 0.05;
close $gone;
sleep 0.4;

# the connections were given up: the next reports answer at once

($s, $h, $csv) = $a->request('GET', '/ai-guard/usage?format=csv');
is($h->{'x-ai-guard-warning'},
   'redis unavailable: local usage of this node only',
   'CSV: the warning in X-AI-Guard-Warning');
like($csv, qr/^tenant,requests,/, '... and the body is plain CSV');

($s, $h) = $b->request('GET', '/ai-guard/usage?format=stripe');
is($h->{'x-ai-guard-warning'},
   'redis unavailable: local usage of this node only',
   'Stripe: the warning in X-AI-Guard-Warning');

# usage while Redis is away (fail=open: decided locally)

my %more = send_plan((['acme-1', 'mini']) x 2, (['beta-1', 'four']) x 2);

kill 'CONT', $rpid;

is(wait_lines($a, $count{a} + $more{a}), $count{a} + $more{a},
   'node a logged the requests made while Redis was away');
is(wait_lines($b, $count{b} + $more{b}), $count{b} + $more{b},
   '... and node b');

$cluster = sums($a, $b);

($s, $h, $ra) = wait_report($a, $cluster);
is_deeply(report_sums($ra), $cluster,
          'Redis back: node a reports the usage made while it was away, '
          . 'once');
unlike($ra, qr/warning/, '... without a warning');

($s, $h, $rb) = wait_report($b, $cluster);
is($rb, $ra, '... and so does node b');

# a client that leaves while Redis still has to answer (Redis is up: the
# reply comes after the client is gone, or before; either way no crash)

for (1 .. 20) {
    my $x = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $a->port, Timeout => 10)
        or die "connect: $!";
    print $x "GET /ai-guard/usage?group=key HTTP/1.1\r\nHost: localhost\r\n"
             . "\r\n";
    close $x;
}

($s) = $a->request('GET', '/ai-guard/usage');
is($s, 200, 'the report answers after clients left in the middle');

$a->stop;
$b->stop;

for my $n ($a, $b) {
    unlike($n->log, qr/\[(alert|crit|emerg)\]|exited on signal/,
           'no alert, no crash in ' . $n->root);
}

rcli("--scan --pattern '$prefix*' | xargs -r redis-cli -p $rport DEL "
     . '>/dev/null');

