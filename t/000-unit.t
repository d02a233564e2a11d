# The unit tests of the pure parts (parsers, limiter and price arithmetic),
# built by `make unit` from t/unit/*_test.c, relayed here one line a check.

use strict;
use warnings;

use FindBin;
use Test::More;

my $top = "$FindBin::Bin/..";

system('make', '-s', '-C', $top, 'unit') == 0
    or BAIL_OUT('make unit failed');

my @tests = sort glob("$top/build/unit/*_test");

plan skip_all => 'no unit tests built' unless @tests;

for my $bin (@tests) {
    my ($name) = $bin =~ m{([^/]+)_test$};

    subtest $name => sub {
        my ($planned, $seen) = (undef, 0);

        open my $fh, '-|', $bin or die "$bin: $!";

        while (my $line = <$fh>) {
            chomp $line;

            if ($line =~ /^(not )?ok \d+ - (.*)$/) {
                ok(!$1, $2);
                $seen++;

            } elsif ($line =~ /^1\.\.(\d+)$/) {
                $planned = $1;

            } elsif ($line =~ /^#/) {
                diag($line);
            }
        }

        close $fh;

        is($?, 0, "$name exited cleanly");
        is($seen, $planned, "$name ran all its checks");
    };
}

done_testing();
