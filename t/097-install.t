# README's "Into an existing nginx", as written: its shell steps after
# the module's own installation (make, the .so, modules-enabled, which
# the test does its own way) and its conf.d file, run under a scratch
# directory standing for /etc/nginx, with a configuration like Debian's
# (http { include conf.d/*.conf; }).  nginx -t passes, the key the tool
# printed is let through, the provider gets the provider's key, and the
# usage report has the call.  Only the provider's address and the listen
# port are replaced.
#
# Plain Perl rather than blocks: it runs README's shell lines, then nginx
# on what they wrote.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More tests => 10;
use AiGuardNginx;

my $top = "$FindBin::Bin/..";
my $n = AiGuardNginx->new(name => 'install',
                          port => ($ENV{TEST_NGINX_PORT} || 1984) + 205);
my $etc = $n->root . '/conf';
my $mock = $n->port + 1;

my $readme = do {
    local $/;
    open my $fh, '<', "$top/README.md" or die "README.md: $!";
    <$fh>;
};

my ($section) = $readme =~ /^Into an existing nginx\b(.*?)^## /ms
    or die "README.md has no \"Into an existing nginx\"\n";
my ($sh) = $section =~ /^```sh\n(.*?)^```/ms or die "no shell steps\n";
my ($conf) = $section =~ /^```nginx\n(.*?)^```/ms or die "no conf.d file\n";

# the steps after the module's installation, in the scratch /etc/nginx
my ($steps) = $sh =~ /(^# the keys file.*)/ms or die "no keys file step\n";
$steps =~ s{/etc/nginx/}{$etc/}g;
$steps =~ s{(^|\s)(util|examples)/}{$1$top/$2/}mg;

ok($steps =~ /ai-guard-key .*--file/s, 'README creates the keys file');

my $script = $n->write_file('readme-steps.sh', $steps);
my $out = `cd $top && OPENAI_API_KEY=sk-provider-readme sh -e $script 2>&1`;
is($? >> 8, 0, 'README\'s shell steps run') or diag($out);

my ($key) = $out =~ /^key:\s+(\S+)/m;
like($key // '', qr/^sk-aig-/, '... and print the key');

# the provider: this test's mock, answering with the key it got
my $provider = "$etc/providers/openai.conf";
my $text = do { local $/; open my $fh, '<', $provider or die $!; <$fh> };
$text =~ s{proxy_pass\s+https://\S+;}{proxy_pass http://127.0.0.1:$mock;}
    or die "no proxy_pass in $provider\n";
$n->write_file('conf/providers/openai.conf', $text);

$conf =~ s/listen\s+127\.0\.0\.1:8000;/listen 127.0.0.1:${\ $n->port};/
    or die "no listen 127.0.0.1:8000 in README's conf.d file\n";
mkdir "$etc/conf.d" or die "$etc/conf.d: $!";
$n->write_file('conf/conf.d/ai-guard.conf', $conf);

$n->write_config(<<"_EOC_");
    include conf.d/*.conf;

    server {
        listen 127.0.0.1:$mock;
        location / {
            default_type application/json;
            return 200 '{"id":"c1","object":"chat.completion","model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"\$http_authorization"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}';
        }
    }
_EOC_

my ($rc, $t) = $n->test_config;
is($rc, 0, 'nginx -t passes') or diag($t);

$n->start;

my $chat = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}';
my ($status, undef, $body) = $n->request('POST', '/v1/chat/completions',
    ["Authorization: Bearer $key"], $chat);

is($status, 200, 'the printed key is let through');
like($body, qr/"content":"Bearer sk-provider-readme"/,
     '... and the provider gets the provider\'s key');

($status) = $n->request('POST', '/v1/chat/completions',
    ['Authorization: Bearer sk-aig-not-a-key'], $chat);
is($status, 401, 'another key is not');

my (undef, undef, $usage) = $n->request('GET', '/ai-guard/usage');
like($usage, qr/"tenant":"acme","requests":1,"input_tokens":9,"output_tokens":3/,
     'the usage report has the call');

is((stat "$etc/ai_guard/openai-key.conf")[2] & 0777, 0600,
   'the provider\'s key file is root\'s only');

$n->stop;

is(scalar(grep { /\[(?:alert|crit|emerg)\]/ } split /\n/, $n->log), 0,
   'no alert in the error log');
