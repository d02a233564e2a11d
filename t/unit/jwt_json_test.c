
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * base64url, claim paths, and the JSON walk under JWT verification:
 * nested paths, array elements, duplicates, escaped strings decoded in
 * place, numbers as written, nesting, documents past yajl's arena.
 */

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "ngx_http_ai_guard_jwt_json.h"


#define T_MAX  16


typedef struct {
    unsigned   n;
    unsigned   field[T_MAX];
    int        type[T_MAX];
    int        elt[T_MAX];
    char       text[T_MAX][64];
    unsigned   inside;
    u_char    *start;
    u_char    *end;
} t_seen_t;


static int
t_value(ngx_http_ai_guard_jwt_json_t *j, unsigned field, int type,
    const u_char *p, size_t len, int elt)
{
    t_seen_t  *s;

    s = j->data;

    if (p && (p < s->start || p + len > s->end)) {
        s->inside = 0;
    }

    if (s->n < T_MAX) {
        s->field[s->n] = field;
        s->type[s->n] = type;
        s->elt[s->n] = elt;
        snprintf(s->text[s->n], 64, "%.*s", (int) (p ? len : 0),
                 p ? (const char *) p : "");
        s->n++;
    }

    return 1;
}


/* walks doc for the paths, NULL-separated; returns the walk's result */

static int
walk(const char *doc, t_seen_t *s, const char **reason, ...)
{
    int                            rc;
    u_char                        *buf;
    size_t                         len;
    va_list                        args;
    const char                    *path;
    ngx_http_ai_guard_jwt_json_t   j;
    ngx_http_ai_guard_jwt_field_t  fields[4];

    memset(s, 0, sizeof(t_seen_t));
    memset(fields, 0, sizeof(fields));

    j.nfields = 0;
    va_start(args, reason);

    while ((path = va_arg(args, const char *)) != NULL && j.nfields < 4) {
        ngx_http_ai_guard_jwt_path(&fields[j.nfields++],
                                   (const u_char *) path, strlen(path));
    }

    va_end(args);

    len = strlen(doc);
    buf = malloc(len + 1);
    memcpy(buf, doc, len + 1);

    s->inside = 1;
    s->start = buf;
    s->end = buf + len;

    j.fields = fields;
    j.value = t_value;
    j.data = s;
    j.reason = NULL;

    rc = ngx_http_ai_guard_jwt_json(&j, buf, len);
    *reason = j.reason ? j.reason : "";

    free(buf);

    return rc;
}


static void
test_base64url(void)
{
    u_char  out[16];

#define B64(s)                                                               \
    ngx_http_ai_guard_jwt_base64url_decode(out, (const u_char *) s,         \
                                           strlen(s))

    is_int(B64(""), 0, "b64 empty");
    is_int(B64("QQ"), 1, "b64 QQ");
    ok(out[0] == 'A', "b64 QQ is A");
    is_int(B64("QUI"), 2, "b64 QUI");
    is_int(B64("QUJD"), 3, "b64 QUJD");
    is_int(B64("QR"), -1, "b64 QR: non-zero trailing bits");
    is_int(B64("QUJ"), -1, "b64 QUJ: non-zero trailing bits");
    is_int(B64("QQ=="), -1, "b64 padding rejected");
    is_int(B64("Q"), -1, "b64 length 4n+1");
    is_int(B64("-_-_"), 3, "b64 - and _");
    is_int(B64("+/+/"), -1, "b64 + and / rejected");
    is_int(B64("QU I"), -1, "b64 space rejected");

#undef B64
}


static void
test_paths(void)
{
    ngx_http_ai_guard_jwt_field_t  f;

#define PATH(s)                                                              \
    ngx_http_ai_guard_jwt_path(&f, (const u_char *) s, strlen(s))

    is_int(PATH("sub"), 1, "path sub");
    is_int(f.ncomp, 1, "sub: one part");
    is_int(PATH("app_metadata.tenant"), 1, "path app_metadata.tenant");
    is_int(f.ncomp, 2, "two parts");
    is_str(f.comp[1].data, f.comp[1].len, "tenant", "the second part");
    is_int(PATH("a.b.c.d.e.f.g.h"), 1, "path of 8 parts");
    is_int(PATH("a.b.c.d.e.f.g.h.i"), 0, "path of 9 parts");
    is_int(f.ncomp, 0, "a bad path follows nothing");
    is_int(PATH(""), 0, "empty path");
    is_int(PATH("a..b"), 0, "path a..b");
    is_int(ngx_http_ai_guard_jwt_path(&f, NULL, 0), 0, "no path");

#undef PATH
}


