# Prometheus metrics: promtool accepts them, the token and cost counters
# equal the usage report, rejections are counted with decision="reject",
# label values are escaped, and the series bound folds the rest into
# tenant="other".
#
# The samples are read by --- body_check subs (t/helper/AiGuardBlocks.pm):
# sums and comparisons over the text that no section can say; promtool,
# where it is installed, checks every /metrics answer.

use Test::Nginx::Socket;
use File::Temp ();
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(1);

# each request: its status, its body and the three patterns of the
# default --- no_error_log: 1 + 12 + 4 requests; one header line (TEST 2);
# the body_check subs: promtool on each of the 3 /metrics answers, 24
# checks of TEST 2's samples and 5 of its report, 3 of TEST 3's
plan tests => repeat_each() * (5 * (1 + 12 + 4) + 1 + 3 + 24 + 5 + 3);

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
    "event: message_delta\n",
    'data: {"type":"message_delta","usage":{"output_tokens":42}}' . "\n\n");

our $http_config = <<'_EOC_';
    ai_guard_tier  pro  max_tokens=1000;
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

# Prometheus text into { "name{labels}" => value }
sub samples {
    my ($text) = @_;
    my %s;
    for (split /\n/, $text) {
        next if /^#/;
        my ($k, $v) = /^(.*) (\S+)$/ or next;
        $s{$k} = $v;
    }
    return %s;
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
          . 'decision="reject",reason="max_tokens_exceeded"}'}, 1,
        'requests: the rejection';
    is $m{'ai_guard_requests_total{tenant="acme",model="gpt-4o-mini",'
          . 'decision="monitor",reason="max_tokens_exceeded"}'}, 1,
        'requests: the monitored one';
    is $m{'ai_guard_requests_total{tenant="acme",model="gpt-4o-mini",'
          . 'decision="allow",reason=""}'}, 3, 'requests: allowed';
    ok scalar(grep { /^ai_guard_requests_total\{.*decision="reject",reason="invalid_api_key"\}$/ } keys %m),
        'requests: the unknown key';

    like $text, qr/^ai_guard_tokens_total\{tenant="acme",model="we\\"ird\\\\model",type="input"\} 10$/m,
        'label values escaped';

    # histograms
    is $m{'ai_guard_upstream_response_seconds_count'}, 7,
        'upstream histogram: a sample a request that reached it';
    is $m{'ai_guard_upstream_response_seconds_bucket{le="+Inf"}'}, 7,
        'upstream histogram: +Inf is the count';
    is $m{'ai_guard_time_to_first_token_seconds_count'}, 2,
        'ttft histogram: the streams';
    like $m{'ai_guard_upstream_response_seconds_sum'}, qr/^\d+(\.\d{1,3})?$/,
        'upstream histogram: the sum in exact seconds';

    my $prev = 0;
    my $mono = 1;
    for my $le (qw(0.05 0.1 0.25 0.5 1 2.5 5 10 30 60 120 +Inf)) {
        my $v = $m{"ai_guard_upstream_response_seconds_bucket{le=\"$le\"}"};
        $mono = 0 unless defined $v && $v >= $prev;
        $prev = $v // 0;
    }
    ok $mono, 'upstream histogram: cumulative buckets';

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
          . 'decision="allow",reason=""}'}, 2, 'bound: requests folded';
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



=== TEST 2: the counters after traffic: tokens, cost and requests by decision, escaped labels, histograms, the zone; equal to the report
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
