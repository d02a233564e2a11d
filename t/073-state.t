# The state attacks of the "trust" issue, through nginx with two workers,
# against docs/state.md: no client's traffic may destroy what another
# identity depends on.  A victim holds state of each kind (a spent quota,
# a held concurrency slot, a billed usage row); an attacker with a key of
# its own churns the zone (invented model names, invented end users, new
# keys, refused requests with invented models) and afterwards the victim's
# state must be exactly what it was.  Where something cannot be kept the
# request is refused before the upstream (503 zone_full / ledger_full, an
# ALERT, ai_guard_zone_refused_total), never served without its entry.
#
# Each part runs its own nginx.  Parts whose configuration uses only the
# directives of the undivided zone run the same attack on the old and the
# new design; parts that need the new syntax (zone parts, max=, a resized
# ledger) fail at `nginx -t` until it exists.  The numbers are those of
# the attacks in the issue; 3 and 6 are in t/074-state-config.t.
#
# Plain Perl rather than blocks: each attack is hundreds of requests with
# invented names against two workers while a forked upstream holds a slot,
# and some parts reload nginx in the middle; Test::Nginx restarts its one
# nginx between blocks and checks the log after every request.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Digest::SHA qw(sha256_hex);
use IO::Select;
use IO::Socket::INET;
use JSON::PP qw(decode_json);
use POSIX ();
use Test::More tests => 145;
use Time::HiRes qw(sleep time);
use AiGuardNginx;

my $base = ($ENV{TEST_NGINX_PORT} || 1984) + 173;
my $slow_port = $base - 1;
my $next_port = $base;

# every request reaches a mock that reports 10 prompt and 90 completion
# tokens and names no model, so the row is the request's model; priced at
# $1 and $2 per 1M tokens, a request costs $0.00019 = 190,000,000 pico-USD
my $req_cost = 190_000_000;

# the slow upstream: a header and a first event, then nothing until nginx
# closes the connection (the client went away) or a minute has passed
my $slow_pid = slow_upstream($slow_port);

END { kill 'TERM', $slow_pid if $slow_pid }

model_churn();
limit_by_cap();
limits_full_by_keys();
limits_full_by_end_users();
ledger_full('explicit', 'ai_guard_zone  ledg 160k ledger=32k series=64k;',
            300);
ledger_full('undivided', 'ai_guard_zone  ledg2 128k;', 600);
series_starvation();
length_prefixed_keys();
reload_keeps_state('explicit',
                   'ai_guard_zone  rl 192k limits=64k ledger=64k series=64k;',
                   'ai_guard_zone  rl 224k limits=64k ledger=96k series=64k;');
reload_keeps_state('undivided', 'ai_guard_zone  rl2 192k;',
                   'ai_guard_zone  rl2 224k;');

kill 'TERM', $slow_pid;
waitpid($slow_pid, 0);
undef $slow_pid;



# ---------------------------------------------------------------------------
# 1. Churn by model names: the victim's spent quota, held slot and billed
#    row survive 600 requests with invented models; the attacker's report
#    folds past ai_guard_usage_max_models (default 32) into "other", exact.

sub model_churn {
    my $t = 'model churn';

    my $n = boot('churn-model',
                 http_conf(zone => 'ai_guard_zone  churn 128k;',
                           server => 'ai_guard_limit_by key;'),
                 keys_json(['victim-q', tenant => 'victim', tier => 'daily'],
                           ['victim-c', tenant => 'victim', tier => 'one'],
                           ['evil-1', tenant => 'evil', tier => 'many']))
        or return;

    my ($slow, $row) = victim_state($n, $t, 'victim-q', 'victim-c');

    my @st = burst($n, map {
        ['POST', '/v1/chat/completions', [auth('evil-1')],
         chat(sprintf('m-%d-%08x', $_, int rand 2**32))]
    } 1 .. 600);

    is_deeply(count_status(@st), { 200 => 600 },
              "$t: all 600 requests with invented models reach the upstream");

    quiesce($n, 1);

    victim_intact($n, $t, 'victim-q', [], 'victim-c', [], $row);

    my $evil = tenant_of(report($n, 'tenant=evil&group=model'), 'evil');
    my @groups = @{ $evil->{groups} || [] };
    my ($other) = grep { $_->{model} eq 'other' } @groups;

    is(scalar @groups, 33,
       "$t: the attacker's report has 32 models and \"other\"");
    is_deeply(numbers($other),
              { requests => 568, input_tokens => 5680,
                output_tokens => 51120, cost => 568 * $req_cost },
              "$t: \"other\" holds the other 568 requests, tokens and "
              . "cost exact");
    is_deeply(numbers($evil),
              { requests => 600, input_tokens => 6000,
                output_tokens => 54000, cost => 600 * $req_cost },
              "$t: the attacker's totals count every request");

    my %m = metrics($n);
    my %evil_models = map { /model="((?:[^"\\]|\\.)*)"/ ? ($1 => 1) : () }
                      grep { /^ai_guard_\w+\{tenant="evil",/ } keys %m;
    my $label = qr/"((?:[^"\\]|\\.)*)"/;
    my %pairs = map { /^\w+\{tenant=$label,model=$label/ ? ("$1 $2" => 1)
                                                       : () } keys %m;

    ok(keys %evil_models <= 33,
       "$t: the attacker's series carry at most 33 model labels (got "
       . scalar(keys %evil_models) . ')');
    ok(keys %pairs <= 65,
       "$t: tenant x model label sets stay within max_series + other (got "
       . scalar(keys %pairs) . ')');
    is(sum_of(\%m, qr/^ai_guard_tokens_total\{.*type="input"\}$/),
       20 + 6000, "$t: metrics count every token the report counts");

    slot_returns($n, $t, $slow, 'victim-c', []);

    finish($n, $t, 'no alert');
}


