# A key's own limits and its tenant's (docs/limits.md, "A key's own
# limits"; docs/admin.md) through nginx on two workers: set by the admin
# API on top of the tier's, every scope must admit a request; the headers tell the tightest; a
# request one scope refuses costs nothing in the other; a change is in
# force for the next request; the limits survive a restart (state_dir).
# And what a client of the API sends to get round them: values of every
# wrong shape, unknown names, another key of the same tenant.
#
# Plain Perl rather than blocks: the secret a create returns is the key
# the next request uses.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Test::More;
use JSON::PP ();
use AiGuardNginx;

# $1 a token in and out: a request's cost is its tokens in dollars (the
# mock of tenant_server answers 10 in, 5 out)
my $admin = '        location /admin/ { ai_guard_admin; }
        location = /usage { ai_guard_usage; }';
my $http = <<'_EOC_' . AiGuardNginx::tenant_server($admin);
    ai_guard_tier  pro    rpm=100 budget=1000/day;
    ai_guard_tier  small  rpm=3;
    ai_guard_tier  tight  rpm=1;
    ai_guard_price *  input=1000000 output=1000000;
    ai_guard_key_store  1m;
    ai_guard_state_dir  $TEST_NGINX_HTML_DIR/../state;
_EOC_

my $n = AiGuardNginx->new(name => 'key-limits', workers => 2,
                          port => ($ENV{TEST_NGINX_PORT} || 1984) + 280);
$n->write_config($http);
$n->start;

my %secret;

sub admin {
    my ($method, $path, $body) = @_;
    return $n->request($method, "/admin/$path",
                       ['Content-Type: application/json'], $body);
}

sub create {
    my ($id, $tenant, $tier, $limits) = @_;
    my $body = qq({"id":"$id","tenant":"$tenant","tier":"$tier")
               . ($limits ? qq(,"limits":$limits}) : '}');
    my ($st, $h, $b) = admin('POST', 'keys', $body);
    is($st, 201, "$id created") or diag $b;
    ($secret{$id}) = $b =~ /"key":"([^"]+)"/;
    return $b;
}

# a chat request with a key; returns (status, headers, body)
sub chat {
    my ($id) = @_;
    return $n->request('POST', '/v1/chat/completions',
        ["Authorization: Bearer $secret{$id}",
         'Content-Type: application/json'],
        '{"model":"gpt-4o-mini","max_tokens":1,'
        . '"messages":[{"role":"user","content":"hi"}]}');
}

# --- the key's rpm within its tenant's -------------------------------

my $b = create('acme-a', 'acme', 'pro', '{"rpm":2}');
like($b, qr/"limits":\{"rpm":2\}/, 'the key shows its own limits');
create('acme-b', 'acme', 'pro');

my ($st, $h);

($st, $h) = chat('acme-a');
is($st, 200, 'a: first request');
is($h->{'x-ratelimit-limit-requests'}, '2',
   'the headers tell the tightest scope: the key\'s rpm 2, not the tier\'s 100');
is($h->{'x-ratelimit-remaining-requests'}, '1', 'one left of the key\'s 2');

($st) = chat('acme-a');
is($st, 200, 'a: second request');

($st, $h, $b) = chat('acme-a');
is($st, 429, 'a: the third is over the key\'s rpm');
like($b, qr/"code":"rate_limit_exceeded"/, 'rate_limit_exceeded');
like($b, qr/Rate limit reached for requests per minute \(rpm\) of this API key's own limits: the limit is 2\./,
     'the message names the key\'s own limits');
ok($h->{'retry-after'}, 'with retry-after');
is($h->{'x-ratelimit-remaining-requests'}, '0', 'none left');

# b is of the same tenant: its tenant's scope has room, and the refused
# request of a took nothing of it (100 - a's 2 - this one)
($st, $h) = chat('acme-b');
is($st, 200, 'b, same tenant, no limits of its own: served');
is($h->{'x-ratelimit-limit-requests'}, '100', 'b sees the tier\'s rpm');
is($h->{'x-ratelimit-remaining-requests'}, '97',
   'the request the key\'s scope refused cost nothing in the tenant\'s');

# --- a change is in force for the next request, on either worker -----

($st, $h, $b) = admin('PATCH', 'keys/acme-a', '{"limits":{"rpm":null}}');
is($st, 200, 'rpm removed');
like($b, qr/"limits":\{\}/, 'no limits of its own now');

for my $i (1 .. 4) {
    ($st, $h) = chat('acme-a');
    is($st, 200, "a without its rpm: request $i served");
    is($h->{'x-ratelimit-limit-requests'}, '100',
       "request $i: the tier's rpm is the tightest again");
}

($st) = admin('PATCH', 'keys/acme-a', '{"limits":{"rpm":1}}');
is($st, 200, 'rpm 1 set');
($st) = chat('acme-a');
is($st, 429, 'rpm 1 in force at once: a\'s minute is spent');

# --- a refused request gives the key's reservation back --------------

