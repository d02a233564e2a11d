package AiGuardNginx;

# For the tests that Test::Nginx's block format cannot say: a reload in
# the middle of a test, `nginx -t` on a broken file, several nginx
# instances, parallel bursts.  Plain Perl and core modules only, so these
# tests run the same under t/lib's runner and under CPAN's Test::Nginx.

use strict;
use warnings;

use Cwd qw(abs_path);
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

sub binary { $ENV{TEST_NGINX_BINARY} || '/usr/sbin/nginx' }

sub new {
    my ($class, %args) = @_;

    my $name = $args{name} || 'plain';
    my $root = abs_path('t') . "/servroot-$name";

    keep_sanitizer_log("$root/logs/error.log", $name);
    remove_tree($root);
    make_path(map { "$root/$_" } qw(conf logs html temp));

    my $self = bless {
        root => $root,
        port => $args{port} || ($ENV{TEST_NGINX_PORT} || 1984) + 100,
        workers => $args{workers} || 1,
        pid => undef,
    }, $class;

    return $self;
}

# As t/lib's runner does: UBSan writes to the error log (gcc's combined
# sanitizers ignore its log_path), so a log with a report is kept where
# util/sanitizer-scan looks before the server root is wiped.

sub keep_sanitizer_log {
    my ($log, $name) = @_;
    my $dir = $ENV{TEST_NGINX_SANITIZER_LOGS};

    return unless $dir && -f $log;

    open my $in, '<', $log or return;
    my @bad = grep { /runtime error:|ERROR: AddressSanitizer/ } <$in>;
    close $in;

    return unless @bad;

    make_path($dir);
    open my $out, '>', "$dir/$name-$$-" . time() . '.error.log' or return;
    print $out @bad;
    close $out;
}

sub root { $_[0]{root} }
sub port { $_[0]{port} }

sub write_file {
    my ($self, $name, $content) = @_;
    my $path = "$self->{root}/$name";
    open my $fh, '>', $path or die "$path: $!";
    print $fh $content;
    close $fh;
    return $path;
}

# the http{} contents go in; the rest is what every test needs
sub write_config {
    my ($self, $http) = @_;

    my $modules = join '', map { "load_module $_;\n" }
                  split ' ', $ENV{TEST_NGINX_LOAD_MODULES} || '';
    my $root = $self->{root};
    my $user = $> == 0 ? "user root root;\n" : '';

    $http =~ s/\$TEST_NGINX_SERVER_PORT/$self->{port}/g;
    $http =~ s/\$TEST_NGINX_HTML_DIR/$root\/html/g;
    $http =~ s/\$(TEST_NGINX_[A-Z0-9_]+)/$ENV{$1} \/\/ ''/ge;

    # a test machine may share its network: loopback only (docs/testing.md)
    for my $l ($http =~ /^\s*listen\s+([^;]*);/mg) {
        die "AiGuardNginx: \"listen $l\": test servers listen on "
            . "127.0.0.1 only\n" unless $l =~ /^127\.0\.0\.1:\d+(\s|$)/;
    }

    $self->write_file('conf/nginx.conf', <<"_EOC_");
$modules
${user}daemon off;
master_process on;
worker_processes $self->{workers};
pid $root/logs/nginx.pid;
error_log $root/logs/error.log info;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $root/temp/client_body;
    proxy_temp_path $root/temp/proxy;
    fastcgi_temp_path $root/temp/fastcgi;
    uwsgi_temp_path $root/temp/uwsgi;
    scgi_temp_path $root/temp/scgi;
$http
}
_EOC_
}

# redis-cli on the suite's Redis ($TEST_NGINX_REDIS_PORT): what it printed
sub redis {
    my $out = `redis-cli -p $ENV{TEST_NGINX_REDIS_PORT} @_ 2>&1`;
    chomp $out;
    return $out;
}

# a keys file of the test keys sk-aig-test-valid-000N, each
# [id, tenant, tier, N]
sub keys_json {
    require Digest::SHA;

    return '{"keys": [' . join(",\n", map {
        sprintf '{"id": "%s", "tenant": "%s", "tier": "%s", "sha256": "%s"}',
            @$_[0 .. 2],
            Digest::SHA::sha256_hex("sk-aig-test-valid-000$_->[3]")
    } @_) . "]}\n";
}

