
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The canonical form, driven as the request parser drives it: keys
 * sorted by their decoded bytes at every level, equal keys in their
 * order, arrays in theirs, strings re-escaped minimally, numbers and
 * literals as written, and buffers that grow past their first size.
 */

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "ngx_http_ai_guard_canon.h"


#define S(s)  (const u_char *) (s), strlen(s)


static int
t_form(ngx_http_ai_guard_canon_t *cn, const char *want, const char *name)
{
    int  eq;

    eq = cn->out.len == strlen(want)
         && memcmp(cn->out.data, want, cn->out.len) == 0;

    ok(eq, "%s", name);

    if (!eq) {
        printf("#   got  %.*s\n#   want %s\n", (int) cn->out.len,
               (const char *) cn->out.data, want);
    }

    return eq;
}


static void
test_nested(void)
{
    int                        rc;
    ngx_http_ai_guard_canon_t  cn;

    rc = ngx_http_ai_guard_canon_init(&cn, 8);
    is_int(rc, 0, "init");

    /* {"b":1,"a":[true,{"d":"x","c":null},[]],"e":{}} */

    rc = ngx_http_ai_guard_canon_open(&cn, 0, 0, 1);
    rc |= ngx_http_ai_guard_canon_key(&cn, 1, S("b"));
    rc |= ngx_http_ai_guard_canon_value(&cn, 1, 0, S("1"), 0);
    rc |= ngx_http_ai_guard_canon_key(&cn, 1, S("a"));
    rc |= ngx_http_ai_guard_canon_open(&cn, 1, 0, 0);
    rc |= ngx_http_ai_guard_canon_value(&cn, 2, 1, S("true"), 0);
    rc |= ngx_http_ai_guard_canon_open(&cn, 2, 1, 1);
    rc |= ngx_http_ai_guard_canon_key(&cn, 3, S("d"));
    rc |= ngx_http_ai_guard_canon_value(&cn, 3, 0, S("x"), 1);
    rc |= ngx_http_ai_guard_canon_key(&cn, 3, S("c"));
    rc |= ngx_http_ai_guard_canon_value(&cn, 3, 0, S("null"), 0);
    rc |= ngx_http_ai_guard_canon_close(&cn, 3, 1);
    rc |= ngx_http_ai_guard_canon_open(&cn, 2, 1, 0);
    rc |= ngx_http_ai_guard_canon_close(&cn, 3, 0);
    rc |= ngx_http_ai_guard_canon_close(&cn, 2, 0);
    rc |= ngx_http_ai_guard_canon_key(&cn, 1, S("e"));
    rc |= ngx_http_ai_guard_canon_open(&cn, 1, 0, 1);
    rc |= ngx_http_ai_guard_canon_close(&cn, 2, 1);
    rc |= ngx_http_ai_guard_canon_close(&cn, 1, 1);

    is_int(rc, 0, "every call succeeds");
    t_form(&cn, "{\"a\":[true,{\"c\":null,\"d\":\"x\"},[]],\"b\":1,\"e\":{}}",
           "nested: sorted at every level, arrays in order");

    ngx_http_ai_guard_canon_free(&cn);
    ok(cn.levels == NULL && cn.out.data == NULL, "free clears");
    /* a double free would stop the run under ASan */
    ngx_http_ai_guard_canon_free(&cn);
    ok(cn.levels == NULL && cn.out.data == NULL,
       "free twice is harmless, and leaves it cleared");
}


