
/*
 * Copyright (C) ngx_ai_guard developers
 */


#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdlib.h>
#include <pcre2.h>
#include <tap.h>
#include <ngx_http_ai_guard_rules.h>


#define S(s)  (const u_char *) (s), strlen(s)

#define RT_RULES_MAX  256


typedef struct {
    char                           id[NGX_HTTP_AI_GUARD_RULE_ID_MAX + 1];
    pcre2_code                    *re;
    pcre2_match_data              *md;
    size_t                         nsets;
    ngx_http_ai_guard_literals_t   sets[NGX_HTTP_AI_GUARD_LIT_SETS];
} rt_rule_t;


static rt_rule_t  rt_rules[RT_RULES_MAX];
static size_t     rt_nrules;


static char *
rt_path(const char *rel, char *buf, size_t size)
{
    size_t       n;
    const char  *slash;

    slash = strrchr(__FILE__, '/');
    n = slash ? (size_t) (slash - __FILE__) + 1 : 0;
    snprintf(buf, size, "%.*s%s", (int) n, __FILE__, rel);

    return buf;
}


static u_char *
rt_slurp(const char *path, size_t *len)
{
    long    n;
    FILE   *f;
    u_char *buf;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);

    buf = malloc(n + 1);
    if (buf == NULL || fread(buf, 1, n, f) != (size_t) n) {
        fclose(f);
        free(buf);
        return NULL;
    }

    fclose(f);
    buf[n] = '\0';
    *len = n;

    return buf;
}


static unsigned
pii(const char *text, unsigned mask, size_t *off)
{
    size_t  o;

    o = (size_t) -1;
    mask = ngx_http_ai_guard_pii_scan(S(text), mask, &o);
    if (off) {
        *off = o;
    }

    return mask;
}


static void
test_pii_names(void)
{
    const char  *n;

    is_int(ngx_http_ai_guard_pii_bit(S("email")), NGX_HTTP_AI_GUARD_PII_EMAIL,
           "pii name email");
    is_int(ngx_http_ai_guard_pii_bit(S("card")), NGX_HTTP_AI_GUARD_PII_CARD,
           "pii name card");
    is_int(ngx_http_ai_guard_pii_bit(S("ssn")), NGX_HTTP_AI_GUARD_PII_SSN,
           "pii name ssn");
    is_int(ngx_http_ai_guard_pii_bit(S("phone")), NGX_HTTP_AI_GUARD_PII_PHONE,
           "pii name phone");
    is_int(ngx_http_ai_guard_pii_bit(S("ipv4")), NGX_HTTP_AI_GUARD_PII_IPV4,
           "pii name ipv4");
    is_int(ngx_http_ai_guard_pii_bit(S("secret")),
           NGX_HTTP_AI_GUARD_PII_SECRET, "pii name secret");
    is_int(ngx_http_ai_guard_pii_bit(S("all")), NGX_HTTP_AI_GUARD_PII_ALL,
           "pii name all");
    is_int(ngx_http_ai_guard_pii_bit(S("Email")), 0, "names are lowercase");
    is_int(ngx_http_ai_guard_pii_bit(S("emails")), 0, "unknown name");
    is_int(ngx_http_ai_guard_pii_bit(S("")), 0, "empty name");
    is_int(ngx_http_ai_guard_pii_bit((const u_char *) "email", 4), 0,
           "a prefix is not a name");

    n = ngx_http_ai_guard_pii_name(NGX_HTTP_AI_GUARD_PII_CARD);
    is_str(n, n ? strlen(n) : 0, "card", "bit to name");
    n = ngx_http_ai_guard_pii_name(NGX_HTTP_AI_GUARD_PII_SECRET);
    is_str(n, n ? strlen(n) : 0, "secret", "bit to name");
    ok(ngx_http_ai_guard_pii_name(0) == NULL, "no name for 0");
    ok(ngx_http_ai_guard_pii_name(3) == NULL, "no name for two bits");
}


