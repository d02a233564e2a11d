# Reasoning tokens and cache writes in the usage report and the metrics
# (docs/reports.md, docs/metering.md): OpenAI's reasoning_tokens, Gemini's
# thoughtsTokenCount and Anthropic's cache_creation_input_tokens become
# the reasoning_tokens and cache_write_tokens columns of the JSON and CSV
# report, of the local ledger and of Redis's usage hashes alike, and the
# "reasoning" and "cache_write" types of ai_guard_tokens_total; cache
# writes cost cache_write= where given, else the input price.  A usage
# hash an older node wrote, without the two fields, reads as 0.
#
# Plain Perl rather than blocks: two nginx instances (one with Redis), the
# report polled until the outbox has reached Redis, Redis written to
# directly with a hash of the older layout.
#
# Needs $TEST_NGINX_REDIS_PORT for its second half (make test starts a
# redis-server); without it, only the ledger's half runs.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use JSON::PP;
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep);
use AiGuardNginx;

my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan tests => $rport ? 24 : 15;

my $prefix = "t107-$$:";

my $keys = '{"keys": [{"id": "acme-1", "tenant": "acme", "tier": "pro", '
           . '"sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d9947'
           . '5ed0c959fb07a23e"}]}';

my @bearer = ('Authorization: Bearer sk-aig-test-valid-0001');

# the upstream's answers: an OpenAI reasoning model, Anthropic with a
# cache write at a price that names cache_write= and at one that does
# not, a Gemini thinking model
my %mock = (
    o1 => '{"object":"chat.completion","model":"o1-2024-12-17",'
          . '"choices":[{"message":{"content":"ok"}}],"usage":{'
          . '"prompt_tokens":100,"completion_tokens":300,'
          . '"completion_tokens_details":{"reasoning_tokens":256}}}',
    sonnet => '{"type":"message","model":"claude-sonnet-4",'
              . '"content":[{"type":"text","text":"ok"}],"usage":{'
              . '"input_tokens":100,"cache_creation_input_tokens":50,'
              . '"cache_read_input_tokens":400,"output_tokens":30}}',
    haiku => '{"type":"message","model":"claude-3-haiku",'
             . '"content":[{"type":"text","text":"ok"}],"usage":{'
             . '"input_tokens":10,"cache_creation_input_tokens":100,'
             . '"output_tokens":20}}',
    gemini => '{"candidates":[{"content":{"parts":[{"text":"ok"}]}}],'
              . '"usageMetadata":{"promptTokenCount":20,'
              . '"candidatesTokenCount":10,"thoughtsTokenCount":40,'
              . '"totalTokenCount":70},"modelVersion":"gemini-2.5-flash"}',
);

# USD per million: o1 100 at 15 and 300 at 60, 19500; sonnet 100 at 3,
# 400 cached at 0.30, 50 written at 3.75, 30 at 15, 1057.5; haiku 10 at
# 0.25, 100 written at the input price 0.25, 20 at 1.25, 52.5; gemini 20
# at 0.30 and 50 at 2.50, 131
my %row = (
    'o1-2024-12-17' => [100, 300, 0, '0.019500', 256, 0],
    'claude-sonnet-4' => [550, 30, 400, '0.0010575', 0, 50],
    'claude-3-haiku' => [110, 20, 0, '0.0000525', 0, 100],
    'gemini-2.5-flash' => [20, 50, 0, '0.000131', 40, 0],
);

sub http {
    my ($redis) = @_;
    my $conf = <<'_EOC_';
    ai_guard_tier   pro;
    ai_guard_keys   $TEST_NGINX_HTML_DIR/keys.json;

    ai_guard_price  o1*               input=15 output=60;
    ai_guard_price  claude-sonnet*    input=3 output=15 cached_input=0.30
                                      cache_write=3.75;
    ai_guard_price  claude-3-haiku*   input=0.25 output=1.25;
    ai_guard_price  gemini-2.5-flash* input=0.30 output=2.50;

    log_format  meter  'meter reasoning=$ai_guard_reasoning_tokens '
                       'cache_write=$ai_guard_cache_write_tokens';

    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            access_log logs/meter.log meter;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
        }

        location = /ai-guard/usage {
            ai_guard_usage;
        }

        location = /metrics {
            ai_guard_metrics;
        }
_EOC_

    for my $m (sort keys %mock) {
        $conf .= "        location = /mock/$m {\n"
                 . "            default_type application/json;\n"
                 . "            return 200 '$mock{$m}';\n        }\n";
    }

    $conf .= "    }\n";

    return ($redis ? "    ai_guard_redis 127.0.0.1:$rport timeout=500ms "
                     . "sync=200ms prefix=$prefix;\n" : '') . $conf;
}

sub node {
    my ($name, $port, $redis) = @_;
    my $n = AiGuardNginx->new(name => $name, port => $port);
    $n->write_file('html/keys.json', $keys);
    $n->write_config(http($redis));
    $n->start;
    return $n;
}

sub send_all {
    my ($n) = @_;
    my $ok = 0;
    for my $m (sort keys %mock) {
        my ($s) = $n->request('POST', "/v1/$m", \@bearer,
                              '{"model":"m","prompt":"hi"}');
        $ok++ if $s == 200;
    }
    return $ok;
}

