# ai_guard_self: a key's holder reads its own tier, limits, what remains
# of each and its spend this month, on two workers.  The numbers are the
# usage report's (the tenant's, and the key's own rows) and the
# x-ratelimit-remaining-requests of its last request; a self request
# consumes nothing; two tenants each see only themselves, whatever the
# query string or a header names; no credential, a wrong one, a POST:
# the module's errors.  The admin API's GET of a key (the keys file's or
# its own) answers the same spend: the report's row of the key, from the
# zone, from Redis, and with the report's warning when Redis is away.
#
# Plain Perl rather than blocks: the ledger is written in the log phase,
# after the client has its answer, so the report is polled until it
# counts every request before the numbers are compared.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Digest::SHA qw(sha256_hex);
use IO::Socket::INET;
use JSON::PP;
use Test::More;
use Time::HiRes qw(sleep);
use AiGuardNginx;

plan tests => 52;

my %digest = map { $_ => sha256_hex($_) }
             qw(sk-aig-test-acme-0001 sk-aig-test-acme-0002
                sk-aig-test-beta-0001);

my $keys = <<"_EOF_";
{"keys": [
  {"id": "acme-1", "tenant": "acme", "tier": "pro",
   "sha256": "$digest{'sk-aig-test-acme-0001'}"},
  {"id": "acme-2", "tenant": "acme", "tier": "pro",
   "sha256": "$digest{'sk-aig-test-acme-0002'}"},
  {"id": "beta-1", "tenant": "beta", "tier": "pro",
   "sha256": "$digest{'sk-aig-test-beta-0001'}"}
]}
_EOF_

# rpd and tpd are quotas of the day: what remains only goes down
my $extra = <<'_EOS_';
        location = /self { ai_guard_self; }
        location = /usage { ai_guard_usage; }
        location /admin/ {
            allow 127.0.0.1;
            deny all;
            ai_guard_admin;
        }
_EOS_

my $conf = <<"_EOC_";
    ai_guard_zone   ai_guard 1m;
    ai_guard_tier   pro  rpd=500 tpd=50000 budget=20/month;
    ai_guard_price  *  input=1 output=2;
    ai_guard_keys   \$TEST_NGINX_HTML_DIR/keys.json;
    ai_guard_key_store  1m;
@{[ AiGuardNginx::tenant_server($extra) ]}
_EOC_

my $body = '{"model":"gpt-4o-mini","max_tokens":5,'
           . '"messages":[{"role":"user","content":"hi"}]}';
my %auth = map { $_ => ["Authorization: Bearer sk-aig-test-$_"] }
           qw(acme-0001 acme-0002 beta-0001);

my $base = $ENV{TEST_NGINX_PORT} || 1984;

# an nginx of the keys on two workers, on $base + $offset, started
sub node {
    my ($name, $offset, $conf) = @_;
    my $n = AiGuardNginx->new(name => $name, port => $base + $offset,
                              workers => 2);
    $n->write_file('html/keys.json', $keys);
    $n->write_config($conf);
    $n->start;
    return $n;
}

my $n = node('self', 270, $conf);

sub self_of {
    my ($who, $uri, @more) = @_;
    return self_at($n, $who, $uri, @more);
}