static void
test_pii(void)
{
    size_t  off;

#define HIT(text, bit, want_off)                                             \
    is_int(pii(text, NGX_HTTP_AI_GUARD_PII_ALL, &off), bit,                  \
           "%s hit: %.*s", ngx_http_ai_guard_pii_name(bit),                  \
           (int) strcspn(text, "\n"), text);                                \
    is_int(off, want_off, "at offset %d", (int) (want_off));                 \
    is_int(pii(text, NGX_HTTP_AI_GUARD_PII_ALL & ~(bit), NULL), 0,           \
           "not seen without %s", ngx_http_ai_guard_pii_name(bit))

#define MISS(text)                                                           \
    is_int(pii(text, NGX_HTTP_AI_GUARD_PII_ALL, NULL), 0, "no hit: %s", text)

    /* email */
    HIT("mail me at john.doe+tag@example.co.uk please", 1, 11);
    HIT("a@b.io", NGX_HTTP_AI_GUARD_PII_EMAIL, 0);
    HIT("<first_last%x@mail-server.example.org>.", 1, 1);
    HIT("end: me@example.com.", 1, 5);
    MISS("user@localhost");
    MISS("user@host.c");
    MISS("@mention this");
    MISS("contact @ example.com");
    MISS("foo@bar.123");
    MISS("foo@-.-");
    MISS("a@b..com");
    MISS("x@.com");
    MISS("email@");

    /* card */
    HIT("card 4111 1111 1111 1111 exp", NGX_HTTP_AI_GUARD_PII_CARD, 5);
    HIT("4111111111111111", NGX_HTTP_AI_GUARD_PII_CARD, 0);
    HIT("amex 3782-822463-10005.", NGX_HTTP_AI_GUARD_PII_CARD, 5);
    HIT("visa13 4222222222222", NGX_HTTP_AI_GUARD_PII_CARD, 7);
    HIT("19 digits 6011000990139424124", NGX_HTTP_AI_GUARD_PII_CARD, 10);
    HIT("order 12 4111 1111 1111 1111", NGX_HTTP_AI_GUARD_PII_CARD, 9);
    MISS("card 4111 1111 1111 1112");
    MISS("4111111111111112");
    MISS("123412341234");
    MISS("digits 41111111111111110000 in a long run");
    MISS("x4111111111111111");
    MISS("4111111111111111y");
    MISS("4111  1111  1111  1111");
    MISS("4111--1111--1111--1111");
    MISS("0000000000000000000000000");

    /* ssn */
    HIT("ssn 123-45-6789.", NGX_HTTP_AI_GUARD_PII_SSN, 4);
    HIT("078-05-1120", NGX_HTTP_AI_GUARD_PII_SSN, 0);
    MISS("000-12-3456");
    MISS("666-12-3456");
    MISS("900-12-3456");
    MISS("123-00-4567");
    MISS("123-45-0000");
    MISS("123456789");
    MISS("1123-45-6789");
    MISS("123-45-67890");
    MISS("9-123-45-6789");
    MISS("123-45-6789-1");
    MISS("123 45 6789");

    /* phone */
    HIT("call +14155552671 now", NGX_HTTP_AI_GUARD_PII_PHONE, 5);
    HIT("+44 20 7946 0958", NGX_HTTP_AI_GUARD_PII_PHONE, 0);
    HIT("(555) 123-4567", NGX_HTTP_AI_GUARD_PII_PHONE, 0);
    HIT("tel:(555)123-4567", NGX_HTTP_AI_GUARD_PII_PHONE, 4);
    HIT("555-123-4567", NGX_HTTP_AI_GUARD_PII_PHONE, 0);
    HIT("or 555.123.4567.", NGX_HTTP_AI_GUARD_PII_PHONE, 3);
    MISS("+1234567");
    MISS("+0123456789");
    MISS("+1234567890123456");
    MISS("5551234567");
    MISS("155-123-4567");
    MISS("555-123.4567");
    MISS("555-123-45678");
    MISS("2024-123-4567");
    MISS("(155) 123-4567");
    MISS("1+2=3, 2+40000000 is big");

    /* ipv4 */
    HIT("host 192.168.1.20 up", NGX_HTTP_AI_GUARD_PII_IPV4, 5);
    HIT("0.0.0.0", NGX_HTTP_AI_GUARD_PII_IPV4, 0);
    HIT("ip=255.255.255.255.", NGX_HTTP_AI_GUARD_PII_IPV4, 3);
    MISS("256.1.1.1");
    MISS("1.2.3.256");
    MISS("version 1.2.3.4.5");
    MISS("1.2.3");
    MISS("v1.2.3.4");
    MISS("01.2.3.4");
    MISS("1.2.3.4a");
    MISS("1..2.3.4");
    MISS("1234.1.1.1");

    /* secret */
    HIT("key sk-proj-Ab3dEfGhIjKlMnOpQrStUvWx_yz0123", 0x20, 4);
    HIT("sk-ant-api03-abcdEFGH1234ijklMNOP5678", 0x20, 0);
    HIT("sk-abcdefghij0123456789ABCDEFGHIJ", 0x20, 0);
    HIT("aws AKIAIOSFODNN7EXAMPLE.", 0x20, 4);
    HIT("ASIAY34FZKBOKMUTVV7A", 0x20, 0);
    HIT("ghp_0123456789abcdefghijABCDEFGHIJ012345", 0x20, 0);
    HIT("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", 0x20, 0);
    HIT("xoxb-123456789012-abcdefABCDEF", 0x20, 0);
    HIT("AIzaSyA-1234567890abcdefghijklmnopqrstu", 0x20, 0);
    HIT("sk_live_4eC39HqLyjWDarjtT1zdp7dc", 0x20, 0);
    HIT("rk_live_4eC39HqLyjWDarjtT1zdp7dc", 0x20, 0);
    HIT("-----BEGIN RSA PRIVATE KEY-----\nMIIE", 0x20, 0);
    HIT("x\n-----BEGIN PRIVATE KEY-----", 0x20, 2);
    HIT("-----BEGIN OPENSSH PRIVATE KEY-----", 0x20, 0);
    HIT("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abc", 0x20,
        7);
    MISS("sk-learn-compatible-estimators-here");
    MISS("sk-short123");
    MISS("ask-abcdefghij0123456789ABCDEFGHIJ");
    MISS("AKIAIOSFODNN7EXAMPL");
    MISS("AKIAIOSFODNN7EXAMPLEX");
    MISS("akiaiosfodnn7example");
    MISS("ghp_tooshort123");
    MISS("xoxb-nodigitshere-abc");
    MISS("-----BEGIN PUBLIC KEY-----");
    MISS("-----BEGIN CERTIFICATE-----");
    MISS("eyJhbGciOiJIUzI1NiJ9 and eyJzdWIiOiIxMjM0NTY3ODkwIn0");
    MISS("sk_test_4eC39HqLyjWDarjtT1zdp7dc");

    /* nothing */
    MISS("");
    MISS("The quick brown fox jumps over the lazy dog, 3 times in 2024.");

#undef HIT
#undef MISS

    is_int(pii("a@b.io 4111111111111111", NGX_HTTP_AI_GUARD_PII_CARD, &off),
           NGX_HTTP_AI_GUARD_PII_CARD, "the mask selects detectors");
    is_int(off, 7, "card offset with email off");
    is_int(pii("a@b.io 4111111111111111", 0, NULL), 0, "empty mask");
    is_int(pii("4111111111111111 a@b.io", NGX_HTTP_AI_GUARD_PII_ALL, &off),
           NGX_HTTP_AI_GUARD_PII_CARD, "the first hit wins");
}