static void
test_keys(void)
{
    ngx_http_ai_guard_canon_t  cn;

    /* {"b":1,"a":2,"b":3,"":4,"a\u0000":5,"\u00e9":6} with keys decoded */

    (void) ngx_http_ai_guard_canon_init(&cn, 2);
    (void) ngx_http_ai_guard_canon_open(&cn, 0, 0, 1);
    (void) ngx_http_ai_guard_canon_key(&cn, 1, S("b"));
    (void) ngx_http_ai_guard_canon_value(&cn, 1, 0, S("1"), 0);
    (void) ngx_http_ai_guard_canon_key(&cn, 1, S("a"));
    (void) ngx_http_ai_guard_canon_value(&cn, 1, 0, S("2"), 0);
    (void) ngx_http_ai_guard_canon_key(&cn, 1, S("b"));
    (void) ngx_http_ai_guard_canon_value(&cn, 1, 0, S("3"), 0);
    (void) ngx_http_ai_guard_canon_key(&cn, 1, S(""));
    (void) ngx_http_ai_guard_canon_value(&cn, 1, 0, S("4"), 0);
    (void) ngx_http_ai_guard_canon_key(&cn, 1, (const u_char *) "a\0", 2);
    (void) ngx_http_ai_guard_canon_value(&cn, 1, 0, S("5"), 0);
    (void) ngx_http_ai_guard_canon_key(&cn, 1, S("\xc3\xa9"));
    (void) ngx_http_ai_guard_canon_value(&cn, 1, 0, S("6"), 0);
    (void) ngx_http_ai_guard_canon_close(&cn, 1, 1);

    t_form(&cn, "{\"\":4,\"a\":2,\"a\\u0000\":5,\"b\":1,\"b\":3,"
           "\"\xc3\xa9\":6}",
           "keys: bytewise, shorter first, equal keys in order, escaped");

    ngx_http_ai_guard_canon_free(&cn);
}


static void
test_escapes(void)
{
    ngx_http_ai_guard_canon_t  cn;

    (void) ngx_http_ai_guard_canon_init(&cn, 2);
    (void) ngx_http_ai_guard_canon_open(&cn, 0, 0, 0);
    (void) ngx_http_ai_guard_canon_value(&cn, 1, 1,
                              S("q\"b\\s/\b\f\n\r\t\x01\x1f\x7f\xe6\x97\xa5"),
                              1);
    (void) ngx_http_ai_guard_canon_value(&cn, 1, 1, S("-1.50e+3"), 0);
    (void) ngx_http_ai_guard_canon_value(&cn, 1, 1, S(""), 1);
    (void) ngx_http_ai_guard_canon_close(&cn, 1, 0);

    t_form(&cn, "[\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f"
           "\xe6\x97\xa5\",-1.50e+3,\"\"]",
           "strings: short escapes, \\u00xx for the other controls, the "
           "rest as is; numbers as written");

    ngx_http_ai_guard_canon_free(&cn);
}


/* values and keys longer than the first buffers, in many members */

static void
test_growth(void)
{
    int                        rc;
    char                      *big, *want, *w;
    size_t                     i;
    ngx_http_ai_guard_canon_t  cn;

    big = malloc(70000);
    want = malloc(200000);

    memset(big, 'x', 69999);
    big[69999] = '\0';

    (void) ngx_http_ai_guard_canon_init(&cn, 2);
    rc = ngx_http_ai_guard_canon_open(&cn, 0, 0, 1);

    for (i = 0; i < 100; i++) {
        char  key[32];

        snprintf(key, sizeof(key), "k%02zu", 99 - i);
        rc |= ngx_http_ai_guard_canon_key(&cn, 1, S(key));
        rc |= ngx_http_ai_guard_canon_value(&cn, 1, 0, S("0"), 0);
    }

    rc |= ngx_http_ai_guard_canon_key(&cn, 1, S(big));
    rc |= ngx_http_ai_guard_canon_value(&cn, 1, 0, S(big), 1);
    rc |= ngx_http_ai_guard_canon_close(&cn, 1, 1);

    is_int(rc, 0, "100 members and a 70 KB key and value");

    w = want;
    *w++ = '{';

    for (i = 0; i < 100; i++) {
        w += sprintf(w, "\"k%02zu\":0,", i);
    }

    w += sprintf(w, "\"%s\":\"%s\"}", big, big);

    ok(cn.out.len == (size_t) (w - want)
       && memcmp(cn.out.data, want, cn.out.len) == 0,
       "sorted, the long member last");

    ngx_http_ai_guard_canon_free(&cn);
    free(big);
    free(want);
}


int
main(void)
{
    test_nested();
    test_keys();
    test_escapes();
    test_growth();

    return done_testing();
}
