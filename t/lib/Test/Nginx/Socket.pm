package Test::Nginx::Socket;

# A small runner for the Test::Nginx::Socket block format.
#
# CPAN's Test::Nginx is not packaged by Debian, so the suite carries this
# stand-in.  It implements the subset of the real module the suite uses,
# with the real module's semantics (what is sent, what is checked, how many
# TAP assertions each check makes), so every .t file also passes under
# openresty/test-nginx.  See docs/testing.md.

use strict;
use warnings;

use Exporter ();
use IO::Socket::INET ();
use IO::Select ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);
use File::Path qw(make_path remove_tree);
use File::Spec ();
use List::Util qw(shuffle);
use Scalar::Util qw(openhandle);

our $VERSION = '0.01';

# What the real module exports (its own functions plus Test::Base's
# re-exports of Test::More): nothing more, so a test that runs here runs
# there too.
my @TestMore;
BEGIN {
    @TestMore = qw(ok isnt like unlike is_deeply cmp_ok skip todo_skip pass
        fail eq_array eq_hash eq_set plan can_ok isa_ok diag use_ok is);
}
use Test::More import => \@TestMore;

our @EXPORT = (@TestMore, qw(
    blocks run_tests run_test repeat_each no_shuffle no_root_location
    workers worker_connections master_on master_off master_process_enabled
    log_level timeout server_name server_addr server_root html_dir
    server_port server_port_for_client config_preamble env_to_nginx
    add_block_preprocessor add_cleanup_handler add_test_cleanup_handler
    add_response_body_check bail_out check_accum_error_log no_long_string
    no_diff is_str no_nginx_manager
));


# Settings: the same environment variables and defaults as the real one.

our $ServerAddr  = '127.0.0.1';
our $ServerName  = 'localhost';
our $ServerPort  = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT}
                   || 1984;
our $ClientPort  = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our @PortRange   = _port_range($ENV{TEST_NGINX_PORT_RANGE}, $ServerPort);
our $ServRoot    = $ENV{TEST_NGINX_SERVROOT}
                   || File::Spec->rel2abs('t/servroot');
our $Timeout     = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $LogLevel    = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $Master      = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $Sleep       = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $NoShuffle   = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $Verbose     = $ENV{TEST_NGINX_VERBOSE};
our $LoadModules = $ENV{TEST_NGINX_LOAD_MODULES};
our $RepeatEach  = 1;
our $Workers     = 1;
our $WorkerConns = 64;
our $NoRootLoc   = 0;
our $AccumErrLog = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $Preamble    = '';
our $NoManager   = $ENV{TEST_NGINX_NO_NGINX_MANAGER} || 0;
our $NginxBinary = $ENV{TEST_NGINX_BINARY} || _find_nginx();

$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $HtmlDir    = "$ServRoot/html";
our $LogDir     = "$ServRoot/logs";
our $ConfDir    = "$ServRoot/conf";
our $ConfFile   = "$ConfDir/nginx.conf";
our $ErrLogFile = "$LogDir/error.log";
our $AccLogFile = "$LogDir/access.log";
our $PidFile    = "$LogDir/nginx.pid";

# Sections the real runner acts on and this one does not: refused, rather
# than ignored, so a test never passes here for a check it skipped.
my @Unsupported = qw(access_log no_access_log charset curl http09 http2
    http3 pipelined_requests post_setup_server_root reload_fails request_eval
    response_body_eval response_body_filters response_body_json_sort
    server_addr_for_client skip_eval skip_nginx skip_nginx2 skip_openssl
    skip_slave stap stap_out stap_out_like stap_out_unlike tcp_listen
    tcp_query tcp_query_len tcp_reply udp_listen udp_query udp_reply todo
    todo_nginx write_resp_body_file error_log_file);

my (@EnvToNginx, @Preprocessors, @Cleanups, @TestCleanups, @BodyChecks);
my ($Blocks, $NginxPid, $PrevBlock, $ErrLogPos, $RandPorts, $Failed);


sub import {
    my ($class, @args) = @_;

    # Test::Base puts "use strict; use warnings;" in front of every test
    # file; do the same so a file that is fine here is fine there.
    strict->import;
    warnings->import;

    @args = grep { !/^-base$/i } @args;
    Test::More::plan(@args) if @args;

    local $Exporter::ExportLevel = 1;
    Exporter::import($class, @EXPORT);
}


# The ports a suite may bind besides the server's: TEST_NGINX_PORT_RANGE
# as "low-high", else the 999 ports above the server's, so that two
# suites with server ports 1,000 apart never meet (docs/testing.md).

sub _port_range {
    my ($spec, $port) = @_;

    return ($port + 1, $port + 999) if !defined $spec || $spec eq '';

    my ($lo, $hi) = $spec =~ /^\s*(\d+)\s*-\s*(\d+)\s*$/
        or die "TEST_NGINX_PORT_RANGE \"$spec\": not \"low-high\"\n";
    die "TEST_NGINX_PORT_RANGE \"$spec\": not 1 <= low <= high <= 65535\n"
        if $lo < 1 || $lo > $hi || $hi > 65535;

    return ($lo, $hi);
}

sub _find_nginx {
    for my $dir (split(/:/, $ENV{PATH} || ''), '/usr/sbin', '/usr/local/sbin',
                 '/usr/local/nginx/sbin')
    {
        return "$dir/nginx" if -x "$dir/nginx";
    }
    return 'nginx';
}


# Setters and getters, as in Test::Nginx::Util.