# ---------------------------------------------------------------------------
# 2a. Churn by limit_by values: max=50 distinct values a tenant, then 429
#     limit_by_max; the victim tenant's scopes are intact and a new value
#     of its own is still admitted.

sub limit_by_cap {
    my $t = 'limit_by max=50';

    my $n = boot('churn-limit-by',
                 http_conf(zone => 'ai_guard_zone  capped 256k;',
                           server => 'ai_guard_limit_by $http_x_end_user '
                                     . 'max=50;'),
                 keys_json(['victim-q', tenant => 'victim', tier => 'daily'],
                           ['victim-c', tenant => 'victim', tier => 'one'],
                           ['evil-1', tenant => 'evil', tier => 'many']))
        or return;

    my @alice = ('X-End-User: v-alice');
    my @bob = ('X-End-User: v-bob');

    my ($slow, $row) = victim_state($n, $t, 'victim-q', 'victim-c',
                                    \@alice, \@bob);

    my @users = map { "u-$_" } 1 .. 300;
    my @st = burst($n, map {
        ['POST', '/v1/chat/completions', [auth('evil-1'), "X-End-User: $_"],
         chat('gpt-4o-mini')]
    } @users);

    is_deeply(count_status(@st), { 200 => 50, 429 => 250 },
              "$t: of 300 end users of one tenant 50 are admitted");

    my @over = grep { $st[$_][0] == 429 } 0 .. $#st;
    my @under = grep { $st[$_][0] == 200 } 0 .. $#st;

    is(scalar(grep { is_limit_by_max($st[$_]) } @over), scalar @over,
       "$t: each refusal is 429 rate_limit_exceeded, reason limit_by_max, "
       . "retry-after 60");

    SKIP: {
        skip "$t: no admitted and refused end users to retry", 2
            unless @over && @under;

        my ($s) = post($n, 'evil-1', ["X-End-User: $users[$under[0]]"]);
        is($s, 200, "$t: an admitted end user is still served");

        my @r = post($n, 'evil-1', ["X-End-User: $users[$over[0]]"]);
        ok(is_limit_by_max(\@r),
           "$t: a refused end user is refused again (limit_by_max)");
    }

    quiesce($n, 1);

    victim_intact($n, $t, 'victim-q', \@alice, 'victim-c', \@bob, $row);

    my ($s) = post($n, 'victim-q', ['X-End-User: v-carol']);
    is($s, 200, "$t: the victim tenant's new end user is admitted");

    # a tenant at its max= is its own limit, not a part out of room
    my %m = metrics($n);
    is($m{'ai_guard_zone_refused_total{part="limits"}'}, 0,
       "$t: limit_by_max refusals are not counted as a full zone");

    slot_returns($n, $t, $slow, 'victim-c', \@bob);

    finish($n, $t, 'no alert');
}


# ---------------------------------------------------------------------------
# 2b. The limits part full of stateful entries (400 keys, each its own
#     tenant with a day quota in use): a new identity gets 503 zone_full,
#     existing ones keep their limits; a refused identity is never served.

