# Configuration mistakes an operator makes, each through `nginx -t`: the
# test fails and the one [emerg] line names the directive, the bad value
# and what is allowed, "in <file>:<line>" at the line of the mistake
# (not the http block's end, where checks that wait for the whole block
# would otherwise point), with no blank line after it.  Each message is
# also in docs/errors.md, word for word, so the table there is the one
# nginx prints.  AI_GUARD_PRINT_TABLE=1 prints the rows of that table.
#
# Plain Perl rather than blocks: it runs nginx -t itself and checks the
# exact line of each mistake in a file it writes, and reads docs/.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/helper";
use Digest::SHA qw(sha256_hex);
use Test::More;
use AiGuardNginx;

my $top = "$FindBin::Bin/..";
my $n = AiGuardNginx->new(name => 'mistakes',
                          port => ($ENV{TEST_NGINX_PORT} || 1984) + 191);
my $root = $n->root;

my $digest = sha256_hex('sk-aig-test-valid-0001');
my $keys_ok = qq({"keys": [\n  {"id": "acme-1", "sha256": "$digest", )
              . qq("tier": "pro"}\n]}\n);

my $jwks = do {
    local $/;
    open my $fh, '<', "$top/t/unit/data/jwt/jwks-rotation.json" or die $!;
    <$fh>;
};

# [what, where, the mistake, directive, value, what is allowed, files]
# "where": http or location; a mistake of several lines is checked at
# the line of the directive named, which comes first.  The base
# configuration is valid: a tier "pro", keys.json, a location with
# "ai_guard on".