# the report's groups by model, as [input, output, cached, cost,
# reasoning, cache_write]
sub groups {
    my ($body) = @_;
    my $j = eval { decode_json($body) } or return {};
    my %g;
    for my $t (@{ $j->{tenants} }) {
        for my $r (@{ $t->{groups} || [] }) {
            $g{ $r->{model} } = [@$r{qw(input_tokens output_tokens
                                        cached_tokens cost_usd
                                        reasoning_tokens
                                        cache_write_tokens)}];
        }
    }
    return \%g;
}

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 260;

# --- the ledger: one node, no Redis

my $a = node('report-reasoning', $base);

is(send_all($a), 4, 'four answers, one a vendor');

for (1 .. 100) {
    last if ($a->log('meter.log') =~ tr/\n//) >= 4;
    sleep 0.05;
}

is_deeply([sort $a->log('meter.log') =~ /^meter (.*)$/mg],
          ['reasoning=0 cache_write=100', 'reasoning=0 cache_write=50',
           'reasoning=256 cache_write=0', 'reasoning=40 cache_write=0'],
          '$ai_guard_reasoning_tokens and $ai_guard_cache_write_tokens');

my ($s, $h, $body) = $a->request('GET', '/ai-guard/usage?group=model');
is($s, 200, 'the report: 200');
is_deeply(groups($body), \%row,
          'each model: reasoning and cache writes, cost at cache_write= '
          . 'or else the input price');
like($body, qr/"tenant":"acme","requests":4,"input_tokens":780,"output_tokens":400,"cached_tokens":400,"estimated_requests":0,"cost_usd":"0\.020741","reasoning_tokens":296,"cache_write_tokens":150,"groups"/,
     'the tenant: the sums, the two new fields after cost_usd');

($s, $h, $body) = $a->request('GET', '/ai-guard/usage?format=csv');
is($s, 200, 'the CSV report: 200');
is($body, "tenant,requests,input_tokens,output_tokens,cached_tokens,"
          . "estimated_requests,cost_usd,reasoning_tokens,"
          . "cache_write_tokens\nacme,4,780,400,400,0,0.020741,296,150\n",
   'CSV: the two columns last');

($s, $h, $body) = $a->request('GET', '/ai-guard/usage?format=stripe');
is($s, 200, 'the Stripe export: 200');
unlike($body, qr/reasoning|cache_write/,
       'Stripe: input plus output only, which hold them already');

($s, $h, $body) = $a->request('GET', '/metrics');
is($s, 200, 'the metrics: 200');

my %m = $body =~ /^(ai_guard_tokens_total\{[^}]*\}) (\d+)$/mg;
my $tok = 'ai_guard_tokens_total{tenant="acme",model=';

is($m{qq($tok"o1-2024-12-17",type="reasoning"})}, 256,
   'metrics: an OpenAI model\'s reasoning tokens');
is($m{qq($tok"gemini-2.5-flash",type="reasoning"})}, 40,
   'metrics: a Gemini model\'s thoughts');
is($m{qq($tok"claude-sonnet-4",type="cache_write"})}, 50,
   'metrics: Anthropic\'s cache writes');
is($m{qq($tok"claude-sonnet-4",type="reasoning"})}, 0,
   'metrics: no reasoning where none was said');

$a->stop;
ok($a->log !~ /\[(?:alert|crit|emerg)\]/, 'no alert in the error log');

exit 0 unless $rport;

# --- Redis: the report of the cluster's usage hashes

sub rcli { my $out = `redis-cli -p $rport @_ 2>&1`; chomp $out; $out }

my $b = node('report-reasoning-redis', $base + 1, 1);

is(send_all($b), 4, 'with Redis: four answers');

my $g;
for (1 .. 60) {
    ($s, $h, $body) = $b->request('GET', '/ai-guard/usage?group=model');
    $g = groups($body);
    last if keys %$g == 4;
    sleep 0.1;
}

is_deeply($g, \%row, 'with Redis: the same columns from the usage hashes');

my $today = strftime('%Y-%m-%d', gmtime);
my ($hash) = grep { /o1-2024-12-17/ }
             split /\n/, rcli("--raw SMEMBERS ${prefix}days:$today");

ok($hash, 'the o1 row has its usage hash');
is(rcli("--raw HGET '$hash' reasoning_tokens"), '256',
   'the hash: reasoning_tokens');
is(rcli("--raw HGET '$hash' cache_write_tokens"), '0',
   'the hash: cache_write_tokens');

# a row as an older node wrote it: no reasoning_tokens, no
# cache_write_tokens

my $old = "${prefix}u:$today:4:acme6:acme-15:older0:";
rcli("HSET '$old' day $today tenant acme key_id acme-1 model older "
     . "stripe_customer '' requests 1 input_tokens 5 output_tokens 7 "
     . "cached_tokens 0 estimated_requests 0 cost_pico_usd 1000000");
rcli("SADD ${prefix}days:$today '$old'");

($s, $h, $body) = $b->request('GET', '/ai-guard/usage?group=model');
is($s, 200, 'with an older row: 200');
is_deeply(groups($body)->{older}, [5, 7, 0, '0.000001', 0, 0],
          'an older row: the two fields read as 0');
like($body, qr/"reasoning_tokens":296,"cache_write_tokens":150,"groups"/,
     '... and the tenant\'s sums are the newer rows\'');

$b->stop;
ok($b->log !~ /\[(?:alert|crit|emerg)\]/,
   'with Redis: no alert in the error log');

rcli("DEL '$old'");