/* a Luhn-valid card number from arbitrary digits, for the stress run */

static void
test_pii_linear(void)
{
    size_t    i, n, off;
    u_char   *buf;
    unsigned  hit;

    n = 1024 * 1024;
    buf = malloc(n);

    if (buf == NULL) {
        ok(0, "malloc");
        return;
    }

    /* worst cases for the starts: digits and separators, "@" runs */
    for (i = 0; i < n; i++) {
        buf[i] = "1-2 3.4"[i % 7];
    }

    hit = ngx_http_ai_guard_pii_scan(buf, n, NGX_HTTP_AI_GUARD_PII_ALL, &off);
    ok(1, "1 MB of digits and separators scanned (hit %u)", hit);

    for (i = 0; i < n; i++) {
        buf[i] = (i % 70 == 69) ? '@' : "abcdefghij."[i % 11];
    }

    hit = ngx_http_ai_guard_pii_scan(buf, n, NGX_HTTP_AI_GUARD_PII_ALL, &off);
    ok(1, "1 MB of local parts and \"@\" scanned (hit %u)", hit);

    memset(buf, 'A', n);
    hit = ngx_http_ai_guard_pii_scan(buf, n, NGX_HTTP_AI_GUARD_PII_ALL, &off);
    is_int(hit, 0, "1 MB of one token scanned");

    for (i = 0; i < n; i++) {
        buf[i] = (i % 50 == 0) ? ' ' : "eyJ0123456789."[i % 14];
    }

    hit = ngx_http_ai_guard_pii_scan(buf, n, NGX_HTTP_AI_GUARD_PII_ALL, &off);
    ok(1, "1 MB of JWT fragments scanned (hit %u)", hit);

    for (i = 0; i < n; i++) {
        buf[i] = "Lorem ipsum dolor sit amet, 12 consectetur. "[i % 45];
    }

    hit = ngx_http_ai_guard_pii_scan(buf, n, NGX_HTTP_AI_GUARD_PII_ALL, &off);
    is_int(hit, 0, "1 MB of prose scanned");

    free(buf);
}


