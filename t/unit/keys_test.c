
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The keys file: RFC 3339 expiry dates (each offset moves the instant the
 * right way), a file parsed in pieces, its errors and where they are, ids
 * and digests given twice, and the lookup by digest.
 */

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "ngx_http_ai_guard_keys.h"


/* 2024-03-01T12:00:00Z */
#define NOON  1709294400LL


typedef struct {
    void    **blocks;
    size_t    n;
} pool_t;


static pool_t  pool;


/* every allocation is kept and freed at the end, as a pool would */

static void *
alloc(void *data, size_t size)
{
    void    *p, **b;
    pool_t  *pl = data;

    b = realloc(pl->blocks, (pl->n + 1) * sizeof(void *));
    if (b == NULL) {
        return NULL;
    }

    pl->blocks = b;

    p = malloc(size ? size : 1);
    if (p != NULL) {
        pl->blocks[pl->n++] = p;
    }

    return p;
}


static void
pool_free(void)
{
    size_t  i;

    for (i = 0; i < pool.n; i++) {
        free(pool.blocks[i]);
    }

    free(pool.blocks);
    memset(&pool, 0, sizeof(pool_t));
}


static int
date(const char *s, int64_t *t)
{
    *t = -1;
    return ngx_http_ai_guard_parse_rfc3339((const u_char *) s, strlen(s), t);
}


static void
test_rfc3339(void)
{
    size_t   i;
    int64_t  t;

    /* one instant, noon UTC on 2024-03-01, written in many zones */
    static const char  *noon[] = {
        "2024-03-01T12:00:00Z",
        "2024-03-01t12:00:00z",
        "2024-03-01 12:00:00Z",
        "2024-03-01T12:00:00+00:00",
        "2024-03-01T12:00:00-00:00",
        "2024-03-01T14:00:00+02:00",
        "2024-03-01T07:00:00-05:00",
        "2024-03-01T17:30:00+05:30",
        "2024-03-01T06:15:00-05:45",
        "2024-03-02T01:00:00+13:00",
        "2024-02-29T23:00:00-13:00",
        "2024-03-01T12:00:00.999999Z",
        "2024-03-01T14:00:00.5+02:00",
        NULL
    };

    static const char  *bad[] = {
        "2024-03-01T12:00:00",
        "2024-03-01T12:00:00+0200",
        "2024-03-01T12:00:00+02",
        "2024-03-01T12:00:00+24:00",
        "2024-03-01T12:00:00+02:60",
        "2024-03-01T12:00:00Zx",
        "2024-03-01T12:00:00+02:00x",
        "2024-03-01T12:00:00.Z0",
        "2023-02-29T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-03-01T24:00:00Z",
        "2024-03-01T12:60:00Z",
        "2024-03-01X12:00:00Z",
        "2024-3-01T12:00:00Z",
        "",
        NULL
    };

    for (i = 0; noon[i]; i++) {
        is_int(date(noon[i], &t), 0, "\"%s\" parses", noon[i]);
        is_int(t, NOON, "\"%s\" is noon UTC", noon[i]);
    }

    /* an hour either side: the offset's sign decides which */
    date("2024-03-01T12:00:00+01:00", &t);
    is_int(t, NOON - 3600, "+01:00 is an hour before the same time in UTC");
    date("2024-03-01T12:00:00-01:00", &t);
    is_int(t, NOON + 3600, "-01:00 is an hour after the same time in UTC");
    date("2024-03-01T12:00:00+00:01", &t);
    is_int(t, NOON - 60, "+00:01: minutes count");

    date("2024-02-29T23:59:60Z", &t);
    is_int(t, NOON - 12 * 3600, "a leap second is the next day's first");
    date("1970-01-01T00:00:00Z", &t);
    is_int(t, 0, "the epoch");
    date("1970-01-01T00:00:00+01:00", &t);
    is_int(t, -3600, "before the epoch");
    date("2999-01-01T00:00:00Z", &t);
    is_int(t, 32472144000LL, "2999");
    date("2000-02-29T00:00:00Z", &t);
    is_int(t, 951782400LL, "2000 is a leap year");
    is_int(date("1900-02-29T00:00:00Z", &t), -1, "1900 is not");

    for (i = 0; bad[i]; i++) {
        is_int(date(bad[i], &t), -1, "\"%s\" is refused", bad[i]);
    }
}


static ngx_http_ai_guard_keys_t *
keys_of(const char *text, size_t split, char *err, size_t errlen)
{
    size_t                            len;
    ngx_http_ai_guard_keys_t         *keys;
    ngx_http_ai_guard_keys_parser_t  *kp;

    len = strlen(text);
    keys = NULL;
    err[0] = '\0';

    kp = ngx_http_ai_guard_keys_parser_create(alloc, &pool);
    if (kp == NULL) {
        return NULL;
    }

    if (ngx_http_ai_guard_keys_parse(kp, (const u_char *) text, split) == 0
        && ngx_http_ai_guard_keys_parse(kp, (const u_char *) text + split,
                                        len - split) == 0)
    {
        keys = ngx_http_ai_guard_keys_finish(kp);
    }

    if (keys == NULL) {
        snprintf(err, errlen, "%s", ngx_http_ai_guard_keys_error(kp));
    }

    ngx_http_ai_guard_keys_parser_free(kp);

    return keys;
}


