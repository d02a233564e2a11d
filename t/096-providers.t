# examples/providers/openai.conf and anthropic.conf, as written, side by
# side as docs/providers.md puts them: the provider gets the provider's
# key in its own header (and Anthropic its anthropic-version), never the
# client's, and the answer is billed in that provider's usage shape.
# Only what cannot run here is replaced: the provider's address (this
# server's mock, which answers with the headers it got) and the key
# file's path.

use Test::Nginx::Socket;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardBlocks;

repeat_each(1);

# per request: the status, the body and the default --- no_error_log's 3
plan tests => repeat_each() * (2 * 3 * 5);

no_shuffle();

# a provider's snippet with the mock in place of the provider
sub provider {
    my ($name) = @_;
    open my $fh, '<', "$FindBin::Bin/../examples/providers/$name.conf"
        or die "examples/providers/$name.conf: $!";
    my $conf = do { local $/; <$fh> };
    close $fh;

    $conf =~ s{proxy_pass\s+https://\S+;}
              {proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/$name/;}
        or die "no proxy_pass in $name.conf";
    $conf =~ s{include(\s+)ai_guard/}{include$1\$TEST_NGINX_HTML_DIR/}
        or die "no key file in $name.conf";
    return $conf;
}

# what each mock provider answers: the headers it got, and usage in its
# own shape
my $got = 'auth=[$http_authorization] x-api-key=[$http_x_api_key] '
          . 'version=[$http_anthropic_version] host=[$host]';

our $config = "    location /v1/ {\n        ai_guard on;\n"
    . provider('openai') . "    }\n"
    . "    location /v1/messages {\n        ai_guard on;\n"
    . provider('anthropic') . "    }\n"
    . echo_location('/openai/', 'application/json',
        '{"id":"c1","object":"chat.completion","model":"gpt-4o-mini",'
        . '"choices":[{"index":0,"message":{"role":"assistant",'
        . qq("content":"$got"},"finish_reason":"stop"}],)
        . '"usage":{"prompt_tokens":11,"completion_tokens":4,'
        . '"total_tokens":15}}')
    . echo_location('/anthropic/', 'application/json',
        '{"id":"msg_1","type":"message","role":"assistant",'
        . '"model":"claude-3-5-haiku-20241022","content":[{"type":"text",'
        . qq("text":"$got"}],"stop_reason":"end_turn",)
        . '"usage":{"input_tokens":12,"output_tokens":6}}')
    . "    location = /ai-guard/usage { ai_guard_usage; }\n";

our $user_files = keys_file(['acme-1', 'sk-aig-test-valid-0001',
                             tenant => 'acme', tier => 'pro'])
    . ">>> openai-key.conf\n"
    . qq(proxy_set_header Authorization "Bearer sk-provider-openai";\n)
    . ">>> anthropic-key.conf\n"
    . qq(proxy_set_header x-api-key "sk-ant-provider";\n);

defaults(config => $config, user_files => $user_files,
         http_config => <<'_EOC_');
    ai_guard_tier   pro;
    ai_guard_keys   $TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_price  gpt-4o-mini*  input=0.15 output=0.60;
    ai_guard_price  claude-*      input=3 output=15;
_EOC_

run_tests();

__DATA__

=== TEST 1: OpenAI: the provider's bearer key upstream, the client's never; billed in OpenAI's shape
--- request eval
["POST /v1/chat/completions\n"
 . '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}',
 "GET /ai-guard/usage?group=model", "GET /ai-guard/usage?format=csv"]
--- more_headers eval
["Authorization: Bearer sk-aig-test-valid-0001", "", ""]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
['auth=\[Bearer sk-provider-openai\] x-api-key=\[\] version=\[\] '
 . 'host=\[api\.openai\.com\]',
 '"groups":\[\{"model":"gpt-4o-mini","requests":1,"input_tokens":11,'
 . '"output_tokens":4,',
 '(?m)^acme,1,11,4,0,0,0\.00000405,0,0$']



=== TEST 2: Anthropic: the provider's x-api-key and anthropic-version upstream, the client's key never; billed in Anthropic's shape
--- request eval
["POST /v1/messages\n"
 . '{"model":"claude-3-5-haiku-20241022","max_tokens":64,'
 . '"messages":[{"role":"user","content":"Hi"}]}',
 "GET /ai-guard/usage?group=model", "GET /ai-guard/usage?format=csv"]
--- more_headers eval
["x-api-key: sk-aig-test-valid-0001\nanthropic-version: 2020-01-01", "",
 ""]
--- error_code eval
[200, 200, 200]
--- response_body_like eval
['auth=\[\] x-api-key=\[sk-ant-provider\] version=\[2023-06-01\] '
 . 'host=\[api\.anthropic\.com\]',
 '"groups":\[\{"model":"claude-3-5-haiku-20241022","requests":1,'
 . '"input_tokens":12,"output_tokens":6,',
 '(?m)^acme,1,12,6,0,0,0\.000126,0,0$']