static void
test_rules_parser(void)
{
    int                               rc;
    const char                       *text;
    ngx_http_ai_guard_rule_t          rule;
    ngx_http_ai_guard_rules_parser_t  ps;

    text = "# comment\n"
           "\n"
           "a.b:c-d_1  (?i)foo  bar  \r\n"
           "   # indented comment\r\n"
           "\t\r\n"
           "x\t\tbaz#not a comment\n"
           "  lead  qux";

    ngx_http_ai_guard_rules_init(&ps, S(text));

    rc = ngx_http_ai_guard_rules_next(&ps, &rule);
    is_int(rc, NGX_HTTP_AI_GUARD_RULES_OK, "first rule");
    is_int(rule.line, 3, "on line 3");
    is_str(rule.id, rule.id_len, "a.b:c-d_1", "its id");
    is_str(rule.regex, rule.regex_len, "(?i)foo  bar", "its regex, trimmed");

    rc = ngx_http_ai_guard_rules_next(&ps, &rule);
    is_int(rc, NGX_HTTP_AI_GUARD_RULES_OK, "second rule");
    is_int(rule.line, 6, "on line 6");
    is_str(rule.id, rule.id_len, "x", "its id");
    is_str(rule.regex, rule.regex_len, "baz#not a comment",
           "a # inside a regex is the regex's");

    rc = ngx_http_ai_guard_rules_next(&ps, &rule);
    is_int(rc, NGX_HTTP_AI_GUARD_RULES_OK, "third rule, no final newline");
    is_int(rule.line, 7, "on line 7");
    is_str(rule.id, rule.id_len, "lead", "leading blanks skipped");
    is_str(rule.regex, rule.regex_len, "qux", "its regex");

    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_DONE, "done");
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_DONE, "still done");

    ngx_http_ai_guard_rules_init(&ps, S(""));
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_DONE, "empty file");

    ngx_http_ai_guard_rules_init(&ps, S("\n\n# only\n"));
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_DONE, "only comments");

#define ERR(text, want_line, want_err)                                       \
    ngx_http_ai_guard_rules_init(&ps, S(text));                              \
    do {                                                                     \
        rc = ngx_http_ai_guard_rules_next(&ps, &rule);                       \
    } while (rc == NGX_HTTP_AI_GUARD_RULES_OK);                              \
    is_int(rc, NGX_HTTP_AI_GUARD_RULES_ERROR, "error: %s", want_err);        \
    is_int(ps.line, want_line, "on line %d", want_line);                     \
    is_str(ps.err, ps.err ? strlen(ps.err) : 0, want_err, "reason")

    ERR("ok a\nbad/id b\n", 2, "invalid character in rule id");
    ERR("ok a\r\n\r\nlonely\r\n", 3, "missing regex after rule id");
    ERR("lonely", 1, "missing regex after rule id");
    ERR("a x\nb y\n# c\na z\n", 4, "duplicate rule id");
    ERR("é x", 1, "invalid character in rule id");
    ERR("1234567890123456789012345678901234567890123456789012345678901234"
        "5 x", 1, "rule id is longer than 64 characters");
    ERR("a x\nb\xc0 y\n", 2, "invalid character in rule id");
    ERR("a x\n\n\n\n  -- \n", 5, "missing regex after rule id");

#undef ERR

    /* a 64-byte id is fine, a NUL in a regex is not */
    text = "1234567890123456789012345678901234567890123456789012345678901234"
           " x";
    ngx_http_ai_guard_rules_init(&ps, S(text));
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_OK, "64-byte id");

    ngx_http_ai_guard_rules_init(&ps, (const u_char *) "a b\0c", 5);
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_ERROR, "NUL in a regex");
    is_str(ps.err, strlen(ps.err), "NUL byte in regex", "reason");

    /* the caller may go on after an error */
    ngx_http_ai_guard_rules_init(&ps, S("a x\nbad! y\nc z\na w\n"));
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_OK, "rule before an error");
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_ERROR, "the error");
    is_int(ps.line, 2, "on line 2");
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_OK, "the rule after it");
    is_int(rule.line, 3, "on line 3");
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_ERROR, "a duplicate after an error");
    is_int(ps.line, 4, "on line 4");
}


/* many rules: the bloom filter says "maybe" for some, none is a duplicate */

