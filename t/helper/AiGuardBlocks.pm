package AiGuardBlocks;

# The sections the Test::Nginx block files share, filled in by one block
# preprocessor: a block that does not give --- http_config, --- config or
# --- user_files gets its file's (or the standard) one, and a block that
# says nothing about the error log gets --- no_error_log [error] [alert]
# [crit].  Plus the keys file written from secrets, so no file carries
# digests, and the mock locations several files use.
#
# It runs under t/lib's runner and under openresty/test-nginx alike: it
# uses only add_block_preprocessor, add_response_body_check, set_value and
# the blocks' accessors, which both have, and loads no Test::Nginx module itself (the test file
# has done that, from whichever runner prove put first on @INC).  It lives
# in t/helper, not t/lib, so that the real runner, which must not see
# t/lib, can load it:
#
#   use Test::Nginx::Socket;
#   use FindBin;
#   use lib "$FindBin::Bin/helper";
#   use AiGuardBlocks;
#
# See docs/testing.md, "Shared sections".

use strict;
use warnings;

use Digest::SHA qw(sha256_hex);
use Exporter qw(import);

our @EXPORT = qw(defaults keys_file keys_json echo_location guarded_location
                 chunked_request $MOCK_USAGE $SSE_CHUNK $SSE_USAGE);

# The levels no block may log unless it says otherwise.
our @CLEAN = ('[error]', '[alert]', '[crit]');

# What a block of a file that calls defaults() without one of these gets.

our $HTTP_CONFIG = <<'_EOC_';
    ai_guard_tier  pro;
    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;
_EOC_

# what the standard mock upstream answers: a chat completion with usage
our $MOCK_USAGE = '{"id":"c1","object":"chat.completion",'
    . '"model":"gpt-4o-mini","choices":[{"index":0,"message":'
    . '{"role":"assistant","content":"ok"},"finish_reason":"stop"}],'
    . '"usage":{"prompt_tokens":10,"completion_tokens":5,'
    . '"total_tokens":15}}';

our $CONFIG = guarded_location('/v1/')
    . echo_location('/mock/', 'application/json', $MOCK_USAGE);

# an OpenAI chat stream's content chunk, and its usage chunk
our $SSE_CHUNK = 'data: {"id":"c","object":"chat.completion.chunk",'
    . '"model":"gpt-4o-mini","choices":[{"index":0,"delta":'
    . '{"content":"Hi"},"finish_reason":"stop"}]}' . "\n\n";
our $SSE_USAGE = 'data: {"id":"c","object":"chat.completion.chunk",'
    . '"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":7,'
    . '"completion_tokens":2,"total_tokens":9}}' . "\n\n";

my $registered;
my %defaults;


# defaults(section => value, ...): the file's default sections.  Those
# not given are the standard ones above: http_config, config, user_files
# (keys.json with sk-aig-test-valid-0001 as "acme-1" of tenant acme on
# tier pro) and no_error_log (@CLEAN).  A value of undef means no default
# for that section.

sub defaults {
    my (%d) = @_;

    die "AiGuardBlocks: use Test::Nginx::Socket before AiGuardBlocks\n"
        unless defined &Test::Nginx::Socket::add_block_preprocessor;

    $ENV{TEST_NGINX_HTML_DIR} ||= Test::Nginx::Socket::html_dir();

    %defaults = (
        http_config => $HTTP_CONFIG,
        config => $CONFIG,
        user_files => keys_file(['acme-1', 'sk-aig-test-valid-0001',
                                 tenant => 'acme', tier => 'pro']),
        no_error_log => [@CLEAN],
        %d,
    );

    return if $registered++;

    # the prototype (&) wants a block; & calls it with a code ref as well
    &Test::Nginx::Socket::add_block_preprocessor(\&fill);
    Test::Nginx::Socket::add_response_body_check(\&body_check);
}

