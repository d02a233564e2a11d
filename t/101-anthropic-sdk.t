# Anthropic's official Node SDK (@anthropic-ai/sdk, pinned) as the client:
# every rejection the SDK can be made to meet, in Anthropic's dialect, as
# its error object shows it; the table of docs/dialects.md is this test's
# output (AI_GUARD_WRITE_DOCS=1 writes it, otherwise the two must be the
# same), so the page cannot drift from what the SDK does.  Then the SDK's
# retry honouring retry-after, and both SDKs, OpenAI's too, raising their
# internal error class on an upstream that is down or too slow.  Needs
# node and npm (the npm registry) to install the SDKs under build/;
# skipped when they are not there.
#
# Plain Perl rather than blocks: the client is the SDK in a Node process
# of its own, with its own retries and timing, not Test::Nginx's.

use strict;
use warnings;

use Cwd qw(abs_path);
use FindBin;
use lib "$FindBin::Bin/helper";
use JSON::PP ();
use Test::More;
use AiGuardNginx;

my $top = abs_path("$FindBin::Bin/..");
my $sdk = '@anthropic-ai/sdk@1.14.0';
my $modules = AiGuardNginx::node_packages($top, [$sdk, '@anthropic-ai/sdk'],
                                          ['openai@4', 'openai']);

plan skip_all => 'node or the SDKs\' npm packages are not available'
    unless $modules;
plan tests => 101;

my $rpm = 60;

my $n = AiGuardNginx->new(name => 'anthropic-sdk',
                          port => ($ENV{TEST_NGINX_PORT} || 1984) + 202);
my $port = $n->port;
my $closed = $port + 1;    # of the test's range, where nothing listens

$n->write_file('html/keys.json', <<'_EOF_');
{"keys": [
  {"id": "small-1", "tenant": "sdk", "tier": "small",
   "sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"},
  {"id": "fast-1", "tenant": "sdk", "tier": "fast",
   "sha256": "b1bb55ae30f2941348d55891aae9fc1c933baacc030813420bd3745e6a160dcb"},
  {"id": "day-1", "tenant": "sdk", "tier": "day",
   "sha256": "ebd43f2b76b660fd3a61448ea4912b7fae13b3459237619c37b036b56c739354"}
]}
_EOF_

my $answer = '{"id":"msg_1","type":"message","role":"assistant",'
             . '"model":"claude-3-5-haiku-latest","content":[{"type":"text",'
             . '"text":"ok"}],"stop_reason":"end_turn","stop_sequence":null,'
             . '"usage":{"input_tokens":3,"output_tokens":1}}';

$n->write_config(<<"_EOC_");
    ai_guard_tier   small  models=claude-3-5-haiku* max_tokens=1000
                           max_body=4k;
    ai_guard_tier   fast   rpm=$rpm;
    ai_guard_tier   day    rpd=1;
    ai_guard_keys   \$TEST_NGINX_HTML_DIR/keys.json;
    limit_req_zone  \$server_port zone=busy:1m rate=1r/m;

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            ai_guard_prompt_deny "(?i)ignore previous" id=override;
            ai_guard_pii email;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

@{[ AiGuardNginx::failing_locations($closed) ]}

        location /mock/ {
            default_type application/json;
            echo_read_request_body;
            echo -n '$answer';
        }

        location /mock-slow/ {
            default_type application/json;
            echo_read_request_body;
            echo_sleep 2;
            echo -n '$answer';
        }
    }
_EOC_

$n->start;

local $ENV{AI_GUARD_NODE_MODULES} = $modules;
local $ENV{AI_GUARD_BASE_URL} = "http://127.0.0.1:$port";
local $ENV{AI_GUARD_KEY} = 'sk-aig-test-valid-0001';
local $ENV{AI_GUARD_FAST_KEY} = 'sk-aig-test-fast-00001';
local $ENV{AI_GUARD_DAY_KEY} = 'sk-aig-test-day-000001';
local $ENV{AI_GUARD_RPM} = $rpm;

my $out = `node $FindBin::Bin/js/anthropic-sdk.js`;
diag $out if $?;

