# OpenAI's official Node SDK as the client of a key the admin API made:
# it gets its completion, and once the key is revoked it raises
# AuthenticationError with our code.  Needs node and npm (the npm
# registry) to install the SDK under build/, as t/045-openai-sdk.t does;
# skipped when they are not there.
#
# Plain Perl: the key comes from the admin API's answer.

use strict;
use warnings;

use Cwd qw(abs_path);
use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use AiGuardNginx;

my $top = abs_path("$FindBin::Bin/..");
my $modules = AiGuardNginx::openai_sdk($top);

plan skip_all => 'node or the openai npm package is not available'
    unless $modules;
plan tests => 7;

my $n = AiGuardNginx->new(name => 'admin-sdk');

$n->write_config(<<'_EOC_');
    ai_guard_tier       free  rpm=100 models=gpt-4o-mini*;
    ai_guard_key_store  1m;

    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /mock/ {
            default_type application/json;
            return 200 '{"id":"c","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}';
        }

        location /admin/ { ai_guard_admin; }
    }
_EOC_

$n->start;

my ($st, $h, $b) = $n->request('POST', '/admin/keys', [],
    '{"id":"sdk-1","tenant":"sdk","tier":"free"}');
is($st, 201, 'the admin API made a key');
my ($key) = $b =~ /"key":"([^"]+)"/;

local $ENV{AI_GUARD_NODE_MODULES} = $modules;
local $ENV{AI_GUARD_BASE_URL} = 'http://127.0.0.1:' . $n->port . '/v1';
local $ENV{AI_GUARD_KEY} = $key;

sub sdk {
    my $out = `node $FindBin::Bin/js/admin-sdk.js`;
    diag $out if $?;
    my %r = $out =~ /"(\w+)":("[^"]*"|[\w.-]+)/g;
    s/^"|"$//g for values %r;
    return %r;
}

my %r = sdk();
is($r{content}, 'ok', 'the SDK gets its completion with the key');
is($r{totalTokens}, 4, '... and its usage');

($st) = $n->request('DELETE', '/admin/keys/sdk-1', []);

%r = sdk();
is($r{raised}, 'AuthenticationError', 'once revoked, the SDK raises AuthenticationError');
is($r{isAuthenticationError}, 'true', '... an instance of OpenAI.AuthenticationError');
is($r{status}, 401, '... for a 401');
is($r{code}, 'invalid_api_key', '... with our code');

$n->stop;