static void
test_rules_many(void)
{
    int                               rc;
    char                             *buf, *p;
    size_t                            i, n;
    ngx_http_ai_guard_rule_t          rule;
    ngx_http_ai_guard_rules_parser_t  ps;

    buf = malloc(5000 * 16);
    p = buf;

    for (i = 0; i < 5000; i++) {
        p += sprintf(p, "r%zu x\n", i);
    }

    ngx_http_ai_guard_rules_init(&ps, (u_char *) buf, p - buf);
    n = 0;

    while ((rc = ngx_http_ai_guard_rules_next(&ps, &rule))
           == NGX_HTTP_AI_GUARD_RULES_OK)
    {
        n++;
    }

    is_int(rc, NGX_HTTP_AI_GUARD_RULES_DONE, "5000 distinct ids");
    is_int(n, 5000, "all read");

    p += sprintf(p, "r4321 y\n");
    ngx_http_ai_guard_rules_init(&ps, (u_char *) buf, p - buf);

    while ((rc = ngx_http_ai_guard_rules_next(&ps, &rule))
           == NGX_HTTP_AI_GUARD_RULES_OK)
    {
        /* void */
    }

    is_int(rc, NGX_HTTP_AI_GUARD_RULES_ERROR, "a late duplicate");
    is_int(ps.line, 5001, "on its line");

    free(buf);
}


static void
test_literals(void)
{
    size_t                        i, len;
    char                          got[512];
    ngx_http_ai_guard_literals_t  lits;

#define LIT(re, want)                                                        \
    ngx_http_ai_guard_regex_literals(S(re), &lits);                          \
    len = 0;                                                                 \
    for (i = 0; i < lits.n; i++) {                                           \
        len += sprintf(got + len, "%s%.*s", i ? "|" : "", (int) lits.len[i], \
                       lits.data[i]);                                        \
    }                                                                        \
    is_str(got, len, want, "literal of /%s/", re)

    LIT("(?i)ignore previous", "ignore previous");
    LIT("(?i)Ignore\\s+Previous", "previous");
    LIT("abc", "abc");
    LIT("ab", "");
    LIT("", "");
    LIT("abcd?ef", "abc");
    LIT("abcde?fg", "abcd");
    LIT("abcd+efg", "abcd");
    LIT("ab(?:cd)?efgh", "efgh");
    LIT("xyzw*", "xyz");
    LIT("xyz{0,3}w", "");
    LIT("wxyz{0,3}", "wxy");
    LIT("wxyz{1,3}", "wxyz");
    LIT("abcd|efgh", "abcd|efgh");
    LIT("abcd|ef", "");
    LIT("(?:ignore|disregard)\\s+x", "ignore|disregard");
    LIT("(?:ignore|disregard)\\s+previously", "previously");
    LIT("(?:ignore|disregard)?\\s+prev", "prev");
    LIT("(?:ab|cd)\\s+efg", "efg");
    LIT("a[xyz]bcd", "bcd");
    LIT("[]abc]defg", "defg");
    LIT("[^\\]abc]defg", "defg");
    LIT("[[:alpha:]]hij", "hij");
    LIT("abc\\.def", "abc.def");
    LIT("a\\dbcd", "bcd");
    LIT("\\bword\\b", "word");
    LIT("foo.bar", "foo");
    LIT("fo.barr", "barr");
    LIT("(?-i:DAN)\\b", "dan");
    LIT("(?i)<\\|\\s*im_start", "im_start");
    LIT("(?=abcdef)x", "");
    LIT("(?!abcdef)xyz", "xyz");
    LIT("(?<name>abcd)", "abcd");
    LIT("(?P<n>abcd)+", "abcd");
    LIT("(abcd)*", "");
    LIT("(?x)a b c d", "");
    LIT("(?i:abc)d", "abc");
    LIT("(*UTF)abcd", "");
    LIT("\\Qabcd\\E", "");
    LIT("\\x41bcd", "");
    LIT("abc(", "");
    LIT("abc)", "");
    LIT("abc[", "");
    LIT("a{", "");
    LIT("*abc", "");
    LIT("caf\xc3\xa9s", "caf");
    LIT("(?:a|b|c|d|e|f|g|h|i)xyz", "xyz");
    LIT("(?:abc|abc)", "abc");
    LIT("(?:a1b|a2b|a3b|a4b|a5b|a6b|a7b|a8b|a9b)",
        "a1b|a2b|a3b|a4b|a5b|a6b|a7b|a8b|a9b");
    LIT("(?:a1b|a2b|a3b|a4b|a5b|a6b|a7b|a8b|a9b|b1c|b2c|b3c|b4c|b5c|b6c"
        "|b7c|b8c)", "");
    LIT("0123456789012345678901234567890123456789", "01234567890123456789"
        "012345678901");
    LIT("(?:foo(?:bar|baz)|qux)", "foo|qux");
    LIT("(((((((((((((((((((((((((((((((((abcd)))))))))))))))))))))))))))))"
        "))))", "");
    LIT("((((((((((((((((((((((((((((((((abcd))))))))))))))))))))))))))))))))",
        "abcd");

#undef LIT
}


