# Prometheus metrics: promtool accepts them, the token and cost counters
# equal the usage report, rejections are counted with decision="reject"
# and their code and reason, label values are escaped, the GenAI
# histograms count what reached the upstream, a budget's gauges and its
# alert, every family and label is the one docs/reports.md documents,
# and the series bounds fold the rest into tenant="other".
#
# The samples are read by --- body_check subs (t/helper/AiGuardBlocks.pm):
# sums and comparisons over the text that no section can say; promtool,
# where it is installed, checks every /metrics answer.

use Test::Nginx::Socket;
use File::Temp ();
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;
use AiGuardMetrics;

repeat_each(1);

# each request: its status, its body and the three patterns of the
# default --- no_error_log: 1 + 12 + 4 requests; one header line (TEST 2);
# the body_check subs: promtool on each of the 3 /metrics answers, 35
# checks of TEST 2's samples and 5 of its report, 6 of TEST 3's
plan tests => repeat_each() * (5 * (1 + 12 + 4) + 1 + 3 + 35 + 5 + 6);

no_shuffle();

our $promtool = -x '/usr/bin/promtool' ? '/usr/bin/promtool' : undef;

our $keys = keys_file(['acme-1', 'sk-aig-test-valid-0001', tenant => 'acme',
                       tier => 'pro', stripe_customer => 'cus_acme']);

our $mini = '{"model":"gpt-4o-mini","choices":[],"usage":'
    . '{"prompt_tokens":1234,"completion_tokens":56,'
    . '"prompt_tokens_details":{"cached_tokens":200}}}';

our $weird = '{"model":"we\"ird\\\\model","choices":[],"usage":'
    . '{"prompt_tokens":10,"completion_tokens":1}}';

our @claude = (
    "event: message_start\n",
    'data: {"type":"message_start","message":{"model":"claude-3-5-haiku",'
    . '"usage":{"input_tokens":25,"cache_read_input_tokens":5,'
    . '"output_tokens":1}}}' . "\n\n",
    "event: content_block_delta\n",
    'data: {"type":"content_block_delta","index":0,"delta":'
    . '{"type":"text_delta","text":"Hi"}}' . "\n\n",
    "event: message_delta\n",
    'data: {"type":"message_delta","usage":{"output_tokens":42}}' . "\n\n");

# the budget: 1% of it is $0.0005, which TEST 2's requests spend
our $http_config = <<'_EOC_';
    ai_guard_tier  pro  max_tokens=1000 budget=0.05/month budget_alert=1%;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;

    ai_guard_price  gpt-4o-mini*  input=0.15 output=0.60 cached_input=0.075;
    ai_guard_price  claude-*      input=3 output=15 cached_input=0.30;
    ai_guard_price  *             input=2.50 output=10.00;
_EOC_

our $config = guarded_location('/v1/', 'proxy_buffering off;')
    . guarded_location('/monitor/', 'ai_guard_mode monitor;',
                       'proxy_buffering off;')
    . echo_location('/mock/mini', 'application/json', $mini)
    . echo_location('/mock/weird', 'application/json', $weird)
    . echo_location('/mock/claude', 'text/event-stream', @claude)
    . <<'_EOC_';
    location = /metrics { ai_guard_metrics; }
    location = /usage { ai_guard_usage; }
_EOC_

our $key = 'Authorization: Bearer sk-aig-test-valid-0001';