sub repeat_each (@)    { $RepeatEach = shift if @_; $RepeatEach }
sub workers (@)        { $Workers = shift if @_; $Workers }
sub worker_connections (@) { $WorkerConns = shift if @_; $WorkerConns }
sub log_level (@)      { $LogLevel = shift if @_; $LogLevel }
sub timeout (@)        { $Timeout = shift if @_; $Timeout }
sub server_name (@)    { $ServerName = shift if @_; $ServerName }
sub server_addr (@)    { $ServerAddr = shift if @_; $ServerAddr }
sub server_port (@)    { $ServerPort = shift if @_; $ServerPort }
sub server_port_for_client (@) { $ClientPort = shift if @_; $ClientPort }
sub master_on ()       { $Master = 'on' }
sub master_off ()      { $Master = 'off' }
sub master_process_enabled (@) {
    $Master = $_[0] ? 'on' : 'off' if @_;
    $Master;
}
sub no_shuffle ()      { $NoShuffle = 1 }
sub no_root_location () { $NoRootLoc = 1 }
sub no_nginx_manager () { $NoManager = 1 }
sub check_accum_error_log () { $AccumErrLog = 1 }
sub config_preamble ($) { $Preamble = shift }
sub html_dir ()        { $HtmlDir }
sub server_root ()     { $ServRoot }
sub no_long_string ()  { 1 }
sub no_diff            { $ENV{TEST_SHOW_NO_DIFFS} = 1 }
sub add_block_preprocessor (&) { unshift @Preprocessors, shift }
sub add_cleanup_handler ($) { unshift @Cleanups, shift }
sub add_response_body_check ($) { push @BodyChecks, shift }
sub add_test_cleanup_handler ($) { unshift @TestCleanups, shift }

sub env_to_nginx (@) {
    for my $v (@_) {
        die "env_to_nginx: bad argument value: $v\n"
            if $v !~ /^[A-Za-z_]/ || $v =~ /\n/;
        push @EnvToNginx, $v;
    }
}

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    return Test::More::like($got, $expected, $desc)
        if ref $expected && ref $expected eq 'Regexp';
    return Test::More::is($got, $expected, $desc);
}

