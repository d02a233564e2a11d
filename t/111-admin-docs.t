# docs/admin.md's session, as it is written: its shell block run against
# nginx with the configuration the page shows (a mock for the upstream,
# the test's port for 8080), and what it prints compared with the page's
# output block, where <...> stands for what varies.
#
# Plain Perl: the session is read from the docs at run time.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More tests => 3;
use AiGuardNginx;

my $top = "$FindBin::Bin/..";

open my $fh, '<', "$top/docs/admin.md" or die "docs/admin.md: $!";
my $doc = do { local $/; <$fh> };
close $fh;

my ($session) = $doc =~ /<!-- session -->\n```sh\n(.*?)```/s;
my ($output) = $doc =~ /<!-- output -->\n```text\n(.*?)```/s;

ok(defined $session && defined $output,
   'docs/admin.md has a session and its output');

my $n = AiGuardNginx->new(name => 'admin-docs', workers => 2);
my $port = $n->port;

$n->write_file('html/htpasswd', "ops:{PLAIN}s3cret\n");
$n->write_config(<<'_EOC_');
    ai_guard_tier       free  rpm=20 models=gpt-4o-mini*;
    ai_guard_tier       pro   rpm=600;
    ai_guard_key_store  16m max=100000;

    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard   on;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /mock/ {
            default_type application/json;
            return 200 '{"model":"gpt-4o","usage":{"prompt_tokens":3,"completion_tokens":2}}';
        }

        location /ai-guard/admin/ {
            auth_basic           "ai_guard admin";
            auth_basic_user_file $TEST_NGINX_HTML_DIR/htpasswd;
            ai_guard_admin;
        }
    }
_EOC_
$n->start;

$session =~ s{http://127\.0\.0\.1:8080}{http://127.0.0.1:$port}g;

my $dir = $n->root . '/html';
my $script = $n->write_file('html/session.sh', "set -e\n$session");
my $got = `cd $dir && bash $script 2>&1`;
is($? >> 8, 0, 'the session runs to its end') or diag($got);

my $want = join '', map {
    my $line = $_;
    join('', map { /^<[a-z ]+>$/ ? '[^"\n]*' : quotemeta }
             split /(<[a-z ]+>)/, $line) . "\n"
} split /\n/, $output;

like($got, qr/\A$want\z/, 'it prints what the page says');

$n->stop;
