# ai_guard_dialect: every answer of the guard's own in the client's API,
# OpenAI's or Anthropic's, chosen by the directive or (auto) by the path
# and the anthropic-version header; Anthropic's error envelope, its
# request-id and its rate-limit headers; and nginx's own 502, 503 and 504
# pages of a guarded location answered as JSON in the dialect, an
# operator's error_page left to win, nothing billed that never reached
# the upstream and all that did.
#
# Plain Perl rather than blocks: the request-id header is compared with
# the body's request_id, the reset dates with the clock, and the usage
# report read after the failures.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use JSON::PP ();
use POSIX qw(strftime);
use Test::More;
use AiGuardNginx;

plan tests => 155;

my $n = AiGuardNginx->new(name => 'dialect',
                          port => ($ENV{TEST_NGINX_PORT} || 1984) + 200);
my $port = $n->port;
my $root = $n->root;
my $closed = $port + 1;    # of the test's range, where nothing listens

$n->write_file('html/keys.json', <<'_EOF_');
{"keys": [
  {"id": "d-1", "tenant": "dialect", "tier": "slow",
   "sha256": "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"},
  {"id": "d-2", "tenant": "fail", "tier": "free",
   "sha256": "a036903f572169a66693ec57e7fd5f04e1f5db893d1672210de8adbf72eb3987"}
]}
_EOF_

my $usage = '{"id":"c","object":"chat.completion","model":"gpt-4o-mini",'
            . '"choices":[],"usage":{"prompt_tokens":3,'
            . '"completion_tokens":1,"total_tokens":4}}';

$n->write_config(<<"_EOC_");
    ai_guard_tier   slow  rpm=1 tpm=100000;
    ai_guard_tier   free;
    ai_guard_keys   $root/html/keys.json;
    limit_req_zone  \$server_port zone=busy:1m rate=1r/m;
    limit_req_zone  \$server_port zone=busy2:1m rate=1r/m;

    server {
        listen 127.0.0.1:$port;

        location /v1/ {
            ai_guard on;
            proxy_pass http://127.0.0.1:$port/mock/;
        }

        location /oa/ {
            ai_guard on;
            ai_guard_dialect openai;
            proxy_pass http://127.0.0.1:$port/mock/;
        }

        location /an/ {
            ai_guard on;
            ai_guard_dialect anthropic;
            proxy_pass http://127.0.0.1:$port/mock/;
        }

@{[ AiGuardNginx::failing_locations($closed) ]}

        location /own/ {
            ai_guard on;
            error_page 502 /own-page.json;
            proxy_pass http://127.0.0.1:$closed;
        }

        location = /own-page.json {
            default_type application/json;
            return 200 '{"operator":"page"}';
        }

        location /own-guarded/ {
            ai_guard on;
            error_page 502 /guarded-page/;
            proxy_pass http://127.0.0.1:$closed;
        }

        location /own-busy/ {
            ai_guard on;
            limit_req zone=busy2;
            error_page 503 /guarded-page/;
            proxy_pass http://127.0.0.1:$port/mock/;
        }

        location /guarded-page/ {
            ai_guard on;
            default_type application/json;
            return 200 '{"operator":"guarded page"}';
        }

        location /mock/ {
            default_type application/json;
            echo_read_request_body;
            echo -n '$usage';
        }

        location /mock-slow/ {
            default_type application/json;
            echo_read_request_body;
            echo_sleep 2;
            echo -n '$usage';
        }

        location = /usage {
            ai_guard_usage;
        }
    }
_EOC_

$n->start;

my $key = 'Authorization: Bearer sk-aig-test-valid-0001';
my $fail = 'x-api-key: sk-aig-test-fail-00001';
my $chat = '{"model":"gpt-4o-mini","messages":[{"role":"user",'
           . '"content":"hi"}]}';
my $msg = '{"model":"claude-3-5-haiku","max_tokens":10,"messages":[{"role":'
          . '"user","content":"hi"}]}';
my $json = JSON::PP->new;

