package AiGuardMetrics;

# The metrics of docs/reports.md, read from its table, and a check of a
# Prometheus text against them: every family written is documented with
# its type and exactly its labels, every value of a label with a closed
# list of values (decision, code, ...) is one the Labels table lists, and
# every documented family is written (but those the caller says its
# configuration cannot make).
# Plain Perl and Test::More, for block files and plain scripts alike.

use strict;
use warnings;

use Exporter 'import';
use FindBin;
use Test::More;

our @EXPORT = qw(documented_metrics documented_values check_documented
                 samples);

# the labels whose values the Labels table lists in full; the others
# (tenant, model, reason, key, threshold) are the configuration's names
our @CLOSED = qw(decision code type dialect period status part limit);

# { name => { type => ..., labels => [sorted names] } }
sub documented_metrics {
    my $file = "$FindBin::Bin/../docs/reports.md";
    open my $fh, '<', $file or die "$file: $!";

    my ($in, %m);

    # a lexical: the caller's $_ may be the runner's
    while (my $line = <$fh>) {
        $in = 1 if $line =~ /^## `ai_guard_metrics`/;
        last if $in && $line =~ /^### /;
        next unless $in;

        my ($name, $type, $labels) = $line =~
            /^\| `([a-z_]+)` \| (counter|gauge|histogram) \| ([^|]*) \|/
            or next;

        $m{$name} = {
            type => $type,
            labels => [ sort $labels =~ /`([a-z_]+)`/g ],
        };
    }

    return \%m;
}

# { label => { value => 1 } } of the closed labels, from the Labels
# table of docs/reports.md (`""` is the empty value)
sub documented_values {
    my $file = "$FindBin::Bin/../docs/reports.md";
    open my $fh, '<', $file or die "$file: $!";

    my ($in, %v);
    my %closed = map { $_ => 1 } @CLOSED;

    while (my $line = <$fh>) {
        $in = 1 if $line =~ /^### Labels/;
        last if $in && $line =~ /^### (?!Labels)/;
        next unless $in;

        my ($label, $values) = $line =~ /^\| `([a-z_]+)` \| (.*) \|$/
            or next;
        next unless $closed{$label};

        $v{$label} = { map { ($_ eq '""' ? '' : $_) => 1 }
                       $values =~ /`([^`]*)`/g };
    }

    return \%v;
}

# Prometheus text into { "name{labels}" => value }
sub samples {
    my ($text) = @_;
    my %s;
    for (split /\n/, $text) {
        next if /^#/;
        my ($k, $v) = /^(.*) (\S+)$/ or next;
        $s{$k} = $v;
    }
    return %s;
}

# one Test::More check: the text against the table
sub check_documented {
    my ($text, $name, @absent) = @_;
    my $doc = documented_metrics();
    my $values = documented_values();
    my (%type, %seen, @bad);

    push @bad, "label $_: no values in the Labels table"
        for grep { !$values->{$_} } @CLOSED;

    for (split /\n/, $text) {
        $type{$1} = $2 if /^# TYPE (\S+) (\S+)$/;
    }

    for my $family (sort keys %type) {
        my $d = $doc->{$family};

        push(@bad, "$family: not in docs/reports.md"), next unless $d;
        push @bad, "$family: $type{$family}, documented $d->{type}"
            if $type{$family} ne $d->{type};
    }

    for (split /\n/, $text) {
        next if /^#/ || !/\S/;

        my ($metric, $labels) = /^([a-z_]+)(?:\{(.*)\})? \S+$/
            or push(@bad, "not a sample: $_"), next;

        my $family = $metric;
        my @names = sort(($labels // '') =~ /(?:^|,)([a-z_]+)="/g);

        if (!$type{$family} && $metric =~ /^(.*)_(?:bucket|sum|count)$/) {
            $family = $1;
            @names = grep { $_ ne 'le' } @names if $metric =~ /_bucket$/;
        }

        my $d = $doc->{$family} or next;

        $seen{$family} = 1;

        push @bad, "$metric: labels (@names), documented (@{ $d->{labels} })"
            if "@names" ne "@{ $d->{labels} }";

        while (($labels // '') =~ /(?:^|,)([a-z_]+)="((?:[^"\\]|\\.)*)"/g) {
            push @bad, "$metric: $1=\"$2\" is not a documented value"
                if $values->{$1} && !$values->{$1}{$2};
        }
    }

    my %skip = map { $_ => 1 } @absent;

    for my $family (sort keys %$doc) {
        push @bad, "$family: documented, not written"
            unless $seen{$family} || $skip{$family};
    }

    is join("\n", @bad), '', "$name: every family and label as documented";
}

1;
