# Limits under concurrency and across a reload: exact with two workers,
# reservations before the upstream, concurrency slots given back on every
# path, budgets, counters kept by `nginx -s reload`, a full zone refusing
# new scopes rather than forgetting old ones.
#
# Plain Perl rather than blocks: bursts of parallel requests across two
# workers, a stream held open while another request is refused, a reload
# in the middle and a second nginx; Test::Nginx sends a block's requests
# one after the other to one nginx, restarted between blocks.  The limits
# one request at a time are in t/040-limits.t.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use IO::Socket::INET;
use Test::More tests => 21;
use Time::HiRes qw(sleep time);
use AiGuardNginx;

my %digest = (
    'sk-aig-test-valid-0001' =>
        '86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e',
    'sk-aig-test-beta-00001' =>
        '39c81276bc9edac2614e74ea48f6f4b687a3562ca7ba8b0d19806b3e69afde2c',
    'sk-aig-test-future-0001' =>
        '5ce7fee67f99f77555e6fe5192f9841a0709966866a04b289848357f584a8db6',
    'sk-aig-test-disabled-01' =>
        '30e4b30767243b31569d1d067691295b2f5a5db37d191661e09f41f202367371',
);

my $keys = <<"_EOF_";
{"keys": [
  {"id": "burst", "tenant": "burst", "tier": "burst",
   "sha256": "$digest{'sk-aig-test-valid-0001'}"},
  {"id": "tok", "tenant": "tok", "tier": "tok",
   "sha256": "$digest{'sk-aig-test-beta-00001'}"},
  {"id": "one", "tenant": "one", "tier": "one",
   "sha256": "$digest{'sk-aig-test-future-0001'}"},
  {"id": "cheap", "tenant": "cheap", "tier": "cheap",
   "sha256": "$digest{'sk-aig-test-disabled-01'}"}
]}
_EOF_

my $http = <<'_EOC_';
    ai_guard_zone  ai_guard 1m;

    ai_guard_tier  burst  rpm=20;
    ai_guard_tier  tok    tpm=1000;
    ai_guard_tier  one    concurrency=1;
    ai_guard_tier  cheap  budget=0.0003/month;

    ai_guard_price  gpt-4o-mini*  input=0.15 output=0.60;

    ai_guard_keys  $TEST_NGINX_HTML_DIR/keys.json;

    server {
        listen 127.0.0.1:$TEST_NGINX_SERVER_PORT;

        location /v1/ {
            ai_guard on;
            proxy_buffering off;
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/mock/;
        }

        location /mock/slow {
            echo "first";
            echo_flush;
            echo_sleep 1;
            echo "second";
        }

        location /mock/ {
            default_type application/json;
            echo '{"model":"gpt-4o-mini","usage":{"prompt_tokens":10,"completion_tokens":100}}';
        }
    }
_EOC_

my $n = AiGuardNginx->new(name => 'limits', workers => 2);
$n->write_file('html/keys.json', $keys);
$n->write_config($http);
$n->start;

sub bearer { ["Authorization: Bearer $_[0]"] }

sub chat {
    my ($max) = @_;
    return qq({"model":"gpt-4o-mini","max_tokens":$max,)
           . qq("messages":[{"role":"user","content":"hi"}]});
}

# 60 requests, 30 at a time, against rpm=20 on two workers

my $admitted = 0;
my %other;

for (1 .. 2) {
    for my $r ($n->parallel(map { ['GET', '/v1/models',
                                   bearer('sk-aig-test-valid-0001')] }
                            1 .. 30))
    {
        if ($r->[0] == 200) {
            $admitted++;

        } else {
            $other{$r->[0]}++;
        }
    }
}

ok($admitted == 20 || $admitted == 21,
   "a burst of 60 against rpm=20 on 2 workers admits 20 (got $admitted)");
is(join(',', keys %other), '429', 'the rest are 429s');

# tpm=1000: two concurrent requests asking for 800 tokens each

my @r = $n->parallel(['POST', '/v1/slow', bearer('sk-aig-test-beta-00001'),
                      chat(800)],
                     ['POST', '/v1/slow', bearer('sk-aig-test-beta-00001'),
                      chat(800)]);

is_deeply([sort map { $_->[0] } @r], [200, 429],
          'tpm=1000: of two concurrent 800-token requests one passes');

my ($late) = grep { $_->[0] == 429 } @r;
like($late->[2], qr/"code":"rate_limit_exceeded"/,
     '... the other is refused before the upstream is called');

# concurrency=1: a slow stream holds the slot

my $one = "Authorization: Bearer sk-aig-test-future-0001";

my $slow = open_request($n, "GET /v1/slow HTTP/1.1\r\nHost: localhost\r\n"
                            . "$one\r\nConnection: close\r\n\r\n");
sleep 0.3;

