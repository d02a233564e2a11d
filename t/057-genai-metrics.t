# The GenAI latency and token histograms and the variables a GenAI span
# or a JSON log line carries: a stream whose first content comes 1.5 s
# after its first chunk is observed once, in the (1, 2.5] bucket of the
# time to first token (a second of room either side: no timing is
# asserted beyond the bucket), and $ai_guard_ttft_ms is the same
# measurement as the histogram's sum; a stream
# without content has no first token; an Anthropic stream counts in its
# dialect; a JSON answer's variables; no histograms with
# ai_guard_metrics_max_histograms 0; budget_alert= errors at nginx -t.
#
# The access log is written into the html directory and read back by a
# request of the same block, so the variables are the ones access_log
# wrote.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;
use AiGuardMetrics;

repeat_each(1);

# per request: status, body and the three default --- no_error_log
# patterns: 3 + 3 + 3 + 3 + 2 requests; the body checks: 7 + 3 + 4 + 7 +
# 2; the must_die blocks: their exit, their pattern and the three
# default ones each, 4 blocks
plan tests => repeat_each() * (5 * (3 + 3 + 3 + 3 + 2) + 7 + 3 + 4 + 7 + 2
                               + 5 * 4);

no_shuffle();

our $key = 'Authorization: Bearer sk-aig-test-valid-0001';

our $http_config = <<'_EOC_';
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;

    log_format  genai  escape=json
        '{"ttft_ms":"$ai_guard_ttft_ms","output_tps":"$ai_guard_output_tps",'
        '"model":"$ai_guard_model","response_model":"$ai_guard_response_model",'
        '"dialect":"$ai_guard_dialect","operation":"$ai_guard_operation",'
        '"stream":"$ai_guard_stream","max_tokens":"$ai_guard_max_tokens",'
        '"input":"$ai_guard_prompt_tokens",'
        '"output":"$ai_guard_completion_tokens",'
        '"reason":"$ai_guard_reason"}';
_EOC_