my @mistakes = (
    # tiers
    ['a misspelt limit', 'http', 'ai_guard_tier free rmp=5;',
     'ai_guard_tier', 'rmp=5', 'rpm='],
    ['a budget a week', 'http', 'ai_guard_tier free budget=1/week;',
     'ai_guard_tier', '1/week', 'budget=5/month'],
    ['a limit of zero', 'http', 'ai_guard_tier free rpm=0;',
     'ai_guard_tier', '"0"', 'from 1 to'],
    ['max_tokens not a number', 'http',
     'ai_guard_tier free max_tokens=lots;', 'ai_guard_tier', 'lots',
     'at least 1'],
    ['an empty model glob', 'http', 'ai_guard_tier free models=gpt-4o,,o1;',
     'ai_guard_tier', 'gpt-4o,,o1', 'separated by commas'],
    ['a parameter given twice', 'http', 'ai_guard_tier free rpm=5 rpm=10;',
     'ai_guard_tier', 'rpm=10', 'must be given once'],
    ['a tier declared twice', 'http', 'ai_guard_tier pro rpm=5;',
     'ai_guard_tier', '"pro"', 'declared once'],
    ['a budget alert without its percent sign', 'http',
     'ai_guard_tier free budget=1/day budget_alert=50,80%;',
     'ai_guard_tier', '50,80%', 'from 1% to 1000%'],
    ['budget alerts and no budget', 'http',
     'ai_guard_tier free rpm=5 budget_alert=50%;', 'ai_guard_tier', '"free"',
     'add "budget=<USD>/day"'],
    ['a budget and no price', 'http', 'ai_guard_tier free budget=5/month;',
     'ai_guard_tier', '"free"', 'add ai_guard_price lines', undef,
     'noprice'],

    # the zone
    ['a zone too small', 'http', 'ai_guard_zone z 8k;', 'ai_guard_zone',
     '8k', 'at least 96k'],
    ['a zone part too small', 'http', 'ai_guard_zone z 1m limits=16k;',
     'ai_guard_zone', '16k', 'at least 32k'],
    ['a zone part that does not exist', 'http',
     'ai_guard_zone z 1m cache=1m;', 'ai_guard_zone', 'cache=1m',
     'limits=, ledger= or series='],
    ['a zone its series do not fit in', 'http',
     'ai_guard_metrics_max_series 100000;', 'ai_guard_metrics_max_series',
     '100000', 'must be larger'],

    # prices
    ['a price not a number', 'http',
     'ai_guard_price gpt-4o input=abc output=10;', 'ai_guard_price',
     'input=abc', 'at most 6 decimals'],
    ['a price without input', 'http', 'ai_guard_price gpt-4o output=10;',
     'ai_guard_price', '"gpt-4o"', 'input= and output= are required'],
    ['a price of an unknown kind', 'http',
     'ai_guard_price gpt-4o input=1 output=1 cached=0.5;', 'ai_guard_price',
     'cached=0.5', 'cached_input='],

    # numbers
    ['zero days of usage', 'http', 'ai_guard_usage_days 0;',
     'ai_guard_usage_days', '"0"', 'from 1 to 3660'],
    ['a word for a number', 'http', 'ai_guard_usage_max_models many;',
     'ai_guard_usage_max_models', 'many', 'from 1 to 65536'],
    ['a negative number', 'http', 'ai_guard_metrics_max_series -5;',
     'ai_guard_metrics_max_series', '-5', 'from 1 to 1048576'],

    # the keys file
    ['a keys file that is not there', 'http',
     'ai_guard_keys missing.json;', 'ai_guard_keys', 'missing.json',
     'relative to', undef, 'nokeys'],
    ['a key of an undeclared tier', 'http', 'ai_guard_keys gold.json;',
     'ai_guard_keys', '"gold"', 'it must be "pro"',
     { 'gold.json' => qq({"keys": [\n  {"id": "a", "sha256": "$digest", )
                      . qq("tier": "gold"}\n]}\n) }, 'nokeys'],
    ['two keys of one id', 'http', 'ai_guard_keys dup.json;',
     'ai_guard_keys', '"acme-1"', 'ids must be unique',
     { 'dup.json' => qq({"keys": [\n  {"id": "acme-1", "sha256": )
                     . qq("$digest"},\n  {"id": "acme-1", "sha256": )
                     . '"' . sha256_hex('other') . qq("}\n]}\n) },
     'nokeys'],
    ['a keys file that is not JSON', 'http', 'ai_guard_keys broken.json;',
     'ai_guard_keys', 'line 2, column', 'I expect',
     { 'broken.json' => qq({"keys": [\n  {"id": "a" "sha256": "x"}\n]}\n) },
     'nokeys'],

    # the key store and its admin API
    ['a key store too small', 'http', 'ai_guard_key_store 8k;',
     'ai_guard_key_store', '"8k"', 'from 32k to 32g'],
    ['a key store parameter that does not exist', 'http',
     'ai_guard_key_store 1m keys=5;', 'ai_guard_key_store', 'keys=5',
     'max=<number of keys>'],
    ['the admin API without a key store', 'location', 'ai_guard_admin;',
     'ai_guard_admin', 'ai_guard_key_store <size>', 'where the keys'],

    # Redis
    ['a sync that is not one', 'http',
     'ai_guard_redis 127.0.0.1 sync=eventually;', 'ai_guard_redis',
     'eventually', '"strict", "lease" or an interval'],
    ['a slice lifetime under a second', 'http',
     'ai_guard_redis 127.0.0.1 sync=lease lease=500ms;', 'ai_guard_redis',
     '500ms', 'at least 1s'],
    ['a fail mode that is not one', 'http',
     'ai_guard_redis 127.0.0.1 fail=maybe;', 'ai_guard_redis', 'maybe',
     '"open" or "closed"'],
    ['a timeout not a time', 'http',
     'ai_guard_redis 127.0.0.1 timeout=soon;', 'ai_guard_redis', 'soon',
     '50ms'],
    ['a Redis parameter that does not exist', 'http',
     'ai_guard_redis 127.0.0.1 pool=5;', 'ai_guard_redis', 'pool=5',
     'password=, db='],
    ['a sentinel list with an empty entry', 'http',
     'ai_guard_redis mymaster sentinels=127.0.0.1:26379,,127.0.0.1:26380;',
     'ai_guard_redis', '127.0.0.1:26379,,127.0.0.1:26380',
     'comma-separated list'],
    ['a number of replicas that is not one', 'http',
     'ai_guard_redis 127.0.0.1 replicas=all;', 'ai_guard_redis', 'all',
     'from 0 to 16'],
    ['a journal fsync policy that is not one', 'http',
     'ai_guard_redis 127.0.0.1 journal_fsync=sometimes;', 'ai_guard_redis',
     'sometimes', '"off", "batch" or "always"'],
    ['a journal in a directory that is not there', 'http',
     'ai_guard_redis 127.0.0.1 journal=/nonexistent-ai-guard/usage;',
     'ai_guard_redis', '/nonexistent-ai-guard/usage.0',
     'directory must exist'],
    ['a local journal fsync policy that is not one', 'http',
     'ai_guard_journal conf/usage fsync=sometimes;', 'ai_guard_journal',
     'sometimes', '"off", "batch" or "always"'],
    ['a local journal parameter that does not exist', 'http',
     'ai_guard_journal conf/usage sync=always;', 'ai_guard_journal',
     'sync=always', 'fsync='],
    ['a local journal in a directory that is not there', 'http',
     'ai_guard_journal /nonexistent-ai-guard/usage;', 'ai_guard_journal',
     '/nonexistent-ai-guard/usage.0', 'directory must exist'],
    ['a local journal and Redis', 'http',
     "ai_guard_journal conf/usage;\n    ai_guard_redis 127.0.0.1;",
     'ai_guard_journal', 'ai_guard_redis', 'journal='],

    # JWT
    ['alg none', 'http', 'ai_guard_jwt_algorithms RS256 none;',
     'ai_guard_jwt_algorithms', '"none"', 'RS256, RS384'],
    ['an algorithm that does not exist', 'http',
     'ai_guard_jwt_algorithms XS256;', 'ai_guard_jwt_algorithms', 'XS256',
     'RS256, RS384'],
    ['a leeway too long', 'http', 'ai_guard_jwt_leeway 2d;',
     'ai_guard_jwt_leeway', '2d', 'from 0s to 1d'],
    ['a cache size not a number', 'http', 'ai_guard_jwt_cache lots;',
     'ai_guard_jwt_cache', 'lots', '"off"'],
    ['a claim that does not exist', 'http', 'ai_guard_jwt_claims org=x;',
     'ai_guard_jwt_claims', 'org=x', 'tenant=, tier=, key_id= or models='],
    ['tokens on without their keys', 'location', 'ai_guard_jwt on;',
     'ai_guard_jwt', 'on', 'ai_guard_jwt_keys <file>'],
    ['a default tier not declared', 'location',
     "ai_guard_jwt_default_tier gold;\n"
     . "            ai_guard_jwt on;\n"
     . "            ai_guard_jwt_keys jwks.json;",
     'ai_guard_jwt_default_tier', '"gold"', 'it must be "pro"',
     { 'jwks.json' => $jwks }],

    # a location's guard
    ['no credential to check', 'location', 'ai_guard on;', 'ai_guard',
     'on', 'ai_guard_keys <file>', undef, 'nokeys'],
    ['a flag that is not one', 'location', 'ai_guard maybe;', 'ai_guard',
     'maybe', '"on" or "off"'],
    ['a mode that is not one', 'location', 'ai_guard_mode enforcing;',
     'ai_guard_mode', 'enforcing', '"enforce" or "monitor"'],
    ['a PII action that is not one', 'location',
     'ai_guard_pii_action drop;', 'ai_guard_pii_action', 'drop',
     '"block", "log" or "redact"'],
    ['a stream usage mode that is not one', 'location',
     'ai_guard_stream_usage on;', 'ai_guard_stream_usage', 'on',
     '"off" or "inject"'],
    ['a placeholder with an unknown escape', 'location',
     'ai_guard_pii_placeholder "[%T]";', 'ai_guard_pii_placeholder',
     '"[%T]"', '%D, %N or %%'],
    ['a cache key mode that is not one', 'location',
     'ai_guard_cache_key yes;', 'ai_guard_cache_key', 'yes',
     '"off", "on" or "always"'],
    ['a dialect that is not one', 'location', 'ai_guard_dialect claude;',
     'ai_guard_dialect', 'claude', '"openai", "anthropic" or "auto"'],
    ['a log level that is not one', 'location', 'ai_guard_log_level debug;',
     'ai_guard_log_level', 'debug', '"info", "notice", "warn" or "error"'],
    ['a typo where a keyword goes', 'location', 'ai_guard_limit_by tenantt;',
     'ai_guard_limit_by', 'tenantt', '"key", "tenant" or a value'],
    ['global on a keyword', 'location', 'ai_guard_limit_by tenant global;',
     'ai_guard_limit_by', 'global', 'a value of variables'],
    ['a max of zero', 'location', 'ai_guard_limit_by $http_x_user max=0;',
     'ai_guard_limit_by', '"0"', 'at least 1'],
    ['a limit_by parameter that does not exist', 'location',
     'ai_guard_limit_by $http_x_user maximum=5;', 'ai_guard_limit_by',
     'maximum=5', '"global" or "max=<number>"'],
    ['a size with a unit nginx lacks', 'location', 'ai_guard_max_body 1x;',
     'ai_guard_max_body', '1x', '512k or 1m'],
    ['a header name with spaces', 'location',
     'ai_guard_key_header "X Team Key";', 'ai_guard_key_header',
     'X Team Key', 'letters, digits'],
    ['a PII detector that does not exist', 'location',
     'ai_guard_pii email phne;', 'ai_guard_pii', 'phne',
     'email, card, ssn, phone'],
    ['a rule parameter that does not exist', 'location',
     'ai_guard_prompt_deny "(?i)ignore" name=override;',
     'ai_guard_prompt_deny', 'name=override', 'id=<name>'],
    ['a regex that does not compile', 'location',
     'ai_guard_prompt_deny "(unclosed" id=broken;', 'ai_guard_prompt_deny',
     '"broken"', 'PCRE2 regular expression'],
    ['a rules file that is not there', 'location',
     'ai_guard_prompt_rules missing.rules;', 'ai_guard_prompt_rules',
     'missing.rules', 'relative to'],
);

plan tests => 8 * @mistakes + 1;

my $docs = do {
    local $/;
    open my $fh, '<', "$top/docs/errors.md" or die "docs/errors.md: $!";
    <$fh>;
};

my $modules = join '', map { "load_module $_;\n" }
              split ' ', $ENV{TEST_NGINX_LOAD_MODULES} || '';

my %seen;

for my $m (@mistakes) {
    my ($what, $where, $text, $directive, $value, $allowed, $files,
        $base) = @$m;
    $base //= '';

    $n->write_file("conf/$_", $files->{$_}) for keys %{ $files || {} };
    $n->write_file('conf/keys.json', $keys_ok);

    my $http = $base eq 'nokeys' ? '' : "    ai_guard_keys keys.json;\n";
    $http .= "    ai_guard_price * input=1 output=1;\n" if $base ne 'noprice';

    my $conf = $modules . <<"_EOC_";
error_log $root/logs/error.log;
pid $root/logs/nginx.pid;
events { worker_connections 64; }
http {
    access_log off;
    ai_guard_tier pro;
${http}    __HTTP__
    server {
        listen 127.0.0.1:${\ $n->port};
        location /v1/ {
            ai_guard on;
            __LOCATION__
            return 204;
        }
    }
}
_EOC_

    if ($where eq 'http') {
        $conf =~ s/__HTTP__/$text/;
        $conf =~ s/ *__LOCATION__\n//;

    } else {
        $conf =~ s/__LOCATION__/$text/;
        $conf =~ s/ *__HTTP__\n//;
    }

    # "ai_guard on" as the mistake stands alone in its location
    $conf =~ s/ai_guard on;\n(\s+)ai_guard (on|maybe);/ai_guard $2;/;

    # the mistake's own line: its first, the last line that is it
    my @lines = split /\n/, $conf;
    my ($first) = $text =~ /^([^\n]*)/;
    $first = "ai_guard $1;" if $first =~ /^ai_guard (on|maybe);$/;
    my ($line) = reverse grep { $lines[$_ - 1] =~ /^\s*\Q$first\E$/ }
                 1 .. @lines;

    $n->write_file('conf/nginx.conf', $conf);

    my ($rc, $out) = $n->test_config;
    my @emerg = grep { /\[emerg\]/ } split /\n/, $out;

    isnt($rc, 0, "$what: nginx -t fails");
    ok(@emerg >= 1, "$what: an [emerg]") or diag($out);

    # the last [emerg] is the one that says why nginx stops
    my $msg = $emerg[-1] // '';
    my ($said, $file, $at) = $msg =~ /\[emerg\] (?:\d+#\d+: )?(.*) in (\S+):(\d+)$/;

    $said //= '';

    like($said, qr/\Q$directive\E/, "$what: names $directive");
    like($said, qr/\Q$value\E/, "$what: names the value $value");
    like($said, qr/\Q$allowed\E/, "$what: says what is allowed ($allowed)");
    is(($file // '') . ':' . ($at // ''), "$root/conf/nginx.conf:$line",
       "$what: in file:line of the mistake");
    unlike($out, qr/\n\s*\n/, "$what: no blank line");

    (my $doc = $said) =~ s{\Q$root\E/conf/}{/etc/nginx/}g;

    # a line of nginx.conf it names depends on the load_module lines
    # before it (none when the module is compiled in, as under ASan)
    (my $re = quotemeta "`$doc`") =~ s/(nginx\\\.conf\\:)\d+/$1\\d+/g;

    ok($docs =~ /$re/, "$what: in docs/errors.md")
        or diag("not in docs/errors.md: `$doc`");

    print STDERR "| `$directive` | $what | `$doc` |\n"
        if $ENV{AI_GUARD_PRINT_TABLE} && !$seen{$doc}++;

    unlink "$root/conf/$_" for keys %{ $files || {} };
}

ok(@mistakes >= 25, scalar(@mistakes) . ' mistakes, at least 25');