static void
test_requires(void)
{
    size_t                        i, k, n, len;
    char                          got[1024];
    ngx_http_ai_guard_literals_t  sets[NGX_HTTP_AI_GUARD_LIT_SETS];

#define REQ(re, max, want)                                                   \
    n = ngx_http_ai_guard_regex_requires(S(re), sets, max);                  \
    len = 0;                                                                 \
    for (k = 0; k < n; k++) {                                                \
        len += sprintf(got + len, "%s", k ? " & " : "");                     \
        for (i = 0; i < sets[k].n; i++) {                                    \
            len += sprintf(got + len, "%s%.*s", i ? "|" : "",                \
                           (int) sets[k].len[i], sets[k].data[i]);           \
        }                                                                    \
    }                                                                        \
    is_str(got, len, want, "requirements of /%s/", re)

    REQ("(?i)ignore (all )?previous instructions", 8,
        "previous instructions & ignore ");
    REQ("(?i)\\bignore\\s+(?:all\\s+)?previous\\s+instructions\\b", 8,
        "instructions & previous & ignore");
    REQ("(?:ignore|disregard)\\s+(?:prior|previous)\\s+rules", 8,
        "ignore|disregard & rules & prior|previous");
    REQ("abcd\\s+abcd\\s+efg", 8, "abcd & efg");
    REQ("you\\s+are\\s+evil", 8, "evil & you & are");
    REQ("abcd|efgh\\s+ijkl", 8, "abcd|efgh");
    REQ("(?:abcd\\s+efgh|ijkl)\\s+mnop", 8, "mnop & abcd|ijkl");
    REQ("abcd?\\s+(?:efg)?\\s+hijk", 8, "hijk & abc");
    REQ("abcd\\s+efgh\\s+ijkl", 2, "abcd & efgh");
    REQ("abcd\\s+efgh", 0, "");
    REQ("ab\\s+cd", 8, "");
    REQ("(?x)abcd efgh", 8, "");
    REQ("(?=abcd)efgh\\s+ijkl", 8, "efgh & ijkl");

    /*
     * found by fuzz/rules_file: "[:f" that no ":]" closes is characters
     * of the class to PCRE2, whose "]" ends it, so "|" is an alternation;
     * the walk skipped to a later "]" and required "x]abc" of a regex
     * that matches "a[" alone: now such a regex has no requirement
     */
    REQ("a[[:f.{0*:bar|baq\\b.{5,40^]|b]x]abcd?e+", 8, "");
    REQ("(?i)abcd[[:alpha:]]+efgh", 8, "abcd & efgh");

    /* the first set is what the one-set extraction picks */

    n = ngx_http_ai_guard_regex_requires(S("(?i)\\bdo\\s+not\\s+tell\\s+"
                                           "(?:the\\s+)?user\\b"), sets, 8);
    is_int(n, 3, "three sets");
    ok(sets[0].n == 1 && sets[0].len[0] == 4
       && memcmp(sets[0].data[0], "tell", 4) == 0, "\"tell\" first");

#undef REQ
}


static void
test_ac(void)
{
    u_char                  *buf, found[8];
    size_t                   size, n;
    ngx_http_ai_guard_ac_t  *ac;
    ngx_http_ai_guard_lit_t  lits[] = {
        { (u_char *) "he", 2, 0 },
        { (u_char *) "she", 3, 1 },
        { (u_char *) "his", 3, 2 },
        { (u_char *) "hers", 4, 3 },
        { (u_char *) "SHE", 3, 4 },
        { (u_char *) "", 0, 5 },
        { (u_char *) "xyz", 3, 6 },
    };

    size = ngx_http_ai_guard_ac_size(lits, 7);
    buf = malloc(size);

    ok(ngx_http_ai_guard_ac_build(buf, size - 1, lits, 7) == NULL,
       "a short buffer is refused");

    ac = ngx_http_ai_guard_ac_build(buf, size, lits, 7);
    ok(ac != NULL, "automaton built in %zu bytes", size);

    n = ngx_http_ai_guard_ac_scan(ac, S("uSHErs"), found);
    is_int(n, 4, "four literals in \"uSHErs\"");
    ok(found[0] && found[1] && !found[2] && found[3] && found[4]
       && !found[5] && !found[6], "he, she, hers, SHE found");

    n = ngx_http_ai_guard_ac_scan(ac, S("this is XYZ"), found);
    is_int(n, 2, "his and xyz");
    ok(found[2] && found[6], "case-insensitive");

    n = ngx_http_ai_guard_ac_scan(ac, S(""), found);
    is_int(n, 0, "nothing in nothing");

    /* the unrolled loop's tail, and a literal at the very end */

    n = ngx_http_ai_guard_ac_scan(ac, S("abcdexyz"), found);
    is_int(n, 1, "xyz at the end of 8 bytes");
    n = ngx_http_ai_guard_ac_scan(ac, S("abcdefxyz"), found);
    is_int(n, 1, "xyz at the end of 9 bytes");

    free(buf);

    /* literals of one group count once */

    lits[1].group = 0;
    lits[3].group = 0;
    lits[4].group = 0;
    lits[2].group = 1;
    lits[5].group = 1;
    lits[6].group = 1;

    size = ngx_http_ai_guard_ac_size(lits, 7);
    buf = malloc(size);
    ac = ngx_http_ai_guard_ac_build(buf, size, lits, 7);

    n = ngx_http_ai_guard_ac_scan(ac, S("uSHErs"), found);
    is_int(n, 1, "one group in \"uSHErs\"");
    ok(found[0] && !found[1], "group 0 found, group 1 not");

    n = ngx_http_ai_guard_ac_scan(ac, S("XYZ, his and hers"), found);
    is_int(n, 2, "both groups");

    free(buf);

    ok(ngx_http_ai_guard_ac_size(NULL, 0) > 0, "an empty set has a size");
}