sub limits_full_by_keys {
    my $t = 'limits part full (keys)';

    my @churn = map { "c-$_" } 1 .. 400;

    my $n = boot('full-keys',
                 http_conf(zone => 'ai_guard_zone  crowd 224k limits=32k '
                                   . 'ledger=128k series=64k;'),
                 keys_json(['one', tier => 'one'], ['spent', tier => 'once'],
                           ['live', tier => 'many'], ['late', tier => 'one'],
                           map { [$_, tier => 'many'] } @churn))
        or return;

    is_deeply([map { (post($n, 'spent'))[0] } 1 .. 2], [200, 429],
              "$t: rpd=1 spent before the churn");
    is((post($n, 'live'))[0], 200, "$t: a live tenant is served");

    my ($ss, $slow) = open_slow($n, 'one');
    is($ss, 200, "$t: concurrency=1 held by a slow request");
    is((post($n, 'one'))[0], 429, "$t: ... a second request is refused");

    my @st = burst($n, map {
        ['POST', '/v1/chat/completions', [auth($_)], chat('gpt-4o-mini')]
    } @churn);

    my (undef, $refused) = full_refusals($n, $t, 'zone_full', \@st,
                                         [map { [$_] } @churn]);
    $refused += grep { $_->[0] == 503 } @st;

    is_deeply([map { (post($n, $_))[0] } qw(live spent one)],
              [200, 429, 429],
              "$t: after the churn: live served, spent still spent, the "
              . "slot still held");

    # a new identity of the slot tier: with no room neither of its two
    # requests may pass, as they would if it were served without its entry
    my ($ls, $lsock) = open_slow($n, 'late');
    my ($l2) = post($n, 'late');
    close $lsock if $lsock;

    is_deeply([$ls, $l2], [503, 503],
              "$t: a new concurrency=1 identity is refused, not served "
              . "without its entry");
    $refused += grep { $_ == 503 } $ls, $l2;

    my %m = metrics($n);
    is($m{'ai_guard_zone_refused_total{part="limits"}'}, $refused,
       "$t: ai_guard_zone_refused_total{part=\"limits\"} counts every 503 "
       . "($refused)");

    slot_returns($n, $t, $slow, 'one', []);

    finish($n, $t, 'alert', 'crowd');
}


# ---------------------------------------------------------------------------
# 2c. The same with only the directives of the undivided zone: one tenant
#     invents 600 end users (no max=, so the limits part bounds them).  On
#     the old design this evicts the victim's spent quota.

sub limits_full_by_end_users {
    my $t = 'limits part full (end users)';

    my $n = boot('full-users',
                 http_conf(zone => 'ai_guard_zone  crowd2 128k;',
                           server => 'ai_guard_limit_by $http_x_end_user;'),
                 keys_json(['victim-q', tenant => 'victim', tier => 'daily'],
                           ['victim-c', tenant => 'victim', tier => 'one'],
                           ['evil-1', tenant => 'evil', tier => 'many']))
        or return;

    my @alice = ('X-End-User: v-alice');
    my @bob = ('X-End-User: v-bob');

    my ($slow, $row) = victim_state($n, $t, 'victim-q', 'victim-c',
                                    \@alice, \@bob);

    my @users = map { "u-$_" } 1 .. 600;
    my @st = burst($n, map {
        ['POST', '/v1/chat/completions', [auth('evil-1'), "X-End-User: $_"],
         chat('gpt-4o-mini')]
    } @users);

    my (undef, $refused) = full_refusals($n, $t, 'zone_full', \@st,
        [map { ['evil-1', "X-End-User: $_"] } @users]);
    $refused += grep { $_->[0] == 503 } @st;

    quiesce($n, 1);

    victim_intact($n, $t, 'victim-q', \@alice, 'victim-c', \@bob, $row);

    my %m = metrics($n);
    is($m{'ai_guard_zone_refused_total{part="limits"}'}, $refused,
       "$t: ai_guard_zone_refused_total{part=\"limits\"} counts every 503 "
       . "($refused)");

    slot_returns($n, $t, $slow, 'victim-c', \@bob);

    finish($n, $t, 'alert', 'crowd2');
}


# ---------------------------------------------------------------------------
# 4. The ledger full: keys of one tenant without limits each need a row;
#    past the ledger's room 503 ledger_full before the upstream, existing
#    rows keep counting, and the report counts exactly the 200s.