# a mock that answers the pieces, each flushed, sleeping where a number is
sub mock {
    my ($path, $type, @pieces) = @_;
    my $conf = "    location = $path {\n        default_type $type;\n";

    for my $p (@pieces) {
        if ($p =~ /^[\d.]+$/) {
            $conf .= "        echo_sleep $p;\n";
            next;
        }

        (my $q = $p) =~ s/([\\'])/\\$1/g;
        $q =~ s/\n/\\n/g;
        $conf .= "        echo -n -- '$q';\n        echo_flush;\n";
    }

    return $conf . "    }\n";
}

sub chunk {
    my ($delta, $usage) = @_;
    return 'data: {"object":"chat.completion.chunk","model":"gpt-4o-mini-1",'
        . '"choices":[' . ($delta ? "{\"index\":0,\"delta\":$delta}" : '')
        . '],"usage":' . ($usage // 'null') . "}\n\n";
}

our $config = <<'_EOC_'
    location /v1/ {
        ai_guard on;
        proxy_buffering off;
        access_log $TEST_NGINX_HTML_DIR/genai.log genai;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
    }
    location = /metrics { ai_guard_metrics; }
_EOC_
    # the first chunk names the role only; the content comes 1.5 s later
    . mock('/mock/slow/chat/completions', 'text/event-stream',
           chunk('{"role":"assistant","content":""}'), '1.5',
           chunk('{"content":"Hello"}'), '0.1', chunk('{"content":"!"}'),
           chunk(undef, '{"prompt_tokens":9,"completion_tokens":11}'),
           "data: [DONE]\n\n")
    . mock('/mock/empty/chat/completions', 'text/event-stream',
           chunk('{"role":"assistant","content":""}'),
           chunk(undef, '{"prompt_tokens":9,"completion_tokens":0}'),
           "data: [DONE]\n\n")
    . mock('/mock/claude/messages', 'text/event-stream',
           "event: message_start\n", 'data: {"type":"message_start",'
           . '"message":{"model":"claude-3-5-haiku","usage":'
           . '{"input_tokens":20,"output_tokens":1}}}' . "\n\n", '0.3',
           "event: content_block_delta\n", 'data: {"type":'
           . '"content_block_delta","index":0,"delta":{"type":"text_delta",'
           . '"text":"Hi"}}' . "\n\n",
           "event: message_delta\n", 'data: {"type":"message_delta",'
           . '"usage":{"output_tokens":12}}' . "\n\n")
    . mock('/mock/json/chat/completions', 'application/json',
           '{"object":"chat.completion","model":"gpt-4o-mini-1","choices":'
           . '[{"message":{"content":"ok"}}],"usage":{"prompt_tokens":9,'
           . '"completion_tokens":4}}');

our $stream = '{"model":"gpt-4o-mini","stream":true,"max_tokens":50,'
    . '"messages":[{"role":"user","content":"hi"}]}';

# the access log's one line of the guarded request
sub logged {
    my ($body) = @_;
    my %v = $body =~ /"(\w+)":"([^"]*)"/g;
    return %v;
}

defaults(http_config => $http_config, config => $config);

run_tests();

__DATA__

=== TEST 1: a stream's first content 1.5 s after its first chunk: one observation, in (1, 2.5]; $ai_guard_ttft_ms and the span's variables
--- request eval
["POST /v1/slow/chat/completions\n$::stream", "GET /metrics",
 "GET /genai.log"]
--- more_headers eval
[$::key, "", ""]
--- response_body_like eval
[qr/\[DONE\]/, qr/^# HELP/, qr/ttft_ms/]
--- body_check eval
[undef, sub {
    my %m = ::samples($_[0]);
    my $t = 'gen_ai_server_time_to_first_token_seconds';
    my $l = 'tenant="acme",model="gpt-4o-mini-1",dialect="openai"';
    ::is $m{"${t}_count{$l}"}, 1, 'one observation for the stream';
    ::is $m{"${t}_bucket{$l,le=\"1\"}"}, 0, 'not in 1';
    ::is $m{"${t}_bucket{$l,le=\"2.5\"}"}, 1, 'in 2.5';
    $::ttft_sum = $m{"${t}_sum{$l}"};
    ::is $m{"gen_ai_server_time_per_output_token_seconds_count{$l}"}, 1,
        'time per output token: the stream';
 }, sub {
    my %v = ::logged($_[0]);
    ::is $v{ttft_ms} / 1000, $::ttft_sum,
        "\$ai_guard_ttft_ms $v{ttft_ms}: the histogram's observation";
    ::like $v{output_tps}, qr/^\d+\.\d\d$/, '$ai_guard_output_tps';
    ::is "$v{response_model} $v{dialect} $v{operation} $v{stream} "
         . "$v{max_tokens} $v{input} $v{output}",
         'gpt-4o-mini-1 openai chat 1 50 9 11',
         'response model, dialect, operation, stream, max_tokens, usage';
 }]



=== TEST 2: a stream that never sends content: no first token, but a duration
--- request eval
["POST /v1/empty/chat/completions\n$::stream", "GET /metrics",
 "GET /genai.log"]
--- more_headers eval
[$::key, "", ""]
--- response_body_like eval
[qr/\[DONE\]/, qr/^# HELP/, qr/ttft_ms/]
--- body_check eval
[undef, sub {
    my %m = ::samples($_[0]);
    my $l = 'tenant="acme",model="gpt-4o-mini-1",dialect="openai"';
    ::is $m{"gen_ai_server_time_to_first_token_seconds_count{$l}"}, 0,
        'no first token';
    ::is $m{"gen_ai_server_request_duration_seconds_count{$l}"}, 1,
        'a duration';
 }, sub {
    my %v = ::logged($_[0]);
    ::is $v{ttft_ms}, '', '$ai_guard_ttft_ms is empty';
 }]



=== TEST 3: an Anthropic stream: its dialect, its first content, its token usage
--- request eval
["POST /v1/claude/messages\n" . '{"model":"claude-3-5-haiku","stream":true,"max_tokens":64,"messages":[{"role":"user","content":"hi"}]}',
 "GET /metrics", "GET /genai.log"]
--- more_headers eval
[$::key, "", ""]
--- response_body_like eval
[qr/message_delta/, qr/^# HELP/, qr/ttft_ms/]
--- body_check eval
[undef, sub {
    my %m = ::samples($_[0]);
    my $l = 'tenant="acme",model="claude-3-5-haiku",dialect="anthropic"';
    # the content 300 ms late: well past the 0.1 bound (a wait of 0.1 s
    # can be measured as 100 ms, which is in the le="0.1" bucket)
    ::is $m{"gen_ai_server_time_to_first_token_seconds_bucket{$l,le=\"0.1\"}"},
        0, 'first token after 100 ms (the mock waits 300)';
    ::is $m{"gen_ai_server_time_to_first_token_seconds_count{$l}"}, 1,
        'one observation';
    ::is $m{"gen_ai_client_token_usage_sum{$l,type=\"output\"}"}, 12,
        'output tokens: the last cumulative count';
 }, sub {
    my %v = ::logged($_[0]);
    ::is "$v{dialect} $v{operation}", 'anthropic chat',
        'dialect and operation';
 }]



=== TEST 4: a JSON answer: its first byte is its first token; a refused request has only what the access phase knew
--- request eval
["POST /v1/json/chat/completions\n" . '{"model":"gpt-4o-mini","messages":[]}',
 "POST /v1/json/chat/completions\n{}", "GET /genai.log"]
--- more_headers eval
[$::key, "Authorization: Bearer sk-nope", ""]
--- error_code eval
[200, 401, 200]
--- response_body_like eval
[qr/"ok"/, qr/invalid_api_key/, qr/ttft_ms/]
--- body_check eval
[undef, undef, sub {
    my ($ok, $refused) = split /\n/, $_[0];
    my %v = ::logged($ok);
    ::like $v{ttft_ms}, qr/^\d+$/, '$ai_guard_ttft_ms of a JSON answer';
    ::is "$v{stream} $v{max_tokens} $v{output}", '0  4',
        'not a stream, no max_tokens, the output';
    ::like $v{output_tps}, qr/^\d+\.\d\d$/, '$ai_guard_output_tps';
    %v = ::logged($refused);
    ::is "$v{operation}|$v{reason}|$v{dialect}|$v{ttft_ms}",
        'chat|invalid_api_key||', 'refused: operation and reason only';
    ::is $v{response_model}, '', 'refused: no response model';
    ::is $v{output_tps}, '', 'refused: no output rate';
    ::is $v{input}, '', 'refused: no usage';
 }]



=== TEST 5: ai_guard_metrics_max_histograms 0: no histogram samples
--- http_config eval
"    ai_guard_metrics_max_histograms 0;\n" . $::http_config
--- request eval
["POST /v1/json/chat/completions\n" . '{"model":"gpt-4o-mini"}',
 "GET /metrics"]
--- more_headers eval
[$::key, ""]
--- response_body_like eval
[qr/"ok"/, qr/^# HELP/]
--- body_check eval
[undef, sub {
    ::unlike $_[0], qr/^gen_ai_/m, 'no gen_ai_ samples';
    ::like $_[0], qr/^ai_guard_tokens_total\{/m, 'the counters still';
 }]



=== TEST 6: budget_alert= without a budget
--- http_config
    ai_guard_tier  pro  rpm=10 budget_alert=50%;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;
--- config
    location = /t { return 204; }
--- must_die
--- error_log
ai_guard_tier "pro" has budget_alert= but no budget to alert on



=== TEST 7: budget_alert= without a percent sign
--- http_config
    ai_guard_tier  pro  budget=1/day budget_alert=50,80%;
    ai_guard_price  *  input=1 output=1;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;
--- config
    location = /t { return 204; }
--- must_die
--- error_log
ai_guard_tier "pro": invalid budget_alert "50,80%", it must be up to 8 distinct percentages of the budget from 1% to 1000%



=== TEST 8: budget_alert= out of range
--- http_config
    ai_guard_tier  pro  budget=1/day budget_alert=0%,1001%;
    ai_guard_price  *  input=1 output=1;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;
--- config
    location = /t { return 204; }
--- must_die
--- error_log
1% to 1000%



=== TEST 9: budget_alert= twice the same
--- http_config
    ai_guard_tier  pro  budget=1/day budget_alert=80%,80%;
    ai_guard_price  *  input=1 output=1;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;
--- config
    location = /t { return 204; }
--- must_die
--- error_log
distinct percentages