create('t2-c', 't2', 'tight', '{"rpm":5}');
($st) = chat('t2-c');
is($st, 200, 'c: first request');
($st, $h, $b) = chat('t2-c');
is($st, 429, 'c: the tier\'s rpm 1 refuses the second');
like($b, qr/of this API key's tier \\"tight\\"/, 'the tier\'s message');

($st) = admin('PATCH', 'keys/t2-c', '{"tier":"pro"}');
is($st, 200, 'c moved to pro');
($st, $h) = chat('t2-c');
is($st, 200, 'c on pro: served');
is($h->{'x-ratelimit-limit-requests'}, '5', 'c\'s own rpm is the tightest');
is($h->{'x-ratelimit-remaining-requests'}, '3',
   'the request the tier refused was given back by the key\'s scope');

# --- a key cannot exceed its tenant through another key --------------

create('t3-x', 't3', 'small', '{"rpm":2}');
create('t3-y', 't3', 'small');

my @got = map { (chat($_))[0] } qw(t3-x t3-x t3-x t3-y t3-y);
is_deeply(\@got, [200, 200, 429, 200, 429],
          'x is held at its own 2; y of the same tenant gets only the '
          . 'tenant\'s third');

# --- the key's budget refuses while its tenant has room --------------

create('acme-d', 'acme', 'pro', '{"budget_day":"14"}');

my @seq;
for (1 .. 6) {
    ($st, $h, $b) = chat('acme-d');
    push @seq, $st;
    last if $st != 200;
}

is($seq[-1], 429, 'd: refused once its $14 a day is spent');
ok(@seq >= 2, 'after requests it could pay for (' . join(',', @seq) . ')');
like($b, qr/"code":"insufficient_quota"/, 'insufficient_quota');
like($b, qr/The daily budget of this API key's own limits, \$14\.00, is spent \(budget_day\)/,
     'the message names the key\'s budget');

($st) = chat('acme-b');
is($st, 200, 'b of the same tenant is served: the tier\'s $1000 has room');

# --- what an attacker of the API sends --------------------------------

for my $bad (['{"rpm":-1}', 'limits.rpm', 'a negative rpm'],
             ['{"rpm":0}', 'limits.rpm', 'rpm 0'],
             ['{"rpm":2.5}', 'limits.rpm', 'a fractional rpm'],
             ['{"rpm":"60"}', 'limits.rpm', 'rpm as a string'],
             ['{"tpd":99999999999999999999999}', 'limits.tpd',
              'a number past 64 bits'],
             ['{"concurrency":1000000000001}', 'limits.concurrency',
              'past the largest a tier may have'],
             ['{"budget_month":20}', 'limits.budget_month',
              'a budget as a number'],
             ['{"budget_month":"-1"}', 'limits.budget_month',
              'a negative budget'],
             ['{"budget_month":"lots"}', 'limits.budget_month',
              'a budget that is no number'],
             ['{"rps":1}', 'limits', 'an unknown limit'],
             ['{"max_tokens":1}', 'limits', 'a tier option that is no limit'],
             ['[1]', 'limits', 'an array'],
             ['{"rpm":1,"rpm":100}', 'limits.rpm', 'rpm twice'])
{
    my ($limits, $param, $what) = @$bad;

    ($st, $h, $b) = admin('PATCH', 'keys/acme-d', qq({"limits":$limits}));
    is($st, 400, "$what: refused");
    like($b, qr/"param":"\Q$param\E"/, "$what: param $param");
}

($st, $h, $b) = admin('GET', 'keys/acme-d');
like($b, qr/"limits":\{"budget_day":"14\.0+"\}/,
     'the refused changes left the key\'s limits as they were');

($st, $h, $b) = admin('POST', 'keys/acme-d/rotate', '{"limits":{"rpm":1}}');
is($st, 400, 'a rotation takes no limits');

# --- a tenant's limits: shared by its keys, on top of theirs ----------

sub changes {
    my (undef, undef, $m) = $n->request('GET', '/metrics');
    return $m =~ /^ai_guard_admin_changes_total (\d+)$/m ? $1 : -1;
}

my $before = changes();

($st, $h, $b) = admin('PUT', 'tenants/tn', '{"limits":{"rpm":3}}');
is($st, 200, 'a tenant\'s rpm set');
is($b, qq({"tenant":"tn","limits":{"rpm":3}}\n), 'the answer: its limits');
is(changes(), $before + 1, 'ai_guard_admin_changes_total counts it');
like($n->log, qr/ai_guard admin: tenant "tn" limits set by address "127\.0\.0\.1"/,
     'an audit line says who');

create('tn-p', 'tn', 'pro');
create('tn-q', 'tn', 'pro');

($st, $h) = chat('tn-p');
is($st, 200, 'p: first of the tenant\'s 3');
is($h->{'x-ratelimit-limit-requests'}, '3',
   'the tenant\'s rpm is the tightest, not the tier\'s 100');

@got = map { (chat($_))[0] } qw(tn-q tn-p tn-q);
is_deeply(\@got, [200, 200, 429],
          'the tenant\'s 3 a minute, shared by its keys');