sub ledger_full {
    my ($variant, $zone, $count) = @_;
    my $t = "ledger full ($variant)";

    my @bulk = map { "b-$_" } 1 .. $count;
    my ($name) = $zone =~ /ai_guard_zone\s+(\S+)/;

    my $n = boot("ledger-$variant", http_conf(zone => $zone),
                 keys_json(map { [$_, tenant => 'bulk'] } @bulk))
        or return;

    my @st = burst($n, map {
        ['POST', '/v1/chat/completions', [auth($_)], chat('gpt-4o-mini')]
    } @bulk);

    my ($again, $refused) = full_refusals($n, $t, 'ledger_full', \@st,
                                          [map { [$_] } @bulk]);

    my @ok = grep { $st[$_][0] == 200 } 0 .. $#st;
    my $served = @ok + $again;
    $refused += @st - @ok;

    my $keep = @ok ? $bulk[$ok[0]] : $bulk[0];
    my @more = map { (post($n, $keep))[0] } 1 .. 2;
    is_deeply(\@more, [200, 200], "$t: a key with a row keeps being served");
    $served += grep { $_ == 200 } @more;

    quiesce($n, 0);

    my $bulk = tenant_of(report($n, 'tenant=bulk&group=key'), 'bulk');

    is($bulk->{requests}, $served,
       "$t: the report counts every request that got a 200 ($served)");
    is(scalar @{ $bulk->{groups} || [] }, scalar @ok,
       "$t: one row for each key that was served");

    # $keep is the key full_refusals served again too
    my ($g) = grep { $_->{key} eq $keep } @{ $bulk->{groups} || [] };
    my $k = 1 + $again + 2;
    is_deeply(numbers($g),
              { requests => $k, input_tokens => 10 * $k,
                output_tokens => 90 * $k, cost => $k * $req_cost },
              "$t: the existing row kept counting");

    my %m = metrics($n);
    is($m{'ai_guard_zone_refused_total{part="ledger"}'}, $refused,
       "$t: ai_guard_zone_refused_total{part=\"ledger\"} counts every 503 "
       . "($refused)");

    finish($n, $t, 'alert', $name);
}


# ---------------------------------------------------------------------------
# 5. Series starvation: 300 refused requests with invented models and 50
#    with unknown keys make one series each kind; another tenant's allowed
#    request keeps its own labels.

sub series_starvation {
    my $t = 'series starvation';

    my $n = boot('series',
                 http_conf(zone => 'ai_guard_zone  ser 256k;'),
                 keys_json(['evil-1', tenant => 'evil', tier => 'narrow'],
                           ['acme-1', tenant => 'acme', tier => 'narrow']))
        or return;

    is((post($n, 'evil-1'))[0], 200,
       "$t: the attacker uses gpt-4o-mini once today");

    my @r = post($n, 'evil-1', [], chat('gpt-4o-mini', 5000));
    is($r[0], 400, "$t: ... then asks gpt-4o-mini for too many tokens");

    my @st = burst($n, map {
        ['POST', '/v1/chat/completions', [auth('evil-1')],
         chat(sprintf('m-%d-%08x', $_, int rand 2**32))]
    } 1 .. 300);
    is_deeply(count_status(@st), { 403 => 300 },
              "$t: 300 invented models are refused (model_not_allowed)");

    @st = burst($n, map {
        ['POST', '/v1/chat/completions',
         ['Authorization: Bearer sk-aig-test-state-nobody-' . $_],
         chat(sprintf('u-%d-%08x', $_, int rand 2**32))]
    } 1 .. 50);
    is_deeply(count_status(@st), { 401 => 50 },
              "$t: 50 unknown keys with invented models are refused");

    is((post($n, 'acme-1'))[0], 200, "$t: another tenant's request passes");

    quiesce($n, 0);

    my %m = metrics($n);

    is(requests(\%m, 'acme', 'gpt-4o-mini', 'allow', ''), 1,
       "$t: the victim's request under its own tenant and model");
    is(tokens(\%m, 'acme', 'gpt-4o-mini'), 10, "$t: and its tokens");
    is(requests(\%m, 'evil', 'other', 'reject', 'model_not_allowed'), 300,
       "$t: the invented models are one series, model=\"other\"");
    is(requests(\%m, 'evil', 'gpt-4o-mini', 'reject', 'max_tokens_exceeded'),
       1, "$t: a refusal of a model the tenant used today keeps its model");
    # a request refused for its key is not read: its model is unknown
    is(requests(\%m, 'unknown', '', 'reject', 'invalid_api_key'), 50,
       "$t: unknown keys are one series, tenant=\"unknown\" "
       . "model=\"\"");
    is(scalar(grep { /tenant="other"/ } keys %m), 0,
       "$t: nothing was folded into tenant=\"other\"");

    finish($n, $t, 'no alert');
}


