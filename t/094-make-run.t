# `make run` (util/run) on a machine where its port is taken: it stops
# before nginx with a message that names the port and the variable to
# set, for nginx's port and for the mock's; with AI_GUARD_PORT set it
# runs there, the demo's curl lines work, and its numbers are the
# demo's own: the readiness probe is not counted in the metrics, and the
# mock's requests are not in the access log.
#
# Plain Perl rather than blocks: util/run starts nginx itself, with its
# own prefix (here t/servroot-run), as a daemon.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use IO::Socket::INET;
use Test::More;
use AiGuardNginx;

plan skip_all => 'util/run loads the module\'s .so, which this nginx has '
                 . 'compiled in'
    unless ($ENV{TEST_NGINX_LOAD_MODULES} // '') =~ /ai_guard/;

plan tests => 21;

my $top = "$FindBin::Bin/..";
my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 194;
my $dir = "$top/t/servroot-run";

system('rm', '-rf', $dir);

# a listener of another program on a port
sub take {
    my ($port) = @_;
    return IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                 LocalPort => $port, Listen => 1,
                                 ReuseAddr => 1)
        || die "cannot take port $port: $!";
}

sub run {
    my (%env) = @_;
    local $ENV{AI_GUARD_RUN_DIR} = $dir;
    local $ENV{NGINX} = AiGuardNginx::binary();
    local @ENV{keys %env} = values %env;
    my $out = `$top/util/run start 2>&1`;
    return ($? >> 8, $out);
}

sub get {
    my ($port, $path, @h) = @_;
    my $r = AiGuardNginx->new(name => 'run-client', port => $port);
    return $r->request(@_ > 3 && $h[-1] =~ /^\{/ ? 'POST' : 'GET', $path,
                       [grep { !/^\{/ } @h], (grep { /^\{/ } @h)[0]);
}

# nginx's port taken

my $taken = take($base);
my ($rc, $out) = run(AI_GUARD_PORT => $base);

isnt($rc, 0, 'nginx\'s port taken: make run fails');
like($out, qr/nginx's port, 127\.0\.0\.1:$base, is taken/,
     '... naming the port');
like($out, qr/AI_GUARD_PORT=\d+ make run/, '... and what to set');
unlike($out, qr/bind\(\)|\[emerg\]/, '... before nginx tries it');

# the mock's port taken

my $mock_taken = take($base + 5);
($rc, $out) = run(AI_GUARD_PORT => $base + 4);

isnt($rc, 0, 'the mock\'s port taken: make run fails');
like($out, qr/the mock LLM's port, 127\.0\.0\.1:@{[$base + 5]}, is taken/,
     '... naming it');
like($out, qr/AI_GUARD_MOCK_PORT=\d+ make run/, '... and what to set');

close $mock_taken;

# another port: it runs, the first still taken

my $port = $base + 2;
($rc, $out) = run(AI_GUARD_PORT => $port);

is($rc, 0, 'AI_GUARD_PORT set: make run starts') or diag($out);
like($out, qr{running on http://127\.0\.0\.1:$port in front of the local mock LLM on 127\.0\.0\.1:@{[$port + 1]}},
     '... there, with the mock on the next port');

my ($key) = $out =~ /Your demo key \(shown once, only its digest is stored\): (\S+)/;
like($key // '', qr/^sk-aig-/, '... and a demo key');

my $chat = '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}';

my ($s1, undef, $b1) = get($port, '/v1/chat/completions',
                           "Authorization: Bearer $key", $chat);
is($s1, 200, 'the allowed call of the curl lines: 200');
like($b1, qr/Hello from the mock upstream/, '... from the mock');

my ($s2) = get($port, '/v1/chat/completions', '{}');
is($s2, 401, 'no key: 401');

my (undef, undef, $metrics) = get($port, '/ai-guard/metrics');
like($metrics, qr/^ai_guard_requests_total\{tenant="demo",model="gpt-4o-mini",decision="allow",code="",reason=""\} 1$/m,
     'the metrics count the allowed call');
my @unknown = $metrics =~ /^ai_guard_requests_total\{tenant="unknown".*\} (\d+)$/mg;
is(eval { my $t = 0; $t += $_ for @unknown; $t }, 1,
   '... and the one 401, not the readiness probe');

my (undef, undef, $usage) = get($port, '/ai-guard/usage');
like($usage, qr/"tenant":"demo","requests":1,"input_tokens":12,"output_tokens":7/,
     'the usage report: the one call');

open my $fh, '<', "$dir/logs/access.log" or die $!;
my @lines = <$fh>;
close $fh;

is(scalar @lines, 2, 'the access log: the two guarded requests, nothing '
                     . 'of the mock\'s or the probe\'s')
    or diag(@lines);
like($lines[0], qr/"key":"demo-1".*"status":200|"status":200.*"key":"demo-1"/,
     '... the call');
like($lines[1], qr/"status":401/, '... and the 401');

# make stop

{
    local $ENV{AI_GUARD_RUN_DIR} = $dir;
    my $stop = `$top/util/run stop 2>&1`;
    like($stop, qr/ai_guard: stopped/, 'make stop stops it');
}

ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port),
   '... and the port is free');

close $taken;
