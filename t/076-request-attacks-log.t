# A client's bytes in ai_guard's log lines: an ai_guard_limit_by value
# taken from a request header (X-End-User) may hold any byte nginx lets
# through in a header value, control bytes such as \x01 and \x7f among
# them.  Wherever ai_guard names such a value in a warn or alert line it
# is printed escaped (\x01), never raw: raw control bytes forge or hide
# lines in a log reader's terminal and break line-based log shippers.
#
# Plain Perl rather than a block: filling a 1m zone with entries of 1 KB
# values takes hundreds of requests, each its own scope.  A block could
# send them (a --- request eval of 600), but both runners check the error
# log after every request of a block, 45 ms each: 27 s where this script
# takes half a second.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Digest::SHA qw(sha256_hex);
use Test::More tests => 4;
use AiGuardNginx;

my $secret = 'sk-t076-users-0000001';

my $keys = '{"keys": [{"id": "acme-1", "tenant": "acme", "tier": "users", '
           . '"sha256": "' . sha256_hex($secret) . '"}]}';

my $n = AiGuardNginx->new(name => 'request-attacks-log',
                          port => ($ENV{TEST_NGINX_PORT} || 1984) + 176,
                          workers => 2);

$n->write_file('html/keys.json', $keys);

# rejections at warn too, so that every line a value could reach is
# above the log's level; the log is at info, where nginx itself prints
# no header values
$n->write_config(<<'_EOC_');
    ai_guard_zone        ai_guard 1m;
    ai_guard_tier        users rpd=1000000;
    ai_guard_keys        $TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_log_level   warn;

    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            ai_guard_limit_by $http_x_end_user;
            echo "ok";
        }
    }
_EOC_

$n->start;

# long values with a day's quota each: every scope holds state all day, so
# 600 of them are more than the limits part of a 1m zone holds, and the
# zone_full ALERT names the scope of the first one refused
my $requests = 600;
my $pad = 'v' x 1000;
my %status;

for my $i (1 .. $requests) {
    my $user = "u\x01\x7f" . sprintf('%05d', $i) . $pad;
    my ($st) = $n->request('GET', '/v1/models',
                           ["Authorization: Bearer $secret",
                            "X-End-User: $user"]);
    $status{$st // 0}++;
}

is $status{0} // 0, 0, "all $requests requests answered";
ok $status{503}, "the limits part filled: $status{503} new scopes refused";

$n->stop;

my @lines = grep { /ai_guard/ } split /\n/, $n->log;

my @raw = grep { /[\x00-\x08\x0b-\x1f\x7f]/ } @lines;

is scalar @raw, 0, 'no ai_guard log line holds a raw control byte'
    or diag 'e.g. ' . escape($raw[0]);

# a line that names one of the values names it escaped
my @named = grep { /vvvvvvvvvv/ } @lines;
my @unescaped = grep { index($_, 'u\x01\x7f') < 0 } @named;

ok @named && !@unescaped,
    scalar(@named) . ' lines name a value (the ALERT of the full part), '
    . 'each with \x01\x7f escaped'
    or diag 'e.g. ' . escape($unescaped[0] // '');

sub escape {
    (my $s = substr($_[0] // '', 0, 200)) =~ s/([\x00-\x1f\x7f])/
        sprintf('<%02x>', ord $1)/ge;
    return $s;
}
