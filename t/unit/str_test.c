
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <tap.h>
#include <ngx_http_ai_guard_str.h>


#define S(s)  (const u_char *) (s), strlen(s)


/* the key of a tuple of strings, as the zones and Redis make them */

static size_t
key(u_char *buf, const char **parts, size_t n)
{
    u_char  *p;
    size_t   i;

    p = buf;

    for (i = 0; i < n; i++) {
        p = ngx_http_ai_guard_part_write(p, S(parts[i]));
    }

    return p - buf;
}


static void
test_collisions(void)
{
    u_char       a[256], b[256];
    size_t       na, nb;
    const char  *k1[] = { "acme-1", "0gpt-4o" };
    const char  *k2[] = { "acme-10", "gpt-4o" };
    const char  *t1[] = { "acme", "2x" };
    const char  *t2[] = { "acme2", "x" };
    const char  *c1[] = { "a:b", "c" };
    const char  *c2[] = { "a", "b:c" };
    const char  *d1[] = { "1:a", "" };
    const char  *d2[] = { "", "1:a" };
    const char  *e1[] = { "", "", "x" };
    const char  *e2[] = { "", "x", "" };

#define DIFFER(x, y, what)                                                   \
    na = key(a, x, sizeof(x) / sizeof(x[0]));                                \
    nb = key(b, y, sizeof(y) / sizeof(y[0]));                                \
    ok(na != nb || memcmp(a, b, na) != 0, "%s: two keys", what)

    DIFFER(k1, k2, "key acme-1 + model 0gpt-4o vs acme-10 + gpt-4o");
    DIFFER(t1, t2, "tenant acme + model 2x vs acme2 + x");
    DIFFER(c1, c2, "colons inside the strings");
    DIFFER(d1, d2, "a string that looks like a part");
    DIFFER(e1, e2, "empty strings in different places");

#undef DIFFER

    na = key(a, k1, 2);
    is_str(a, na, "6:acme-17:0gpt-4o", "the key of acme-1, 0gpt-4o");
}


static void
test_read(void)
{
    u_char        buf[64];
    size_t        n, len;
    const u_char *p, *last, *s;

    n = ngx_http_ai_guard_part_write(buf, S("4:ab")) - buf;
    n = ngx_http_ai_guard_part_write(buf + n, S("")) - buf;
    n = ngx_http_ai_guard_part_write(buf + n, S("xyz")) - buf;
    last = buf + n;

    p = ngx_http_ai_guard_part_read(buf, last, &s, &len);
    ok(p != NULL, "first part reads");
    is_str(s, len, "4:ab", "first part");

    p = ngx_http_ai_guard_part_read(p, last, &s, &len);
    ok(p != NULL && len == 0, "the empty part reads");

    p = ngx_http_ai_guard_part_read(p, last, &s, &len);
    is_str(s, len, "xyz", "last part");
    ok(p == last, "and ends the key");

    ok(ngx_http_ai_guard_part_read((const u_char *) "5:abc",
                                   (const u_char *) "5:abc" + 5, &s, &len)
       == NULL, "a part longer than the key");
    ok(ngx_http_ai_guard_part_read((const u_char *) "x:abc",
                                   (const u_char *) "x:abc" + 5, &s, &len)
       == NULL, "no length");
    ok(ngx_http_ai_guard_part_read((const u_char *) "03:abc",
                                   (const u_char *) "03:abc" + 6, &s, &len)
       == NULL, "a leading zero");
    ok(ngx_http_ai_guard_part_read((const u_char *) "3",
                                   (const u_char *) "3" + 1, &s, &len)
       == NULL, "no colon");
    ok(ngx_http_ai_guard_part_read((const u_char *)
                                   "99999999999999999999999:a",
                                   (const u_char *)
                                   "99999999999999999999999:a" + 25,
                                   &s, &len)
       == NULL, "a length that overflows");
}


/* the lengths where the digits of the prefix change, read back */

static void
test_lengths(void)
{
    u_char         buf[1200], src[1100];
    size_t         i, len, got;
    const u_char  *s, *e;

    static const size_t  lens[] = { 0, 1, 9, 10, 11, 99, 100, 101, 999,
                                    1000, 1099 };

    memset(src, 'x', sizeof(src));

    for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        len = lens[i];
        e = ngx_http_ai_guard_part_write(buf, src, len);

        ok(ngx_http_ai_guard_part_read(buf, e, &s, &got) == e && got == len
           && s + len == e, "a part of %zu bytes reads back", len);
    }
}


static void
test_printable(void)
{
    u_char   out[64], *e;

    e = ngx_http_ai_guard_printable(out, sizeof(out), S("t:acme\x01\x7f\\z"));
    is_str(out, e - out, "t:acme\\x01\\x7f\\x5cz", "escapes");

    e = ngx_http_ai_guard_printable(out, sizeof(out),
                                    (const u_char *) "a\0b", 3);
    is_str(out, e - out, "a\\x00b", "a NUL byte");

    e = ngx_http_ai_guard_printable(out, 5, S("ab\x01"));
    is_str(out, e - out, "ab", "an escape that does not fit is left out");

    e = ngx_http_ai_guard_printable(out, 3, S("abcdef"));
    is_str(out, e - out, "abc", "cut at the size");
}


int
main(void)
{
    test_collisions();
    test_read();
    test_lengths();
    test_printable();

    return done_testing();
}