# a node of a cluster: made, its keys file and http{} written, started
sub started {
    my ($class, %args) = @_;
    my $self = $class->new(%args);

    $self->write_file('html/keys.json', $args{keys});
    $self->write_config($args{http});
    $self->start;

    return $self;
}

# `nginx -t`: its exit status and what it printed
sub test_config {
    my ($self) = @_;
    my $cmd = binary() . " -p $self->{root}/ -c conf/nginx.conf -t 2>&1";
    my $out = `$cmd`;
    return ($? >> 8, $out);
}

sub start {
    my ($self) = @_;

    # a listener left on the port (an earlier test's upstream) would pass
    # for this nginx below, and nginx itself would fail to bind
    die "port $self->{port} is already in use\n"
        if IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                 PeerPort => $self->{port});

    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid == 0) {
        open STDOUT, '>>', "$self->{root}/logs/stdout.log";
        open STDERR, '>&', \*STDOUT;
        exec binary(), '-p', "$self->{root}/", '-c', 'conf/nginx.conf';
        exit 127;
    }

    $self->{pid} = $pid;

    for (1 .. 100) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $self->{port});
        return 1 if $s;
        die "nginx exited: " . $self->log('stdout.log')
            if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }

    die "nginx did not start listening on $self->{port}";
}

# SIGHUP, then wait until the new workers have started
sub reload {
    my ($self) = @_;
    my $before = () = $self->log =~ /start worker process/g;

    kill 'HUP', $self->{pid};

    for (1 .. 100) {
        my $now = () = $self->log =~ /start worker process/g;
        last if $now >= $before + $self->{workers};
        sleep 0.05;
    }

    # the old workers finish what they have and go
    sleep 0.2;
}

sub stop {
    my ($self) = @_;
    my $pid = delete $self->{pid} or return;

    kill 'QUIT', $pid;

    for (1 .. 100) {
        return if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }

    kill 'KILL', $pid;
    waitpid($pid, 0);
}

# SIGKILL to the master and each of its workers at once, as a crash
# takes them; waits until the workers are gone and returns their pids
sub kill9 {
    my ($self) = @_;
    my $master = delete $self->{pid} or return ();
    my @workers;

    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // '';
        close $fh;
        push @workers, $1 if $line =~ /^(\d+) \(.*\) \S (\d+) / && $2 == $master;
    }

    kill 'KILL', $master, @workers;
    waitpid($master, 0);

    # the workers' listening sockets close when they are gone
    for (1 .. 100) {
        last unless grep { kill 0, $_ } @workers;
        sleep 0.05;
    }

    return @workers;
}

# A forked upstream on $port that holds what it gets: once it has a
# whole request it appends a line to $log, answers a header and part of
# a body, and never the rest.  Returns its pid (the caller kills it).
sub holding_upstream {
    my ($port, $log) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                                  Listen => 16, ReuseAddr => 1)
        or die "holding upstream on $port: $!";
    my $pid = fork // die "fork: $!";

    if ($pid) {
        close $l;
        return $pid;
    }

    my @held;
    while (my $c = $l->accept) {
        my $in = '';
        while ($in !~ /\r\n\r\n/s || length($in) < request_end($in)) {
            sysread($c, $in, 4096, length $in) or last;
        }
        open my $fh, '>>', $log or die "$log: $!";
        print $fh "held\n";
        close $fh;
        syswrite($c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     . "Content-Length: 400\r\n\r\n{\"object\":");
        push @held, $c;
    }
    POSIX::_exit(0);
}