# an Anthropic error: its envelope, whole, and its request-id
sub anthropic_error {
    my ($what, $status, $h, $b, $want_status, $type) = @_;
    my $e = eval { $json->decode($b) } || {};

    is($status, $want_status, "$what: $want_status");
    is($e->{type}, 'error', "$what: Anthropic's envelope");
    is($e->{error}{type}, $type, "$what: type $type");
    ok(length($e->{error}{message} // '') > 10, "$what: a message");
    like($h->{'request-id'} // '', qr/^req_[0-9a-f]{32}$/,
         "$what: a request-id header");
    is($e->{request_id}, $h->{'request-id'},
       "$what: the body's request_id is the header's");
    is(join(',', sort keys %$e), 'error,request_id,type',
       "$what: nothing else at the top");
    is(join(',', sort keys %{ $e->{error} }), 'message,type',
       "$what: nothing else in the error");
    like($h->{'content-type'} // '', qr{^application/json},
         "$what: application/json");
}

sub openai_error {
    my ($what, $status, $h, $b, $want_status, $code, $type) = @_;
    my $e = eval { $json->decode($b)->{error} } || {};

    is($status, $want_status, "$what: $want_status");
    is($e->{code}, $code, "$what: code $code");
    is($e->{type}, $type, "$what: type $type");
    ok(!exists $h->{'request-id'}, "$what: no request-id header");
    like($h->{'content-type'} // '', qr{^application/json},
         "$what: application/json");
}

# auto: the path, then the header; OpenAI's otherwise

anthropic_error('auto, /v1/messages, no key',
                $n->request('POST', '/v1/messages', [], $msg),
                401, 'authentication_error');
anthropic_error('auto, /v1/messages/count_tokens',
                $n->request('POST', '/v1/messages/count_tokens', [], $msg),
                401, 'authentication_error');
anthropic_error('auto, anthropic-version on another path',
                $n->request('POST', '/v1/complete',
                            ['anthropic-version: 2023-06-01'], $msg),
                401, 'authentication_error');
openai_error('auto, /v1/chat/completions',
             $n->request('POST', '/v1/chat/completions', [], $chat),
             401, 'missing_api_key', 'invalid_request_error');
openai_error('auto, OpenAI\'s thread messages',
             $n->request('POST', '/v1/threads/t1/messages', [], $chat),
             401, 'missing_api_key', 'invalid_request_error');
openai_error('auto, /v1/messagesx is not Anthropic\'s',
             $n->request('POST', '/v1/messagesx', [], $chat),
             401, 'missing_api_key', 'invalid_request_error');

# the directive wins over the path and the header

openai_error('openai at /v1/messages with anthropic-version',
             $n->request('POST', '/oa/v1/messages',
                         ['anthropic-version: 2023-06-01'], $msg),
             401, 'missing_api_key', 'invalid_request_error');
anthropic_error('anthropic at /chat/completions',
                $n->request('POST', '/an/chat/completions', [], $chat),
                401, 'authentication_error');

# the other types: a bad key, a body that is not JSON; an escaped message

anthropic_error('a key no entry has',
                $n->request('POST', '/v1/messages',
                            ['x-api-key: sk-nope'], $msg),
                401, 'authentication_error');
anthropic_error('not JSON',
                $n->request('POST', '/v1/messages', [$key], '{"model":'),
                400, 'invalid_request_error');

# the limits in Anthropic's headers, resets as RFC 3339 dates

my ($s, $h, $b) = $n->request('POST', '/v1/messages', [$key], $msg);
is($s, 200, 'the first request of the minute passes');
is($h->{'anthropic-ratelimit-requests-limit'}, 1,
   '... anthropic-ratelimit-requests-limit');
is($h->{'anthropic-ratelimit-requests-remaining'}, 0,
   '... anthropic-ratelimit-requests-remaining');

for my $t ('tokens', 'input-tokens', 'output-tokens') {
    is($h->{"anthropic-ratelimit-$t-limit"}, 100000,
       "... anthropic-ratelimit-$t-limit: the tpm");
    like($h->{"anthropic-ratelimit-$t-remaining"} // '', qr/^\d+$/,
         "... anthropic-ratelimit-$t-remaining");
}

ok(!grep(/^x-ratelimit|^retry-after-ms$/, keys %$h),
   '... and none of OpenAI\'s');

my $before = time;
($s, $h, $b) = $n->request('POST', '/v1/messages', [$key], $msg);
my $after = time;
anthropic_error('rpm spent', $s, $h, $b, 429, 'rate_limit_error');

my $reset = $h->{'anthropic-ratelimit-requests-reset'} // '';
like($reset, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
     "the reset is an RFC 3339 date ($reset)");
ok($reset ge strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($before))
   && $reset le strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($after + 61)),
   '... within the minute of the limit');
