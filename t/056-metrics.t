# Prometheus metrics: promtool accepts them, the token and cost counters
# equal the usage report, rejections are counted with decision="reject",
# label values are escaped, and the series bound folds the rest into
# tenant="other".

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use File::Temp qw(tempfile);
use Test::More;
use Time::HiRes qw(sleep);
use AiGuardNginx;

my $promtool = -x '/usr/bin/promtool' ? '/usr/bin/promtool' : undef;

my $keys = <<'_EOF_';
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "pro",
   "stripe_customer": "cus_acme",
   "sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"}
]}
_EOF_

sub echo_lines {
    join '', map {
        (my $q = $_) =~ s/([\\'])/\\$1/g;
        $q =~ s/\n/\\n/g;
        "            echo -n -- '$q';\n            echo_flush;\n"
    } @_;
}

my $mini = echo_lines('{"model":"gpt-4o-mini","choices":[],"usage":'
    . '{"prompt_tokens":1234,"completion_tokens":56,'
    . '"prompt_tokens_details":{"cached_tokens":200}}}');

my $weird = echo_lines('{"model":"we\"ird\\\\model","choices":[],"usage":'
    . '{"prompt_tokens":10,"completion_tokens":1}}');

my $claude = echo_lines(
    "event: message_start\n",
    'data: {"type":"message_start","message":{"model":"claude-3-5-haiku",'
    . '"usage":{"input_tokens":25,"cache_read_input_tokens":5,'
    . '"output_tokens":1}}}' . "\n\n",
    "event: message_delta\n",
    'data: {"type":"message_delta","usage":{"output_tokens":42}}' . "\n\n");

sub http_conf {
    my ($extra) = @_;

    return <<"_EOC_";
    ai_guard_tier  pro  max_tokens=1000;
    ai_guard_keys  \$TEST_NGINX_HTML_DIR/keys.json;

    ai_guard_price  gpt-4o-mini*  input=0.15 output=0.60 cached_input=0.075;
    ai_guard_price  claude-*      input=3 output=15 cached_input=0.30;
    ai_guard_price  *             input=2.50 output=10.00;
$extra
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            proxy_buffering off;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /monitor/ {
            ai_guard on;
            ai_guard_mode monitor;
            proxy_buffering off;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

        location = /mock/mini {
            default_type application/json;
$mini
        }

        location = /mock/weird {
            default_type application/json;
$weird
        }

        location = /mock/claude {
            default_type text/event-stream;
$claude
        }

        location = /metrics { ai_guard_metrics; }
        location = /usage { ai_guard_usage; }
    }
_EOC_
}

my $port = ($ENV{TEST_NGINX_PORT} || 1984) + 156;

my $n = AiGuardNginx->new(name => 'metrics', port => $port);
$n->write_file('html/keys.json', $keys);
$n->write_config(http_conf(''));
$n->start;

my @key = ('Authorization: Bearer sk-aig-test-valid-0001');

sub post {
    my ($nginx, $path, $body) = @_;
    my ($status) = $nginx->request('POST', $path, \@key,
                                   $body // '{"model":"gpt-4o-mini"}');
    return $status;
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

        my ($fh, $file) = tempfile();
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

# metrics before any request: families without samples still pass
my ($s, $h, $text) = $n->request('GET', '/metrics');
is $s, 200, 'empty: 200';
promtool_ok($text, 'empty');

is post($n, '/v1/mini'), 200, 'mini 1' for 1 .. 3;
is post($n, '/v1/claude'), 200, 'claude ' . $_ for 1 .. 2;
is post($n, '/v1/weird'), 200, 'a model name with a quote and a backslash';

# the same tenant and model, passed in monitor mode: one token series
is post($n, '/monitor/mini', '{"model":"gpt-4o-mini","max_tokens":5000}'),
    200, 'monitor: over the cap, passed';

# rejections: not in the report, in the metrics
is post($n, '/v1/mini', '{"model":"gpt-4o-mini","max_tokens":5000}'), 400,
    'reject: max_tokens';
my ($st) = $n->request('POST', '/v1/mini',
                       ['Authorization: Bearer sk-nope'], '{}');
is $st, 401, 'reject: unknown key';

sleep 0.2;

($s, $h, $text) = $n->request('GET', '/metrics');
is $s, 200, 'metrics: 200';
is $h->{'content-type'}, 'text/plain; version=0.0.4', 'metrics: 0.0.4';
promtool_ok($text, 'after requests');

my %m = samples($text);

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

# the counters equal the report
my ($us, $uh, $report) = $n->request('GET', '/usage?group=model');
my %sum;
for my $k (grep { /^ai_guard_tokens_total\{/ } keys %m) {
    my ($type) = $k =~ /type="(\w+)"/;
    $sum{$type} += $m{$k};
}
for my $k (grep { /^ai_guard_cost_usd_total\{/ } keys %m) {
    $sum{cost} += pico($m{$k});
}

my ($tenant) = $report =~ /^\{[^\[]*\[\{"tenant":"acme",([^\[]*)/;
my %r = $tenant =~ /"(\w+)":"?([\d.]+)"?/g;
is $sum{input}, $r{input_tokens}, 'input tokens: metrics = report';
is $sum{output}, $r{output_tokens}, 'output tokens: metrics = report';
is $sum{cached}, $r{cached_tokens}, 'cached tokens: metrics = report';
is $sum{cost}, pico($r{cost_usd}), 'cost: metrics = report';
is $r{requests}, 7, 'report: the rejections are not in it';

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
is $m{'ai_guard_zone_expired_total{part="limits"}'}
   + $m{'ai_guard_zone_expired_total{part="ledger"}'}
   + $m{'ai_guard_zone_refused_total{part="limits"}'}
   + $m{'ai_guard_zone_refused_total{part="ledger"}'}, 0,
    'nothing expired, nothing refused';

($st) = $n->request('POST', '/metrics', [], '{}');
is $st, 405, 'POST: 405';

unlike $n->log, qr/\[(?:alert|emerg|crit)\]/, 'no alerts';

$n->stop;

# the series bound: past it, everything is tenant="other", model="other"
my $b = AiGuardNginx->new(name => 'metrics-bound', port => $port + 1);
$b->write_file('html/keys.json', $keys);
$b->write_config(http_conf("    ai_guard_metrics_max_series 2;\n"));
$b->start;

is post($b, '/v1/mini'), 200, 'bound: mini';
is post($b, '/v1/claude'), 200, 'bound: claude';
is post($b, '/v1/weird'), 200, 'bound: weird';

sleep 0.2;

($s, $h, $text) = $b->request('GET', '/metrics');
promtool_ok($text, 'bound');
%m = samples($text);

is $m{'ai_guard_tokens_total{tenant="acme",model="gpt-4o-mini",'
      . 'type="input"}'}, 1234, 'bound: the first series kept';
is $m{'ai_guard_tokens_total{tenant="other",model="other",type="input"}'},
    30 + 10, 'bound: the rest folded into other';
is $m{'ai_guard_requests_total{tenant="other",model="other",'
      . 'decision="allow",reason=""}'}, 2, 'bound: requests folded';

$b->stop;

done_testing;