# the bytes of a request's head and its Content-Length body
sub request_end {
    my ($in) = @_;
    my $h = index($in, "\r\n\r\n");
    my ($cl) = $in =~ /^content-length:\s*(\d+)/mi;
    return $h + 4 + ($cl // 0);
}

# A node for the crash tests: the key acme-1 (tenant acme, tier pro),
# a directory journal/, and a holding_upstream() on port + 1 that logs
# to held.log (killed with the node); held_server() is its server.
sub crash_node {
    my ($class, %args) = @_;
    my $self = $class->new(%args);

    mkdir "$self->{root}/journal" or die "$self->{root}/journal: $!";
    $self->write_file('html/keys.json',
                      keys_json(['acme-1', 'acme', 'pro', 1]));
    $self->{hold_pid} = holding_upstream($self->{port} + 1,
                                         "$self->{root}/held.log");
    return $self;
}

# tenant_server() with what a crash test reads: the access log
# "served" (its log_format is the caller's), the usage report, and
# /hold/ to a holding_upstream() on $hport
sub held_server {
    my ($hport) = @_;
    return tenant_server(<<"_EOX_");
        access_log logs/served.log served;

        location = /ai-guard/usage {
            ai_guard_usage;
        }

        location /hold/ {
            ai_guard on;
            proxy_pass http://127.0.0.1:$hport/;
        }
_EOX_
}

# $count requests to /hold/ (held_server()) with the header $auth, left
# open; waits until the holding upstream logged them in $log.  Returns
# the client sockets (the caller closes them) and how many it logged.
sub send_held {
    my ($self, $count, $auth, $log) = @_;
    my (@clients, $held);
    my $body = '{"model":"gpt-4o-mini","prompt":"hi","max_tokens":7}';

    for (1 .. $count) {
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $self->{port})
            or die "connect: $!";
        print $c "POST /hold/chat HTTP/1.1\r\nHost: localhost\r\n"
                 . "$auth\r\nContent-Type: application/json\r\n"
                 . "Content-Length: " . length($body) . "\r\n\r\n$body";
        push @clients, $c;
    }

    for (1 .. 100) {
        $held = held_count($log);
        last if $held == $count;
        sleep 0.1;
    }

    return (\@clients, $held);
}

# the lines a holding_upstream() logged
sub held_count {
    my ($log) = @_;
    open my $fh, '<', $log or return 0;
    my @lines = <$fh>;
    return scalar @lines;
}

sub log {
    my ($self, $name) = @_;
    my $path = "$self->{root}/logs/" . ($name || 'error.log');
    open my $fh, '<', $path or return '';
    local $/;
    return <$fh>;
}

# the guarded requests (paths under /v1/) of served.log, the access log
# the journal tests keep: the guard's log handler, which settles and
# journals, runs before access_log writes a request's line
sub logged {
    my ($self) = @_;
    return scalar(() = $self->log('served.log') =~ m{^/v1/}mg);
}

# until $total guarded requests are in served.log, or 10 s have passed
sub wait_logged {
    my ($self, $total) = @_;

    for (1 .. 200) {
        last if $self->logged >= $total;
        sleep 0.05;
    }
}

# $count POSTs of $body with @$headers, each answered, then settled (in
# served.log, which then has $total); the number answered 200
sub send_logged {
    my ($self, $count, $path, $headers, $body, $total) = @_;
    my $ok = 0;

    for (1 .. $count) {
        my ($s) = $self->request('POST', $path, $headers, $body);
        $ok++ if $s == 200;
    }

    $self->wait_logged($total);

    return $ok;
}

# the error log once it matches $re, or as it is after 10 s: the master
# writes what its modules' init says after the port already listens
sub log_when {
    my ($self, $re) = @_;
    my $text;

    for (1 .. 200) {
        $text = $self->log;
        last if $text =~ $re;
        sleep 0.05;
    }

    return $text;
}

# one HTTP/1.1 request; returns (status, {lowercased headers}, body)
sub request {
    my ($self, $method, $uri, $headers, $body) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $self->{port},
                                  Timeout => 10)
        or die "connect: $!";

    my $req = "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
              . "Connection: close\r\n";

    for my $h (@{ $headers || [] }) {
        $req .= "$h\r\n";
    }

    $req .= "Content-Length: " . length($body) . "\r\n" if defined $body;
    $req .= "\r\n";
    $req .= $body if defined $body;

    print $s $req;

    local $/;
    my $resp = <$s> // '';
    close $s;

    return parse_response($resp);
}