#define D1  "86a3768b9684d21492c98446c2302ade49ddfe4b328d99475ed0c959fb07a23e"
#define D2  "39c81276bc9edac2614e74ea48f6f4b687a3562ca7ba8b0d19806b3e69afde2c"
#define D3  "3333333333333333333333333333333333333333333333333333333333333333"


static void
hex(const char *s, u_char *out)
{
    size_t        i;
    unsigned int  b;

    for (i = 0; i < NGX_HTTP_AI_GUARD_DIGEST_LEN; i++) {
        sscanf(s + 2 * i, "%2x", &b);
        out[i] = (u_char) b;
    }
}


static void
test_file(void)
{
    char                      err[NGX_HTTP_AI_GUARD_KEYS_ERRLEN];
    u_char                    d[NGX_HTTP_AI_GUARD_DIGEST_LEN];
    size_t                    split, len, n;
    ngx_http_ai_guard_key_t  *k;
    ngx_http_ai_guard_keys_t *keys;

    static const char  file[] =
        "{\"keys\": [\n"
        "  {\"id\": \"acme-1\", \"tenant\": \"acme\", \"tier\": \"pro\","
        "   \"expires\": \"2024-03-01T14:00:00+02:00\","
        "   \"sha256\": \"" D1 "\"},\n"
        "  {\"id\": \"beta-1\", \"tenant\": \"beta\","
        "   \"expires\": \"2024-03-01T07:00:00-05:00\","
        "   \"disabled\": true, \"models\": [\"gpt-4o*\"],"
        "   \"sha256\": \"" D2 "\"}\n"
        "]}\n";

    len = strlen(file);

    /* every split gives the same table */

    for (split = 0, n = 0; split <= len; split++) {
        keys = keys_of(file, split, err, sizeof(err));
        n += (keys != NULL && keys->nkeys == 2);
        pool_free();
    }

    is_int(n, len + 1, "the file parses split at each of its bytes");

    keys = keys_of(file, len / 2, err, sizeof(err));
    ok(keys != NULL, "the file parses (%s)", err);

    if (keys == NULL) {
        return;
    }

    hex(D1, d);
    k = ngx_http_ai_guard_keys_lookup(keys, d);
    ok(k != NULL && k->id.len == 6 && memcmp(k->id.data, "acme-1", 6) == 0,
       "acme-1 is found by its digest");
    is_int(k ? k->expires : 0, NOON, "acme-1 expires at noon UTC (+02:00)");
    ok(k && !k->disabled && !k->has_models, "acme-1: enabled, any model");

    hex(D2, d);
    k = ngx_http_ai_guard_keys_lookup(keys, d);
    ok(k != NULL && k->tenant.len == 4
       && memcmp(k->tenant.data, "beta", 4) == 0,
       "beta-1 is found by its digest");
    is_int(k ? k->expires : 0, NOON, "beta-1 expires at noon UTC (-05:00)");
    ok(k && k->disabled && k->has_models && k->nmodels == 1,
       "beta-1: disabled, one model glob");

    /*
     * The table matches on the digest's first 8 bytes, its hash: a
     * digest that differs after them finds the entry, and the caller
     * compares the whole digest in constant time (t/010-auth.t TEST 22,
     * 23 show that it does).  One that differs in them finds nothing.
     */

    hex(D1, d);
    d[31] ^= 1;
    ok(ngx_http_ai_guard_keys_lookup(keys, d) != NULL,
       "a digest equal in its first 8 bytes finds the entry: the caller "
       "compares the rest");
    d[31] ^= 1;
    d[0] ^= 1;
    ok(ngx_http_ai_guard_keys_lookup(keys, d) == NULL,
       "a digest that differs in its first byte finds nothing");

    pool_free();

#define BAD(text, want, name)                                                \
    keys = keys_of(text, 0, err, sizeof(err));                               \
    ok(keys == NULL && strstr(err, want) != NULL, "%s: \"%s\"", name, err);  \
    pool_free()

    BAD("{\"keys\": [{\"id\": \"a\", \"tenant\": \"t\", \"expires\": "
        "\"2024-03-01T12:00:00\", \"sha256\": \"" D1 "\"}]}",
        "RFC 3339", "an expiry without a zone");
    BAD("{\"keys\": [{\"id\": \"a\", \"tenant\": \"t\", \"expires\": "
        "\"2024-03-01T12:00:00+0200\", \"sha256\": \"" D1 "\"}]}",
        "RFC 3339", "an offset without its colon");
    BAD("{\"keys\": [{\"id\": \"a\", \"tenant\": \"t\", \"sha256\": \"" D1
        "\"}, {\"id\": \"b\", \"tenant\": \"t\", \"sha256\": \"" D1 "\"}]}",
        "duplicate sha256", "one digest twice");

#undef BAD
}