sub fill {
    my ($block) = @_;

    for my $sec (qw(http_config config user_files)) {
        next if defined $block->$sec || !defined $defaults{$sec};
        $block->set_value($sec, $defaults{$sec});
    }

    return if defined $block->no_error_log || !defined $defaults{no_error_log};

    # a level the block expects in --- error_log is not forbidden, as the
    # runners themselves do not warn of an [alert] a pattern names: like
    # them, look for "[alert" in the patterns (a regex says "\[alert\]")
    my $want = $block->error_log;
    my @no = grep { !(/^(\[\w+)\]$/ && mentions($want, $1)) }
             @{ $defaults{no_error_log} };

    $block->set_value('no_error_log', [@no]) if @no;
}

# --- body_check eval: a code ref, or an array ref of them (undef where a
# request has none), one a request: called with the response body (after
# chunked decoding), the block and the request's index, it makes checks of
# its own with Test::More, counted in the plan like any.  For what the
# sections cannot say: arithmetic over a Prometheus text, an outside
# validator.  Through add_response_body_check, which both runners have.

sub body_check {
    my ($block, $body, $idx) = @_;
    my $check = $block->body_check;

    $check = $check->[$idx] if ref $check eq 'ARRAY';
    $check->($body, $block, $idx) if $check;
}

sub mentions {
    my ($val, $s) = @_;

    return 0 unless defined $val;
    return index("$val", $s) >= 0 unless ref $val eq 'ARRAY';
    return scalar grep { mentions($_, $s) } @$val;
}


# keys_file([id, secret, field => value, ...], ...): a --- user_files
# value, ">>> keys.json" and the file.  keys_json(...): the file alone.
# Fields are written in the order given, between "id" and "sha256" (the
# digest of the secret, or the hex digest itself when the secret is given
# as \'hex'); a value is a string, [strings] or \1 / \0 for true / false.

sub keys_file {
    return ">>> keys.json\n" . keys_json(@_);
}


# chunked_request("METHOD /uri", header_line, chunk, ...): a --- raw_request
# whose body is sent chunked, one chunk a piece, then the last chunk.
# From a block's eval: AiGuardBlocks::chunked_request(...).

sub chunked_request {
    my ($line, $header, @chunks) = @_;

    return "$line HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
           . "$header\r\nTransfer-Encoding: chunked\r\n\r\n"
           . join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } @chunks)
           . "0\r\n\r\n";
}

sub keys_json {
    my @out;

    for my $e (@_) {
        my ($id, $secret, @f) = @$e;
        my $digest = ref $secret ? $$secret : sha256_hex($secret);
        my @pairs = (id => $id, @f, sha256 => $digest);
        my @kv;

        while (my ($k, $v) = splice @pairs, 0, 2) {
            push @kv, json_str($k) . ': ' . json_value($v);
        }

        push @out, '  {' . join(', ', @kv) . '}';
    }

    return "{\"keys\": [\n" . join(",\n", @out) . "\n]}\n";
}

sub json_value {
    my ($v) = @_;

    return '[' . join(', ', map { json_str($_) } @$v) . ']'
        if ref $v eq 'ARRAY';
    return $$v ? 'true' : 'false' if ref $v eq 'SCALAR';
    return json_str($v);
}

sub json_str {
    (my $s = shift) =~ s/(["\\])/\\$1/g;
    return "\"$s\"";
}


# echo_location(path, content_type, piece, ...): a location of the test
# server that answers with the pieces, each flushed on its own (a stream
# arrives as its events).  A path ending in "/" is a prefix location, any
# other an exact one ("location = path").

sub echo_location {
    my ($path, $type, @pieces) = @_;
    my $match = $path =~ m{/$} ? $path : "= $path";
    my $conf = "    location $match {\n"
               . "        default_type $type;\n";

    for my $p (@pieces) {
        (my $q = $p) =~ s/([\\'])/\\$1/g;
        $q =~ s/\n/\\n/g;
        $conf .= "        echo -n -- '$q';\n        echo_flush;\n";
    }

    return $conf . "    }\n";
}

# guarded_location(path, directive, ...): "ai_guard on" and the given
# directives, proxied to the same path under /mock/ of the test server.

sub guarded_location {
    my ($path, @more) = @_;

    return "    location $path {\n"
           . "        ai_guard on;\n"
           . join('', map { "        $_\n" } @more)
           . "        proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT"
           . "/mock/;\n"
           . "    }\n";
}

1;
