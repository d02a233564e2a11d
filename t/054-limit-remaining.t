# ai_guard_limit_remaining: on two workers, what a tenant's limits had
# left after its last request is the number that request's
# x-ratelimit-remaining-* headers said, allowed or refused; every limit
# of the tier but concurrency, each with its ai_guard_limit_size; none
# for a key's scope; a request that ends last but was admitted first
# does not write older numbers; a bucket full again reads full; the gauge
# survives a reload; past ai_guard_metrics_max_series a new tenant's is
# tenant="other"; with sync=strict, the numbers are Redis's.
#
# Plain Perl rather than blocks: the metrics are read after the log
# phase of the request before (a wait on ai_guard_requests_total, which
# is written with the gauge under one lock), a slow request kept open
# while another is made, a reload, two configurations.

use strict;
use warnings;

use FindBin;
use IO::Socket::INET;
use lib "$FindBin::Bin/helper";
use Digest::SHA qw(sha256_hex);
use Test::More;
use POSIX ();
use Time::HiRes qw(sleep);
use AiGuardNginx;
use AiGuardMetrics;

plan tests => 32;

my %digest = map { $_ => sha256_hex($_) }
             qw(sk-aig-test-acme-0001 sk-aig-test-beta-0001
                sk-aig-test-tiny-0001 sk-aig-test-fast-0001);

# acme and beta are pro, tiny has two requests a minute, fast a
# thousand a second.  pro's buckets are an hour's: a request's share of
# them comes back in 36 s (requests) or 3.6 s (a token), so a gauge read
# at once is still the admission's number, which a full bucket would not
# be
my $keys = <<"_EOF_";
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "pro",
   "sha256": "$digest{'sk-aig-test-acme-0001'}"},
  {"id": "beta-1", "tenant": "beta", "tier": "pro",
   "sha256": "$digest{'sk-aig-test-beta-0001'}"},
  {"id": "tiny-1", "tenant": "tiny", "tier": "tiny",
   "sha256": "$digest{'sk-aig-test-tiny-0001'}"},
  {"id": "fast-1", "tenant": "fast", "tier": "fast",
   "sha256": "$digest{'sk-aig-test-fast-0001'}"}
]}
_EOF_

# a mock that answers a second late
my $slow_mock = <<'_EOS_';
        location = /mock/slow {
            default_type application/json;
            echo_sleep 1;
            echo '{"object":"chat.completion","model":"gpt-4o-mini",'
                 '"usage":{"prompt_tokens":10,"completion_tokens":5}}';
        }
_EOS_

sub http_conf {
    my ($extra) = @_;
    return <<"_EOC_";
    ai_guard_zone   ai_guard 1m;
    ai_guard_tier   pro  rph=100 rpd=500 tph=1000 tpd=50000
                         tokens_month=900000 concurrency=10
                         budget=1/day budget=20/month;
    ai_guard_tier   tiny rpm=2;
    ai_guard_tier   fast rpm=60000;
    ai_guard_price  *  input=1 output=2;
    ai_guard_keys   \$TEST_NGINX_HTML_DIR/keys.json;
    $extra
@{[ AiGuardNginx::tenant_server($slow_mock) ]}
_EOC_
}

my $body = '{"model":"gpt-4o-mini","max_tokens":5,'
           . '"messages":[{"role":"user","content":"hi"}]}';
my $acme = ['Authorization: Bearer sk-aig-test-acme-0001'];
my $beta = ['Authorization: Bearer sk-aig-test-beta-0001'];
my $tiny = ['Authorization: Bearer sk-aig-test-tiny-0001'];
my $fast = ['Authorization: Bearer sk-aig-test-fast-0001'];

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 240;

