# The usage report: after N metered requests its totals are the sum of the
# per-request log lines and the cost is exact to the last digit; grouping,
# CSV, Stripe meter events with stable identifiers, bad parameters, access
# control, and a client that goes away in the middle of a stream.
#
# The log lines are checked one kind of request a block (TEST 1-6: the
# line of each request, exactly, once a request); TEST 7 sends the same
# requests to one nginx and checks the reports exactly; the report's
# totals are the sum of those lines by the table %line below, which both
# sides are checked against, and by the checks before run_tests().

use Test::Nginx::Socket;
use Digest::SHA ();
use FindBin;
use lib "$FindBin::Bin/helper";
use POSIX ();
use AiGuardBlocks;

repeat_each(1);

# five checks a request: its status, its body (TEST 1-6: its log line,
# grep_error_log, instead; their bodies are the mock's) and three log
# patterns (the default --- no_error_log; TEST 9's own): 10 requests in
# TEST 1-6, 34 in TEST 7-11; then 3 header lines (TEST 7) and 2 error_log
# lines (TEST 9, 10); and the 12 checks of the arithmetic below
plan tests => repeat_each() * (5 * (10 + 34) + 3 + 2) + 12;

no_shuffle();

# two keys of acme, one of them without a Stripe customer, and one of beta
our $user_files = keys_file(
    ['acme-1', 'sk-aig-test-valid-0001', tenant => 'acme', tier => 'pro',
     stripe_customer => 'cus_acme'],
    ['acme-2', 'sk-aig-test-beta-00001', tenant => 'acme', tier => 'pro'],
    ['beta-1', 'sk-aig-test-future-0001', tenant => 'beta', tier => 'pro',
     stripe_customer => 'cus_beta']);

our %bearer = (
    'acme-1' => 'Authorization: Bearer sk-aig-test-valid-0001',
    'acme-2' => 'Authorization: Bearer sk-aig-test-beta-00001',
    'beta-1' => 'Authorization: Bearer sk-aig-test-future-0001',
);

our $mini = '{"id":"c1","object":"chat.completion","model":"gpt-4o-mini",'
    . '"choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}],'
    . '"usage":{"prompt_tokens":1234,"completion_tokens":56,'
    . '"total_tokens":1290,"prompt_tokens_details":{"cached_tokens":200}}}';

our $four = '{"id":"c2","object":"chat.completion","model":"gpt-4o",'
    . '"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":20}}';

our @claude = (
    "event: message_start\n",
    'data: {"type":"message_start","message":{"model":"claude-3-5-haiku",'
    . '"usage":{"input_tokens":25,"cache_read_input_tokens":5,'
    . '"output_tokens":1}}}' . "\n\n",
    "event: message_delta\n",
    'data: {"type":"message_delta","usage":{"output_tokens":15}}' . "\n\n",
    "event: message_delta\n",
    'data: {"type":"message_delta","usage":{"output_tokens":42}}' . "\n\n",
    "event: message_stop\n",
    'data: {"type":"message_stop"}' . "\n\n",
);

our $http_config = <<'_EOC_';
    ai_guard_tier  pro  max_tokens=1000;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;

    ai_guard_price  gpt-4o-mini*  input=0.15 output=0.60 cached_input=0.075;
    ai_guard_price  claude-*      input=3 output=15 cached_input=0.30;
    ai_guard_price  *             input=2.50 output=10.00;

    ai_guard_usage_event_name  llm_tokens;

    log_format  meter  'meter decision=$ai_guard_decision '
                       'tenant=$ai_guard_tenant key=$ai_guard_key_id '
                       'model=$ai_guard_model '
                       'in=$ai_guard_prompt_tokens '
                       'out=$ai_guard_completion_tokens '
                       'cached=$ai_guard_cached_tokens '
                       'source=$ai_guard_usage_source '
                       'cost=$ai_guard_cost_usd';
_EOC_

