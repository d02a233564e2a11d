# Every ```nginx block of README.md and docs/*.md passes `nginx -t` with
# the module loaded: what the docs tell an operator to write is a
# configuration nginx accepts.  Plain Perl: the blocks are read from the
# docs at run time, whatever blocks there are (docs/testing.md, "Docs
# that run").
#
# A block is completed into a whole configuration:
#
#   - a block with http{} (or events{}, load_module) is whole already:
#     its load_module lines give way to TEST_NGINX_LOAD_MODULES;
#   - any other block is tried in http{}, then server{}, then location{},
#     then split (its locations in a server{}, the rest in http{}): it
#     passes when one of them does;
#   - a comment on the line before the fence says more:
#       <!-- nginx -t: http "ai_guard_tier free;" -->   adds that text at
#           the http level first (a tier the block names, a cache path);
#       <!-- nginx -t: in location -->                  only that context;
#       <!-- nginx -t: skip, the reason -->              not a configuration
#           (a template, two alternatives of one line): skipped, the
#           reason printed.
#
# Files the block names (ai_guard_keys, ai_guard_jwt_keys,
# ai_guard_prompt_rules, include, any path under /etc, /var, ..., also
# as a parameter's value such as journal=/var/...) move
# under the test's prefix, with a placeholder that parses: a keys file
# with no key, the test JWKS, examples/prompt-injection.rules, an empty
# file; a relative one goes under the prefix's conf/, where nginx looks
# for it.  Host names in proxy_pass get an upstream{} of that name, and
# in an upstream's server lines become 127.0.0.1 (no DNS at `nginx -t`
# time).

use strict;
use warnings;

use Test::More;
use FindBin;
use lib "$FindBin::Bin/helper";
use AiGuardNginx;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Path qw(make_path remove_tree);

my $top = abs_path("$FindBin::Bin/..");
my $root = "$top/t/servroot-docs";
my $bin = AiGuardNginx::binary();
my @modules = split ' ', $ENV{TEST_NGINX_LOAD_MODULES} || '';

remove_tree($root);
make_path("$root/conf", "$root/logs", "$root/files", "$root/temp");

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or die "$f: $!";
    local $/;
    return <$fh>;
}

# the blocks: file, line, text, and the marker before the fence
my @blocks;

for my $f ("$top/README.md", sort glob("$top/docs/*.md")) {
    (my $name = $f) =~ s{^\Q$top\E/}{};
    my @lines = split /\n/, slurp($f), -1;
    my ($in, $start, $mark, @text);
    my $prev = '';

    for my $i (0 .. $#lines) {
        my $l = $lines[$i];

        if (!$in && $l =~ /^\s*```nginx\s*$/) {
            ($in, $start, @text) = (1, $i + 1);
            ($mark) = $prev =~ /<!--\s*nginx -t:\s*(.*?)\s*-->/;
            next;
        }

        if ($in && $l =~ /^\s*```\s*$/) {
            push @blocks, { file => $name, line => $start,
                            text => join("\n", @text) . "\n",
                            mark => $mark };
            $in = 0;
            next;
        }

        push @text, $l if $in;
        $prev = $l if $l =~ /\S/;
    }
}

plan skip_all => 'no ```nginx block in README.md or docs/' unless @blocks;
plan tests => scalar @blocks;

# top-level statements of a block: [first word, text]
sub statements {
    my ($t) = @_;
    my (@out, $cur, $depth, $q);
    ($cur, $depth) = ('', 0);

    for my $line (split /\n/, $t) {
        $line =~ s/(^|\s)#.*$//;    # comments (no '#' inside our quotes)
        for my $c (split //, "$line\n") {
            $cur .= $c;
            if ($q) { $q = undef if $c eq $q; next }
            if ($c eq '"' || $c eq "'") { $q = $c; next }
            if ($c eq '{') { $depth++; next }
            if ($c eq '}') {
                $depth--;
                if ($depth == 0) { push @out, $cur; $cur = '' }
                next;
            }
            if ($c eq ';' && $depth == 0) { push @out, $cur; $cur = '' }
        }
    }

    return map { my ($w) = /^\s*(\S+)/; [$w, $_] } grep { /\S/ } @out;
}

# the files a block names move under the prefix, with a placeholder
my %placeholder = (
    ai_guard_keys         => qq({"keys": []}\n),
    ai_guard_jwt_keys     => slurp("$top/t/unit/data/jwt/jwks.json"),
    # the rules file the examples ship, when there is one
    ai_guard_prompt_rules => -f "$top/examples/prompt-injection.rules"
                             ? slurp("$top/examples/prompt-injection.rules")
                             : '',
);
my %is_dir = map { $_ => 1 } qw(proxy_cache_path fastcgi_cache_path
    uwsgi_cache_path scgi_cache_path client_body_temp_path proxy_temp_path
    root alias);
my %is_log = map { $_ => 1 } qw(access_log error_log);

# a file that parses for the directive that names it, unless one is there
sub placeholder {
    my ($p, $d) = @_;

    make_path(dirname($p));
    return if -e $p;

    open my $fh, '>', $p or die "$p: $!";
    print $fh $placeholder{$d} // '';
    close $fh;
}

