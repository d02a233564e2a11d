
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <tap.h>
#include <ngx_http_ai_guard_keys.h>


#define D1  "1111111111111111111111111111111111111111111111111111111111111111"
#define D2  "2222222222222222222222222222222222222222222222222222222222222222"
#define D3  "3333333333333333333333333333333333333333333333333333333333333333"


/* what the configuration pool would be: freed at the end of a case */

static void  *allocs[4096];
static size_t nallocs;


static void *
test_alloc(void *pool, size_t size)
{
    void  *p;

    if (nallocs == sizeof(allocs) / sizeof(allocs[0])) {
        return NULL;
    }

    p = malloc(size);
    allocs[nallocs++] = p;

    return p;
}


static void
test_free(void)
{
    while (nallocs) {
        free(allocs[--nallocs]);
    }
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

    kp = ngx_http_ai_guard_keys_parser_create(test_alloc, NULL);

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
    test_free();

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
    test_positions();
    test_duplicates();

    return done_testing();
}