($st, $h, $b) = chat('tn-p');
is($st, 429, 'p is refused too: the tenant\'s minute is spent');
like($b, qr/of this API key's tenant \\"tn\\": the limit is 3\./,
     'the message names the tenant');

($st, $h, $b) = admin('PUT', 'tenants/tn', '{"limits":{"rpm":100}}');
is($st, 200, 'the tenant\'s rpm raised');
($st) = chat('tn-q');
is($st, 200, 'in force for the next request');

# the key's limit refuses: the tenant's scope is not touched
create('t5-k', 't5', 'pro', '{"rpm":1}');
create('t5-m', 't5', 'pro');
admin('PUT', 'tenants/t5', '{"limits":{"rpm":2}}');

@got = map { (chat($_))[0] } qw(t5-k t5-k t5-m t5-m);
is_deeply(\@got, [200, 429, 200, 429],
          'k is held at its own 1; the request its scope refused left the '
          . 'tenant\'s second for m');

# the tenant's keys and its spend, the usage report's numbers
($st, $h, $b) = admin('GET', 'tenants/tn');
is($st, 200, 'GET a tenant');
my $t = JSON::PP->new->decode($b);
is_deeply($t->{limits}, { rpm => 100 }, 'its limits');
is_deeply([sort @{ $t->{keys} }], ['tn-p', 'tn-q'], 'its keys\' ids');

my (undef, undef, $report) = $n->request('GET', '/usage?tenant=tn');
my ($row) = grep { $_->{tenant} eq 'tn' }
            @{ JSON::PP->new->decode($report)->{tenants} || [] };
is_deeply($t->{spend}{tenant}, $row, 'its spend is the usage report\'s');
is($t->{spend}{tenant}{requests}, 4, '... of its 4 requests served');

($st, $h, $b) = admin('GET', 'tenants/nobody');
is($st, 200, 'a tenant without limits or keys: not an error');
like($b, qr/^\{"tenant":"nobody","limits":\{\},"keys":\[\],"spend":\{"from"/,
     '... but empty');

# what an attacker of the API sends
for my $bad (['PUT', 'tenants/tn', '{"limits":{"rpm":-3}}', 400,
              'limits.rpm', 'a negative rpm'],
             ['PUT', 'tenants/tn', '{"limits":{"rpn":3}}', 400, 'limits',
              'an unknown limit'],
             ['PUT', 'tenants/tn', '{"limits":{"budget_day":"1e9"}}', 400,
              'limits.budget_day', 'a budget with an exponent'],
             ['PUT', 'tenants/tn', '{}', 400, 'limits', 'no limits'],
             ['PUT', 'tenants/tn', '{"limits":{},"tier":"pro"}', 400, '',
              'a field of keys'],
             ['PUT', 'tenants/a%01b', '{"limits":{"rpm":1}}', 400, 'tenant',
              'a control character in the name'],
             ['PUT', 'tenants/' . ('t' x 129), '{"limits":{"rpm":1}}', 400,
              'tenant', 'a name of 129 bytes'],
             ['POST', 'tenants/tn', '{"limits":{"rpm":1}}', 405, '',
              'POST'],
             ['DELETE', 'tenants/nobody', undef, 404, 'tenant',
              'a tenant without limits'])
{
    my ($method, $path, $body, $want, $param, $what) = @$bad;

    ($st, $h, $b) = admin($method, $path, $body);
    is($st, $want, "$what: $want");
    like($b, qr/"param":\Q${\($param eq '' ? 'null' : qq("$param"))}\E/,
         "$what: param") if $want == 400;
}

($st, $h, $b) = admin('GET', 'tenants/tn');
like($b, qr/"limits":\{"rpm":100\}/, 'the refused changes changed nothing');

($st, $h, $b) = admin('DELETE', 'tenants/t5');
is($b, qq({"tenant":"t5","limits":{"rpm":2}}\n),
   'DELETE: the limits as they were');
like($n->log, qr/tenant "t5" limits removed by address/, 'audited');

# --- a restart: the limits are read back from state_dir ---------------

$n->stop;
$n->start;

($st, $h, $b) = admin('GET', 'keys/acme-a');
like($b, qr/"limits":\{"rpm":1\}/, 'a\'s rpm 1 survives the restart');
($st, $h, $b) = admin('GET', 'keys/acme-d');
like($b, qr/"limits":\{"budget_day":"14\.0+"\}/,
     'd\'s budget survives the restart, to the pico-dollar');

($st, $h, $b) = admin('GET', 'tenants/tn');
like($b, qr/"limits":\{"rpm":100\}/, 'the tenant\'s limits survive it');
($st, $h, $b) = admin('GET', 'tenants/t5');
like($b, qr/"limits":\{\}/, 'a removed tenant\'s stay removed');

($st) = chat('acme-a');
is($st, 200, 'a after the restart: a new minute');
($st, $h, $b) = chat('acme-a');
is($st, 429, 'a\'s own rpm 1 is enforced after the restart');
like($b, qr/own limits/, 'by its own limits');

unlike($n->log, qr/\[(alert|crit|emerg)\]/, 'no alert, crit or emerg');

$n->stop;

done_testing();
