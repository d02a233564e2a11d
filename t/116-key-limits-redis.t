# A key's own limits with ai_guard_redis sync=strict (docs/limits.md, "A
# key's own limits"): the key's scope is the node's zone, the tier's is
# Redis's, and both must admit.  A request the key's scope refuses never
# reaches Redis (the tenant's count there is untouched); one Redis
# refuses after the key's scope admitted it gives the key's reservation
# back, though the answer came later, on the event loop.  Two workers.
#
# Plain Perl rather than blocks: the secret a create returns is the key
# the next request uses.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use AiGuardNginx;

my $rport = $ENV{TEST_NGINX_REDIS_PORT};

plan skip_all => 'TEST_NGINX_REDIS_PORT is not set (make test sets it)'
    unless $rport;

my $prefix = "t116-$$:";
my $admin = '        location /admin/ { ai_guard_admin; }';

my $n = AiGuardNginx->new(name => 'key-limits-redis', workers => 2,
                          port => ($ENV{TEST_NGINX_PORT} || 1984) + 281);

$n->write_config(<<"_EOC_" . AiGuardNginx::tenant_server($admin));
    ai_guard_tier  pro    rpm=100;
    ai_guard_tier  tight  rpm=1;
    ai_guard_key_store  1m;
    ai_guard_redis 127.0.0.1:$rport timeout=500ms sync=strict
                   prefix=$prefix;
_EOC_
$n->start;

my %secret;

sub create {
    my ($id, $tenant, $tier, $limits) = @_;
    my ($st, $h, $b) = $n->request('POST', '/admin/keys',
        ['Content-Type: application/json'],
        qq({"id":"$id","tenant":"$tenant","tier":"$tier")
        . ($limits ? qq(,"limits":$limits}) : '}'));
    is($st, 201, "$id created") or diag $b;
    ($secret{$id}) = $b =~ /"key":"([^"]+)"/;
}

sub chat {
    my ($id) = @_;
    return $n->request('POST', '/v1/chat/completions',
        ["Authorization: Bearer $secret{$id}",
         'Content-Type: application/json'],
        '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}');
}

my ($st, $h, $b);

# refused by the key's scope: Redis is not asked
create('acme-a', 'acme', 'pro', '{"rpm":1}');
create('acme-b', 'acme', 'pro');

($st, $h) = chat('acme-a');
is($st, 200, 'a: first request');
is($h->{'x-ratelimit-limit-requests'}, '1', 'the key\'s rpm is the tightest');

($st, $h, $b) = chat('acme-a');
is($st, 429, 'a: the second is over the key\'s own rpm');
like($b, qr/of this API key's own limits: the limit is 1\./,
     'by the key\'s own limits');

($st, $h) = chat('acme-b');
is($st, 200, 'b of the same tenant: served');
is($h->{'x-ratelimit-remaining-requests'}, '98',
   'Redis counted a\'s first and b\'s, not the request a\'s scope refused');

# refused by Redis: the key's reservation comes back
create('t2-c', 't2', 'tight', '{"rpm":5}');

($st) = chat('t2-c');
is($st, 200, 'c: first request');
($st, $h, $b) = chat('t2-c');
is($st, 429, 'c: Redis\'s tier rpm 1 refuses the second');
like($b, qr/tier \\"tight\\"/, 'by the tier\'s limit');

($st) = $n->request('PATCH', '/admin/keys/t2-c',
                    ['Content-Type: application/json'], '{"tier":"pro"}');
is($st, 200, 'c moved to pro');
($st, $h) = chat('t2-c');
is($st, 200, 'c on pro: served');
is($h->{'x-ratelimit-limit-requests'}, '5', 'c\'s own rpm is the tightest');
is($h->{'x-ratelimit-remaining-requests'}, '3',
   'the request Redis refused was given back by the key\'s scope');

unlike($n->log, qr/\[(alert|crit|emerg)\]/, 'no alert, crit or emerg');

$n->stop;
AiGuardNginx::redis("--scan --pattern '$prefix*' "
                    . "| xargs -r redis-cli -p $rport DEL >/dev/null");

done_testing();