like($h->{'retry-after'} // '', qr/^[1-9]\d*$/,
     'retry-after in whole seconds');
ok(!exists $h->{'retry-after-ms'}, 'no retry-after-ms, as Anthropic');

($s, $h) = $n->request('POST', '/v1/chat/completions', [$key], $chat);
is($s, 429, 'the OpenAI dialect, the same limit');
is($h->{'x-ratelimit-limit-requests'}, 1, '... x-ratelimit-limit-requests');
ok(exists $h->{'retry-after-ms'}, '... retry-after-ms');
ok(!grep(/^anthropic-/, keys %$h), '... none of Anthropic\'s headers');

# nginx's own 502, 503, 504 of a guarded location, in the dialect

openai_error('upstream down, OpenAI',
             $n->request('POST', '/down/v1/chat/completions', [$fail],
                         $chat),
             502, 'upstream_unavailable', 'server_error');
anthropic_error('upstream down, Anthropic',
                $n->request('POST', '/down/v1/messages', [$fail], $msg),
                502, 'api_error');
openai_error('upstream too slow, OpenAI',
             $n->request('POST', '/late/v1/chat/completions', [$fail],
                         $chat),
             504, 'upstream_timeout', 'server_error');
anthropic_error('upstream too slow, Anthropic',
                $n->request('POST', '/late/v1/messages', [$fail], $msg),
                504, 'timeout_error');

($s) = $n->request('POST', '/busy/v1/messages', [$fail], $msg);
is($s, 200, 'limit_req lets the first request on');
anthropic_error('limit_req\'s 503, Anthropic',
                $n->request('POST', '/busy/v1/messages', [$fail], $msg),
                503, 'overloaded_error');
openai_error('limit_req\'s 503, OpenAI',
             $n->request('POST', '/busy/v1/chat/completions', [$fail],
                         $chat),
             503, 'service_unavailable', 'server_error');

($s, $h, $b) = $n->request('HEAD', '/down/v1/messages', [$fail]);
is($s, 502, 'HEAD: 502');
is($b, '', '... without a body');

($s, $h, $b) = $n->request('POST', '/own/v1/messages', [$fail], $msg);
is($s, 502, 'an operator\'s error_page: its status');
is($b, '{"operator":"page"}', '... and its page, left as it is');

($s, $h, $b) = $n->request('POST', '/own-guarded/v1/messages', [$fail],
                           $msg);
is($s, 502, 'an error_page to a guarded location: its status');
is($b, '{"operator":"guarded page"}', '... and its page, left as it is');

($s) = $n->request('POST', '/own-busy/v1/messages', [$fail], $msg);
is($s, 200, 'limit_req with an error_page: the first passes');
($s, $h, $b) = $n->request('POST', '/own-busy/v1/messages', [$fail], $msg);
is($s, 503, '... the next: its status');
is($b, '{"operator":"guarded page"}', '... and the operator\'s page');

# billed: the two timeouts (the upstream had them) and limit_req's firsts;
# not the refused connections, nor limit_req's refusals

($s, $h, $b) = $n->request('GET', '/usage?tenant=fail');
like($b, qr/"tenant":"fail","requests":4,/,
     'the usage report: the requests that reached the upstream, only')
    or diag($b);

unlike($n->log, qr/\[alert\]|\[crit\]/, 'no [alert], no [crit]');

$n->stop;