my ($status, $h) = $n->request('GET', '/v1/models', [$one]);
is($status, 429, 'concurrency=1: a second request during a stream is 429');
is($h->{'x-ratelimit-limit-requests'}, undef,
   '... concurrency is no request-rate header');

{
    local $/;
    my $rest = <$slow>;
    like($rest, qr/first.*second/s, 'the stream itself completes');
}
close $slow;
sleep 0.1;

($status) = $n->request('GET', '/v1/models', [$one]);
is($status, 200, 'after the stream ends the slot is free again');

# the client aborts mid-stream: the slot comes back too

$slow = open_request($n, "GET /v1/slow HTTP/1.1\r\nHost: localhost\r\n"
                         . "$one\r\nConnection: close\r\n\r\n");
sleep 0.3;
close $slow;

my $freed;

for (1 .. 40) {
    ($status) = $n->request('GET', '/v1/models', [$one]);
    $freed = $status == 200 and last;
    sleep 0.05;
}

ok($freed, 'after a client abort mid-stream the slot comes back');

# a monthly budget: $0.0003; each request uses 10 prompt tokens at $0.15
# and 100 completion tokens at $0.60 per 1M: 61,500,000 pico-dollars, and
# is estimated (reserved) at its prompt plus max_tokens=100

my (@budget, @body);

for (1 .. 6) {
    my ($s, $hh, $b) = $n->request('POST', '/v1/chat/completions',
                                   bearer('sk-aig-test-disabled-01'),
                                   chat(100));
    push @budget, $s;
    push @body, $b;
}

is_deeply(\@budget, [200, 200, 200, 200, 429, 429],
          'budget=0.0003/month admits four such requests');
like($body[$_], qr/"code":"insufficient_quota"/,
     "budget spent: request @{[ $_ + 1 ]} is insufficient_quota")
    for 4, 5;

# counters survive a reload

my $before = () = grep { $_ == 200 } @budget;
$n->reload;

($status) = $n->request('POST', '/v1/chat/completions',
                        bearer('sk-aig-test-disabled-01'), chat(100));
is($status, 429, 'the spent budget is still spent after nginx -s reload');

# the minute bucket refills one request every 3 s: however slow this
# machine, it cannot be full again yet, as a fresh counter would be
($status, $h) = $n->request('GET', '/v1/models',
                            bearer('sk-aig-test-valid-0001'));
ok(defined $h->{'x-ratelimit-remaining-requests'}
   && $h->{'x-ratelimit-remaining-requests'} < 15,
   "and the burst tenant's minute is still mostly spent "
   . "(remaining $h->{'x-ratelimit-remaining-requests'})");

$n->stop;

unlike($n->log, qr/\[(alert|crit|emerg)\]/, 'no alert in the error log');

# a limits part too small for its users, each holding a day's quota: no
# entry with state is evicted, so the users that fit keep their counts
# and the rest are refused with 503, an ALERT and a retry-after

my $small = AiGuardNginx->new(name => 'limits-small');
my $http_small = $http;
$http_small =~ s/ai_guard_zone  ai_guard 1m;/ai_guard_zone  small 128k;\n    ai_guard_metrics_max_series 16;/;
$http_small =~ s/ai_guard_tier  burst  rpm=20;/ai_guard_tier  burst  rpd=1000;/;
$http_small =~ s/ai_guard on;/ai_guard on;\n            ai_guard_limit_by \$http_x_user;/;
$small->write_file('html/keys.json', $keys);
$small->write_config($http_small);
$small->start;

my ($ok, $full, $other, $retry) = (0, 0, 0, 1);

for my $u (1 .. 400) {
    my ($s, $h, $b) = $small->request('GET', '/v1/models',
                              ['Authorization: Bearer sk-aig-test-valid-0001',
                               "X-User: user-$u"]);
    if ($s == 200) {
        $ok++;

    } elsif ($s == 503 && $b =~ /"code":"limiter_unavailable"/) {
        $full++;
        $retry = 0 unless ($h->{'retry-after'} // '') eq '10';

    } else {
        $other++;
    }
}

ok($ok > 0 && $full > 0, "400 users in a small limits part: $ok served, "
                         . "$full refused");
is($other, 0, 'every other answer is a 503 limiter_unavailable');
ok($retry, 'each with retry-after: 10');

my ($s1, $h1) = $small->request('GET', '/v1/models',
                                ['Authorization: Bearer sk-aig-test-valid-0001',
                                 'X-User: user-1']);
is($s1, 200, 'the first user, who holds an entry, is still served');
is($h1->{'x-ratelimit-remaining-requests'}, 998,
   '... with its count kept (2 of 1000 used)');

like($small->log, qr/\[alert\].*zone "small:limits" is full/,
     'the full part says so in an ALERT');

$small->stop;


sub open_request {
    my ($nginx, $req) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => $nginx->port)
        or die "connect: $!";
    print $s $req;
    return $s;
}