static void
test_walk(void)
{
    int          rc;
    char        *doc, *p;
    size_t       i;
    t_seen_t     s;
    const char  *reason;

    rc = walk("{\"a\":1,\"b\":{\"c\":\"x\",\"d\":[1,2]},\"c\":true}", &s,
              &reason, "b.c", "a", "c", NULL);
    is_int(rc, NGX_HTTP_AI_GUARD_JWT_JSON_OK, "a nested document walks");
    is_int(s.n, 3, "three values at the paths");
    ok(s.field[0] == 1 && s.type[0] == NGX_HTTP_AI_GUARD_JWT_T_NUMBER
       && strcmp(s.text[0], "1") == 0, "a: the number as written");
    ok(s.field[1] == 0 && s.type[1] == NGX_HTTP_AI_GUARD_JWT_T_STRING
       && strcmp(s.text[1], "x") == 0, "b.c: the string");
    ok(s.field[2] == 2 && s.type[2] == NGX_HTTP_AI_GUARD_JWT_T_OTHER,
       "c: true is another type");

    rc = walk("{\"aud\":[\"x\",\"y\",[\"z\"],{\"aud\":\"w\"}]}", &s,
              &reason, "aud", NULL);
    is_int(rc, NGX_HTTP_AI_GUARD_JWT_JSON_OK, "an array at a path walks");
    is_int(s.n, 5, "the array, then its four elements");
    ok(s.type[0] == NGX_HTTP_AI_GUARD_JWT_T_ARRAY && !s.elt[0],
       "the array itself first");
    ok(s.elt[1] && strcmp(s.text[1], "x") == 0 && s.elt[2]
       && strcmp(s.text[2], "y") == 0, "its strings as elements");
    ok(s.type[3] == NGX_HTTP_AI_GUARD_JWT_T_ARRAY
       && s.type[4] == NGX_HTTP_AI_GUARD_JWT_T_MAP,
       "nested containers as elements, not walked into");

    rc = walk("{\"a\":1,\"a\":2}", &s, &reason, "a", NULL);
    is_int(rc, NGX_HTTP_AI_GUARD_JWT_JSON_INVALID, "a duplicate member");
    is_str(reason, strlen(reason), "duplicate member", "reason: duplicate");

    rc = walk("{\"b\":{\"a\":1},\"a\":2,\"c\":{\"a\":3}}", &s, &reason,
              "a", NULL);
    is_int(rc, NGX_HTTP_AI_GUARD_JWT_JSON_OK, "the same key deeper is not it");
    ok(s.n == 1 && strcmp(s.text[0], "2") == 0, "only the top-level a");

    rc = walk("{\"s\":\"a\\u00e9\\n\\\"b\"}", &s, &reason, "s", NULL);
    is_int(rc, NGX_HTTP_AI_GUARD_JWT_JSON_OK, "an escaped string");
    is_str(s.text[0], strlen(s.text[0]), "a\xc3\xa9\n\"b",
           "decoded to UTF-8");
    ok(s.inside, "and handed over inside the input");

    rc = walk("[1]", &s, &reason, "a", NULL);
    is_int(rc, NGX_HTTP_AI_GUARD_JWT_JSON_INVALID, "an array document");
    is_str(reason, strlen(reason), "not a JSON object", "reason: no object");

    rc = walk("{\"a\":", &s, &reason, "a", NULL);
    is_int(rc, NGX_HTTP_AI_GUARD_JWT_JSON_INVALID, "a truncated document");
    is_str(reason, strlen(reason), "not valid JSON", "reason: not JSON");

    /* 65 levels of nesting: one more than the walk keeps track of */

    doc = malloc(65 * 6 + 8);
    p = doc;

    for (i = 0; i < 65; i++) {
        p += sprintf(p, "{\"a\":");
    }

    p += sprintf(p, "1");

    for (i = 0; i < 65; i++) {
        *p++ = '}';
    }

    *p = '\0';

    rc = walk(doc, &s, &reason, "a", NULL);
    is_int(rc, NGX_HTTP_AI_GUARD_JWT_JSON_INVALID, "65 levels of objects");
    is_str(reason, strlen(reason), "JSON nested too deeply",
           "reason: too deep");
    free(doc);

    /* a string longer than yajl's arena: yajl falls back to malloc */

    doc = malloc(30000);
    p = doc + sprintf(doc, "{\"big\":\"");

    for (i = 0; i < 10000; i++) {
        p += sprintf(p, "\\t");
    }

    p += sprintf(p, "\",\"a\":7}");

    rc = walk(doc, &s, &reason, "a", NULL);
    is_int(rc, NGX_HTTP_AI_GUARD_JWT_JSON_OK, "a document past the arena");
    ok(s.n == 1 && strcmp(s.text[0], "7") == 0, "its member read");
    free(doc);
}


int
main(void)
{
    test_base64url();
    test_paths();
    test_walk();

    return done_testing();
}
