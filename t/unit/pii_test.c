
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The PII detectors: names and bits, hits and near misses of every
 * detector, offsets, masks, and 1 MB worst cases that must stay linear.
 */

#include <stdlib.h>
#include <tap.h>
#include <ngx_http_ai_guard_pii.h>


#define S(s)  (const u_char *) (s), strlen(s)


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
    /* single digits between separators: no number is long enough */
    is_int(hit, 0, "1 MB of digits and separators scanned: no hit");

    for (i = 0; i < n; i++) {
        buf[i] = (i % 70 == 69) ? '@' : "abcdefghij."[i % 11];
    }

    hit = ngx_http_ai_guard_pii_scan(buf, n, NGX_HTTP_AI_GUARD_PII_ALL, &off);
    /* the first "@" is at 69: a local part is at most 64 bytes long */
    is_int(hit, NGX_HTTP_AI_GUARD_PII_EMAIL,
           "1 MB of local parts and \"@\" scanned: an email");
    is_int(off, 5, "... its 64-byte local part before the first \"@\"");

    memset(buf, 'A', n);
    hit = ngx_http_ai_guard_pii_scan(buf, n, NGX_HTTP_AI_GUARD_PII_ALL, &off);
    is_int(hit, 0, "1 MB of one token scanned");

    for (i = 0; i < n; i++) {
        buf[i] = (i % 50 == 0) ? ' ' : "eyJ0123456789."[i % 14];
    }

    hit = ngx_http_ai_guard_pii_scan(buf, n, NGX_HTTP_AI_GUARD_PII_ALL, &off);
    /* byte 0 is a blank: the first "eyJ" is at 14 */
    is_int(hit, NGX_HTTP_AI_GUARD_PII_SECRET,
           "1 MB of JWT fragments scanned: a token");
    is_int(off, 14, "... from the first \"eyJ\"");

    for (i = 0; i < n; i++) {
        buf[i] = "Lorem ipsum dolor sit amet, 12 consectetur. "[i % 45];
    }

    hit = ngx_http_ai_guard_pii_scan(buf, n, NGX_HTTP_AI_GUARD_PII_ALL, &off);
    is_int(hit, 0, "1 MB of prose scanned");

    free(buf);
}


int
main(void)
{
    test_pii_names();
    test_pii();
    test_pii_linear();

    return done_testing();
}