# the meter lines go to the error log, where the blocks read them
our $config = guarded_location('/v1/', 'proxy_buffering off;',
                               'access_log logs/error.log meter;')
    . echo_location('/mock/mini', 'application/json', $mini)
    . echo_location('/mock/four', 'application/json', $four)
    . echo_location('/mock/claude', 'text/event-stream', @claude)
    . <<'_EOC_';
    location = /mock/slow {
        default_type text/event-stream;
        echo -n 'data: {"choices":[{"delta":{"content":"0123456789abcdef"}}],"usage":null}\n\n';
        echo_flush;
        echo_sleep 2;
        echo -n 'data: {"choices":[{"delta":{"content":"late"}}],"usage":null}\n\n';
        echo_flush;
        echo_sleep 2;
        echo -n 'data: [DONE]\n\n';
    }

    location = /ai-guard/usage {
        allow 127.0.0.1;
        deny all;
        ai_guard_usage;
    }

    location = /denied/usage {
        deny all;
        ai_guard_usage;
    }
_EOC_

# The log line of each kind of request: the upstream's model, tokens and
# cost (USD per 1M tokens: gpt-4o-mini 1034 input at 0.15, 200 cached at
# 0.075 and 56 output at 0.60: 203.7; claude-3-5-haiku 25 input at 3, 5
# cached at 0.30 and 42 output at 15: 706.5; gpt-4o 100 input at 2.50 and
# 20 output at 10: 450).  "model=" is the model the request asked for.
our %line = (
    mini   => { model => 'gpt-4o-mini', in => 1234, out => 56, cached => 200,
                cost => '0.0002037' },
    claude => { model => 'claude-3-5-haiku', in => 30, out => 42,
                cached => 5, cost => '0.0007065' },
    four   => { model => 'gpt-4o', in => 100, out => 20, cached => 0,
                cost => '0.000450' },
);

# what the report block sends, key and kind
our @plan = ((['acme-1', 'mini']) x 3, (['acme-1', 'claude']) x 2,
             (['acme-2', 'four']) x 2, ['beta-1', 'mini'],
             ['beta-1', 'claude']);