static char *
rt_unescape(char *s)
{
    char  *r, *w;

    for (r = s, w = s; *r; r++) {
        if (r[0] == '\\' && r[1] == 'n') {
            *w++ = '\n';
            r++;

        } else {
            *w++ = *r;
        }
    }

    *w = '\0';

    return s;
}


static int
rt_match(rt_rule_t *r, const char *text)
{
    return pcre2_match(r->re, (PCRE2_SPTR) text, strlen(text), 0, 0, r->md,
                       NULL) >= 0;
}


static void
test_shipped(void)
{
    int                               rc, errcode, family_ok, lit_ok;
    char                              path[512], line[2048], *text, *sp;
    char                              fam[64], seen_tp[64][64];
    char                              desc[2048];
    char                              seen_nm[64][64];
    FILE                             *f;
    u_char                           *buf, *acbuf;
    u_char                            found[RT_RULES_MAX
                                            * NGX_HTTP_AI_GUARD_LIT_SETS];
    size_t                            len, i, j, k, nfam_tp, nfam_nm, nlits;
    size_t                            group;
    size_t                            erroff, size, base[RT_RULES_MAX];
    rt_rule_t                        *r;
    ngx_http_ai_guard_ac_t           *ac;
    static ngx_http_ai_guard_lit_t    all[RT_RULES_MAX
                                          * NGX_HTTP_AI_GUARD_LIT_SETS
                                          * NGX_HTTP_AI_GUARD_LIT_ALTS];
    ngx_http_ai_guard_rule_t          rule;
    ngx_http_ai_guard_rules_parser_t  ps;

    buf = rt_slurp(rt_path("../../examples/prompt-injection.rules", path,
                           sizeof(path)), &len);
    ok(buf != NULL, "read %s", path);
    if (buf == NULL) {
        return;
    }

    ngx_http_ai_guard_rules_init(&ps, buf, len);

    while ((rc = ngx_http_ai_guard_rules_next(&ps, &rule))
           == NGX_HTTP_AI_GUARD_RULES_OK && rt_nrules < RT_RULES_MAX)
    {
        r = &rt_rules[rt_nrules++];
        memcpy(r->id, rule.id, rule.id_len);
        r->id[rule.id_len] = '\0';

        r->re = pcre2_compile((PCRE2_SPTR) rule.regex, rule.regex_len, 0,
                              &errcode, &erroff, NULL);
        if (r->re == NULL) {
            ok(0, "rule %s compiles (error %d at %zu)", r->id, errcode,
               erroff);
            rt_nrules--;
            continue;
        }

        ok(pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE) == 0,
           "rule %s compiles, JIT too", r->id);
        r->md = pcre2_match_data_create_from_pattern(r->re, NULL);

        ok(strncmp((char *) rule.regex, "(?i)", 4) == 0
           || strncmp((char *) rule.regex, "(?im)", 5) == 0,
           "rule %s is case-insensitive", r->id);

        r->nsets = ngx_http_ai_guard_regex_requires(rule.regex,
                                                    rule.regex_len, r->sets,
                                                    NGX_HTTP_AI_GUARD_LIT_SETS);
    }

    is_int(rc, NGX_HTTP_AI_GUARD_RULES_DONE, "the shipped file parses");
    ok(rt_nrules >= 30, "%zu rules, at least 30", rt_nrules);

    /*
     * The prefilter over all rules' requirements, as the glue builds it:
     * a group a set, every set of a rule; all its groups must have a hit
     * for a rule to run.
     */

    nlits = 0;
    group = 0;

    for (i = 0; i < rt_nrules; i++) {
        base[i] = group;

        for (k = 0; k < rt_rules[i].nsets; k++) {
            for (j = 0; j < rt_rules[i].sets[k].n; j++) {
                all[nlits].data = rt_rules[i].sets[k].data[j];
                all[nlits].len = rt_rules[i].sets[k].len[j];
                all[nlits].group = group;
                nlits++;
            }

            group++;
        }
    }

    size = ngx_http_ai_guard_ac_size(all, nlits);
    acbuf = malloc(size);
    ac = ngx_http_ai_guard_ac_build(acbuf, size, all, nlits);
    ok(ac != NULL, "prefilter of %zu literals in %zu bytes", nlits, size);

    f = fopen(rt_path("data/rules/cases.txt", path, sizeof(path)), "r");
    ok(f != NULL, "read %s", path);
    if (f == NULL || ac == NULL) {
        return;
    }

    nfam_tp = 0;
    nfam_nm = 0;

    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';

        if (line[0] != '+' && line[0] != '-') {
            continue;
        }

        sp = strchr(line, ' ');
        if (sp == NULL) {
            continue;
        }

        *sp = '\0';
        snprintf(desc, sizeof(desc), "%s", sp + 1);
        text = rt_unescape(sp + 1);

        ngx_http_ai_guard_ac_scan(ac, (u_char *) text, strlen(text), found);

        /* the prefilter never hides a match */

        lit_ok = 1;

        for (i = 0; i < rt_nrules; i++) {
            if (!rt_match(&rt_rules[i], text)) {
                continue;
            }

            family_ok = 1;

            for (k = 0; k < rt_rules[i].nsets; k++) {
                family_ok &= found[base[i] + k];
            }

            if (!family_ok) {
                lit_ok = 0;
                printf("# prefilter misses %s on: %s\n", rt_rules[i].id,
                       text);
            }
        }

        ok(lit_ok, "prefilter passes every rule that matches: %.40s", desc);

        if (line[0] == '+') {
            for (i = 0; i < rt_nrules; i++) {
                if (strcmp(rt_rules[i].id, line + 1) == 0) {
                    break;
                }
            }

            ok(i < rt_nrules && rt_match(&rt_rules[i], text),
               "%s matches: %s", line + 1, desc);

            snprintf(fam, sizeof(fam), "%.*s",
                     (int) strcspn(line + 1, "."), line + 1);

            for (k = 0; k < nfam_tp && strcmp(seen_tp[k], fam); k++) {
                /* void */
            }

            if (k == nfam_tp && nfam_tp < 64) {
                strcpy(seen_tp[nfam_tp++], fam);
            }

        } else {
            for (i = 0; i < rt_nrules; i++) {
                if (rt_match(&rt_rules[i], text)) {
                    break;
                }
            }

            ok(i == rt_nrules, "near miss passes (%s): %s",
               i < rt_nrules ? rt_rules[i].id : "no rule", desc);

            for (k = 0; k < nfam_nm && strcmp(seen_nm[k], line + 1); k++) {
                /* void */
            }

            if (k == nfam_nm && nfam_nm < 64) {
                strcpy(seen_nm[nfam_nm++], line + 1);
            }
        }
    }

    fclose(f);

    /* every family has a near miss, every rule a true positive */

    for (k = 0; k < nfam_tp; k++) {
        for (i = 0; i < nfam_nm && strcmp(seen_tp[k], seen_nm[i]); i++) {
            /* void */
        }

        ok(i < nfam_nm, "family %s has a near miss", seen_tp[k]);
    }

    f = fopen(rt_path("data/rules/cases.txt", path, sizeof(path)), "r");

    for (i = 0; f && i < rt_nrules; i++) {
        rewind(f);
        family_ok = 0;

        while (fgets(line, sizeof(line), f)) {
            sp = strchr(line, ' ');
            if (line[0] == '+' && sp
                && (size_t) (sp - line - 1) == strlen(rt_rules[i].id)
                && memcmp(line + 1, rt_rules[i].id, sp - line - 1) == 0)
            {
                family_ok = 1;
            }
        }

        ok(family_ok, "rule %s has a true positive", rt_rules[i].id);
    }

    if (f) {
        fclose(f);
    }

    free(acbuf);
    free(buf);
}


int
main(void)
{
    size_t  i;

    test_pii_names();
    test_pii();
    test_pii_linear();
    test_rules_parser();
    test_rules_many();
    test_literals();
    test_requires();
    test_ac();
    test_shipped();

    for (i = 0; i < rt_nrules; i++) {
        pcre2_match_data_free(rt_rules[i].md);
        pcre2_code_free(rt_rules[i].re);
    }

    return done_testing();
}
