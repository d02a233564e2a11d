# The usage report: after N metered requests its totals are the sum of the
# per-request log lines and the cost is exact to the last digit; grouping,
# CSV, Stripe meter events with stable identifiers, bad parameters, access
# control, and a client that goes away in the middle of a stream.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use POSIX qw(strftime);
use Test::More;
use Time::HiRes qw(sleep);
use AiGuardNginx;

my %digest = (
    'sk-aig-test-valid-0001' =>
        '86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e',
    'sk-aig-test-beta-00001' =>
        '39c81276bc9edac2614e74ea48f6f4b687a3562ca7ba8b0d19806b3e69afde2c',
    'sk-aig-test-future-0001' =>
        '5ce7fee67f99f77555e6fe5192f9841a0709966866a04b289848357f584a8db6',
);

# two keys of acme, one of them without a Stripe customer, and one of beta
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

my $mini = '{"id":"c1","object":"chat.completion","model":"gpt-4o-mini",'
    . '"choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}],'
    . '"usage":{"prompt_tokens":1234,"completion_tokens":56,'
    . '"total_tokens":1290,"prompt_tokens_details":{"cached_tokens":200}}}';

my $four = '{"id":"c2","object":"chat.completion","model":"gpt-4o",'
    . '"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":20}}';

my @claude = (
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

sub echo_lines {
    join '', map {
        (my $q = $_) =~ s/([\\'])/\\$1/g;
        $q =~ s/\n/\\n/g;
        "            echo -n -- '$q';\n            echo_flush;\n"
    } @_;
}

my $claude_echo = echo_lines(@claude);
my $mini_echo = echo_lines($mini);
my $four_echo = echo_lines($four);

my $http = <<"_EOC_";
    ai_guard_tier  pro  max_tokens=1000;
    ai_guard_keys  \$TEST_NGINX_HTML_DIR/keys.json;

    ai_guard_price  gpt-4o-mini*  input=0.15 output=0.60 cached_input=0.075;
    ai_guard_price  claude-*      input=3 output=15 cached_input=0.30;
    ai_guard_price  *             input=2.50 output=10.00;

    ai_guard_usage_event_name  llm_tokens;

    log_format  meter  'meter decision=\$ai_guard_decision '
                       'tenant=\$ai_guard_tenant key=\$ai_guard_key_id '
                       'model=\$ai_guard_model '
                       'in=\$ai_guard_prompt_tokens '
                       'out=\$ai_guard_completion_tokens '
                       'cached=\$ai_guard_cached_tokens '
                       'source=\$ai_guard_usage_source '
                       'cost=\$ai_guard_cost_usd';

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            proxy_buffering off;
            access_log logs/meter.log meter;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

        location = /mock/mini {
            default_type application/json;
$mini_echo
        }

        location = /mock/four {
            default_type application/json;
$four_echo
        }

        location = /mock/claude {
            default_type text/event-stream;
$claude_echo
        }

        location = /mock/slow {
            default_type text/event-stream;
            echo -n 'data: {"choices":[{"delta":{"content":"0123456789abcdef"}}],"usage":null}\\n\\n';
            echo_flush;
            echo_sleep 2;
            echo -n 'data: {"choices":[{"delta":{"content":"late"}}],"usage":null}\\n\\n';
            echo_flush;
            echo_sleep 2;
            echo -n 'data: [DONE]\\n\\n';
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
    }
_EOC_

my $n = AiGuardNginx->new(name => 'report',
                          port => ($ENV{TEST_NGINX_PORT} || 1984) + 155);
$n->write_file('html/keys.json', $keys);
$n->write_config($http);
$n->start;

my %bearer = (
    'acme-1' => ['Authorization: Bearer sk-aig-test-valid-0001'],
    'acme-2' => ['Authorization: Bearer sk-aig-test-beta-00001'],
    'beta-1' => ['Authorization: Bearer sk-aig-test-future-0001'],
);

my $today = strftime('%Y-%m-%d', gmtime);

sub send_one {
    my ($key, $path) = @_;
    my ($status) = $n->request('POST', "/v1/$path", $bearer{$key},
                               '{"model":"m","prompt":"hi"}');
    return $status;
}

sub usage {
    my ($args) = @_;
    return $n->request('GET', '/ai-guard/usage' . ($args // ''));
}

# "0.0002037" as pico-USD, the ledger's unit
sub pico {
    my ($usd) = @_;
    my ($i, $f) = $usd =~ /^(\d+)\.(\d+)$/ or die "not an amount: $usd";
    return $i * 10**12 + substr($f . '0' x 12, 0, 12);
}

sub meter_lines {
    my @lines;
    my $log = $n->log('meter.log');
    while ($log =~ /^meter (.*)$/mg) {
        push @lines, { map { split /=/, $_, 2 } split / /, $1 };
    }
    return @lines;
}

# poll: the log phase runs after the client has its response
sub wait_lines {
    my ($want) = @_;
    for (1 .. 100) {
        my @l = meter_lines();
        return @l if @l >= $want;
        sleep 0.05;
    }
    return meter_lines();
}

# ---------------------------------------------------------------------------

my @plan = (
    (['acme-1', 'mini']) x 3,
    (['acme-1', 'claude']) x 2,
    (['acme-2', 'four']) x 2,
    ['beta-1', 'mini'],
    ['beta-1', 'claude'],
);

is send_one(@$_), 200, "request $_->[0] $_->[1]" for @plan;

# a rejection: counted in the metrics, never in the report
my ($st) = $n->request('POST', '/v1/mini', $bearer{'acme-1'},
                       '{"model":"m","prompt":"hi","max_tokens":5000}');
is $st, 400, 'max_tokens over the cap is rejected';

my @lines = wait_lines(scalar @plan + 1);
is scalar @lines, @plan + 1, 'one log line a request';

my ($rs, $rh, $rb) = usage();
is $rs, 200, 'report: 200';
is $rh->{'content-type'}, 'application/json', 'report: application/json';

my $acme_cost = 3 * 2037 + 2 * 7065 + 2 * 4500;   # 1e-7 USD
my $beta_cost = 2037 + 7065;

my $month = substr($today, 0, 8) . '01';

my $expect = qq({"from":"$month","to":"$today","tenants":[)
    . '{"tenant":"acme","requests":7,'
    . '"input_tokens":' . (3 * 1234 + 2 * 30 + 2 * 100) . ','
    . '"output_tokens":' . (3 * 56 + 2 * 42 + 2 * 20) . ','
    . '"cached_tokens":' . (3 * 200 + 2 * 5) . ','
    . '"estimated_requests":0,"cost_usd":"0.0029241"},'
    . '{"tenant":"beta","requests":2,"input_tokens":1264,'
    . '"output_tokens":98,"cached_tokens":205,"estimated_requests":0,'
    . '"cost_usd":"0.0009102"}]}' . "\n";

is $rb, $expect, 'report: the totals, the cost to the last digit';
is pico('0.0029241'), $acme_cost * 10**5, 'acme: the hand-computed cost';

# the report's totals are the sum of the log lines
{
    my %sum;

    for my $l (grep { $_->{decision} eq 'allow' } @lines) {
        my $s = $sum{$l->{tenant}} ||= {};
        $s->{requests}++;
        $s->{input_tokens} += $l->{in};
        $s->{output_tokens} += $l->{out};
        $s->{cached_tokens} += $l->{cached};
        $s->{cost} += pico($l->{cost});
    }

    for my $t (qw(acme beta)) {
        my ($obj) = $rb =~ /\{"tenant":"$t",([^}]*)\}/;
        my %r = $obj =~ /"(\w+)":"?([\d.]+)"?/g;

        for my $f (qw(requests input_tokens output_tokens cached_tokens)) {
            is $r{$f}, $sum{$t}{$f}, "$t: $f is the sum of the log lines";
        }

        is pico($r{cost_usd}), $sum{$t}{cost},
            "$t: cost_usd is the sum of the logged costs";
    }
}

# the same days asked for by name; days with nothing in them
($rs, $rh, my $named) = usage("?from=$month&to=$today");
is $named, $rb, 'from= and to= naming the default range';

($rs, $rh, $rb) = usage('?from=2020-01-01&to=2020-01-31');
is $rb, qq({"from":"2020-01-01","to":"2020-01-31","tenants":[]}\n),
    'a month without usage';

($rs, $rh, $rb) = usage('?tenant=beta');
like $rb, qr/^\{"from":"[^"]+","to":"[^"]+","tenants":\[\{"tenant":"beta",/,
    'tenant=beta';
unlike $rb, qr/acme/, 'tenant=beta: nothing of acme';

# grouped
($rs, $rh, $rb) = usage('?tenant=acme&group=model');
like $rb, qr/"groups":\[\{"model":"claude-3-5-haiku","requests":2,"input_tokens":60,"output_tokens":84,"cached_tokens":10,"estimated_requests":0,"cost_usd":"0.001413"\},\{"model":"gpt-4o","requests":2,"input_tokens":200,"output_tokens":40,"cached_tokens":0,"estimated_requests":0,"cost_usd":"0.000900"\},\{"model":"gpt-4o-mini","requests":3,"input_tokens":3702,"output_tokens":168,"cached_tokens":600,"estimated_requests":0,"cost_usd":"0.0006111"\}\]\}\]\}/,
    'group=model: sorted by model, each exact';

($rs, $rh, $rb) = usage('?tenant=acme&group=key');
like $rb, qr/"groups":\[\{"key":"acme-1","requests":5,.*"cost_usd":"0.0020241"\},\{"key":"acme-2","requests":2,.*"cost_usd":"0.000900"\}\]/,
    'group=key';

($rs, $rh, $rb) = usage('?group=day');
like $rb, qr/"tenant":"acme".*"groups":\[\{"day":"$today","requests":7,/,
    'group=day';

# CSV
($rs, $rh, $rb) = usage('?format=csv');
is $rh->{'content-type'}, 'text/csv', 'csv: text/csv';
is $rb, "tenant,requests,input_tokens,output_tokens,cached_tokens,"
        . "estimated_requests,cost_usd\n"
        . "acme,7,3962,292,610,0,0.0029241\n"
        . "beta,2,1264,98,205,0,0.0009102\n",
    'csv: a header row, a row a tenant';

($rs, $rh, $rb) = usage('?format=csv&group=model&tenant=beta');
is $rb, "tenant,model,requests,input_tokens,output_tokens,cached_tokens,"
        . "estimated_requests,cost_usd\n"
        . "beta,claude-3-5-haiku,1,30,42,5,0,0.0007065\n"
        . "beta,gpt-4o-mini,1,1234,56,200,0,0.0002037\n",
    'csv: a row a tenant and model';

# Stripe
sub stripe_events {
    my ($body) = @_;
    my @ev;
    for my $line (split /\n/, $body) {
        my %e;
        ($e{event_name}, $e{timestamp}, $e{identifier}, $e{customer},
         $e{value}) = $line =~ /^\{"event_name":"([^"]*)","timestamp":(\d+),"identifier":"([0-9a-f]{32})","payload":\{"stripe_customer_id":"([^"]*)","value":"(\d+)"\}\}$/
            or fail("not a meter event: $line");
        push @ev, \%e;
    }
    return @ev;
}

my $t0 = time;
($rs, $rh, $rb) = usage('?format=stripe');
is $rh->{'content-type'}, 'application/x-ndjson', 'stripe: x-ndjson';

my @ev = stripe_events($rb);
is scalar @ev, 4, 'stripe: a key without a customer is skipped';

my %value = map { ("$_->{customer} $_->{identifier}" => $_->{value}) } @ev;

sub ident {
    my ($tenant, $customer, $day, $model) = @_;
    return substr(sha256_hex(length($tenant) . ":$tenant"
                             . length($customer) . ":$customer"
                             . $day . length($model) . ":$model"), 0, 32);
}

is $value{'cus_acme ' . ident('acme', 'cus_acme', $today, 'gpt-4o-mini')},
    3 * 1290, 'stripe: acme gpt-4o-mini, input + output';
is $value{'cus_acme ' . ident('acme', 'cus_acme', $today,
                              'claude-3-5-haiku')},
    2 * 72, 'stripe: acme claude';
is $value{'cus_beta ' . ident('beta', 'cus_beta', $today, 'gpt-4o-mini')},
    1290, 'stripe: beta gpt-4o-mini';
ok !grep({ $_->{value} == 240 } @ev), 'stripe: nothing of acme-2';
is_deeply [ map { $_->{event_name} } @ev ], [ ('llm_tokens') x 4 ],
    'stripe: the configured event name';
ok !grep({ $_->{timestamp} > time || $_->{timestamp} < $t0 - 1 } @ev),
    'stripe: today ends now, never in the future';

my ($rs2, $rh2, $rb2) = usage('?format=stripe');
is_deeply [ map { $_->{identifier} } stripe_events($rb2) ],
          [ map { $_->{identifier} } @ev ],
    'stripe: identifiers stable between two exports';

($rs, $rh, $rb) = usage('?format=stripe&from=2020-01-01&to=2020-01-31');
is $rs, 200, 'stripe: an empty month';
is $rb, '', 'stripe: an empty month has no events';

# bad parameters: 400 in OpenAI's error shape
for my $bad (['from=2026-02-30', 'from'], ['from=2026-1-01', 'from'],
             ['to=yesterday', 'to'], ['from=2026-02-01&to=2026-01-31', 'to'],
             ['group=tenant', 'group'], ['format=xml', 'format'],
             ['tenant=', 'tenant'])
{
    my ($s, $h, $b) = usage("?$bad->[0]");
    is $s, 400, "$bad->[0]: 400";
    like $b, qr/^\{"error":\{"message":"(?:[^"\\]|\\.)+","type":"invalid_request_error","param":"$bad->[1]","code":"invalid_request"\}\}\n\z/,
        "$bad->[0]: the error names the parameter";
}

($st) = $n->request('POST', '/ai-guard/usage', [], '{}');
is $st, 405, 'POST: 405';

($st) = $n->request('GET', '/denied/usage');
is $st, 403, 'deny all: 403 from nginx';

# a client that goes away in the middle of a stream is still billed
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $n->port, Timeout => 10)
        or die "connect: $!";
    my $body = '{"model":"gpt-4o-mini","stream":true,"prompt":"hi"}';

    print $s "POST /v1/slow HTTP/1.1\r\nHost: localhost\r\n"
             . "Authorization: Bearer sk-aig-test-beta-00001\r\n"
             . "Content-Length: " . length($body) . "\r\n\r\n$body";

    my $got = '';
    while ($got !~ /0123456789abcdef/) {
        my $r = sysread($s, $got, 4096, length $got) or last;
    }
    like $got, qr/^HTTP\/1\.1 200/, 'abort: the stream began';
    close $s;

    my @l = wait_lines(scalar @lines + 1);
    is scalar @l, @lines + 1, 'abort: logged';

    my $last = $l[-1];
    is $last->{source}, 'estimate', 'abort: settled on the estimate';

    ($rs, $rh, $rb) = usage('?tenant=acme&group=key');
    like $rb, qr/\{"key":"acme-2","requests":3,"input_tokens":${\(200 + $last->{in})},"output_tokens":${\(40 + $last->{out})},"cached_tokens":0,"estimated_requests":1,/,
        'abort: the request is in the report';
}

# deny all logs its own [error] line; nothing else may
my @errors = grep { !/access forbidden by rule/ }
             $n->log =~ /^.*\[(?:error|alert|emerg|crit)\].*$/mg;
is_deeply \@errors, [], 'no errors in error.log';

$n->stop;

done_testing;