# several requests at once, each on its own connection: all are written
# before any answer is read; returns [status, {headers}, body] for each
sub parallel {
    my ($self, @reqs) = @_;
    my (@socks, @out);

    for my $r (@reqs) {
        my ($method, $uri, $headers, $body) = @$r;
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $self->{port},
                                      Timeout => 10)
            or die "connect: $!";

        my $req = "$method $uri HTTP/1.1\r\nHost: localhost\r\n"
                  . "Connection: close\r\n";
        $req .= "$_\r\n" for @{ $headers || [] };
        $req .= "Content-Length: " . length($body) . "\r\n" if defined $body;
        $req .= "\r\n" . ($body // '');

        print $s $req;
        push @socks, $s;
    }

    for my $s (@socks) {
        local $/;
        my $resp = <$s> // '';
        close $s;
        push @out, [ parse_response($resp) ];
    }

    return @out;
}

sub parse_response {
    my ($resp) = @_;
    my ($head, $rest) = split /\r\n\r\n/, $resp, 2;
    return (0, {}, '') unless defined $head;

    my ($status) = $head =~ m{^HTTP/1\.[01] (\d+)};
    my %h;

    for my $line (split /\r\n/, $head) {
        $h{lc $1} = $2 if $line =~ /^([^:]+):\s*(.*)$/;
    }

    $rest //= '';

    if (($h{'transfer-encoding'} || '') eq 'chunked') {
        my $out = '';
        while ($rest =~ s/^([0-9a-fA-F]+)\r\n//) {
            my $n = hex $1;
            last if $n == 0;
            $out .= substr($rest, 0, $n, '');
            $rest =~ s/^\r\n//;
        }
        $rest = $out;
    }

    return ($status, \%h, $rest);
}

# A server of the tests that count a tenant's requests: /v1/ guarded by
# tenant, /k/ by key, both proxied to /mock/, which answers every
# request with 10 input and 5 output tokens of gpt-4o-mini, and
# /metrics; "extra" goes in the server too (a mock of its own).  A
# function, not a method: its text goes into write_config.
sub tenant_server {
    my ($extra) = @_;
    $extra //= '';
    return <<"_EOC_";
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /k/ {
            ai_guard on;
            ai_guard_limit_by key;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /mock/ {
            default_type application/json;
            echo '{"object":"chat.completion","model":"gpt-4o-mini",'
                 '"usage":{"prompt_tokens":10,"completion_tokens":5}}';
        }

        location = /metrics { ai_guard_metrics; }
$extra
    }
_EOC_
}

# Guarded locations whose upstream fails, for nginx's own 502, 503 and
# 504 pages: /down/ proxies to $closed, a port of the test's range where
# nothing listens (502); /late/ to the server's /mock-slow/, which must
# answer later than 100 ms (504); /busy/ to its /mock/ through
# limit_req of zone "busy", which the test declares at 1r/m (the second
# request of a minute is 503).  A function, as tenant_server.
sub failing_locations {
    my ($closed) = @_;
    return <<"_EOC_";
        location /down/ {
            ai_guard on;
            proxy_pass http://127.0.0.1:$closed;
        }

        location /late/ {
            ai_guard on;
            proxy_read_timeout 100ms;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock-slow/;
        }

        location /busy/ {
            ai_guard on;
            limit_req zone=busy;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }
_EOC_
}

# Node packages, each [npm spec, directory], installed under build/node
# once (the npm registry): their node_modules directory, or undef when
# node or one of them is not there.
sub node_packages {
    my ($top, @pkgs) = @_;
    my $modules = "$top/build/node/node_modules";

    for my $pkg (@pkgs) {
        next if -d "$modules/$pkg->[1]";
        system("npm install --prefix $top/build/node $pkg->[0] --no-audit "
               . "--no-fund --silent >/dev/null 2>&1");
    }

    return undef if grep { !-d "$modules/$_->[1]" } @pkgs;
    return undef unless `node --version 2>/dev/null`;
    return $modules;
}

# OpenAI's Node SDK: node_packages' answer for it alone.
sub openai_sdk {
    my ($top) = @_;

    return node_packages($top, ['openai@4', 'openai']);
}

sub DESTROY {
    my ($self) = @_;
    $self->stop;
    kill 'KILL', $self->{hold_pid} if $self->{hold_pid};
}

1;
