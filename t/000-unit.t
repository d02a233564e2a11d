# The unit tests of the pure parts (parsers, limiter and price arithmetic),
# built by `make unit` from t/unit/*_test.c, relayed here one line a check.
#
# Plain Perl: no nginx runs here, so there is nothing for Test::Nginx to
# say.  The plan is one subtest a binary; each subtest's plan is the
# binary's own (its "1..N", printed last) and two checks of this file.

use strict;
use warnings;

use FindBin;
use Test::More;

my $top = "$FindBin::Bin/..";

system('make', '-s', '-C', $top, 'unit') == 0
    or BAIL_OUT('make unit failed');

my @tests = sort glob("$top/build/unit/*_test");

plan skip_all => 'no unit tests built' unless @tests;
plan tests => scalar @tests;

for my $bin (@tests) {
    my ($name) = $bin =~ m{([^/]+)_test$};

    open my $fh, '-|', $bin or die "$bin: $!";
    my @lines = <$fh>;
    close $fh;
    my $status = $?;

    my ($planned) = map { /^1\.\.(\d+)$/ ? $1 : () } @lines;

    subtest $name => sub {
        plan tests => ($planned // 0) + 2;

        my $seen = 0;

        for my $line (@lines) {
            chomp $line;

            if ($line =~ /^(not )?ok \d+ - (.*)$/) {
                ok(!$1, $2);
                $seen++;

            } elsif ($line =~ /^#/) {
                diag($line);
            }
        }

        is($status, 0, "$name exited cleanly");
        is($seen, $planned, "$name ran all its checks");
    };
}