sub place_files {
    my ($t) = @_;
    my $out = '';

    for my $line (split /\n/, $t) {
        my $orig = $line;
        $line =~ s{(?<=[\s=])(/(?:etc|var|srv|opt|run|tmp|home|usr/local)/
                     [^\s;"'{}]+)}{
            # the directive the path is an argument of
            my ($d) = substr($orig, 0, $-[0])
                      =~ /(?:^|[;{}])\s*(\w+)[^;{}]*$/;
            $d //= '';
            my $p = "$root/files$1";
            if ($is_dir{$d}) {
                make_path($p);
            } else {
                $is_log{$d} ? make_path(dirname($p)) : placeholder($p, $d);
            }
            $p
        }gex;

        # a relative file of a directive above: under the prefix's conf/,
        # where nginx looks for it (the main configuration's directory)
        my $files = join '|', 'include', keys %placeholder;
        placeholder("$root/conf/$2", $1)
            if $line =~ /^\s*($files)\s+([\w.-][^\s;\$*]*)\s*;/;

        # a host name in an upstream's server line: nginx -t resolves it
        $line =~ s/((?:^|[{;])\s*server\s+)[A-Za-z][\w-]*(?:\.[\w-]+)+
                  (?=[:\s;])/${1}127.0.0.1/gx;

        $out .= "$line\n";
    }

    return $out;
}

sub upstreams {
    my ($t) = @_;
    my %have = map { $_ => 1 } $t =~ /^\s*upstream\s+(\S+)\s*\{/mg;
    my %want;

    for my $h ($t =~ m{proxy_pass\s+https?://([A-Za-z][\w.-]*)}g) {
        $want{$h} = 1 unless $have{$h} || $h eq 'localhost';
    }

    return join '', map { "    upstream $_ { server 127.0.0.1:1; }\n" }
                    sort keys %want;
}

my $main_head = join('', map { "load_module $_;\n" } @modules)
    . "error_log $root/logs/error.log;\npid $root/logs/nginx.pid;\n";
my $http_head = "    access_log off;\n"
    . join('', map { "    ${_}_temp_path $root/temp/$_;\n" }
                   qw(client_body proxy fastcgi uwsgi scgi));

sub whole {
    my ($b, $ctx, $with) = @_;
    my $t = place_files($b->{text});
    my $up = upstreams($t);
    $with = $with ? '    ' . place_files($with) : '';

    if ($ctx eq 'main') {
        $t =~ s/^(\s*load_module\b)/#$1/mg;
        $t =~ s/^(\s*http\s*\{)/$1\n$http_head$up$with/m;
        $t .= "events {}\n" unless $t =~ /^\s*events\s*\{/m;
        return $main_head . $t;
    }

    my $http;

    if ($ctx eq 'http') {
        $http = $t;

    } elsif ($ctx eq 'server') {
        $http = "server {\n$t}\n";

    } elsif ($ctx eq 'location') {
        $http = "server {\nlocation / {\n$t}\n}\n";

    } else {    # split
        my (@loc, @rest);
        for my $s (statements($t)) {
            if ($s->[0] eq 'location') { push @loc, $s->[1] }
            else                       { push @rest, $s->[1] }
        }
        return undef unless @loc && @rest;
        $http = join('', @rest) . "\nserver {\n" . join('', @loc) . "\n}\n";
    }

    return "${main_head}events {}\nhttp {\n$http_head$up$with$http\n}\n";
}

my $n = 0;

for my $b (@blocks) {
    my $where = "$b->{file}:$b->{line}";
    my $mark = $b->{mark} // '';

    if ($mark =~ /^skip\b[,:]?\s*(.*)$/) {
        my $why = $1;
    SKIP: {
            skip "$where: $why", 1 if length $why;
            fail("$where: a skip needs its reason: <!-- nginx -t: skip, why -->");
        }
        next;
    }

    my ($with) = $mark =~ /\bhttp\s+"([^"]*)"/;
    my ($only) = $mark =~ /\bin\s+(main|http|server|location|split)\b/;

    my @words = map { $_->[0] } statements($b->{text});
    my $whole = grep { /^(?:http|events|load_module)$/ } @words;
    my @try = $only ? ($only)
            : $whole ? ('main')
            : ('http', 'server', 'location', 'split');

    my ($ok, @why);

    for my $ctx (@try) {
        my $conf = whole($b, $ctx, $with);
        next unless defined $conf;

        $n++;
        my $file = "$root/conf/b$n.conf";
        open my $fh, '>', $file or die "$file: $!";
        print $fh $conf;
        close $fh;

        my $out = `$bin -t -q -p $root/ -c $file 2>&1`;

        if ($? == 0) {
            $ok = $ctx;
            last;
        }

        $out =~ s/^\s+|\s+$//g;
        push @why, "  in $ctx ($file):\n    $out";
    }

    if ($ok) {
        pass("$where passes nginx -t ($ok)");

    } else {
        fail("$where passes nginx -t");
        diag("$where:\n" . join("\n", @why) . "\n  a partial block is"
             . " completed by a comment before its fence:"
             . " <!-- nginx -t: http \"ai_guard_tier free;\" -->,"
             . " or skipped: <!-- nginx -t: skip, why -->"
             . " (t/099-docs-nginx-t.t)");
    }
}