sub self_at {
    my ($n, $who, $uri, @more) = @_;
    my ($st, undef, $b) = $n->request('GET', $uri // '/self',
                                      [@{ $auth{$who // ''} || [] },
                                       @more]);
    return ($st, $st == 200 ? decode_json($b) : $b);
}

sub limit_of {
    my ($self, $name) = @_;
    my ($l) = grep { $_->{limit} eq $name } @{ $self->{limits} };
    return $l;
}

# the report's object of a tenant, once it counts $count requests
sub report_of {
    my ($tenant, $count, $n) = @_;
    my $t = {};
    for (1 .. 500) {
        my (undef, undef, $b) = $n->request('GET',
                                            "/usage?tenant=$tenant");
        ($t) = @{ decode_json($b)->{tenants} };
        return $t if $t && $t->{requests} >= $count;
        sleep 0.02;
    }
    diag "$tenant: not $count requests in the report";
    return $t // {};
}

# the report's row of a key (group=key), once its tenant counts $count
sub key_row_of {
    my ($tenant, $key, $count, $n) = @_;
    my $t = {};
    for (1 .. 500) {
        my (undef, undef, $b) = $n->request('GET',
                                     "/usage?tenant=$tenant&group=key");
        ($t) = @{ decode_json($b)->{tenants} };
        last if $t && $t->{requests} >= $count;
        sleep 0.02;
    }
    my ($row) = grep { $_->{key} eq $key } @{ $t->{groups} || [] };
    return $row // {};
}

# the admin API's GET of a key: (status, the key's object, headers)
sub key_get {
    my ($n, $id) = @_;
    my ($st, $h, $b) = $n->request('GET', "/admin/keys/$id");
    return ($st, $st == 200 ? decode_json($b) : $b, $h);
}

# errors, in the client's dialect, and nothing consumed by them

my ($st, $b) = (($n->request('GET', '/self'))[0, 2]);
is $st, 401, 'no key: 401';
like $b, qr/"type":"invalid_request_error"/, '... in the OpenAI dialect';

($st) = $n->request('GET', '/self',
                    ['Authorization: Bearer sk-aig-test-acme-9999']);
is $st, 401, 'a wrong key: 401';

($st, undef, $b) = $n->request('POST', '/self', $auth{'acme-0001'}, '{}');
is $st, 405, 'POST: 405';
like $b, qr/ai_guard_self answers GET and HEAD/, '... saying what is';

# before any request: all of every limit, nothing spent

my ($s0) = (self_of('acme-0001'))[1];
is_deeply [map { $_->{remaining} // $_->{remaining_usd} }
           @{ $s0->{limits} }],
          [500, 50000, '20.000000'], 'a new tenant: every limit whole';
is $s0->{spend}{tenant}{requests}, 0, '... and nothing spent';

# three requests of acme-1, two of acme-2, one of beta-1

my $last;
for my $who (qw(acme-0001 acme-0001 acme-0002 acme-0001 acme-0002)) {
    my (undef, $h) = $n->request('POST', '/v1/json', $auth{$who}, $body);
    $last = $h->{'x-ratelimit-remaining-requests'};
}
$n->request('POST', '/v1/json', $auth{'beta-0001'}, $body);

my $acme = report_of('acme', 5, $n);
my $beta = report_of('beta', 1, $n);

my ($s1) = (self_of('acme-0001'))[1];

is_deeply [@$s1{qw(key tenant tier)}], ['acme-1', 'acme', 'pro'],
          'acme-1: its key, tenant and tier';
is limit_of($s1, 'rpd')->{remaining}, $last,
   'rpd: the x-ratelimit-remaining-requests of the last request';
is $last, 495, '... which is 500 less 5';
is limit_of($s1, 'tpd')->{remaining}, 50000 - 5 * 15,
   'tpd: less the 15 tokens each request used';

my %t = %{ $s1->{spend}{tenant} };
delete $t{tenant};
my %r = %$acme;
delete $r{tenant};
is_deeply \%t, \%r, 'the tenant\'s spend is the usage report\'s';
is $s1->{spend}{key}{requests}, 3, 'the key\'s own: its 3 requests';
isnt $s1->{spend}{tenant}{cost_usd}, '0.00', '... at a cost';

# self requests consume nothing: five more, and every number is the same

self_of('acme-0001') for 1 .. 5;
my ($s2) = (self_of('acme-0002'))[1];
is_deeply [map { $_->{remaining} // $_->{remaining_usd} }
           @{ $s2->{limits} }],
          [map { $_->{remaining} // $_->{remaining_usd} }
           @{ $s1->{limits} }],
          'five self requests later: the same limits remain';
is $s2->{spend}{tenant}{requests}, 5, '... and 5 requests are spent';
is $s2->{spend}{key}{key}, 'acme-2', 'acme-2 sees its own key';
is $s2->{spend}{key}{requests}, 2, '... and its 2 requests';
is report_of('acme', 5, $n)->{requests}, 5, 'the report: still 5 requests';

# beta sees beta, whatever it names

my ($s3) = (self_of('beta-0001', '/self?tenant=acme&key=acme-1',
                    'X-Tenant: acme', 'X-AI-Guard-Tenant: acme'))[1];
is $s3->{tenant}, 'beta', 'beta, naming acme: beta';
is $s3->{spend}{tenant}{requests}, $beta->{requests},
   '... its own spend, the report\'s';
is limit_of($s3, 'rpd')->{remaining}, 499, '... and its own limits';
unlike encode_json($s3), qr/acme/, '... and nothing of acme';

# the admin API's GET of a key: the same spend, the report's key row

my ($gst, $g) = key_get($n, 'acme-1');
is $gst, 200, 'admin GET of a key of the keys file: 200';
is_deeply $g->{spend}{key}, key_row_of('acme', 'acme-1', 5, $n),
          '... its spend is the report\'s row of the key';
is $g->{spend}{key}{requests}, 3, '... its 3 requests';
is_deeply $g->{spend}{tenant}, $s1->{spend}{tenant},
          '... and its tenant\'s, as ai_guard_self says it';

my (undef, undef, $made) = $n->request('POST', '/admin/keys', [],
    '{"id":"acme-api","tenant":"acme","tier":"pro"}');
my $secret = decode_json($made)->{key};
$n->request('POST', '/v1/json', ["Authorization: Bearer $secret"], $body)
    for 1 .. 2;
my $api_row = key_row_of('acme', 'acme-api', 7, $n);
($gst, $g) = key_get($n, 'acme-api');
is_deeply $g->{spend}{key}, $api_row,
          'a key the API made: its spend is the report\'s row too';
is $api_row->{requests}, 2, '... of its 2 requests';
is $g->{id}, 'acme-api', '... in the key\'s own object';
ok !exists $g->{key}, '... without a secret';

# the key's own limits and its tenant's, each with its scope, after the
# tier's: what remains is what the headers of the last request said

sub scoped {
    my ($self, $scope, $name) = @_;
    my ($l) = grep { $_->{scope} eq $scope && $_->{limit} eq $name }
              @{ $self->{limits} };
    return $l // {};
}

$n->request('PATCH', '/admin/keys/acme-api', [], '{"limits":{"rpm":10}}');
$n->request('PUT', '/admin/tenants/acme', [], '{"limits":{"rph":100}}');
my (undef, $lh) = $n->request('POST', '/v1/json',
                              ["Authorization: Bearer $secret"], $body);
my (undef, $own) = self_at($n, undef, undef, "Authorization: Bearer $secret");
is_deeply [map { "$_->{scope} $_->{limit}" } @{ $own->{limits} }],
          ['tier rpd', 'tier tpd', 'tier budget_month', 'key rpm',
           'tenant rph'], 'self lists the tier\'s limits, the key\'s, the '
                          . 'tenant\'s';
is scoped($own, 'key', 'rpm')->{remaining},
   $lh->{'x-ratelimit-remaining-requests'},
   '... the key\'s rpm: the header of its request, the tightest';
is $lh->{'x-ratelimit-remaining-requests'}, 9, '... which is 10 less 1';
is scoped($own, 'tenant', 'rph')->{remaining}, 99,
   '... the tenant\'s rph: 100 less 1';
is scoped($own, 'tier', 'rpd')->{remaining}, 500 - 8,
   '... the tier\'s rpd: 500 less the 8 requests of its scope';

$n->stop;

# Redis configured and away (nothing listens on its port): the report's
# warning, in the spend and as its header

{
    my $away = $base + 272;
    (my $conf_away = $conf) =~ s{(ai_guard_keys [^\n]*\n)}
        {$1    ai_guard_redis 127.0.0.1:$away timeout=200ms prefix=t114a:;\n};

    my $a = node('self-away', 273, $conf_away);

    my ($st, $g, $h) = key_get($a, 'acme-1');
    is $st, 200, 'redis away: admin GET of a key still answers';
    is $g->{spend}{warning}, 'redis unavailable: local usage of this node '
                             . 'only', '... its spend says it is local';
    is $h->{'x-ai-guard-warning'}, $g->{spend}{warning},
       '... as the report\'s header does';

    $a->stop;
}

# with ai_guard_redis the report is the cluster's, read from Redis, and
# so is the spend; sync=strict's counters are Redis's, read from there

SKIP: {
    my $rport = $ENV{TEST_NGINX_REDIS_PORT};
    skip 'TEST_NGINX_REDIS_PORT is not set (make test sets it)', 13
        unless $rport;

    my $prefix = "t114-$$:";
    (my $strict = $conf) =~ s{(ai_guard_keys [^\n]*\n)}
        {$1    ai_guard_redis 127.0.0.1:$rport timeout=200ms sync=strict
                   prefix=$prefix;\n};

    my $r = node('self-redis', 271, $strict);

    $r->request('PUT', '/admin/tenants/acme', [], '{"limits":{"rph":1000}}');
    $r->request('POST', '/v1/json', $auth{'acme-0001'}, $body) for 1 .. 2;
    my (undef, $rh) = $r->request('POST', '/v1/json', $auth{'acme-0002'},
                                  $body);

    my $report = report_of('acme', 3, $r);
    my ($s) = (self_at($r, 'acme-0001'))[1];

    my %t = %{ $s->{spend}{tenant} };
    my %r = %$report;
    is_deeply \%t, \%r, 'redis: the tenant\'s spend is the report\'s';
    is $report->{requests}, 3, '... of the 3 requests';
    is $s->{spend}{key}{requests}, 2, '... and the key\'s own 2';
    ok !exists $s->{spend}{warning}, '... read from Redis';
    # the tokens a request used are settled in Redis after its answer
    for (1 .. 500) {
        last if ($s->{limits}[1]{remaining} // 0) == 50000 - 3 * 15;
        sleep 0.02;
        ($s) = (self_at($r, 'acme-0001'))[1];
    }

    is_deeply [map { $_->{remaining} // $_->{remaining_usd} // 'null' }
               @{ $s->{limits} }[0, 1, 3]],
              [$rh->{'x-ratelimit-remaining-requests'}, 50000 - 3 * 15,
               997],
              'sync=strict: what remains is Redis\'s, the header of the '
              . 'last request, the tokens settled; the tenant\'s own, '
              . 'counted by the node';
    is $rh->{'x-ratelimit-remaining-requests'}, 497, '... 500 less 3';
    self_at($r, 'acme-0002') for 1 .. 2;
    is((self_at($r, 'acme-0001'))[1]{limits}[0]{remaining}, 497,
       '... and reading it took nothing from Redis');
    like $s->{limits}[2]{remaining_usd}, qr/^19\.99/,
         '... and what remains of the budget, read from Redis';

    my (undef, $g) = key_get($r, 'acme-1');
    is_deeply $g->{spend}{key}, key_row_of('acme', 'acme-1', 3, $r),
              'redis: admin GET of a key, the report\'s row of the key';
    is $g->{spend}{key}{requests}, 2, '... its 2 requests';
    ok !exists $g->{spend}{warning}, '... read from Redis';

    # clients that leave while Redis thinks: Redis paused, five self
    # requests sent and their connections closed at once
    AiGuardNginx::redis('CLIENT PAUSE 150 ALL');
    for (1 .. 5) {
        my $c = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => $r->port)
            or die "connect: $!";
        print $c "GET /self HTTP/1.1\r\nHost: localhost\r\n"
                 . "$auth{'acme-0001'}[0]\r\n\r\n";
        close $c;
    }
    my $after = {};
    for (1 .. 100) {
        (undef, $after) = self_at($r, 'acme-0001');
        last if defined $after->{limits}[0]{remaining};
        sleep 0.02;
    }
    is $after->{limits}[0]{remaining}, 497,
       'self requests gone while Redis was paused: the next one reads '
       . 'the same numbers';

    $r->stop;
    unlike $r->log, qr/\[(alert|crit|emerg)\]|exited on signal/,
           '... and no worker fell';
    AiGuardNginx::redis("--scan --pattern '$prefix*' "
                        . "| xargs -r redis-cli -p $rport DEL >/dev/null");
}
