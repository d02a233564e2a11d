package AiGuardNodes;

# The key store across nodes (t/117, t/119): two nginx nodes sharing one
# Redis, the admin API on each, and the polls that wait for one node to
# see another's change (never a timing assert: a limit only ends a wait).

use strict;
use warnings;

use Time::HiRes qw(sleep time);
use AiGuardNginx;

# a node's http block: the tiers named, the key store in its state
# directory, the Redis of the run under the file's prefix
sub http {
    my ($state, $prefix, @tiers) = @_;
    my $rport = $ENV{TEST_NGINX_REDIS_PORT};
    my $tiers = join '', map { "    ai_guard_tier  $_;\n" } @tiers;
    return <<"_EOC_" . server();
$tiers    ai_guard_key_store  1m;
    ai_guard_state_dir  $state;
    ai_guard_redis  127.0.0.1:$rport timeout=500ms prefix=$prefix;
_EOC_
}

# the server of a node (t/118's single nginx too): a guarded location
# before a mock, and the admin API
sub server {
    return <<"_EOC_";
    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /mock/ { return 200 "ok\\n"; }

        location /admin/ { ai_guard_admin; }
    }
_EOC_
}

# nodes a (2 workers) and b, at ports TEST_NGINX_PORT + offset and the
# next, each with its state directory, started
sub pair {
    my ($name, $offset, $prefix, @tiers) = @_;
    my $base = ($ENV{TEST_NGINX_PORT} || 1984) + $offset;
    my $a = AiGuardNginx->new(name => "$name-a", port => $base,
                              workers => 2);
    my $b = AiGuardNginx->new(name => "$name-b", port => $base + 1);

    for my $n ($a, $b) {
        $n->write_config(http($n->root . '/state', $prefix, @tiers));
        $n->start;
    }

    return ($a, $b);
}

# a key made through node n's API: its secret
sub create {
    my ($n, $id, $tenant, $tier) = @_;
    my ($s, $h, $body) = $n->request('POST', '/admin/keys', [],
                           qq({"id":"$id","tenant":"$tenant","tier":"$tier"}));
    my ($secret) = $body =~ /"key":"(sk-aig-[^"]+)"/;
    die "create $id: $s $body" unless $s == 201 && $secret;
    return $secret;
}

sub status {
    my ($n, $secret) = @_;
    my ($s) = $n->request('GET', '/v1/models',
                          ["Authorization: Bearer $secret"]);
    return $s;
}

# polls node n until the key answers "want" or "limit" seconds pass:
# the seconds it took, or undef
sub until_status {
    my ($n, $secret, $want, $limit) = @_;
    my $t0 = time;
    while (1) {
        my $s = status($n, $secret);
        return time - $t0 if $s == $want;
        return undef if time - $t0 > $limit;
        sleep 0.02;
    }
}

# until "clients" connections of the nodes are up (each node's worker 0
# has asked Redis once), 5 s at most
sub connected {
    my ($clients) = @_;
    for (1 .. 100) {
        my $n = () = AiGuardNginx::redis('CLIENT LIST') =~ /cmd=(?!client)/g;
        return if $n >= $clients;
        sleep 0.05;
    }
}

# the store's keys of the file's prefix, gone from Redis
sub cleanup {
    my ($prefix) = @_;
    my $rport = $ENV{TEST_NGINX_REDIS_PORT};
    AiGuardNginx::redis("--scan --pattern '$prefix*' "
                        . "| xargs -r redis-cli -p $rport DEL >/dev/null");
}

1;