sub post {
    my ($path, $body) = @_;
    return "POST $path\n" . ($body // '{"model":"gpt-4o-mini"}');
}

sub promtool_ok {
    my ($text, $name) = @_;

    SKIP: {
        skip 'no promtool', 1 unless $promtool;

        my ($fh, $file) = File::Temp::tempfile();
        print $fh $text;
        close $fh;

        my $out = `$promtool check metrics < $file 2>&1`;
        my $rc = $? >> 8;
        unlink $file;

        is "$rc $out", '0 ', "$name: promtool check metrics";
    }
}

sub pico {
    my ($usd) = @_;
    my ($i, $f) = $usd =~ /^(\d+)(?:\.(\d+))?$/ or die "not an amount: $usd";
    return $i * 10**12 + substr(($f // '') . '0' x 12, 0, 12);
}

# TEST 2's samples, kept for the comparison with its report
our %m;

sub after_requests {
    my ($text) = @_;

    promtool_ok($text, 'after requests');
    %m = samples($text);

    my $tok = 'ai_guard_tokens_total{tenant="acme",model="gpt-4o-mini",type=';
    is $m{$tok . '"input"}'}, 4 * 1234, 'tokens: allow and monitor added up';
    is $m{$tok . '"output"}'}, 4 * 56, 'tokens: output';
    is $m{$tok . '"cached"}'}, 4 * 200, 'tokens: cached';
    is $m{'ai_guard_cost_usd_total{tenant="acme",model="gpt-4o-mini"}'},
        '0.0008148', 'cost: exact';

    is $m{'ai_guard_requests_total{tenant="acme",model="gpt-4o-mini",'
          . 'decision="reject",code="max_tokens_exceeded",'
          . 'reason="max_tokens_exceeded"}'}, 1,
        'requests: the rejection, its code and reason';
    is $m{'ai_guard_requests_total{tenant="acme",model="gpt-4o-mini",'
          . 'decision="monitor",code="max_tokens_exceeded",'
          . 'reason="max_tokens_exceeded"}'}, 1,
        'requests: the monitored one';
    is $m{'ai_guard_requests_total{tenant="acme",model="gpt-4o-mini",'
          . 'decision="allow",code="",reason=""}'}, 3, 'requests: allowed';
    is $m{'ai_guard_requests_total{tenant="unknown",model="",'
          . 'decision="reject",code="invalid_api_key",'
          . 'reason="invalid_api_key"}'}, 1, 'requests: the unknown key';

    like $text, qr/^ai_guard_tokens_total\{tenant="acme",model="we\\"ird\\\\model",type="input"\} 10$/m,
        'label values escaped';

    # the GenAI histograms, by tenant, model label and dialect
    my $mini = '{tenant="acme",model="gpt-4o-mini",dialect="openai"}';
    my $claude = '{tenant="acme",model="claude-3-5-haiku",'
                 . 'dialect="anthropic"}';
    my $d = 'gen_ai_server_request_duration_seconds';

    is $m{"${d}_count$mini"}, 4,
        'duration: a sample a request that reached the upstream';
    is $m{"${d}_count$claude"}, 2, 'duration: the streams, by dialect';
    my $inf = $mini =~ s/\}$/,le="+Inf"}/r;
    is $m{"${d}_bucket$inf"}, 4, 'duration: +Inf is the count';
    like $m{"${d}_sum$mini"}, qr/^\d+(\.\d{1,3})?$/,
        'duration: the sum in exact seconds';

    my $prev = 0;
    my $mono = 1;
    for my $le (qw(0.01 0.02 0.04 0.08 0.16 0.32 0.64 1.28 2.56 5.12 10.24
                   20.48 40.96 81.92 +Inf))
    {
        my $v = $m{"${d}_bucket" . ($mini =~ s/\}$/,le="$le"}/r)};
        $mono = 0 unless defined $v && $v >= $prev;
        $prev = $v // 0;
    }
    ok $mono, 'duration: cumulative buckets, OpenTelemetry\'s bounds';

    is $m{"gen_ai_server_time_to_first_token_seconds_count$claude"}, 2,
        'time to first token: one a stream';
    is $m{"gen_ai_server_time_to_first_token_seconds_count$mini"}, 0,
        'time to first token: none for a JSON answer';
    is $m{"ai_guard_upstream_first_byte_seconds_count$mini"}, 4,
        'upstream first byte: a sample an answer';
    is $m{"gen_ai_client_token_usage_sum"
          . ($mini =~ s/\}$/,type="input"}/r)}, 4 * 1234,
        'token usage: input, allow and monitor';
    is $m{"gen_ai_client_token_usage_count"
          . ($claude =~ s/\}$/,type="output"}/r)}, 2,
        'token usage: a sample a request';
    is $m{"gen_ai_client_token_usage_sum"
          . ($claude =~ s/\}$/,type="output"}/r)}, 84,
        'token usage: the output the upstream counted';

    # the budget: its gauges and the 1% alert, once
    my $b = '{tenant="acme",key="",period="month"}';
    is $m{"ai_guard_budget_usd$b"}, '0.050000', 'budget: its USD';
    ok pico($m{"ai_guard_budget_spent_usd$b"}) > pico('0.0005'),
        'budget: spent past 1%';
    is $m{'ai_guard_budget_alerts_total{tenant="acme",key="",'
          . 'period="month",threshold="1"}'}, 1, 'budget: alerted once';
    like $m{"ai_guard_budget_used_ratio$b"}, qr/^0\.0\d{1,5}$/,
        'budget: the ratio, six decimals';

    # every model has a price (*): none unpriced; no Redis
    check_documented($text, 'after requests',
                     'ai_guard_unpriced_requests_total', 'ai_guard_redis_up',
                     'ai_guard_redis_latency_seconds',
                     'ai_guard_redis_outbox_pending',
                     'ai_guard_redis_outbox_dropped_total',
                     'ai_guard_redis_errors_total');

    is $m{'ai_guard_requests_in_flight'}, 0, 'nothing in flight';
    is $m{'ai_guard_zone_entries{part="ledger"}'}, 7,
        'ledger entries: 3 rows (a key, 3 models, a day), the 3 models and '
        . 'the tenant\'s count of them';

    my ($size, $inside) = (0, 1);
    for my $part (qw(limits ledger series)) {
        my $used = $m{"ai_guard_zone_used_bytes{part=\"$part\"}"};
        my $sz = $m{"ai_guard_zone_size_bytes{part=\"$part\"}"};
        $inside = 0 unless defined $used && $used > 0 && $used <= $sz;
        $size += $sz // 0;
    }
    ok $inside, 'each part: bytes used within its size';
    is $size, 10 * 1024 * 1024, 'the default zone, its three parts';

    for my $c (qw(expired refused)) {
        for my $part (qw(limits ledger series)) {
            is $m{"ai_guard_zone_${c}_total{part=\"$part\"}"}, 0,
                "nothing $c in the $part part";
        }
    }
}