# ---------------------------------------------------------------------------
# Zone keys are length-prefixed: key "acme-1" + model "0gpt-4o" is not key
# "acme-10" + model "gpt-4o" (the report), tenant "ac" + model "megpt-4o"
# is not tenant "acme" + model "gpt-4o" (the metrics).

sub length_prefixed_keys {
    my $t = 'length-prefixed keys';

    my $n = boot('prefix',
                 http_conf(zone => 'ai_guard_zone  lp 256k;'),
                 keys_json(['acme-10', tenant => 'acme'],
                           ['acme-1', tenant => 'acme'],
                           ['ac-1', tenant => 'ac']))
        or return;

    is_deeply([(post($n, 'acme-10', [], chat('gpt-4o')))[0],
               (post($n, 'acme-1', [], chat('0gpt-4o')))[0],
               (post($n, 'ac-1', [], chat('megpt-4o')))[0]],
              [200, 200, 200], "$t: three requests pass");

    quiesce($n, 0);

    my $by_key = tenant_of(report($n, 'tenant=acme&group=key'), 'acme');
    is_deeply({ map { $_->{key} => $_->{requests} }
                @{ $by_key->{groups} || [] } },
              { 'acme-1' => 1, 'acme-10' => 1 },
              "$t: acme-1 + 0gpt-4o and acme-10 + gpt-4o are two rows");

    my $by_model = tenant_of(report($n, 'tenant=acme&group=model'), 'acme');
    is_deeply({ map { $_->{model} => $_->{requests} }
                @{ $by_model->{groups} || [] } },
              { '0gpt-4o' => 1, 'gpt-4o' => 1 },
              "$t: ... under their own models");

    my %m = metrics($n);

    is_deeply([tokens(\%m, 'acme', 'gpt-4o'), tokens(\%m, 'ac', 'megpt-4o'),
               tokens(\%m, 'acme', '0gpt-4o')],
              [10, 10, 10],
              "$t: tenant ac + megpt-4o is not tenant acme + gpt-4o");

    finish($n, $t, 'no alert');
}


# ---------------------------------------------------------------------------
# 7. A reload adopts the zone: a spent quota, a held slot and billed rows
#    survive it; a reload that resizes the ledger copies the rows.