sub bail_out (@) {
    _cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub parse_time ($) {
    my $t = shift;
    return undef if !defined $t;
    if ($t =~ s/([^_a-zA-Z])ms$/$1/) {
        $t /= 1000;
    } else {
        $t =~ s/([^_a-zA-Z])s$/$1/;
    }
    return $t;
}


# Blocks: Test::Base's format.  "=== name", then "--- section filters"
# lines; every section goes through the default filters "norm" and "trim",
# then its own ("eval", "chomp", ...), left to right.

sub blocks (;$) {
    my $section = shift;
    $Blocks ||= _parse_spec();
    my @b = grep { !defined $section || exists $_->{$section} } @$Blocks;
    return scalar @b unless wantarray;
    $_->_run_filters for grep { !$_->{_filtered} } @b;
    return @b;
}

sub _parse_spec {
    my $fh = openhandle(\*main::DATA);
    my $spec = $fh ? do { local $/; <$fh> } : '';
    my @hunks = ($spec =~ /^(===.*?(?=^===|\z))/msg);
    my @blocks;

    for my $hunk (@hunks) {
        $hunk =~ s/\A===[ \t]*(.*)\s+// or next;
        my $b = Test::Nginx::Socket::Block->new($1);
        my @parts = split /^--- +\(?(\w+)\)? *(.*)?\n/m, $hunk;
        shift @parts;

        while (@parts) {
            my ($type, $filters, $value) = splice @parts, 0, 3;
            $value = '' if !defined $value;
            $filters = '' if !defined $filters;
            if ($filters =~ /:(\s|\z)/) {
                ($filters, $value) = split /\s*:(?:\s+|\z)/, $filters, 2;
                $value = '' if !defined $value;
                $value =~ s/^\s*(.*?)\s*$/$1/;
            }
            $b->{_filters}{$type} = $filters;
            push @{ $b->{_order} }, $type;
            $b->{$type} = [$value];
        }

        return [$b] if exists $b->{ONLY};
        next if exists $b->{SKIP};
        push @blocks, $b;
        last if exists $b->{LAST};
    }

    return \@blocks;
}


# Running.

sub run_tests () {
    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort
        if !defined $ENV{TEST_NGINX_SERVER_PORT};

    for my $block ($NoShuffle ? blocks() : shuffle blocks()) {
        $_->($block) for @Preprocessors;
        $block->set_value(name => "$0 " . $block->name);
        run_test($block);
        $_->($block) for @TestCleanups;
        $PrevBlock = $block;
    }

    _cleanup();
    Test::More::done_testing() if !Test::More->builder->has_plan;
}

sub run_test ($) {
    my $block = shift;
    my $name = $block->name;

    return if defined $block->SKIP;

    for my $sec (@Unsupported) {
        bail_out("$name - --- $sec: a section of the real Test::Nginx this "
                 . "runner does not implement (docs/testing.md)")
            if exists $block->{$sec};
    }

    _refuse_unchecked($block);

    $RandPorts = {};
    local $LogLevel = $block->log_level || $LogLevel;
    my $config = _expand($block->config, $name);

    if (defined $config && !$NoManager) {
        _stop_nginx($name);
        _setup_servroot();
        _write_user_files($block);
        _write_config($block, $config);

        if (defined $block->must_die) {
            return _run_must_die($block);
        }

        _start_nginx($name);

    } elsif (!$NoManager && !$NginxPid) {
        bail_out("$name - No '--- config' section specified and no nginx "
                 . "from a previous block is running");
    }

    if (defined $block->init) {
        eval $block->init;
        bail_out("$name - init failed: $@") if $@;
    }

    $ErrLogPos = 0;

    for my $i (0 .. $RepeatEach - 1) {
        _write_user_files($block) if $i > 0;
        _run_requests($block, $i);
    }
}

# Checks that would pass whatever nginx answers are refused before nginx
# starts, so that no such check is ever counted as a pass:
#
#   - two sections of which both runners check only one (the other one
#     would be ignored in silence);
#   - an eval array of expectations shorter or longer than the requests
#     (a request past its end would be checked against nothing);
#   - a header spec line that is not "Name: value" (or "!Name" in
#     --- response_headers): "Name" alone, a name that is a pattern, the
#     same name twice;
#   - a pattern that matches both nothing and anything: ".*" for a header
#     value, an empty body pattern, qr/(?:)/ in --- error_log.

my %Exclusive = (
    response_headers_like => 'response_headers',
    response_body_like => 'response_body',
    response_body_unlike => 'response_body',
    error_code_like => 'error_code',
);

my @PerRequest = qw(error_code error_code_like response_body
    response_body_like response_body_unlike response_headers
    response_headers_like raw_response_headers_like
    raw_response_headers_unlike);

# a string no check can mean: matched together with the empty string, the
# pattern matches anything
my $Probe = "\x01 unlikely: \x7f value \x02";

sub _refuse_unchecked {
    my $block = shift;
    my $name = $block->name;

    my $refuse = sub { bail_out("$name - $_[0] (docs/testing.md)") };

    while (my ($sec, $wins) = each %Exclusive) {
        $refuse->("--- $sec is ignored when --- $wins is given, by both "
                  . "runners")
            if defined $block->$sec && defined $block->$wins;
    }

    $refuse->("--- response_body_unlike is ignored when "
              . "--- response_body_like is given, by both runners")
        if defined $block->response_body_like
           && defined $block->response_body_unlike;

    my $request = $block->raw_request // $block->request;
    my $n = ref $request eq 'ARRAY' && !defined $block->raw_request
            ? @$request : 1;

    for my $sec (@PerRequest) {
        my $v = $block->$sec;
        next if !defined $v;

        my @each = ref $v eq 'ARRAY' ? @$v : ($v);

        $refuse->(sprintf("--- %s has %d values for %d requests", $sec,
                          scalar @each, $n))
            if ref $v eq 'ARRAY' && @each != $n;

        for my $i (0 .. $#each) {
            my $e = $each[$i];
            my $what = "--- $sec" . (ref $v eq 'ARRAY' ? " (request $i)" : '');

            if (!defined $e) {
                # no header spec: no assertion; no pattern: one that
                # passes (both runners match undef as the empty pattern)
                next if $sec !~ /_like$/ || $sec =~ /^response_headers/;
                $refuse->("$what: undef matches any response");
            }

            if ($sec =~ /^response_headers/) {
                _refuse_header_spec($refuse, $what, $e, $sec =~ /_like$/);

            } elsif ($sec =~ /_like$/) {
                my $re = eval { ref $e ? $e : qr/$e/s };
                $refuse->("$what: \"$e\" is not a pattern: $@") if !$re;
                $refuse->("$what: \"$e\" matches any response")
                    if _vacuous($re, $sec eq 'error_code_like' ? '' : "\n");
            }
        }
    }

    for my $sec (qw(error_log no_error_log)) {
        my $v = $block->$sec;
        next if !defined $v;
        for my $pat (@{ _patterns($v) }) {
            next if !ref $pat;
            $refuse->("--- $sec: $pat matches any line") if _vacuous($pat);
        }
    }
}

# "Name: value" lines; "!Name" in --- response_headers only, where the
# header must be absent (in --- response_headers_like the real runner
# would match undef)

sub _refuse_header_spec {
    my ($refuse, $what, $spec, $like) = @_;
    my %seen;

    for my $line (split /\n/, $spec) {
        (my $l = $line) =~ s/^\s+|\s+$//g;
        next if $l eq '';

        if ($l =~ /^!\s*(.*)$/) {
            $refuse->("$what: \"$l\": an absent header is said in "
                      . "--- response_headers or raw_response_headers_unlike")
                if $like;
            $refuse->("$what: \"$l\": not a header name")
                if $1 !~ /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
            next;
        }

        my ($k, $v) = split /\s*:\s*/, $l, 2;

        $refuse->("$what: \"$l\" is not \"Name: value\""
                  . ($like ? '' : ' (say "!Name" for an absent header)'))
            if !defined $v;
        $refuse->("$what: \"$k\" is not a header name (a pattern? only "
                  . "the value is one)")
            if $k !~ /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
        $refuse->("$what: the header $k twice (one of them would be "
                  . "ignored)")
            if $seen{lc $k}++;

        next if !$like;

        my $re = eval { qr/^$v$/ };
        $refuse->("$what: \"$v\" is not a pattern: $@") if !$re;
        $refuse->("$what: the $k pattern \"$v\" matches any value, and "
                  . "an absent header")
            if _vacuous($re);
    }
}

sub _vacuous {
    my ($re, $sep) = @_;
    $sep //= '';
    return '' =~ $re && "$Probe$sep$Probe" =~ $re;
}

sub _run_must_die {
    my $block = shift;
    my $name = $block->name;
    my $want = $block->must_die;

    $ErrLogPos = 0;

    for my $i (0 .. $RepeatEach - 1) {
        my $pid = _spawn_nginx($name);
        my $status = _wait_exit_or_ready($pid);

        if (!defined $status) {
            Test::More::isnt(0, 0, "$name - die as expected");
            warn "WARNING: $name - nginx must die but it does not; "
                 . "killing it (req $i)\n";
            _kill_nginx($pid, $name);

        } elsif ($want =~ /^\s*\d+\s*$/) {
            Test::More::is($want + 0, $status >> 8,
                           "$name - die with the expected exit code");

        } else {
            Test::More::isnt($status, 0, "$name - die as expected");
        }

        _check_error_log($block, $i);
    }
}


# nginx: a direct child with "daemon off", prefix and every path inside the
# server root (the compiled-in temp paths ignore -p).

sub _setup_servroot {
    make_path($ServRoot) if !-d $ServRoot;
    keep_sanitizer_log("$LogDir/error.log");
    remove_tree($ConfDir, $HtmlDir, $LogDir, "$ServRoot/cache",
                glob("$ServRoot/*_temp"), glob("$ServRoot/*_cache"));
    make_path($ConfDir, $HtmlDir, $LogDir);
    _write_file("$HtmlDir/index.html", '<html><head><title>It works!'
        . '</title></head><body>It works!</body></html>');
}

# UBSan, built together with ASan by gcc, ignores log_path and writes to
# nginx's stderr, which is the error log: before a block wipes the server
# root, a log with a sanitizer report is kept where util/sanitizer-scan
# looks ($TEST_NGINX_SANITIZER_LOGS, set by make test-asan).

my $kept = 0;

sub keep_sanitizer_log {
    my ($log) = @_;
    my $dir = $ENV{TEST_NGINX_SANITIZER_LOGS};

    return unless $dir && -f $log;

    open my $in, '<', $log or return;
    my $bad = grep { /runtime error:|ERROR: AddressSanitizer|SUMMARY: UndefinedBehaviorSanitizer/ } <$in>;
    close $in;

    return unless $bad;

    make_path($dir);
    (my $name = $0) =~ s{.*/}{};
    copy_file($log, sprintf("%s/%s-%d-%d.error.log", $dir, $name, $$,
                            ++$kept));
}

sub copy_file {
    my ($from, $to) = @_;
    open my $in, '<', $from or return;
    open my $out, '>', $to or return;
    binmode $in;
    binmode $out;
    print $out $_ while <$in>;
    close $in;
    close $out;
}

sub _write_file {
    my ($path, $data) = @_;
    open my $out, '>', $path or bail_out("cannot write $path: $!");
    binmode $out;
    print $out $data;
    close $out;
}

sub _write_user_files {
    my $block = shift;
    my $files = $block->user_files;
    return if !defined $files;

    if (!ref $files) {
        my @list;
        for my $line (split /^/m, $files) {
            if ($line =~ />>> (\S+)(?:\s+(.+))?/) {
                push @list, [$1, undef, $2];
            } elsif (@list) {
                $list[-1][1] .= $line;
            }
        }
        $files = \@list;
    }

    for my $f (@$files) {
        my ($fname, $body, $date) = @$f;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        make_path($1) if $path =~ m{(.*)/} && !-d $1;
        _write_file($path, _expand($body // '', $block->name));
        if ($date) {
            local $ENV{TZ} = 'GMT';
            system('touch', '-t', $date, $path) == 0
                or bail_out("touch -t $date $path failed");
        }
    }
}

sub _expand {
    my ($text, $name) = @_;
    return undef if !defined $text;

    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        if ($var =~ /^TEST_NGINX_RAND_PORT_\d+$/) {
            $RandPorts->{$var} //= _rand_port();
        } else {
            bail_out("$name - No environment $var defined.\n"
                     . ($var eq 'TEST_NGINX_HTML_DIR'
                        ? "(add \$ENV{TEST_NGINX_HTML_DIR} ||= html_dir(); "
                          . "to the test file, as the real runner needs "
                          . "it too)\n" : ''))
                if !defined $ENV{$var};
            $ENV{$var};
        }
    }ge;

    return $text;
}

# A free port of the range, on the loopback address nginx will listen on.

sub _rand_port {
    my %used = ($ServerPort => 1, map { $_ => 1 } grep { defined }
                values %$RandPorts);
    my ($lo, $hi) = @PortRange;

    for (1 .. 1000) {
        my $port = $lo + int rand($hi - $lo + 1);
        next if $used{$port};
        my $s = IO::Socket::INET->new(LocalAddr => $ServerAddr,
                                      LocalPort => $port, Listen => 1,
                                      ReuseAddr => 1);
        return $port if $s;
    }
    bail_out("cannot find a free port in $lo-$hi (TEST_NGINX_PORT_RANGE)");
}

my $NginxV;

sub _write_config {
    my ($block, $config) = @_;
    my $name = $block->name;

    my $http_config = _expand($block->http_config, $name) // '';
    my $main_config = $block->main_config // '';
    my $post_main = _expand($block->post_main_config, $name) // '';
    my $server_name = $block->server_name // $ServerName;

    if ($LoadModules) {
        my @mods = map { "load_module $_;" } grep { $_ } split /\s+/,
                   $LoadModules;
        $main_config = join ' ', @mods, $main_config;
    }
    $main_config = _expand($main_config, $name);

    $NginxV //= `$NginxBinary -V 2>&1`;
    my $temp = '';
    for my $t (qw(client_body proxy fastcgi scgi uwsgi)) {
        next if $NginxV =~ /--without-http_${t}_module/;
        next if $http_config =~ /\b${t}_temp_path\b/;
        $temp .= " ${t}_temp_path $ServRoot/${t}_temp;";
    }

    my $env = join '', map { my $v = /\s/ ? "'$_'" : $_; "env $v;\n" }
              @EnvToNginx;

    (my $qname = $server_name) =~ s/(['\\])/\\$1/g;

    my $root = $NoRootLoc ? '' : <<"_EOC_";
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_

    my $user = $> == 0 ? "user root;\n" : '';

    _write_file($ConfFile, <<"_EOC_");
worker_processes  $Workers;
daemon off;
master_process $Master;
error_log $ErrLogFile $LogLevel;
pid       $PidFile;
$env
$main_config

http {
    access_log $AccLogFile;$temp

    default_type text/plain;
    keepalive_timeout  68000ms;

$http_config
    server {
        listen          $ServerAddr:$ServerPort;
        server_name     '$qname';
        client_max_body_size 30M;

        # Begin preamble config...
$Preamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root    }
}

$post_main

events {
    accept_mutex off;
    worker_connections  $WorkerConns;
}
$user
_EOC_
}

sub _spawn_nginx {
    my $name = shift;

    unlink $PidFile;

    my $pid = fork;
    bail_out("$name - fork() failed: $!") if !defined $pid;

    if ($pid == 0) {
        open STDOUT, '>', '/dev/null';

        # TEST_NGINX_USE_VALGRIND as in the real runner: 1 for memcheck
        # with its defaults, or the valgrind options themselves.
        my @vg;
        if (my $vg = $ENV{TEST_NGINX_USE_VALGRIND}) {
            @vg = ('valgrind', '-q', $vg =~ /^\d+$/
                   ? ('--tool=memcheck', '--leak-check=full',
                      '--show-possibly-lost=no')
                   : split(' ', $vg));
            push @vg, '--suppressions=valgrind.suppress'
                if -f 'valgrind.suppress';
        }

        exec @vg, $NginxBinary, '-p', "$ServRoot/", '-c', $ConfFile,
             '-e', $ErrLogFile;
        warn "cannot exec $NginxBinary: $!\n";
        POSIX::_exit(127);
    }

    return $pid;
}

# undef: nginx is up (it writes its pid file once it listens); otherwise
# the wait status of an nginx that exited.

sub _wait_exit_or_ready {
    my $pid = shift;
    my $deadline = time + 10 + $Timeout;

    while (time < $deadline) {
        return $? if waitpid($pid, WNOHANG) == $pid;
        if (open my $in, '<', $PidFile) {
            my $p = <$in> // '';
            return undef if $p =~ /^\d+/;
        }
        sleep 0.01;
    }

    return undef;
}

sub _start_nginx {
    my $name = shift;

    my $busy = IO::Socket::INET->new(PeerAddr => $ServerAddr,
                                     PeerPort => $ServerPort, Timeout => 1);
    if ($busy) {
        bail_out("$name - port $ServerPort is already in use; set "
                 . "TEST_NGINX_PORT to a free port");
    }

    my $pid = _spawn_nginx($name);
    my $status = _wait_exit_or_ready($pid);

    if (defined $status) {
        my $tail = -f $ErrLogFile ? `tail -n 20 $ErrLogFile` : '';
        bail_out("$name - Cannot start nginx using \"$NginxBinary -p "
                 . "$ServRoot/ -c $ConfFile\" (status $status)\n$tail");
    }

    $NginxPid = $pid;
    sleep $Sleep;
}

sub _kill_nginx {
    my ($pid, $name) = @_;

    for my $step (['QUIT', $Timeout], ['TERM', 2], ['KILL', 5]) {
        my ($sig, $wait) = @$step;
        kill $sig, $pid;
        my $deadline = time + $wait;
        while (time < $deadline) {
            return if waitpid($pid, WNOHANG) == $pid;
            sleep 0.02;
        }
        warn "$name - nginx $pid did not exit on SIG$sig\n" if $sig ne 'KILL';
    }
}

sub _stop_nginx {
    my $name = shift // '';

    if ($NginxPid) {
        if (waitpid($NginxPid, WNOHANG) == $NginxPid) {
            my $st = $?;
            Test::More::fail("$name - nginx $NginxPid exited unexpectedly "
                             . "(wait status $st) during the previous block");
        } else {
            _kill_nginx($NginxPid, $name);
        }
        undef $NginxPid;
    }

    _check_shutdown_error_log($PrevBlock) if $PrevBlock;
    undef $PrevBlock;
}

sub _cleanup {
    $_->() for @Cleanups;
    @Cleanups = ();

    if ($NginxPid && $ENV{TEST_NGINX_NO_CLEAN}) {
        undef $NginxPid;
        return;
    }

    _stop_nginx('END');
}

END {
    _cleanup() if $NginxPid;
}


# Requests: built as the real one builds them.

sub _parse_more_headers {
    my $in = shift;
    my ($out, $chunked) = ('', 0);

    for my $h (split /\n+/, $in) {
        next if $h =~ /^\s*#/;
        my ($key, $val) = split /:\s*/, $h, 2;
        $val //= '';
        $chunked = 1 if lc $key eq 'transfer-encoding' && $val eq 'chunked';
        $out .= "$key: $val\r\n";
    }

    return ($out, $chunked);
}

sub _build_request {
    my ($name, $req, $more, $chunked) = @_;

    my ($first, $content) = split /\n/, $req, 2;
    $first //= '';
    $first =~ /^\s*(\S+) *(\S+)? *(\S+)?\s*$/
        or bail_out("$name - Request line is not valid. Should be "
                    . "'meth [url [version]]' but got \"$first\".");
    my ($meth, $url, $ver) = ($1, $2 // '/', $3 // 'HTTP/1.1');
    $content //= '';

    my $len = '';
    if (!$chunked && $content ne '' && $more !~ /(?:^|\n)Content-Length:/) {
        $content =~ s/^\s+|\s+$//gs;
        $len = "Content-Length: " . length($content) . "\r\n";
    }

    $more =~ s/(?<!\r)\n/\r\n/gs;

    my $hdrs = '';
    $hdrs .= "Host: $ServerName\r\n" if $more !~ /(?:^|\n)Host:/msi;
    $hdrs .= "Connection: close\r\n" if $more !~ /(?:^|\n)Connection/msi;

    return "$meth $url $ver\r\n$hdrs$more$len\r\n$content";
}

# A list of requests, each a list of packets to send.

sub _requests {
    my $block = shift;
    my $name = $block->name;

    my $raw = $block->raw_request;
    if (defined $raw) {
        return [ref $raw eq 'ARRAY' ? [@$raw] : [$raw]];
    }

    my $request = $block->request;
    bail_out("$name - request empty") if !defined $request;
    if (!ref $request) {
        1 while $request =~ s/^\s*\#[^\n]+\s+|^\s+//gs;
    }

    my $more = $block->more_headers // '';
    my @reqs = ref $request eq 'ARRAY' ? @$request : ($request);
    my @out;

    for my $i (0 .. $#reqs) {
        my $h = $more;
        if (ref $more eq 'ARRAY') {
            $h = $more->[$i];
            bail_out("$name - --- more_headers lacks data for request $i")
                if !defined $h;
        }
        my ($hdr, $chunked) = _parse_more_headers($h);
        my $r = $reqs[$i];
        if (ref $r eq 'ARRAY') {
            # packets: sent with raw_request_middle_delay between them
            my @p = map { ref $_ ? $_->{value} : $_ } @$r;
            my $full = _build_request($name, join('', @p), $hdr, $chunked);
            push @out, [$full];
        } else {
            push @out, [_build_request($name, $r, $hdr, $chunked)];
        }
    }

    return \@out;
}

sub _send_request {
    my ($block, $packets, $timeout) = @_;
    my $name = $block->name;
    my $sock;

    for my $try (1 .. 50) {
        $sock = IO::Socket::INET->new(PeerAddr => $ServerAddr,
                                      PeerPort => $ClientPort,
                                      Proto => 'tcp', Timeout => $timeout);
        last if $sock;
        if ($NginxPid && waitpid($NginxPid, WNOHANG) == $NginxPid) {
            undef $NginxPid;
            Test::More::fail("$name - Can't connect to $ServerAddr:"
                             . "$ClientPort: nginx is gone (aborted)");
            warn `tail -n 20 $ErrLogFile`;
            return '';
        }
        my $wait = ($Sleep + $Sleep * $try) * $try / 2;
        sleep($wait > 1 ? 1 : $wait);
    }

    if (!$sock) {
        Test::More::fail("$name - Can't connect to $ServerAddr:$ClientPort:"
                         . " $! (aborted)");
        return '';
    }

    local $SIG{PIPE} = 'IGNORE';
    $sock->blocking(0);

    my @todo = @$packets;
    my ($buf, $off, $resp) = (shift(@todo), 0, '');
    my $sel = IO::Select->new($sock);
    my $delay = parse_time($block->raw_request_middle_delay);

    while (1) {
        $! = 0;
        my ($r, $w) = IO::Select->select($sel, defined $buf ? $sel : undef,
                                         undef, $timeout);
        if (!$r && !$w) {
            next if $! == EINTR;
            close $sock;
            if (!defined $block->abort) {
                Test::More::fail("ERROR: client socket timed out - $name\n");
            }
            last;
        }

        if ($w && @$w) {
            my $n = syswrite $sock, $buf, length($buf) - $off, $off;
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK;
                warn "WARNING: $name - write failed: $!\n";
                undef $buf;
            } elsif (($off += $n) >= length $buf) {
                ($buf, $off) = (shift(@todo), 0);
                sleep $delay if defined $buf && $delay;
                if (!defined $buf && defined $block->shutdown) {
                    my $how = $block->shutdown;
                    shutdown $sock, $how =~ /^\s*$/ ? 1 : $how;
                }
            }
        }

        if ($r && @$r) {
            my $n = sysread $sock, my $chunk, 65536;
            if (!defined $n) {
                next if $! == EAGAIN || $! == EWOULDBLOCK;
                warn "WARNING: $name - HTTP response read failure: $!\n";
                last;
            }
            last if $n == 0;
            $resp .= $chunk;
        }
    }

    return $resp;
}

# Returns ($res, $raw_headers, $left); $res is { code, headers, body }.

sub _parse_response {
    my ($name, $raw, $head) = @_;
    my $res = { code => undef, h => {}, body => '' };
    my $raw_headers = $raw =~ /(.*?\r\n)\r\n/s ? $1 : '';
    my ($hdr, $body) = split /\r?\n\r?\n/, $raw, 2;
    my $left;

    $hdr //= '';
    $body //= '';
    my @lines = split /\r?\n/, $hdr;
    my $status = shift(@lines) // '';
    $res->{code} = $1 if $status =~ m{^HTTP/\d+(?:\.\d+)?\s+(\d+)};

    for (@lines) {
        my ($k, $v) = /^([^:\s]+)\s*:\s*(.*?)\s*$/ or next;
        push @{ $res->{h}{lc $k} }, $v;
    }

    my $code = $res->{code} // 0;
    my $te = _header($res, 'Transfer-Encoding');
    my $len = _header($res, 'Content-Length');

    if ($code == 304 || $code == 101 || $head) {
        $res->{body} = $body;

    } elsif (defined $te && $te eq 'chunked') {
        my $decoded = '';
        while (1) {
            if ($body =~ /\G0[ \t]*\r\n(?:[^\r\n]+\r\n)*\r\n/gc) {
                $left = $1 if $body =~ /\G(.+)/gcs;
                last;
            }
            if ($body =~ /\G[ \t]*([A-Fa-f0-9]+)[ \t]*(?:;[^\r\n]*)?\r\n/gc) {
                my ($size, $p) = (hex $1, pos $body);
                if (length($body) < $p + $size + 2
                    || substr($body, $p + $size, 2) ne "\r\n")
                {
                    Test::More::fail("$name - invalid chunked data received");
                    last;
                }
                $decoded .= substr $body, $p, $size;
                pos($body) = $p + $size + 2;
                next;
            }
            Test::More::fail($body =~ /\G.+/gcs
                ? "$name - invalid chunked body received: $&"
                : "$name - no last chunk found - $body");
            last;
        }
        $res->{body} = $decoded;

    } elsif (defined $len && $len =~ /^\d+$/) {
        if (length $body < $len) {
            warn "WARNING: $name - response body truncated: $len expected, "
                 . "but got ", length $body, "\n";
        } elsif (length $body > $len) {
            $left = substr $body, $len;
            $body = substr $body, 0, $len;
        }
        $res->{body} = $body;

    } else {
        $res->{body} = $body;
    }

    return ($res, $raw_headers, $left);
}

sub _header {
    my ($res, $key) = @_;
    my $v = $res->{h}{lc $key};
    return $v ? join(', ', @$v) : undef;
}

sub _indexed {
    my ($name, $value, $idx, $need_array) = @_;
    if (ref $value eq 'ARRAY') {
        bail_out("$name - SHOULD NOT HAPPEN: idx != 0 and don't need array.")
            if !$need_array && $idx != 0;
        return $value->[$idx];
    }
    bail_out("$name - You asked for many requests, the expected results "
             . "should be arrays as well.") if $need_array;
    return $value;
}

sub _parse_header_spec {
    my $s = shift;
    my %h;
    for (split /\n/, $s // '') {
        s/^\s+|\s+$//g;
        next if $_ eq '';
        if (s/^!\s*//) {
            $h{$_} = undef;
        } else {
            my ($k, $v) = split /\s*:\s*/, $_, 2;
            $h{$k} = $v;
        }
    }
    return \%h;
}

sub _port_vars {
    my $s = shift;
    $s =~ s/\$ServerPort\b/$ServerPort/g;
    $s =~ s/\$ServerPortForClient\b/$ClientPort/g;
    return $s;
}

sub _run_requests {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my $reqs = _requests($block);
    my $timeout = parse_time($block->timeout) // $Timeout;
    my $need_array = @$reqs > 1;

    for my $idx (0 .. $#$reqs) {
        my $packets = $reqs->[$idx];
        my $head = join('', @$packets) =~ /^\s*HEAD\s+/;
        my $raw = _send_request($block, $packets, $timeout);

        if (!defined $block->ignore_response) {
            my ($res, $raw_headers, $left) = _parse_response($name, $raw,
                                                             $head);
            if (defined $left) {
                (my $l = $left) =~ s/([\0-\037\200-\377])/
                    sprintf('\x{%02x}', ord $1)/eg;
                warn "WARNING: $name - unexpected extra bytes after last "
                     . "chunk in response: \"$l\"\n";
            }
            _check_response($block, $res, $raw_headers, $idx, $rep,
                            $need_array);
        }

        if ($idx < $#$reqs) {
            sleep $block->wait if $block->wait;
            _check_error_log($block, $rep);
        }
    }

    sleep $block->wait if $block->wait;
    _check_error_log($block, $rep);
}

sub _check_response {
    my ($block, $res, $raw_headers, $idx, $rep, $need_array) = @_;
    my $name = $block->name;
    my $code = $res->{code} // '';

    if (defined $block->error_code_like) {
        my $v = _indexed($name, $block->error_code_like, $idx, $need_array);
        Test::More::like($code, qr/$v/sm, "$name - status code ok");
    } elsif (defined $block->error_code) {
        Test::More::is($code, _indexed($name, $block->error_code, $idx,
                                       $need_array), "$name - status code ok");
    } else {
        Test::More::is($code, 200, "$name - status code ok");
    }

    for my $t (qw(like unlike)) {
        my $spec = $block->can_get("raw_response_headers_$t");
        next if !defined $spec;
        my $v = _indexed($name, $spec, $idx, $need_array);
        no strict 'refs';
        &{"Test::More::$t"}($raw_headers, qr/$v/s,
                            "$name - raw resp headers $t");
    }

    if (defined $block->response_headers) {
        my $h = _parse_header_spec(_indexed($name, $block->response_headers,
                                            $idx, $need_array));
        while (my ($k, $v) = each %$h) {
            if (!defined $v) {
                Test::More::unlike($raw_headers, qr/^\s*\Q$k\E\s*:/ms,
                    "$name - header $k not present in the raw headers");
                next;
            }
            Test::More::is(_header($res, $k) // '', _port_vars($v),
                           "$name - header $k ok");
        }

    } elsif (defined $block->response_headers_like) {
        my $h = _parse_header_spec(_indexed($name,
            $block->response_headers_like, $idx, $need_array));
        while (my ($k, $v) = each %$h) {
            Test::More::like(_header($res, $k) // '', qr/^$v$/,
                             "$name - header $k like ok");
        }
    }

    my $body = $res->{body};

    if (defined $block->response_body) {
        my $exp = _indexed($name, $block->response_body, $idx, $need_array);
        $exp = _expand(_port_vars($exp), $name) if defined $exp && !ref $exp;
        my $desc = "$name - response_body - response is expected "
                   . "(repeated req $rep, req $idx)";
        if (ref $exp) {
            Test::More::like($body, $exp, "$name - response_body - like "
                             . "(repeated req $rep, req $idx)");
        } elsif (!Test::More::is($body, $exp, $desc)) {
            _diag_diff($body, $exp);
        }

    } elsif (defined $block->response_body_like
             || defined $block->response_body_unlike)
    {
        my $t = defined $block->response_body_like ? 'like' : 'unlike';
        my $pat = _port_vars(_indexed($name,
            $block->can_get("response_body_$t"), $idx, $need_array));
        (my $summary = $body) =~ s/^\s+|\s+$//g;
        $summary =~ s/\s+/ /g;
        no strict 'refs';
        &{"Test::More::$t"}($body, qr/$pat/s,
            "$name - response_body_$t - response is expected ($summary)");
    }

    # as the real runner: every check, with every response it checks
    $_->($block, $body, $idx, $rep, 0) for @BodyChecks;
}

sub _diag_diff {
    my ($got, $exp) = @_;
    return if !defined $got || !defined $exp;
    my $i = 0;
    $i++ while $i < length $got && $i < length $exp
               && substr($got, $i, 1) eq substr($exp, $i, 1);
    Test::More::diag("    first difference at offset $i: got "
        . _show(substr $got, $i, 40) . ", expected "
        . _show(substr $exp, $i, 40));
}

sub _show {
    my $s = shift // '';
    chomp $s;
    $s =~ s/"/\\"/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\n/\\n/g;
    return "\"$s\"";
}


# The error log: each check reads the lines written since the previous
# check of the same block (so with several requests in a block, each
# request's lines are checked on their own).

sub _error_log_lines {
    sleep $Sleep * 3;
    open my $in, '<', $ErrLogFile or return [];
    seek $in, $ErrLogPos, 0 if !$AccumErrLog && $ErrLogPos;
    my @lines = <$in>;
    $ErrLogPos = tell $in if !$AccumErrLog;
    close $in;
    return \@lines;
}

sub _patterns {
    my $pats = shift;
    if (!ref $pats) {
        chomp $pats;
        return [split /\n+/, $pats];
    }
    return [$pats] if ref $pats eq 'Regexp';
    return [@$pats];
}

sub _match {
    my ($line, $pat) = @_;
    return ref $pat ? $line =~ /$pat/ : $line =~ /\Q$pat\E/;
}

sub _mentions {
    my ($val, $s) = @_;
    return 0 if !defined $val;
    return index("$val", $s) >= 0 if !ref $val || ref $val eq 'Regexp';
    return scalar grep { _mentions($_, $s) } @$val;
}

sub _check_error_log {
    my ($block, $rep) = @_;
    my $name = $block->name;
    my $lines;

    my $gp = $block->grep_error_log;
    if (defined $gp) {
        $gp = $gp->[$rep] if ref $gp eq 'ARRAY';
        my $exp = $block->grep_error_log_out;
        bail_out("$name - No --- grep_error_log_out defined but --- "
                 . "grep_error_log is defined") if !defined $exp;
        $exp = $exp->[$rep] if ref $exp eq 'ARRAY';
        $exp = _expand($exp, $name) if !ref $exp;
        $lines ||= _error_log_lines();
        my ($got, $until) = ('', time + ($ENV{TEST_NGINX_LOG_WAIT} || 0));
        while (1) {
            $got = '';
            for my $line (@$lines) {
                if (ref $gp && $line =~ /$gp/ || $line =~ /\Q$gp\E/) {
                    $got .= "$&\n" if $& !~ /\n/;
                }
            }

            # a slow nginx (valgrind) writes its log-phase lines late
            last if time >= $until
                    || (ref $exp eq 'Regexp' ? $got =~ $exp : $got eq $exp);
            push @$lines, @{ _error_log_lines() };
        }
        my $desc = "$name - grep_error_log_out (req $rep)";
        ref $exp eq 'Regexp' ? Test::More::like($got, $exp, $desc)
                             : Test::More::is($got, $exp, $desc);
    }

    if (defined $block->error_log) {
        my $pats = _patterns($block->error_log);
        $lines ||= _error_log_lines();
        my ($seen, $until) = (0, time + ($ENV{TEST_NGINX_LOG_WAIT} || 0));
        while (1) {
            for my $line (@$lines[$seen .. $#$lines]) {
                for my $pat (@$pats) {
                    next if !defined $pat || !_match($line, $pat);
                    Test::More::pass("$name - pattern \"$pat\" matches a "
                                     . "line in error.log (req $rep)");
                    undef $pat;
                }
            }
            $seen = @$lines;

            # a slow nginx (valgrind) writes its log-phase lines late
            last if !grep({ defined } @$pats) || time >= $until;
            push @$lines, @{ _error_log_lines() };
        }
        for my $pat (grep { defined } @$pats) {
            Test::More::fail("$name - pattern \"$pat\" should match a line "
                             . "in error.log (req $rep)");
        }
    }

    if (defined $block->no_error_log) {
        my $pats = _patterns($block->no_error_log);
        my %found;
        $lines ||= _error_log_lines();
        for my $line (@$lines) {
            for my $pat (grep { defined } @$pats) {
                next if !_match($line, $pat);
                $found{$pat} = 1;
                Test::More::fail("$name - pattern " . _show($pat)
                    . " should not match any line in error.log but matches "
                    . "line " . _show($line) . " (req $rep)");
            }
        }
        for my $pat (grep { defined && !$found{$_} } @$pats) {
            Test::More::pass("$name - pattern " . _show($pat) . " does not "
                             . "match a line in error.log (req $rep)");
        }
    }

    $lines ||= _error_log_lines();
    for my $level (qw(alert crit emerg)) {
        next if _mentions($block->error_log, "[$level")
                || _mentions($block->no_error_log, "[$level");
        for my $line (grep { /\[$level\]/ } @$lines) {
            chomp(my $l = $line);
            warn "WARNING: $name - $l\n";
        }
    }
    for my $line (grep { /\bAssertion .*?failed\b/ } @$lines) {
        chomp(my $l = $line);
        Test::More::fail("$name - $l");
    }
}

sub _check_shutdown_error_log {
    my $block = shift;
    my $name = $block->name;
    my $lines;

    my $spec = $block->can_get('shutdown_error_log');
    if (defined $spec) {
        $lines ||= _error_log_lines();
        for my $pat (@{ _patterns($spec) }) {
            if (grep { _match($_, $pat) } @$lines) {
                Test::More::pass("$name - pattern \"$pat\" matches a line "
                                 . "in error.log");
            } else {
                Test::More::fail("$name - pattern \"$pat\" should match a "
                                 . "line in error.log");
            }
        }
    }

    $spec = $block->can_get('no_shutdown_error_log');
    if (defined $spec) {
        $lines ||= _error_log_lines();
        for my $pat (@{ _patterns($spec) }) {
            my @hit = grep { _match($_, $pat) } @$lines;
            Test::More::fail("$name - pattern " . _show($pat) . " should not"
                             . " match any line in error.log but matches line "
                             . _show($_)) for @hit;
            Test::More::pass("$name - pattern " . _show($pat) . " does not "
                             . "match a line in error.log") if !@hit;
        }
    }
}


package Test::Nginx::Socket::Block;

# A Test::Base block: every section is an accessor returning its value.

our $AUTOLOAD;

sub new {
    my ($class, $name) = @_;
    return bless { name => [$name], _order => [], _filters => {} }, $class;
}

sub set_value {
    my ($self, $key, @v) = @_;
    $self->{$key} = [@v];
}

sub can_get {
    my ($self, $key) = @_;
    # Always the first value: Test::Base returns the whole list in list
    # context, which no caller here wants (f($block->x, $y) would shift).
    return $self->{$key} ? $self->{$key}[0] : undef;
}

sub AUTOLOAD {
    my $self = shift;
    (my $key = $AUTOLOAD) =~ s/.*:://;
    return if $key eq 'DESTROY';
    die "Not allowed to set values for '$key'\n" if @_;
    return $self->can_get($key);
}

sub _run_filters {
    my $self = shift;

    for my $type (@{ $self->{_order} }) {
        my @filters = qw(norm trim);
        my @append;
        for my $f (split /\s+/, $self->{_filters}{$type} // '') {
            next if $f eq '';
            if ($f =~ s/^-//) {
                @filters = grep { $_ ne $f } @filters;
            } elsif ($f =~ s/^\+//) {
                push @append, $f;
            } else {
                push @filters, $f;
            }
        }

        my @value = @{ $self->{$type} };
        for my $f (@filters, @append) {
            my $arg = $f =~ s/=(.*)$// ? $1 : undef;
            @value = _filter($self, $type, $f, $arg, @value);
        }
        $self->{$type} = [@value];
    }

    $self->{_filtered} = 1;
}

sub _filter {
    my ($self, $type, $f, $arg, @v) = @_;

    no strict 'refs';
    if (defined &{"main::$f"}) {
        local $_ = join '', map { $_ // '' } @v;
        my @r = &{"main::$f"}(@v);
        return ($_) if !@r || @r == 1 && defined $r[0] && $r[0] =~ /\A\d*\z/;
        return @r;
    }
    use strict 'refs';

    if ($f eq 'norm') {
        return map { my $s = $_ // ''; $s =~ s/\015\012/\n/g;
                     $s =~ s/\r/\n/g; $s } @v;
    }
    if ($f eq 'trim') {
        return map { s/\A([ \t]*\n)+//; s/(?<=\n)\s*\z//g; $_ } @v;
    }
    return map { chomp; $_ } @v if $f eq 'chomp';
    return map { chop; $_ } @v if $f eq 'chop';
    return map { "$_\n" } @v if $f eq 'unchomp';
    return join($arg // '', @v) if $f eq 'join';
    return [@v] if $f eq 'array';
    return map { length $_ ? /^(.*\n?)/gm : () } @v if $f eq 'lines';

    if ($f eq 'regexp') {
        my $text = $v[0];
        my $flags = $arg;
        if ($text =~ /\n.*?\n/s) {
            $flags //= 'xism';
        } else {
            chomp $text;
        }
        $flags //= '';
        my $re = eval "qr{$text}$flags";
        die $@ if $@;
        return $re;
    }

    if ($f eq 'eval') {
        my @r = Test::Nginx::Socket::Eval::run($v[0]);
        if ($@) {
            Test::Nginx::Socket::bail_out(
                "$self->{name}[0] - --- $type eval: $@");
        }
        return @r;
    }

    die "Can't find a function or method for '$f' filter\n";
}


package Test::Nginx::Socket::Eval;

# Test::Base evaluates "eval" sections under strict in a package of its own:
# no access to the test file's lexicals or main's subs, here neither.

sub run {
    use strict;
    return eval $_[0];
}

1;