# the counters equal the report
sub report {
    my ($report) = @_;
    my %sum;

    for my $k (grep { /^ai_guard_tokens_total\{/ } keys %m) {
        my ($type) = $k =~ /type="(\w+)"/;
        $sum{$type} += $m{$k};
    }
    for my $k (grep { /^ai_guard_cost_usd_total\{/ } keys %m) {
        $sum{cost} += pico($m{$k});
    }

    my ($tenant) = $report =~ /^\{[^\[]*\[\{"tenant":"acme",([^\[]*)/;
    my %r = ($tenant // '') =~ /"(\w+)":"?([\d.]+)"?/g;
    is $sum{input}, $r{input_tokens}, 'input tokens: metrics = report';
    is $sum{output}, $r{output_tokens}, 'output tokens: metrics = report';
    is $sum{cached}, $r{cached_tokens}, 'cached tokens: metrics = report';
    is $sum{cost}, pico($r{cost_usd} // 0), 'cost: metrics = report';
    is $r{requests}, 7, 'report: the rejections are not in it';
}

# the series bound: past it, everything is tenant="other", model="other"
sub bound {
    my ($text) = @_;

    promtool_ok($text, 'bound');
    my %b = samples($text);

    is $b{'ai_guard_tokens_total{tenant="acme",model="gpt-4o-mini",'
          . 'type="input"}'}, 1234, 'bound: the first series kept';
    is $b{'ai_guard_tokens_total{tenant="other",model="other",'
          . 'type="input"}'}, 30 + 10, 'bound: the rest folded into other';
    is $b{'ai_guard_requests_total{tenant="other",model="other",'
          . 'decision="allow",code="",reason=""}'}, 2,
        'bound: requests folded';

    # ai_guard_metrics_max_histograms: a tenth of 2, at least 1
    my $d = 'gen_ai_server_request_duration_seconds_count';
    is $b{"$d" . '{tenant="acme",model="gpt-4o-mini",dialect="openai"}'}, 1,
        'bound: the first histogram kept';
    is $b{"$d" . '{tenant="other",model="other",dialect="anthropic"}'}, 1,
        'bound: the rest folded, one a dialect';
    is $b{"$d" . '{tenant="other",model="other",dialect="openai"}'}, 1,
        'bound: ... the other dialect';
}

defaults(http_config => $http_config, user_files => $keys,
         config => $config);

run_tests();

__DATA__

=== TEST 1: metrics before any request: families without samples still pass
--- request
GET /metrics
--- response_body_like: ^# HELP ai_guard_requests_total
--- body_check eval: sub { ::promtool_ok($_[0], 'empty') }



=== TEST 2: the counters after traffic: tokens, cost and requests by decision and code, escaped labels, histograms, budgets, the zone, as documented; equal to the report
--- request eval
[(::post('/v1/mini')) x 3, (::post('/v1/claude')) x 2, ::post('/v1/weird'),
 # the same tenant and model, passed in monitor mode: one token series
 ::post('/monitor/mini', '{"model":"gpt-4o-mini","max_tokens":5000}'),
 # rejections: not in the report, in the metrics
 ::post('/v1/mini', '{"model":"gpt-4o-mini","max_tokens":5000}'),
 ::post('/v1/mini', '{}'),
 "GET /metrics", "GET /usage?group=model", "POST /metrics\n{}"]
--- more_headers eval
[($::key) x 8, 'Authorization: Bearer sk-nope', "", "", ""]
--- error_code eval
[(200) x 7, 400, 401, 200, 200, 405]
--- response_headers eval
[("") x 9, "Content-Type: text/plain; version=0.0.4", "", ""]
--- response_body eval
[($::mini) x 3, (CORE::join '', @::claude) x 2, $::weird, $::mini,
 qr/"code":"max_tokens_exceeded"/, qr/"code":"invalid_api_key"/,
 qr/^# HELP /, qr/^\{"from":/, qr/405 Not Allowed/]
--- body_check eval
[(undef) x 9, \&::after_requests, \&::report, undef]



=== TEST 3: the series bound: past it, everything is tenant="other", model="other"
--- http_config eval
"    ai_guard_metrics_max_series 2;\n" . $::http_config
--- request eval
[::post('/v1/mini'), ::post('/v1/claude'), ::post('/v1/weird'),
 "GET /metrics"]
--- more_headers eval
[($::key) x 3, ""]
--- response_body eval
[$::mini, CORE::join('', @::claude), $::weird, qr/^# HELP /]
--- body_check eval
[(undef) x 3, \&::bound]
