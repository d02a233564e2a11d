# util/ai-guard-key --file: it creates the keys file, appends to it,
# refuses an id the file has (and leaves the file as it was), replaces
# the file whole through a rename (a new inode, no temporary file left),
# keeps what else the file holds, refuses a file that is not JSON, and
# what it writes is what nginx loads: nginx -t passes with each file,
# and a request with each printed key is let through.
#
# Plain Perl rather than blocks: it runs the tool, then nginx on what it
# wrote.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use JSON::PP ();
use Test::More tests => 22;
use AiGuardNginx;

my $tool = "$FindBin::Bin/../util/ai-guard-key";
my $n = AiGuardNginx->new(name => 'key-tool',
                          port => ($ENV{TEST_NGINX_PORT} || 1984) + 192);
my $dir = $n->root . '/conf/ai_guard';
my $file = "$dir/keys.json";

mkdir $dir or die "$dir: $!";

# runs the tool: (exit status, the key it printed, what it said)
sub key {
    my (@args) = @_;
    my $out = `$tool @args 2>&1`;
    my $rc = $? >> 8;
    my ($key) = $out =~ /^key:\s+(\S+)/m;
    return ($rc, $key, $out);
}

sub slurp {
    open my $fh, '<', $_[0] or return undef;
    local $/;
    return <$fh>;
}

my ($rc, $k1, $out) = key("--id acme-1 --tenant acme --tier pro --file $file");
is($rc, 0, 'a new file: created');
like($k1, qr/^sk-aig-\w{40}$/, '... and the key printed once');
like($out, qr/its entry is in \Q$file\E \(1 key\)/, '... and where it went');
like(slurp($file), qr/\A\{"keys": \[\n  \{"id": "acme-1", "sha256": "[0-9a-f]{64}", "tenant": "acme", "tier": "pro"\}\n\]\}\n\z/,
     '... one entry a line');

my $inode = (stat $file)[1];

my ($rc2, $k2) = key("--id acme-2 --tenant acme --tier pro --file $file");
is($rc2, 0, 'a second key: appended');
my $two = slurp($file);
is(scalar(() = $two =~ /"id": /g), 2, '... the file has both');
isnt((stat $file)[1], $inode, '... written to a new file renamed over it');
is(scalar(grep { /ai-guard-key/ } glob("$dir/.*")), 0,
   '... and no temporary file left');

my ($rc3, $k3, $out3) = key("--id acme-1 --tier pro --file $file");
is($rc3, 1, 'an id the file has: refused');
like($out3, qr/has the id "acme-1" already \(entry 1\): choose another --id/,
     '... saying which entry');
ok(!defined $k3, '... and no key printed');
is(slurp($file), $two, '... the file as it was');

# what nginx makes of it

$n->write_config(<<"_EOC_");
    ai_guard_tier pro;
    ai_guard_keys ai_guard/keys.json;
    server {
        listen 127.0.0.1:${\ $n->port};
        location /v1/ {
            ai_guard on;
            return 200 "\$ai_guard_key_id\\n";
        }
    }
_EOC_

my ($t, $said) = $n->test_config;
is($t, 0, 'nginx -t loads the file it made') or diag($said);

$n->start;

for ([$k1, 'acme-1'], [$k2, 'acme-2']) {
    my ($status) = $n->request('GET', '/v1/models',
                               ["Authorization: Bearer $_->[0]"]);
    is($status, 200, "the key of $_->[1] is let through");
}

$n->stop;

# a file of another layout: the entry is added, the rest is kept

my $digest = '0' x 64;
open my $fh, '>', $file or die $!;
print $fh qq({"keys": [{"id": "x", "sha256": "$digest", "note": "kept"}], )
          . qq("version": 2}\n);
close $fh;

my ($rc4) = key("--id y --tier pro --file $file");
is($rc4, 0, 'a file where "keys" is not last: added');
my $doc = JSON::PP->new->decode(slurp($file));
is(join(',', map { $_->{id} } @{ $doc->{keys} }), 'x,y', '... both keys');
is($doc->{keys}[0]{note} . $doc->{version}, 'kept2',
   '... and what else it held');
($t, $said) = $n->test_config;
is($t, 0, '... and nginx -t loads it') or diag($said);

# a file that is not JSON is left alone

open $fh, '>', $file or die $!;
print $fh qq({"keys": [\n);
close $fh;

my ($rc5, undef, $out5) = key("--id z --tier pro --file $file");
is($rc5, 1, 'a file that is not JSON: refused');
like($out5, qr/is not JSON \(.*\); fix it first/, '... saying so');
is(slurp($file), qq({"keys": [\n), '... the file as it was');