# the metrics once the log phase of a tenant's n-th request has run
sub metrics_after {
    my ($n, $tenant, $count) = @_;
    my %m;
    for (1 .. 500) {
        my (undef, undef, $text) = $n->request('GET', '/metrics');
        %m = samples($text);
        my $done = 0;
        $done += $m{$_}
            for grep { /^ai_guard_requests_total\{tenant="$tenant",/ } keys %m;
        return %m if $done >= $count;
        sleep 0.02;
    }
    diag "$tenant: not $count requests in the metrics";
    return %m;
}

sub gauge {
    my ($m, $tenant, $limit, $family) = @_;
    $family //= 'ai_guard_limit_remaining';
    return $m->{"$family\{tenant=\"$tenant\",limit=\"$limit\"}"} // 'none';
}

sub pico {
    my ($usd) = @_;
    my ($i, $f) = $usd =~ /^(\d+)(?:\.(\d*))?$/ or return -1;
    return $i * 10**12 + substr(($f // '') . '0' x 12, 0, 12);
}

my $n = AiGuardNginx->new(name => 'limit-remaining', port => $base,
                          workers => 2);
$n->write_file('html/keys.json', $keys);
$n->write_config(http_conf(''));
$n->start;

# one request after the other, each on its own connection: both workers
# take some; after each, the gauge is that request's headers

my ($same_req, $same_tok, $rpd_ok) = (0, 0, 0);
my ($h, %m);

for my $i (1 .. 8) {
    (undef, $h) = $n->request('POST', '/v1/json', $acme, $body);
    %m = metrics_after($n, 'acme', $i);
    $same_req++ if gauge(\%m, 'acme', 'rph')
                   eq ($h->{'x-ratelimit-remaining-requests'} // '');
    $same_tok++ if gauge(\%m, 'acme', 'tph')
                   eq ($h->{'x-ratelimit-remaining-tokens'} // '');
    $rpd_ok++ if gauge(\%m, 'acme', 'rpd') eq 500 - $i;
}

is $same_req, 8, 'rph: the x-ratelimit-remaining-requests of the last '
                 . 'request, 8 times of 8';
is $same_tok, 8, 'tph: the x-ratelimit-remaining-tokens of the last '
                 . 'request, 8 times of 8';
is $rpd_ok, 8, 'rpd: 500 less the requests made, after each';

is $h->{'x-ratelimit-remaining-requests'}, 92,
   '... which is 92 after the eighth';

is join(' ', map { gauge(\%m, 'acme', $_, 'ai_guard_limit_size') }
             qw(rph rpd tph tpd tokens_month)),
   '100 500 1000 50000 900000', 'the sizes of the limits';
is gauge(\%m, 'acme', 'budget_day', 'ai_guard_limit_size'), '1.000000',
   'the day budget in USD';
is gauge(\%m, 'acme', 'budget_month', 'ai_guard_limit_size'), '20.000000',
   'the month budget in USD';
is gauge(\%m, 'acme', 'concurrency'), 'none', 'no gauge for concurrency';

# the day and the month counted the same requests: the same used
is 50000 - gauge(\%m, 'acme', 'tpd'),
   900000 - gauge(\%m, 'acme', 'tokens_month'),
   'tpd and tokens_month: the same tokens used';
ok 50000 - gauge(\%m, 'acme', 'tpd') > 7 * 15,
   '... more than the 7 requests before settled (the 8th reserved)';
is pico('1') - pico(gauge(\%m, 'acme', 'budget_day')),
   pico('20') - pico(gauge(\%m, 'acme', 'budget_month')),
   'budget_day and budget_month: the same USD used';
ok pico(gauge(\%m, 'acme', 'budget_day')) < pico('1')
   && pico(gauge(\%m, 'acme', 'budget_day')) > pico('0.99'),
   '... a little of the day budget';

# a refusal carries the headers too: tiny's third request of the minute

my ($tiny_same, @st) = (0);

for my $i (1 .. 3) {
    my ($st, $th) = $n->request('POST', '/v1/json', $tiny, $body);
    push @st, $st;
    %m = metrics_after($n, 'tiny', $i);
    $tiny_same++ if gauge(\%m, 'tiny', 'rpm')
                    eq ($th->{'x-ratelimit-remaining-requests'} // '');
}

is "@st", '200 200 429', 'tiny: two requests, then a 429';
is $tiny_same, 3, "... the gauge is each one's header, the 429's too";
is gauge(\%m, 'tiny', 'rpm'), 0, '... which is 0';
is join(' ', sort grep { /^ai_guard_limit_\w+\{tenant="tiny"/ } keys %m),
   'ai_guard_limit_remaining{tenant="tiny",limit="rpm"} '
   . 'ai_guard_limit_size{tenant="tiny",limit="rpm"}',
   "... and only its tier's limit";

# a bucket full again reads full: fast's request is back a millisecond
# after it was taken

(undef, $h) = $n->request('POST', '/v1/json', $fast, $body);
is $h->{'x-ratelimit-remaining-requests'}, 59999, 'fast: its header, 59999';
for (1 .. 100) {
    %m = metrics_after($n, 'fast', 1);
    last if gauge(\%m, 'fast', 'rpm') eq '60000';
    sleep 0.02;
}
is gauge(\%m, 'fast', 'rpm'), 60000, '... and then the gauge: all of it';

# a key's scope (ai_guard_limit_by key): no gauge by tenant

my ($bs) = $n->request('POST', '/k/json', $beta, $body);
%m = metrics_after($n, 'beta', 1);
is $bs, 200, "beta, limited by key: 200";
is scalar(grep { /^ai_guard_limit_\w+\{tenant="beta"/ } keys %m), 0,
   '... and no gauge for beta';

# admitted first, ended last: the slow request does not write over the
# numbers of the one admitted after it

my $slow = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $base,
                                 Timeout => 10) or die "connect: $!";
print $slow "POST /v1/slow HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n$acme->[0]\r\n"
            . 'Content-Length: ' . length($body) . "\r\n\r\n$body";

# its admission first (the mock sleeps a second after it)
%m = ();
for (1 .. 100) {
    (undef, undef, my $text) = $n->request('GET', '/metrics');
    last if $text =~ /^ai_guard_requests_in_flight 1$/m;
    sleep 0.02;
}

# the gauge keeps the later of two admissions by their millisecond (nginx's
# clock): the next one in another
sleep 0.05;

(undef, $h) = $n->request('POST', '/v1/json', $acme, $body);
my $fast_said = $h->{'x-ratelimit-remaining-requests'};
is $fast_said, 90, 'the fast request: the tenth admitted';
{
    local $/;
    my $resp = <$slow>;
    like $resp, qr{^HTTP/1\.1 200}, 'the slow request: 200, after the fast';
}
%m = metrics_after($n, 'acme', 10);
is gauge(\%m, 'acme', 'rph'), $fast_said,
   "the gauge: the fast request's header ($fast_said), not the slow one's";

# a reload keeps the series

my $before = join ' ', map { "$_=" . gauge(\%m, 'acme', $_) }
                       qw(rpd tpd budget_day);
$n->reload;
my ($ms, $text);
for (1 .. 100) {
    ($ms, undef, $text) = eval { $n->request('GET', '/metrics') };
    last if ($ms // 0) == 200;
    sleep 0.05;
}
%m = samples($text // '');
is join(' ', map { "$_=" . gauge(\%m, 'acme', $_) } qw(rpd tpd budget_day)),
   $before, 'after a reload: the same numbers' or diag $text;
check_documented($text, 'the scraped metrics, with the gauges',
                 'ai_guard_redis_up', 'ai_guard_redis_latency_seconds',
                 'ai_guard_redis_outbox_pending',
                 'ai_guard_redis_outbox_dropped_total',
                 'ai_guard_redis_errors_total',
                 'ai_guard_unpriced_requests_total',
                 'ai_guard_budget_alerts_total');

$n->stop;

# the series bound: tiny's request makes 3 series (its requests, tokens
# and limits), the bound; acme's limits are tenant="other"

$n = AiGuardNginx->new(name => 'limit-remaining-bound', port => $base + 1,
                       workers => 2);
$n->write_file('html/keys.json', $keys);
$n->write_config(http_conf('ai_guard_metrics_max_series 3;'));
$n->start;

$n->request('POST', '/v1/json', $tiny, $body);
%m = metrics_after($n, 'tiny', 1);
(undef, $h) = $n->request('POST', '/v1/json', $acme, $body);
%m = metrics_after($n, 'other', 1);

is gauge(\%m, 'tiny', 'rpm'), 1, "bound: tiny's own, under it";
is gauge(\%m, 'other', 'rph'), $h->{'x-ratelimit-remaining-requests'},
   "bound: past it, acme's header under tenant=\"other\"";
is gauge(\%m, 'acme', 'rph'), 'none', '... and none of acme';

$n->stop;

# sync=strict: Redis's answer, the numbers of the cluster

SKIP: {
    my $rport = $ENV{TEST_NGINX_REDIS_PORT};

    skip 'TEST_NGINX_REDIS_PORT is not set (make test sets it)', 4
        unless $rport;

    my $cli = "redis-cli -p $rport";
    `$cli --scan --pattern 't054:*' | xargs -r $cli DEL`;

    $n = AiGuardNginx->new(name => 'limit-remaining-strict', port => $base + 2,
                           workers => 2);
    $n->write_file('html/keys.json', $keys);
    $n->write_config(http_conf("ai_guard_redis 127.0.0.1:$rport "
                               . 'timeout=500ms sync=strict prefix=t054:;'));

    # Redis holds every client's commands for 300 ms (timeout= is 500):
    # the workers' handshakes are not done when the first request comes,
    # which waits for its worker's connection (admitted in the zone, it
    # would not be counted in Redis)
    `$cli CLIENT PAUSE 300`;
    $n->start;

    my @said;
    for my $i (1 .. 3) {
        (undef, $h) = $n->request('POST', '/v1/json', $acme, $body);
        push @said, $h->{'x-ratelimit-remaining-requests'};
    }
    %m = metrics_after($n, 'acme', 3);

    my $day = POSIX::floor(time() / 86400);

    is "@said", '99 98 97', 'strict: the headers, from Redis';
    is `$cli GET t054:l:t4:acme:rpd:$day` + 0, 3,
       "strict: Redis counted the three, the first one's worker waited";
    is gauge(\%m, 'acme', 'rph'), 97, "strict: the gauge, the last one's";
    is gauge(\%m, 'acme', 'rpd'), 497, '... and rpd';

    $n->stop;
}