/*
 * The file in pieces of "split" bytes, as the glue reads it; the error,
 * its line and column, or "" when it loads.
 */

static const char *
load(const char *file, size_t split, size_t *line, size_t *column)
{
    size_t                            len, off, n;
    static char                       err[512];
    ngx_http_ai_guard_keys_t         *keys;
    ngx_http_ai_guard_keys_parser_t  *kp;

    kp = ngx_http_ai_guard_keys_parser_create(alloc, &pool);

    len = strlen(file);
    keys = NULL;

    for (off = 0; off < len; off += n) {
        n = (len - off < split) ? len - off : split;

        if (ngx_http_ai_guard_keys_parse(kp, (const u_char *) file + off, n)
            != 0)
        {
            goto failed;
        }
    }

    keys = ngx_http_ai_guard_keys_finish(kp);

failed:

    if (keys) {
        err[0] = '\0';
        *line = 0;
        *column = 0;

    } else {
        snprintf(err, sizeof(err), "%s", ngx_http_ai_guard_keys_error(kp));
        *line = ngx_http_ai_guard_keys_error_line(kp, column);
    }

    ngx_http_ai_guard_keys_parser_free(kp);
    pool_free();

    return err;
}


static void
test_positions(void)
{
    size_t       line, column, split;
    const char  *err;

    static const size_t  splits[] = { 1, 3, 7, 64, 65536 };

    for (split = 0; split < sizeof(splits) / sizeof(splits[0]); split++) {

        /* a missing comma on line 3, before the 17th byte of the line */

        err = load("{\"keys\": [\n"
                   "  {\"id\": \"a\", \"sha256\": \"" D1 "\"},\n"
                   "  {\"id\": \"b\" \"sha256\": \"" D2 "\"}\n"
                   "]}\n", splits[split], &line, &column);

        ok(strncmp(err, "invalid JSON: ", 14) == 0,
           "a syntax error is invalid JSON (pieces of %zu): %s",
           splits[split], err);
        is_int(line, 3, "... on line 3");

        /*
         * yajl steps back over the token it did not expect, by the
         * token's length: a token split across reads comes out a few
         * columns on.  The glue reads 64k at a time.
         */

        if (splits[split] >= 64) {
            is_int(column, 16, "... column 16, where yajl stopped");

        } else {
            ok(column >= 14 && column <= 22, "... column %zu, near it",
               column);
        }
        ok(strchr(err, '\n') == NULL, "... and no newline in the message");
    }

    err = load("{\"keys\": [\n  {\"id\": \"a\", \"sha256\": \"" D1 "\"}\n",
               65536, &line, &column);

    ok(strstr(err, "premature EOF") != NULL, "a file cut short: %s", err);
    is_int(line, 3, "... at the end of the file, line 3");
    is_int(column, 1, "... column 1");

    err = load("{\"keys\": [\n  {\"id\": \"a\", \"sha256\": \"" D1 "\",\n"
               "   \"expires\": \"soon\"}]}", 5, &line, &column);

    ok(strstr(err, "entry 1: \"expires\" is not an RFC 3339 date") != NULL,
       "an entry's error: %s", err);
    is_int(line, 3, "... on the line of the value");
}


static void
test_duplicates(void)
{
    size_t       line, column;
    const char  *err;

    err = load("{\"keys\": [\n"
               "  {\"id\": \"acme-1\", \"sha256\": \"" D1 "\"},\n"
               "  {\"id\": \"acme-2\", \"sha256\": \"" D2 "\"},\n"
               "  {\"id\": \"acme-1\", \"sha256\": \"" D2 "\"}\n"
               "]}\n", 64, &line, &column);

    ok(strstr(err, "entry 3: duplicate id \"acme-1\", the same as entry 1 "
                   "at line 2") != NULL, "a duplicate id: %s", err);
    is_int(line, 4, "... at the line of the later entry");
    is_int(column, 0, "... no column");

    err = load("{\"keys\": [\n"
               "  {\"id\": \"a\", \"sha256\": \"" D1 "\"},\n"
               "  {\"id\": \"b\", \"sha256\": \"" D1 "\"}\n"
               "]}\n", 64, &line, &column);

    ok(strstr(err, "entry 2 (\"b\"): duplicate sha256, the same as entry 1 "
                   "(\"a\") at line 2") != NULL, "a duplicate digest: %s",
       err);
    is_int(line, 3, "... at the line of the later entry");

    err = load("{\"keys\": [\n"
               "  {\"id\": \"a\", \"sha256\": \"" D1 "\"},\n"
               "  {\"id\": \"A\", \"sha256\": \"" D2 "\"},\n"
               "  {\"id\": \"a \", \"sha256\": \"" D3 "\"}\n"
               "]}\n", 64, &line, &column);

    ok(strstr(err, "duplicate") == NULL, "ids differ by case or a byte: %s",
       err);

    err = load("{\"keys\": []}", 64, &line, &column);
    is_str(err, strlen(err), "", "an empty list loads");
}


int
main(void)
{
    test_rfc3339();
    test_file();
    test_positions();
    test_duplicates();

    return done_testing();
}