my $json = JSON::PP->new;
my %r = map { my $o = $json->decode($_); ($o->{what} // 'error') => $o }
        grep { /^\{/ } split /\n/, $out;

ok($r{done}, 'the script ran to its end') or diag $out;

# the rejections: each the class its status makes, Anthropic's type, a
# message, the request-id header and the body's request_id the same

my @cases = (
    ['no key', 401, 'AuthenticationError', 'authentication_error'],
    ['a key no entry has', 401, 'AuthenticationError',
     'authentication_error'],
    ['a model the key may not use', 403, 'PermissionDeniedError',
     'permission_error'],
    ['max_tokens over the tier\'s', 400, 'BadRequestError',
     'invalid_request_error'],
    ['a field of the wrong type', 400, 'BadRequestError',
     'invalid_request_error'],
    ['a deny rule', 400, 'BadRequestError', 'invalid_request_error'],
    ['personal data', 400, 'BadRequestError', 'invalid_request_error'],
    ['a body over max_body', 413, 'ContentTooLargeError',
     'request_too_large'],
    ['a quota spent (rpd)', 429, 'RateLimitError', 'rate_limit_error'],
    ['a rate limit spent (rpm)', 429, 'RateLimitError', 'rate_limit_error'],
    ['upstream down', 502, 'InternalServerError', 'api_error'],
    ['upstream too slow', 504, 'GatewayTimeoutError', 'timeout_error'],
    ['limit_req', 503, 'ServiceUnavailableError', 'overloaded_error'],
);

my $table = "| what the client did | `e.status` | `e.constructor.name` "
            . "| `e.type` |\n| --- | --- | --- | --- |\n";

for my $c (@cases) {
    my ($what, $status, $class, $type) = @$c;
    my $e = $r{$what} || {};

    is($e->{class}, $class, "$what: $class");
    is($e->{status}, $status, "$what: e.status $status");
    is($e->{type}, $type, "$what: e.type $type");
    ok(length($e->{message} // '') > 10, "$what: e.apiMessage");
    like($e->{requestID} // '', qr/^req_[0-9a-f]{32}$/,
         "$what: e.requestID from the request-id header");
    is($e->{bodyRequestID}, $e->{requestID},
       "$what: the body's request_id the same");

    $table .= "| $what | $e->{status} | `" . ($e->{class} // '') . "` | `"
              . ($e->{type} // '') . "` |\n";
}

ok($r{'upstream down'}{internal} && $r{'upstream too slow'}{internal}
   && $r{limit_req}{internal},
   'the 502, 503 and 504 are instances of Anthropic.InternalServerError');

my $limited = $r{'a rate limit spent (rpm)'} || {};
is($limited->{retryAfter}, 1, "retry-after: 1 s, one refill of rpm=$rpm");
like($limited->{reset} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
     'anthropic-ratelimit-requests-reset: an RFC 3339 date');

ok(!defined $limited->{shouldRetry}, '... no x-should-retry: it may');
is($r{'a quota spent (rpd)'}{shouldRetry}, 'false',
   'a quota spent: x-should-retry: false');
is($r{'quota, retries on'}{raised}, 'RateLimitError',
   '... so the SDK with retries on raises at once, not waiting for the '
   . 'reset');

is($r{retried}{content}, 'ok', 'with retries on, the SDK succeeds');
ok(($r{retried}{waitedMs} // 0) >= 900,
   "... having waited what retry-after said ("
   . ($r{retried}{waitedMs} // 'none') . ' ms)');

is($r{'upstream down, one retry'}{status}, 502,
   'with one retry, the 502 still');
my @tries = $n->log =~ m{connect\(\) failed [^\n]* request: "POST /down/v1/messages }g;
is(scalar(@tries), 3, 'the SDK retried the 502 once (3 tries in all)');

# OpenAI's SDK: the same failures in OpenAI's shape

for my $c (['openai: upstream down', 502, 'upstream_unavailable'],
           ['openai: upstream too slow', 504, 'upstream_timeout'])
{
    my ($what, $status, $code) = @$c;
    my $e = $r{$what} || {};

    is($e->{class}, 'InternalServerError', "$what: InternalServerError");
    ok($e->{internal}, "$what: an instance of OpenAI.InternalServerError");
    is($e->{status}, $status, "$what: e.status $status");
    is($e->{type}, 'server_error', "$what: e.type server_error");
    is($e->{code}, $code, "$what: e.code $code");
}

# the table of docs/dialects.md is this one

my $doc = "$top/docs/dialects.md";
my $text = do { local (@ARGV, $/) = $doc; <> } // '';
my ($old) = $text =~ /<!-- sdk-table -->\n(.*?)<!-- \/sdk-table -->/s;

if ($ENV{AI_GUARD_WRITE_DOCS} && defined $old) {
    $text =~ s/(<!-- sdk-table -->\n).*?(<!-- \/sdk-table -->)/$1$table$2/s;
    open my $fh, '>', $doc or die "$doc: $!";
    print $fh $text;
    close $fh;
    $old = $table;
}

is($old, $table, 'docs/dialects.md has the table the SDK made')
    or diag("run with AI_GUARD_WRITE_DOCS=1 to write:\n$table");

unlike($n->log, qr/\[alert\]|\[crit\]/, 'no [alert], no [crit]');

$n->stop;
