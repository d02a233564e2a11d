# The reference case (examples/resume-analyzer): run-month drives a
# month of synthetic traffic for three tenants and prints each one's
# bill; every number of the bill is checked against the access log,
# line by line: the requests billed, the tokens, the usage in dollars
# (the sum of the lines' exact cost_usd), the total (the plan's fee plus
# the usage), and the Stripe meter events against the tokens.  The
# traffic has refusals of each kind (a rule, PII, the free plan's rpm),
# and a refused request is in the log and on no bill.
#
# Plain Perl rather than blocks: the script starts its own nginx.

use strict;
use warnings;

use FindBin;
use Test::More;

plan skip_all => 'run-month loads the module\'s .so, which this nginx has '
                 . 'compiled in'
    unless ($ENV{TEST_NGINX_LOAD_MODULES} // '') =~ /ai_guard/;

plan tests => 3 + 3 * 9 + 4;

my $top = "$FindBin::Bin/..";
my $dir = "$top/t/servroot-resume";
my $port = ($ENV{TEST_NGINX_PORT} || 1984) + 210;

my $out = do {
    local $ENV{AI_GUARD_RUN_DIR} = $dir;
    local $ENV{AI_GUARD_PORT} = $port;
    local $ENV{NGINX} = $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx';
    local $ENV{AI_GUARD_MODULES} = $ENV{TEST_NGINX_LOAD_MODULES};
    `$top/examples/resume-analyzer/run-month 2>&1`;
};

is($? >> 8, 0, 'run-month runs') or diag($out);
ok(!-f "$dir/logs/nginx.pid", '... and stops its nginx');

# pico-dollars, exactly
sub pico {
    my ($usd) = @_;
    my ($i, $f) = $usd =~ /^(\d+)(?:\.(\d+))?$/ or return -1;
    return $i * 10**12 + substr(($f // '') . '0' x 12, 0, 12);
}

my %bill;
for my $l (split /\n/, $out) {
    my @f = split ' ', $l;
    next unless @f == 10 && $f[2] =~ /^\d+$/;
    @{ $bill{ $f[0] } }{qw(tier sent ok refused in out usage fee total)}
        = @f[1 .. 9];
}

is(join(',', sort keys %bill), 'globex-hr,hirewell,talentbridge',
   'a bill for each of the three tenants') or diag($out);

my (%log, %reasons);
open my $fh, '<', "$dir/logs/access.log" or die "access.log: $!";
while (my $l = <$fh>) {
    my %f = $l =~ /"(\w+)":"?([^",}]*)"?/g;
    my $t = $log{ $f{tenant} } ||= { lines => 0, billed => 0, refused => 0,
                                     in => 0, out => 0, usage => 0 };
    $t->{lines}++;
    $t->{refused}++ if $f{status} != 200;
    $reasons{"$f{status} $f{reason}"}++;
    next if $f{cost_usd} eq '';
    $t->{billed}++;
    $t->{in} += $f{prompt_tokens};
    $t->{out} += $f{completion_tokens};
    $t->{usage} += pico($f{cost_usd});
}
close $fh;

# the policy at work: the resume rule, the curated set, PII, the free
# plan's rate
ok($reasons{$_}, "a refusal: $_") for '400 resume.self_score',
    '400 override.ignore_previous', '400 pii:ssn', '429 rpm';

my %events;
open $fh, '<', "$dir/stripe-meter-events.ndjson" or die $!;
while (my $e = <$fh>) {
    my ($c) = $e =~ /"stripe_customer_id":"([^"]+)"/;
    my ($v) = $e =~ /"value":"(\d+)"/;
    $events{$c} += $v;
}
close $fh;

my %customer = (talentbridge => 'cus_TalentBridge',
                hirewell => 'cus_Hirewell', 'globex-hr' => 'cus_GlobexHR');

for my $t (sort keys %customer) {
    my $b = $bill{$t} || {};
    my $l = $log{$t} || {};

    is($b->{sent}, $l->{lines}, "$t: every request sent is in the log");
    is($b->{ok}, $l->{billed}, "$t: the requests billed are the log's "
                               . 'lines with a cost');
    is($b->{refused}, $l->{refused}, "$t: the refused ones, the rest");
    cmp_ok($l->{refused}, '>', 0, "$t: ... and there are some");
    is($b->{in}, $l->{in}, "$t: input tokens: the log's sum");
    is($b->{out}, $l->{out}, "$t: output tokens: the log's sum");
    is(pico($b->{usage} // ''), $l->{usage},
       "$t: usage: the sum of the log's cost_usd, exactly");
    is(pico($b->{total} // ''), pico($b->{fee} // '') + $l->{usage},
       "$t: total: the plan's fee and the usage");
    is($events{ $customer{$t} }, $l->{in} + $l->{out},
       "$t: the Stripe meter events: the tokens");
}
