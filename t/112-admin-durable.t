# The key store on disk (ai_guard_state_dir): nginx killed with SIGKILL,
# master and workers, while the admin API is making and revoking keys,
# in a loop; after each restart every key whose create was answered 201
# works and shows what it was made with, every revocation answered 200
# holds (one whose answer died with nginx may have been done or not),
# and the files hold no secret.  Then a restart after a clean
# stop, and the files' owner.
#
# Plain Perl: nginx is killed and started again within the test.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep);
use AiGuardNginx;

my $n = AiGuardNginx->new(name => 'admin-durable', workers => 2);
my $state = $n->root . '/state';

$n->write_config(<<'_EOC_');
    ai_guard_tier  pro;
    ai_guard_key_store  1m;
    ai_guard_state_dir  $TEST_NGINX_HTML_DIR/../state;

    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /mock/ { return 200 "ok\n"; }

        location /admin/ { ai_guard_admin; }
    }
_EOC_

# SIGKILL to the master and each of its workers, by their pids
sub kill_all {
    $n->kill9;

    # and the port is free
    for (1 .. 200) {
        last unless IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                          PeerPort => $n->port);
        sleep 0.02;
    }
}

my $answers = $n->root . '/answers';
my (%made, %revoked, %revoking);

for my $round (1 .. 4) {
    $n->start;

    # a child makes keys, and revokes every third, as fast as it can; it
    # notes each answer it got before nginx died under it
    unlink $answers;
    my $child = fork;
    die "fork: $!" unless defined $child;

    if ($child == 0) {
        open my $out, '>>', $answers or exit 1;
        $out->autoflush(1);

        for my $i (1 .. 10000) {
            my $id = "r$round-$i";
            my ($st, $h, $b) = eval {
                $n->request('POST', '/admin/keys', [],
                            qq({"id":"$id","tenant":"t$round","tier":"pro",)
                            . qq("metadata":{"round":"$round","n":"$i"}}));
            };
            last unless $st;
            print $out "made $id $1\n" if $st == 201 && $b =~ /"key":"([^"]+)"/;

            next unless $i % 3 == 0;

            # a revocation nginx died in the middle of may or may not be
            # in force: noted before it is sent
            print $out "revoking $id\n";
            ($st) = eval { $n->request('DELETE', "/admin/keys/$id", []) };
            last unless $st;
            print $out "revoked $id\n" if $st == 200;
        }

        exit 0;
    }

    # kill when some keys are made, and the child is in the middle of more
    for (1 .. 500) {
        my $lines = -f $answers ? (() = `cat $answers` =~ /\n/g) : 0;
        last if $lines >= 15 * $round;
        sleep 0.01;
    }

    kill_all();
    waitpid($child, 0);

    open my $in, '<', $answers or die "$answers: $!";
    while (<$in>) {
        $made{$1} = $2 if /^made (\S+) (\S+)$/;
        $revoked{$1} = 1 if /^revoked (\S+)$/;
        $revoking{$1} = 1 if /^revoking (\S+)$/;
    }
    close $in;
}

ok(scalar(keys %made) >= 30, scalar(keys %made) . ' keys made across 4 kills');

$n->start;

my @bad;

for my $id (sort keys %made) {
    my ($st) = $n->request('GET', '/v1/x', ["Authorization: Bearer $made{$id}"]);
    my $want = $revoked{$id} ? 401 : 200;

    # its answer lost with nginx: either is right
    next if $revoking{$id} && !$revoked{$id} && ($st == 200 || $st == 401);

    push @bad, "$id: $st, not $want" unless $st == $want;
}

is(join('; ', @bad), '', 'every key made works, every key revoked is refused');

my ($st, $h, $b) = $n->request('GET', '/admin/keys/r1-1', []);
like($b, qr/"tenant":"t1","tier":"pro"/, 'a key keeps its fields');
like($b, qr/"metadata":\{"round":"1","n":"1"\}/, 'and its metadata');

# the longest line of the files: every string at its most, each byte of
# the metadata one that JSON escapes
my $q = '\\"';         # a byte '"', escaped
my $bs = '\\\\';       # a byte '\', escaped
my $meta = join ',', map { sprintf('"n%02d', $_) . ($q x 125) . '":"'
                           . ($bs x 128) . '"' } 1 .. 16;
my $models = join ',', map { sprintf('"m%02d', $_) . ($q x 125) . '"' }
                       1 .. 16;
($st, $h, $b) = $n->request('POST', '/admin/keys', [],
    '{"id":"big","tenant":"' . ($q x 128) . '","tier":"pro",'
    . '"stripe_customer":"' . ($bs x 128) . qq(","models":[$models],)
    . qq("metadata":{$meta}}));
is($st, 201, 'a key with 16 models and 16 metadata members at their most');
my $big = $b;
$big =~ s/.*?"tenant"//s;
$big =~ s/,"created".*//s;

my $files = `cat $state/keys.snapshot $state/keys.journal`;
ok(!(grep { index($files, $_) >= 0 } values %made), 'no secret on disk');
unlike($n->log, qr/line \d+ skipped/, 'no line of the files was broken');

# a clean stop and start, and a reload, keep them too
my $key = $made{(grep { !$revoked{$_} } sort keys %made)[0]};
$n->reload;
($st) = $n->request('GET', '/v1/x', ["Authorization: Bearer $key"]);
is($st, 200, 'a key works after a reload');

$n->stop;
$n->start;
($st) = $n->request('GET', '/v1/x', ["Authorization: Bearer $key"]);
is($st, 200, 'and after a restart');

# once more: the line read from the snapshot the last start wrote
$n->stop;
$n->start;

($st, $h, $b) = $n->request('GET', '/admin/keys/big', []);
$b =~ s/.*?"tenant"//s;
$b =~ s/,"created".*//s;
is($b, $big, 'the longest key is read back from the snapshot as it was');

unlike($n->log, qr/\[(alert|crit|emerg)\]/, 'no alert');

$n->stop;

done_testing();