sub post {
    my ($kind, $body) = @_;
    return "POST /v1/$kind\n" . ($body // '{"model":"m","prompt":"hi"}');
}

sub meter {
    my ($key, $kind) = @_;
    my $l = $line{$kind};
    my $tenant = $key =~ /^(acme|beta)/ ? $1 : die;
    return "meter decision=allow tenant=$tenant key=$key model=m "
           . "in=$l->{in} out=$l->{out} cached=$l->{cached} "
           . "source=upstream cost=$l->{cost}\n";
}

our $today = POSIX::strftime('%Y-%m-%d', gmtime);
our $month = substr($today, 0, 8) . '01';
our $t0 = time;

# what the report says of each tenant (JSON and CSV alike)
our %total = (
    acme => { requests => 7, input_tokens => 3962, output_tokens => 292,
              cached_tokens => 610, cost_usd => '0.0029241' },
    beta => { requests => 2, input_tokens => 1264, output_tokens => 98,
              cached_tokens => 205, cost_usd => '0.0009102' },
);

sub obj {
    my ($t, $name) = @_;
    return qq({"$name":"$t->{$name}","requests":$t->{requests},)
        . qq("input_tokens":$t->{input_tokens},)
        . qq("output_tokens":$t->{output_tokens},)
        . qq("cached_tokens":$t->{cached_tokens},"estimated_requests":0,)
        . qq("cost_usd":"$t->{cost_usd}",)
        . qq("reasoning_tokens":0,"cache_write_tokens":0});
}

sub tenant { obj({ %{ $total{$_[0]} }, tenant => $_[0] }, 'tenant') }

sub report {
    my ($from, $to, @tenants) = @_;
    return qq({"from":"$from","to":"$to","tenants":[)
           . join(',', @tenants) . "]}\n";
}

# "0.0002037" as pico-USD, the ledger's unit
sub pico {
    my ($usd) = @_;
    my ($i, $f) = $usd =~ /^(\d+)\.(\d+)$/ or die "not an amount: $usd";
    return $i * 10**12 + substr($f . '0' x 12, 0, 12);
}

# a Stripe meter event's identifier
sub ident {
    my ($tenant, $customer, $day, $model) = @_;
    return substr(Digest::SHA::sha256_hex(
        length($tenant) . ":$tenant" . length($customer) . ":$customer"
        . $day . length($model) . ":$model"), 0, 32);
}

# a meter event, its timestamp the moment of the export, never in the
# future: today ends now, not at midnight.  Not more than a minute before
# this test started: a worker's cached time, under ASan on a busy
# machine, was once 3 s behind the test's own clock
sub event {
    my ($tenant, $customer, $model, $value) = @_;
    return '\{"event_name":"llm_tokens","timestamp":(\d+)'
           . '(?(?{ $^N > time || $^N < $::t0 - 60 })(*FAIL)),'
           . '"identifier":"' . ident($tenant, $customer, $::today, $model)
           . '","payload":\{"stripe_customer_id":"' . $customer
           . '","value":"' . $value . '"\}\}\n';
}

# the bad parameters of the report, and the parameter each error names
our @bad = (['from=2026-02-30', 'from'], ['from=2026-1-01', 'from'],
            ['to=yesterday', 'to'], ['from=2026-02-01&to=2026-01-31', 'to'],
            ['group=tenant', 'group'], ['format=xml', 'format'],
            ['tenant=', 'tenant']);

# what a client that leaves mid-stream (HTTP/1.0: the body is not
# chunked, so the part that came is a body) got: the first event
our $began = qr/^data: \{"choices":\[\{"delta":\{"content":"0123456789abcdef"\}\}\],"usage":null\}\n\n\z/;

# Stripe: a key without a customer (acme-2) is skipped; input + output
# tokens a customer and model
{
    use re 'eval';
    our $stripe = qr/\A${\ event('acme', 'cus_acme', 'claude-3-5-haiku', 2 * 72)
        }${\ event('acme', 'cus_acme', 'gpt-4o-mini', 3 * 1290)
        }${\ event('beta', 'cus_beta', 'claude-3-5-haiku', 72)
        }${\ event('beta', 'cus_beta', 'gpt-4o-mini', 1290)}\z/;
}

# The report's totals are the sum of the log lines: each tenant's
# requests, tokens and cost added up from %line, as the blocks meter them,
# are what the report block expects.  And the cost by hand, in 1e-7 USD.
{
    my %sum;

    for my $p (@plan) {
        my ($key, $kind) = @$p;
        my $s = $sum{ $key =~ /^(acme|beta)/ ? $1 : die } ||= {};
        $s->{requests}++;
        $s->{input_tokens} += $line{$kind}{in};
        $s->{output_tokens} += $line{$kind}{out};
        $s->{cached_tokens} += $line{$kind}{cached};
        $s->{cost} += pico($line{$kind}{cost});
    }

    for my $t (qw(acme beta)) {
        for my $f (qw(requests input_tokens output_tokens cached_tokens)) {
            is $total{$t}{$f}, $sum{$t}{$f},
                "$t: $f is the sum of the log lines";
        }

        is pico($total{$t}{cost_usd}), $sum{$t}{cost},
            "$t: cost_usd is the sum of the logged costs";
    }

    is pico($total{acme}{cost_usd}), (3 * 2037 + 2 * 7065 + 2 * 4500) * 10**5,
        'acme: the hand-computed cost';
    is pico($total{beta}{cost_usd}), (2037 + 7065) * 10**5,
        'beta: the hand-computed cost';
}

defaults(http_config => $http_config, user_files => $user_files,
         config => $config);

run_tests();

__DATA__

=== TEST 1: acme-1, gpt-4o-mini JSON: one exact log line a request
--- request eval: [(::post('mini')) x 3]
--- more_headers eval: [($::bearer{'acme-1'}) x 3]
--- error_code eval: [200, 200, 200]
--- grep_error_log eval: qr/meter .*/
--- grep_error_log_out eval: ::meter('acme-1', 'mini')



=== TEST 2: acme-1, a claude stream: one exact log line a request
--- request eval: [(::post('claude')) x 2]
--- more_headers eval: [($::bearer{'acme-1'}) x 2]
--- error_code eval: [200, 200]
--- grep_error_log eval: qr/meter .*/
--- grep_error_log_out eval: ::meter('acme-1', 'claude')



=== TEST 3: acme-2, gpt-4o JSON: one exact log line a request
--- request eval: [(::post('four')) x 2]
--- more_headers eval: [($::bearer{'acme-2'}) x 2]
--- error_code eval: [200, 200]
--- grep_error_log eval: qr/meter .*/
--- grep_error_log_out eval: ::meter('acme-2', 'four')



=== TEST 4: beta-1, gpt-4o-mini JSON: one exact log line
--- request eval: ::post('mini')
--- more_headers eval: $::bearer{'beta-1'}
--- grep_error_log eval: qr/meter .*/
--- grep_error_log_out eval: ::meter('beta-1', 'mini')



=== TEST 5: beta-1, a claude stream: one exact log line
--- request eval: ::post('claude')
--- more_headers eval: $::bearer{'beta-1'}
--- grep_error_log eval: qr/meter .*/
--- grep_error_log_out eval: ::meter('beta-1', 'claude')



=== TEST 6: a rejection has a log line too, without usage
--- request eval: ::post('mini', '{"model":"m","prompt":"hi","max_tokens":5000}')
--- more_headers eval: $::bearer{'acme-1'}
--- error_code: 400
--- grep_error_log eval: qr/meter .*/
--- grep_error_log_out
meter decision=reject tenant=acme key=acme-1 model=m in=- out=- cached=- source=- cost=-



=== TEST 7: the report of those requests: totals, cost to the last digit, groups, CSV, Stripe
--- request eval
[(map { ::post($_->[1]) } @::plan),
 ::post('mini', '{"model":"m","prompt":"hi","max_tokens":5000}'),
 "GET /ai-guard/usage",
 "GET /ai-guard/usage?from=$::month&to=$::today",
 "GET /ai-guard/usage?from=2020-01-01&to=2020-01-31",
 "GET /ai-guard/usage?tenant=beta",
 "GET /ai-guard/usage?tenant=acme&group=model",
 "GET /ai-guard/usage?tenant=acme&group=key",
 "GET /ai-guard/usage?group=day",
 "GET /ai-guard/usage?format=csv",
 "GET /ai-guard/usage?format=csv&group=model&tenant=beta",
 "GET /ai-guard/usage?format=stripe",
 "GET /ai-guard/usage?format=stripe",
 "GET /ai-guard/usage?format=stripe&from=2020-01-01&to=2020-01-31"]
--- more_headers eval
[(map { $::bearer{$_->[0]} } @::plan), $::bearer{'acme-1'}, ("") x 12]
--- error_code eval
[(200) x 9, 400, (200) x 12]
--- response_headers eval
[("") x 10, "Content-Type: application/json", ("") x 6,
 "Content-Type: text/csv", "", "Content-Type: application/x-ndjson",
 "", ""]
--- response_body eval
[$::mini, $::mini, $::mini, CORE::join('', @::claude), CORE::join('', @::claude),
 $::four, $::four, $::mini, CORE::join('', @::claude),
 qr/"code":"max_tokens_exceeded"/,
 # the totals, the cost to the last digit
 ::report($::month, $::today, ::tenant('acme'), ::tenant('beta')),
 # the same days asked for by name
 ::report($::month, $::today, ::tenant('acme'), ::tenant('beta')),
 # a month without usage
 ::report('2020-01-01', '2020-01-31'),
 # one tenant: nothing of acme
 ::report($::month, $::today, ::tenant('beta')),
 # grouped by model: sorted by model, each exact
 ::report($::month, $::today, substr(::tenant('acme'), 0, -1)
          . ',"groups":['
          . CORE::join(',', map { ::obj($_, 'model') }
                 { model => 'claude-3-5-haiku', requests => 2,
                   input_tokens => 60, output_tokens => 84,
                   cached_tokens => 10, cost_usd => '0.001413' },
                 { model => 'gpt-4o', requests => 2, input_tokens => 200,
                   output_tokens => 40, cached_tokens => 0,
                   cost_usd => '0.000900' },
                 { model => 'gpt-4o-mini', requests => 3,
                   input_tokens => 3702, output_tokens => 168,
                   cached_tokens => 600, cost_usd => '0.0006111' })
          . ']}'),
 # grouped by key
 ::report($::month, $::today, substr(::tenant('acme'), 0, -1)
          . ',"groups":['
          . CORE::join(',', map { ::obj($_, 'key') }
                 { key => 'acme-1', requests => 5, input_tokens => 3762,
                   output_tokens => 252, cached_tokens => 610,
                   cost_usd => '0.0020241' },
                 { key => 'acme-2', requests => 2, input_tokens => 200,
                   output_tokens => 40, cached_tokens => 0,
                   cost_usd => '0.000900' })
          . ']}'),
 # grouped by day: today's is all there is
 ::report($::month, $::today,
          map { substr(::tenant($_), 0, -1) . ',"groups":['
                . ::obj({ %{ $::total{$_} }, day => $::today }, 'day')
                . ']}' } qw(acme beta)),
 # CSV: a header row, a row a tenant
 "tenant,requests,input_tokens,output_tokens,cached_tokens,"
 . "estimated_requests,cost_usd,reasoning_tokens,cache_write_tokens\n"
 . "acme,7,3962,292,610,0,0.0029241,0,0\n"
 . "beta,2,1264,98,205,0,0.0009102,0,0\n",
 # CSV: a row a tenant and model
 "tenant,model,requests,input_tokens,output_tokens,cached_tokens,"
 . "estimated_requests,cost_usd,reasoning_tokens,cache_write_tokens\n"
 . "beta,claude-3-5-haiku,1,30,42,5,0,0.0007065,0,0\n"
 . "beta,gpt-4o-mini,1,1234,56,200,0,0.0002037,0,0\n",
 # Stripe ($::stripe): the same identifiers in both exports
 ($::stripe) x 2,
 # an empty month has no events
 ""]



=== TEST 8: bad parameters: 400 in OpenAI's error shape, naming the parameter; POST: 405
--- request eval
[(map { "GET /ai-guard/usage?$_->[0]" } @::bad), "POST /ai-guard/usage\n{}"]
--- error_code eval
[(400) x 7, 405]
--- response_body_like eval
[(map { '^\{"error":\{"message":"(?:[^"\\\\]|\\\\.)+","type":"invalid_request_error","param":"' . $_->[1] . '","code":"invalid_request"\}\}\n\z' } @::bad),
 '<title>405 Not Allowed</title>']



=== TEST 9: deny all: 403 from nginx, which logs its own [error] line and nothing else
--- request
GET /denied/usage
--- error_code: 403
--- response_body_like: 403 Forbidden
--- error_log
access forbidden by rule
--- no_error_log eval
[qr/\[error\](?!.*access forbidden by rule)/, '[alert]', '[crit]']



=== TEST 10: a client that goes away in the middle of a stream: logged, settled on the estimate
--- request eval
"POST /v1/slow HTTP/1.0\n"
. '{"model":"gpt-4o-mini","stream":true,"prompt":"hi"}'
--- more_headers eval: $::bearer{'acme-2'}
--- timeout: 1
--- abort
--- response_body eval: $::began
--- error_log
meter decision=allow tenant=acme key=acme-2 model=gpt-4o-mini in=5 out=4 cached=0 source=estimate cost=0.00000315



=== TEST 11: a client that goes away in the middle of a stream is in the report
--- request eval
["POST /v1/slow HTTP/1.0\n"
 . '{"model":"gpt-4o-mini","stream":true,"prompt":"hi"}',
 "GET /ai-guard/usage?tenant=acme&group=key"]
--- more_headers eval
[$::bearer{'acme-2'}, ""]
--- timeout: 1
--- abort
--- response_body eval
[$::began,
 qr/\{"key":"acme-2","requests":1,"input_tokens":5,"output_tokens":4,"cached_tokens":0,"estimated_requests":1,"cost_usd":"0.00000315","reasoning_tokens":0,"cache_write_tokens":0\}/]