sub reload_keeps_state {
    my ($variant, $zone, $resized) = @_;
    my $t = "reload ($variant)";

    my $keys = keys_json(['victim-q', tenant => 'victim', tier => 'daily'],
                         ['victim-c', tenant => 'victim', tier => 'one']);

    my $n = boot("reload-$variant",
                 http_conf(zone => $zone, server => 'ai_guard_limit_by key;'),
                 $keys)
        or return;

    my ($slow, $row) = victim_state($n, $t, 'victim-q', 'victim-c');

    $n->reload;

    my @r = post($n, 'victim-q');
    is($r[0], 429, "$t: after nginx -s reload the quota is still spent");

    my ($s, $h) = post($n, 'victim-c');
    is("$s " . ($h->{'x-reason'} // ''), '429 concurrency',
       "$t: the slot held by the old worker's request is still held");

    my $q = group_of(report($n, 'tenant=victim&group=key'), 'victim',
                     key => 'victim-q');
    is_deeply(numbers($q), $row, "$t: the billed row is unchanged");

    slot_returns($n, $t, $slow, 'victim-c', []);

    quiesce($n, 0);

    # the aborted slow request and the one that found the slot free
    my $c = group_of(report($n, 'tenant=victim&group=key'), 'victim',
                     key => 'victim-c');
    is($c->{requests}, 2, "$t: the slot's key has its two requests billed");

    # the same zone, its ledger larger: a zone of a new size
    $n->write_config(http_conf(zone => $resized,
                               server => "ai_guard_limit_by key;\n"
                                         . '        add_header X-Conf 2;'));
    $n->reload;

    ($s, $h) = $n->request('GET', '/usage?tenant=victim&group=key');
    is($h->{'x-conf'}, 2, "$t: the resized configuration is loaded");

    my $after = report($n, 'tenant=victim&group=key');
    is_deeply(numbers(group_of($after, 'victim', key => 'victim-q')), $row,
              "$t: after resizing the ledger the billed row is unchanged");
    is((group_of($after, 'victim', key => 'victim-c') || {})->{requests}, 2,
       "$t: ... and so is the other key's");

    if ($variant eq 'explicit') {
        # the limits part kept its size: adopted as it was
        @r = post($n, 'victim-q');
        is($r[0], 429, "$t: the limits part was adopted, the quota is "
                       . "still spent");
    }

    finish($n, $t, 'no alert');
}


# ---------------------------------------------------------------------------
# the victim's state and its checks, shared by the churn parts

# a spent tpd=300 quota on $q and a slow request holding $c's slot
sub victim_state {
    my ($n, $t, $q, $c, $qh, $ch) = @_;
    $qh ||= [];
    $ch ||= [];

    is_deeply([map { (post($n, $q, $qh))[0] } 1 .. 3], [200, 200, 429],
              "$t: the victim spends its tpd=300 quota");

    my ($s, $slow) = open_slow($n, $c, @$ch);
    is($s, 200, "$t: the victim holds its concurrency=1 slot with a slow "
                . "request");
    is((post($n, $c, $ch))[0], 429, "$t: ... a second request is refused");

    quiesce($n, 1);

    my $row = numbers(group_of(report($n, 'tenant=victim&group=key'),
                               'victim', key => $q));
    is_deeply($row, { requests => 2, input_tokens => 20,
                      output_tokens => 180, cost => 2 * $req_cost },
              "$t: the victim's billed row");

    return ($slow, $row);
}

sub victim_intact {
    my ($n, $t, $q, $qh, $c, $ch, $row) = @_;

    my ($s, $h, $b) = post($n, $q, $qh);
    is("$s " . ($h->{'x-reason'} // ''), '429 tpd',
       "$t: after the churn the victim's quota is still spent");
    like($b, qr/"code":"insufficient_quota"/, "$t: ... insufficient_quota");

    ($s, $h) = post($n, $c, $ch);
    is("$s " . ($h->{'x-reason'} // ''), '429 concurrency',
       "$t: after the churn the victim's slot is still held");

    my $now = numbers(group_of(report($n, 'tenant=victim&group=key'),
                               'victim', key => $q));
    is_deeply($now, $row, "$t: after the churn the billed row is unchanged");
}

# the slow request goes away: its slot comes back
sub slot_returns {
    my ($n, $t, $slow, $c, $ch) = @_;
    my $s = 0;

    close $slow if $slow;

    for (1 .. 100) {
        ($s) = post($n, $c, $ch);
        last if $s == 200;
        sleep 0.05;
    }

    is($s, 200, "$t: once the slow request is gone its slot is free");
}

# every churn request is 200 or a refusal of a full part, in its shape;
# some are refused; one served is served again and one refused is refused
# again: a request is never served without its entry.  $who: the
# [key, headers...] of each request.  Returns how many of its own requests
# were served and refused.
sub full_refusals {
    my ($n, $t, $reason, $st, $who) = @_;

    my %c = %{ count_status(@$st) };
    my @ok = grep { $st->[$_][0] == 200 } 0 .. $#$st;
    my @no = grep { $st->[$_][0] == 503 } 0 .. $#$st;

    is(join(',', sort keys %c), '200,503',
       "$t: served (200) or refused (503), nothing else: "
       . join(' ', map { "$_:$c{$_}" } sort keys %c));

    my $retry = $reason eq 'zone_full' ? '10' : undef;
    my $bad = grep { !is_full($st->[$_], $reason, $retry) } @no;
    is($bad, 0, "$t: each 503 is limiter_unavailable, reason $reason"
                . ($retry ? ", retry-after $retry" : ''));

    my ($served, $refused) = (0, 0);

    SKIP: {
        skip "$t: nothing both served and refused", 2 unless @ok && @no;

        my ($key, @h) = @{ $who->[$ok[0]] };
        my ($s) = post($n, $key, \@h);
        is($s, 200, "$t: an identity with an entry is served again");
        $served += $s == 200;

        ($key, @h) = @{ $who->[$no[0]] };
        my @r = post($n, $key, \@h);
        ok(is_full(\@r, $reason, $retry),
           "$t: a refused identity is refused again");
        $refused += $r[0] == 503;
    }

    return ($served, $refused);
}

sub is_full {
    my ($r, $reason, $retry) = @_;
    my ($s, $h, $b) = @$r;

    return $s == 503
           && $b =~ /"code":"limiter_unavailable"/
           && ($h->{'x-reason'} // '') eq $reason
           && (!defined $retry || ($h->{'retry-after'} // '') eq $retry);
}

sub is_limit_by_max {
    my ($r) = @_;
    my ($s, $h, $b) = @$r;

    return $s == 429
           && $b =~ /"code":"rate_limit_exceeded"/
           && ($h->{'x-reason'} // '') eq 'limit_by_max'
           && ($h->{'retry-after'} // '') eq '60';
}

sub finish {
    my ($n, $t, $alert, $zone) = @_;

    $n->stop;

    my @log = split /\n/, $n->log;

    if ($alert eq 'alert') {
        ok((grep { /\[alert\].*\Q$zone\E/ } @log),
           "$t: an ALERT names the zone \"$zone\"");

    } else {
        lines_ok([grep { /\[alert\]/ } @log], "$t: no alert");
    }

    lines_ok([grep { /\[(?:error|crit|emerg)\]/ } @log],
             "$t: no error or crit");
}

# no such line in the error log; the first few if there are
sub lines_ok {
    my ($lines, $name) = @_;

    is(scalar @$lines, 0, $name)
        or diag(join "\n", grep { defined } @$lines[0 .. 2]);
}


# ---------------------------------------------------------------------------
# nginx, keys, requests, reports, metrics

sub http_conf {
    my (%o) = @_;
    my $server = $o{server} // '';

    return <<"_EOC_";
    $o{zone}
    ai_guard_metrics_max_series  64;

    ai_guard_tier  daily   tpd=300;
    ai_guard_tier  one     concurrency=1 rpd=100000;
    ai_guard_tier  once    rpd=1;
    ai_guard_tier  many    rpd=100000;
    ai_guard_tier  narrow  models=gpt-4o-mini* max_tokens=1000;

    ai_guard_price  *  input=1 output=2;

    ai_guard_keys  \$TEST_NGINX_HTML_DIR/keys.json;

    server {
        listen 127.0.0.1:\$TEST_NGINX_SERVER_PORT;

        add_header X-Reason \$ai_guard_reason always;
        $server

        location /v1/ {
            ai_guard on;
            proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/mock/;
        }

        location = /v1/slow {
            ai_guard on;
            proxy_buffering off;
            proxy_pass http://127.0.0.1:$slow_port/slow;
        }

        location /mock/ {
            default_type application/json;
            echo '{"usage":{"prompt_tokens":10,"completion_tokens":90}}';
        }

        location = /usage { ai_guard_usage; }
        location = /metrics { ai_guard_metrics; }
    }
_EOC_
}

# a started nginx, or undef (and a failed test) when `nginx -t` refuses
# the configuration: the reason is in the diagnostics
sub boot {
    my ($name, $http, $keys) = @_;

    my $n = AiGuardNginx->new(name => "state-$name", port => $next_port++,
                              workers => 2);
    $n->write_file('html/keys.json', $keys);
    $n->write_config($http);

    my ($rc, $out) = $n->test_config;

    if (!ok($rc == 0, "$name: nginx -t accepts the configuration")) {
        diag($out);
        return undef;
    }

    $n->start;

    return $n;
}

sub key_of { "sk-aig-test-state-$_[0]" }
sub auth { 'Authorization: Bearer ' . key_of($_[0]) }

# keys_json([id, field => value, ...], ...)
sub keys_json {
    my @e;

    for my $k (@_) {
        my ($id, %f) = @$k;
        $f{id} = $id;
        $f{sha256} = sha256_hex(key_of($id));
        push @e, '  {' . join(', ', map { qq("$_": "$f{$_}") } sort keys %f)
                 . '}';
    }

    return "{\"keys\": [\n" . join(",\n", @e) . "\n]}\n";
}

sub chat {
    my ($model, $max) = @_;
    $max //= 100;

    return qq({"model":"$model","max_tokens":$max,)
           . qq("messages":[{"role":"user","content":"hi"}]});
}

# (status, headers, body) of a chat request of key $who
sub post {
    my ($n, $who, $headers, $body) = @_;

    return $n->request('POST', '/v1/chat/completions',
                       [auth($who), @{ $headers || [] }],
                       $body // chat('gpt-4o-mini'));
}

# the requests, twenty at a time, each on its own connection
sub burst {
    my ($n, @reqs) = @_;
    my @out;

    while (my @b = splice @reqs, 0, 20) {
        push @out, map { [@$_] } $n->parallel(@b);
    }

    return @out;
}

sub count_status {
    my %c;
    $c{ $_->[0] }++ for @_;
    return \%c;
}

# a slow request of key $who: its status once its first event is in (or
# its error response), and the socket that keeps it going
sub open_slow {
    my ($n, $who, @h) = @_;

    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $n->port)
        or die "connect: $!";

    my $body = chat('gpt-4o-mini');

    print $s "POST /v1/slow HTTP/1.1\r\nHost: localhost\r\n"
             . join('', map { "$_\r\n" } auth($who), @h)
             . "Content-Length: " . length($body) . "\r\n"
             . "Connection: close\r\n\r\n$body";

    my $got = '';
    my $sel = IO::Select->new($s);
    my $end = time + 10;

    while ($got !~ /first/ && time < $end) {
        last unless $sel->can_read($end - time);
        sysread($s, $got, 4096, length $got) or last;
    }

    my ($status) = $got =~ m{^HTTP/1\.1 (\d+)};

    return ($status // 0, $s);
}

# the log phase runs after the client has its answer: wait until only
# $want requests are in flight before reading what they recorded
sub quiesce {
    my ($n, $want) = @_;

    for (1 .. 100) {
        my %m = metrics($n);
        last if ($m{ai_guard_requests_in_flight} // -1) == $want;
        sleep 0.05;
    }

    sleep 0.05;
}

sub report {
    my ($n, $args) = @_;
    my ($s, $h, $b) = $n->request('GET', "/usage?$args");
    return eval { decode_json($b) } || {};
}

sub tenant_of {
    my ($r, $tenant) = @_;
    my ($t) = grep { $_->{tenant} eq $tenant } @{ $r->{tenants} || [] };
    return $t;
}

sub group_of {
    my ($r, $tenant, $label, $value) = @_;
    my $t = tenant_of($r, $tenant) || {};
    my ($g) = grep { ($_->{$label} // '') eq $value } @{ $t->{groups} || [] };
    return $g;
}

# the numbers of a report object, the cost in pico-USD
sub numbers {
    my ($o) = @_;
    return undef unless $o;

    return { requests => $o->{requests},
             input_tokens => $o->{input_tokens},
             output_tokens => $o->{output_tokens},
             cost => pico($o->{cost_usd}) };
}

sub pico {
    my ($usd) = @_;
    my ($i, $f) = ($usd // '') =~ /^(\d+)(?:\.(\d+))?$/ or return undef;
    return $i * 10**12 + substr(($f // '') . '0' x 12, 0, 12);
}

# Prometheus text into { "name{labels}" => value }
sub metrics {
    my ($n) = @_;
    my ($s, $h, $text) = $n->request('GET', '/metrics');
    my %m;

    for (split /\n/, $text) {
        next if /^#/;
        my ($k, $v) = /^(.*) (\S+)$/ or next;
        $m{$k} = $v;
    }

    return %m;
}

# the code is the reason in every case this file counts
sub requests {
    my ($m, $tenant, $model, $decision, $reason) = @_;

    return $m->{qq(ai_guard_requests_total{tenant="$tenant",model="$model",)
                . qq(decision="$decision",code="$reason",reason="$reason"})};
}

sub tokens {
    my ($m, $tenant, $model) = @_;

    return $m->{qq(ai_guard_tokens_total{tenant="$tenant",model="$model",)
                . qq(type="input"})};
}

sub sum_of {
    my ($m, $re) = @_;
    my $sum = 0;
    $sum += $m->{$_} for grep { $_ =~ $re } keys %$m;
    return $sum;
}

# a forking loopback upstream: /slow sends its header and a first event,
# then waits until nginx closes the connection
sub slow_upstream {
    my ($port) = @_;

    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                  LocalPort => $port, Listen => 64,
                                  ReuseAddr => 1)
        or die "listen $port: $!";

    my $pid = fork;
    die "fork: $!" unless defined $pid;

    if ($pid) {
        close $l;
        return $pid;
    }

    local $SIG{CHLD} = 'IGNORE';
    my $deadline = time + 600;

    while (time < $deadline) {
        my $c = $l->accept or next;
        my $kid = fork;

        if (defined $kid && $kid == 0) {
            # the port is free once the listener is gone: a handler still
            # running (a hang) must not hold the listening socket
            close $l;

            my $req = '';
            while ($req !~ /\r\n\r\n/) {
                sysread($c, $req, 4096, length $req) or last;
            }
            my ($len) = $req =~ /^Content-Length:\s*(\d+)/mi;
            my ($head) = split /\r\n\r\n/, $req, 2;
            my $need = length($head) + 4 + ($len // 0);
            while (length $req < $need) {
                sysread($c, $req, 4096, length $req) or last;
            }

            local $SIG{PIPE} = 'IGNORE';
            $c->autoflush(1);
            print $c "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     . "Connection: close\r\n\r\n" . 'data: {"choices":'
                     . qq([{"delta":{"content":"first"}}]}\n\n);

            my $sel = IO::Select->new($c);
            my $end = time + 60;
            my $buf;

            while (time < $end) {
                next unless $sel->can_read($end - time);
                last unless sysread($c, $buf, 4096);
            }

            close $c;
            POSIX::_exit(0);
        }

        close $c;
    }

    POSIX::_exit(0);
}
