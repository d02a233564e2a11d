
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include "ngx_http_ai_guard_keys.h"
#include "ngx_http_ai_guard_price.h"
#include "ngx_http_ai_guard_admin_body.h"


typedef struct {
    const char  *name;
    unsigned     bit;
} ngx_http_ai_guard_admin_field_t;


static int ngx_http_ai_guard_admin_field(yajl_val v, unsigned bit,
    const char *name, ngx_http_ai_guard_admin_body_t *b);
static int ngx_http_ai_guard_admin_string(yajl_val v, const char *name,
    size_t max, ngx_http_ai_guard_admin_str_t *s,
    ngx_http_ai_guard_admin_body_t *b);
static int ngx_http_ai_guard_admin_fail(ngx_http_ai_guard_admin_body_t *b,
    const char *param, const char *fmt, const char *arg);
static int ngx_http_ai_guard_admin_nul(const u_char *p, size_t len);
static int ngx_http_ai_guard_admin_number(yajl_val v, const char *name,
    int64_t max, int64_t *n, ngx_http_ai_guard_admin_body_t *b);
static int ngx_http_ai_guard_admin_hex(yajl_val v, const char *name,
    u_char *digest, ngx_http_ai_guard_admin_body_t *b);
static int ngx_http_ai_guard_admin_limits(yajl_val v,
    ngx_http_ai_guard_admin_body_t *b);
static int ngx_http_ai_guard_admin_metadata(yajl_val v, const char *name,
    ngx_http_ai_guard_admin_body_t *b);
static int ngx_http_ai_guard_admin_many(yajl_val v, const char *name,
    int object, size_t max, ngx_http_ai_guard_admin_body_t *b);


/* the "param" of a limit's error: the object's name and the limit's */

static const char  *ngx_http_ai_guard_admin_limit_param[] = {
    "limits", "limits.rpm", "limits.rph", "limits.rpd", "limits.tpm",
    "limits.tph", "limits.tpd", "limits.tokens_month", "limits.concurrency",
    "limits.budget_day", "limits.budget_month"
};


static ngx_http_ai_guard_admin_field_t  ngx_http_ai_guard_admin_fields[] = {
    { "id", NGX_HTTP_AI_GUARD_ADMIN_ID },
    { "tenant", NGX_HTTP_AI_GUARD_ADMIN_TENANT },
    { "tier", NGX_HTTP_AI_GUARD_ADMIN_TIER },
    { "models", NGX_HTTP_AI_GUARD_ADMIN_MODELS },
    { "expires", NGX_HTTP_AI_GUARD_ADMIN_EXPIRES },
    { "disabled", NGX_HTTP_AI_GUARD_ADMIN_DISABLED },
    { "stripe_customer", NGX_HTTP_AI_GUARD_ADMIN_CUSTOMER },
    { "grace_seconds", NGX_HTTP_AI_GUARD_ADMIN_GRACE },
    { "limits", NGX_HTTP_AI_GUARD_ADMIN_LIMITS },
    { "metadata", NGX_HTTP_AI_GUARD_ADMIN_METADATA },
    { "seq", NGX_HTTP_AI_GUARD_ADMIN_SEQ },
    { "created", NGX_HTTP_AI_GUARD_ADMIN_CREATED },
    { "sha256", NGX_HTTP_AI_GUARD_ADMIN_SHA256 },
    { "old_sha256", NGX_HTTP_AI_GUARD_ADMIN_OLD_SHA256 },
    { "old_until", NGX_HTTP_AI_GUARD_ADMIN_OLD_UNTIL },
    { "deleted", NGX_HTTP_AI_GUARD_ADMIN_DELETED },
    { NULL, 0 }
};


int
ngx_http_ai_guard_admin_body_parse(const u_char *p, size_t len,
    unsigned allowed, ngx_http_ai_guard_admin_body_t *b)
{
    char                             *text, err[128];
    size_t                            i;
    yajl_val                          root;
    ngx_http_ai_guard_admin_field_t  *f;

    memset(b, 0, sizeof(ngx_http_ai_guard_admin_body_t));
    b->param = "";

    if (len == 0) {
        return 0;
    }

    if (len > NGX_HTTP_AI_GUARD_ADMIN_MAX_BODY) {
        return ngx_http_ai_guard_admin_fail(b, "", "the body is over 16384 "
                                            "bytes%s", "");
    }

    /*
     * yajl's tree keeps a string without its length: a NUL in one would
     * cut it short unseen, so a body that escapes one is refused whole.
     */

    if (ngx_http_ai_guard_admin_nul(p, len)) {
        return ngx_http_ai_guard_admin_fail(b, "", "a string of the body "
                                            "holds a NUL character%s", "");
    }

    text = malloc(len + 1);
    if (text == NULL) {
        return ngx_http_ai_guard_admin_fail(b, "", "out of memory%s", "");
    }

    memcpy(text, p, len);
    text[len] = '\0';

    err[0] = '\0';
    root = yajl_tree_parse(text, err, sizeof(err));

    free(text);

    if (root == NULL) {
        return ngx_http_ai_guard_admin_fail(b, "", "the body is not valid "
                                            "JSON%s", "");
    }

    if (!YAJL_IS_OBJECT(root)) {
        yajl_tree_free(root);
        return ngx_http_ai_guard_admin_fail(b, "", "the body must be a JSON "
                                            "object%s", "");
    }

    for (i = 0; i < root->u.object.len; i++) {

        for (f = ngx_http_ai_guard_admin_fields; f->name; f++) {
            if (strcmp(root->u.object.keys[i], f->name) == 0) {
                break;
            }
        }

        if (f->name == NULL || !(allowed & f->bit)) {
            (void) ngx_http_ai_guard_admin_fail(b, "",
                                    f->name ? "the field \"%.64s\" cannot be "
                                              "set by this request"
                                            : "unknown field \"%.64s\"",
                                    root->u.object.keys[i]);
            yajl_tree_free(root);
            return -1;
        }

        /* a field twice would let one reader see the first, one the last */

        if (b->has & f->bit) {
            yajl_tree_free(root);
            return ngx_http_ai_guard_admin_fail(b, f->name,
                                                "the field \"%s\" is given "
                                                "twice", f->name);
        }

        b->has |= f->bit;

        if (ngx_http_ai_guard_admin_field(root->u.object.values[i], f->bit,
                                          f->name, b)
            != 0)
        {
            yajl_tree_free(root);
            return -1;
        }
    }

    yajl_tree_free(root);

    return 0;
}


static int
ngx_http_ai_guard_admin_field(yajl_val v, unsigned bit, const char *name,
    ngx_http_ai_guard_admin_body_t *b)
{
    size_t    i;
    yajl_val  m;

    switch (bit) {

    case NGX_HTTP_AI_GUARD_ADMIN_ID:
        if (ngx_http_ai_guard_admin_string(v, name,
                                           NGX_HTTP_AI_GUARD_ADMIN_MAX_ID,
                                           &b->id, b)
            != 0)
        {
            return -1;
        }

        if (!ngx_http_ai_guard_admin_id_valid(b->id.data, b->id.len)) {
            return ngx_http_ai_guard_admin_fail(b, name, "\"%s\" may hold "
                                                "only letters, digits, "
                                                "\".\", \"_\" and \"-\"",
                                                name);
        }

        return 0;

    case NGX_HTTP_AI_GUARD_ADMIN_TENANT:
        return ngx_http_ai_guard_admin_string(v, name,
                                              NGX_HTTP_AI_GUARD_ADMIN_MAX_STR,
                                              &b->tenant, b);

    case NGX_HTTP_AI_GUARD_ADMIN_TIER:
        return ngx_http_ai_guard_admin_string(v, name,
                                              NGX_HTTP_AI_GUARD_ADMIN_MAX_STR,
                                              &b->tier, b);

    case NGX_HTTP_AI_GUARD_ADMIN_CUSTOMER:
        return ngx_http_ai_guard_admin_string(v, name,
                                              NGX_HTTP_AI_GUARD_ADMIN_MAX_STR,
                                              &b->customer, b);

    case NGX_HTTP_AI_GUARD_ADMIN_MODELS:
        if (ngx_http_ai_guard_admin_many(v, name, 0,
                                         NGX_HTTP_AI_GUARD_ADMIN_MAX_MODELS, b)
            != 0)
        {
            return -1;
        }

        for (i = 0; i < v->u.array.len; i++) {
            m = v->u.array.values[i];

            if (ngx_http_ai_guard_admin_string(m, name,
                                               NGX_HTTP_AI_GUARD_ADMIN_MAX_STR,
                                               &b->models[i], b)
                != 0)
            {
                return -1;
            }
        }

        b->nmodels = v->u.array.len;

        return 0;

    case NGX_HTTP_AI_GUARD_ADMIN_EXPIRES:
        if (YAJL_IS_NULL(v)) {
            b->expires = 0;
            return 0;
        }

        if (!YAJL_IS_STRING(v)
            || ngx_http_ai_guard_parse_rfc3339((u_char *) v->u.string,
                                               strlen(v->u.string),
                                               &b->expires)
               != 0
            || b->expires <= 0)
        {
            return ngx_http_ai_guard_admin_fail(b, name, "\"%s\" must be an "
                                                "RFC 3339 time such as "
                                                "2027-01-01T00:00:00Z, or "
                                                "null", name);
        }

        return 0;

    case NGX_HTTP_AI_GUARD_ADMIN_DISABLED:
    case NGX_HTTP_AI_GUARD_ADMIN_DELETED:
        if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) {
            return ngx_http_ai_guard_admin_fail(b, name, "\"%s\" must be "
                                                "true or false", name);
        }

        if (bit == NGX_HTTP_AI_GUARD_ADMIN_DISABLED) {
            b->disabled = YAJL_IS_TRUE(v);

        } else {
            b->deleted = YAJL_IS_TRUE(v);
        }

        return 0;

    case NGX_HTTP_AI_GUARD_ADMIN_SEQ:
        return ngx_http_ai_guard_admin_number(v, name, INT64_MAX,
                                              (int64_t *) &b->seq, b);

    case NGX_HTTP_AI_GUARD_ADMIN_CREATED:
        return ngx_http_ai_guard_admin_number(v, name, INT64_MAX,
                                              &b->created, b);

    case NGX_HTTP_AI_GUARD_ADMIN_OLD_UNTIL:
        return ngx_http_ai_guard_admin_number(v, name, INT64_MAX,
                                              &b->old_until, b);

    case NGX_HTTP_AI_GUARD_ADMIN_SHA256:
        return ngx_http_ai_guard_admin_hex(v, name, b->digest, b);

    case NGX_HTTP_AI_GUARD_ADMIN_METADATA:
        return ngx_http_ai_guard_admin_metadata(v, name, b);

    case NGX_HTTP_AI_GUARD_ADMIN_OLD_SHA256:
        return ngx_http_ai_guard_admin_hex(v, name, b->old_digest, b);

    case NGX_HTTP_AI_GUARD_ADMIN_LIMITS:
        return ngx_http_ai_guard_admin_limits(v, b);

    default: /* NGX_HTTP_AI_GUARD_ADMIN_GRACE */

        if (ngx_http_ai_guard_admin_number(v, name,
                                           NGX_HTTP_AI_GUARD_ADMIN_MAX_GRACE,
                                           &b->grace, b)
            != 0)
        {
            return ngx_http_ai_guard_admin_fail(b, name, "\"%s\" must be a "
                                                "whole number of seconds "
                                                "from 0 to 2592000 (30 days)",
                                                name);
        }

        return 0;
    }
}


/*
 * "limits": an object of the limits of ai_guard_tier by their names, in
 * their units: counts are whole numbers from 1 to the largest a tier may
 * have, budgets are USD in a string ("20.00"), null removes one.  The
 * values are the client's: a name not known, a number of any other shape
 * (negative, fractional, huge, a string) is refused, never rounded.
 */

static int
ngx_http_ai_guard_admin_limits(yajl_val v, ngx_http_ai_guard_admin_body_t *b)
{
    size_t         i, len;
    int64_t        pico;
    unsigned       k, bit;
    yajl_val       m;
    const char    *name, *param;

    if (!YAJL_IS_OBJECT(v)) {
        return ngx_http_ai_guard_admin_fail(b, "limits", "\"limits\" must "
                                            "be an object such as "
                                            "{\"rpm\":60,\"budget_month\":"
                                            "\"20.00\"}%s", "");
    }

    for (i = 0; i < v->u.object.len; i++) {
        name = v->u.object.keys[i];
        m = v->u.object.values[i];

        for (k = 1; k < NGX_HTTP_AI_GUARD_LIMIT_NKINDS; k++) {
            if (strcmp(name, ngx_http_ai_guard_limit_name(k)) == 0) {
                break;
            }
        }

        if (k == NGX_HTTP_AI_GUARD_LIMIT_NKINDS) {
            return ngx_http_ai_guard_admin_fail(b, "limits",
                                    "unknown limit \"%.64s\" in \"limits\": "
                                    "the limits are rpm, rph, rpd, tpm, tph, "
                                    "tpd, tokens_month, concurrency, "
                                    "budget_day and budget_month", name);
        }

        bit = 1u << k;
        param = ngx_http_ai_guard_admin_limit_param[k];

        if ((b->limits_set | b->limits_null) & bit) {
            return ngx_http_ai_guard_admin_fail(b, param, "the field \"%s\" "
                                                "is given twice", param);
        }

        if (YAJL_IS_NULL(m)) {
            b->limits_null |= bit;
            b->limits[k] = 0;
            continue;
        }

        if (ngx_http_ai_guard_limit_unit(k) == 3) {
            len = YAJL_IS_STRING(m) ? strlen(m->u.string) : 0;

            if (len == 0 || len > 32
                || ngx_http_ai_guard_usd_parse((const u_char *) m->u.string,
                                               len, &pico)
                   != 0
                || pico <= 0 || pico > NGX_HTTP_AI_GUARD_ADMIN_MAX_USD)
            {
                return ngx_http_ai_guard_admin_fail(b, param, "\"%s\" must "
                                    "be USD in a string, above 0 and at most "
                                    "1000000, such as \"20.00\", or null",
                                    param);
            }

            b->limits[k] = (uint64_t) pico;

        } else {
            if (!YAJL_IS_INTEGER(m)
                || !(m->u.number.flags & YAJL_NUMBER_INT_VALID)
                || YAJL_GET_INTEGER(m) < 1
                || (uint64_t) YAJL_GET_INTEGER(m)
                   > NGX_HTTP_AI_GUARD_LIMIT_MAX)
            {
                return ngx_http_ai_guard_admin_fail(b, param, "\"%s\" must "
                                    "be a whole number from 1 to "
                                    "1000000000000, or null", param);
            }

            b->limits[k] = (uint64_t) YAJL_GET_INTEGER(m);
        }

        b->limits_set |= bit;
    }

    return 0;
}


/* a whole number from 0 to max */

static int
ngx_http_ai_guard_admin_number(yajl_val v, const char *name, int64_t max,
    int64_t *n, ngx_http_ai_guard_admin_body_t *b)
{
    if (!YAJL_IS_INTEGER(v)
        || !(v->u.number.flags & YAJL_NUMBER_INT_VALID)
        || YAJL_GET_INTEGER(v) < 0
        || YAJL_GET_INTEGER(v) > max)
    {
        return ngx_http_ai_guard_admin_fail(b, name, "\"%s\" must be a "
                                            "whole number, 0 or more", name);
    }

    *n = YAJL_GET_INTEGER(v);

    return 0;
}


/*
 * An object of at most 16 members, each a name and a string value of 1
 * to 128 bytes without control characters; no name twice (a reader that
 * kept the first and one that kept the last would disagree).
 */

static int
ngx_http_ai_guard_admin_metadata(yajl_val v, const char *name,
    ngx_http_ai_guard_admin_body_t *b)
{
    size_t                          i, j, len;
    struct yajl_val_s               key;
    ngx_http_ai_guard_admin_str_t  *s;

    if (ngx_http_ai_guard_admin_many(v, name, 1,
                                     NGX_HTTP_AI_GUARD_ADMIN_MAX_META, b)
        != 0)
    {
        return -1;
    }

    key.type = yajl_t_string;

    for (i = 0; i < v->u.object.len; i++) {
        s = &b->meta[2 * i];
        key.u.string = (char *) v->u.object.keys[i];

        if (ngx_http_ai_guard_admin_string(&key, name,
                                           NGX_HTTP_AI_GUARD_ADMIN_MAX_STR,
                                           &s[0], b)
            != 0
            || ngx_http_ai_guard_admin_string(v->u.object.values[i], name,
                                              NGX_HTTP_AI_GUARD_ADMIN_MAX_STR,
                                              &s[1], b)
               != 0)
        {
            return -1;
        }

        len = s[0].len;

        for (j = 0; j < i; j++) {
            if (b->meta[2 * j].len == len
                && memcmp(b->meta[2 * j].data, s[0].data, len) == 0)
            {
                return ngx_http_ai_guard_admin_fail(b, name, "\"%s\" has a "
                                                    "member twice", name);
            }
        }
    }

    b->nmeta = v->u.object.len;

    return 0;
}


/* an array (the models) or an object (the metadata) of at most max */

static int
ngx_http_ai_guard_admin_many(yajl_val v, const char *name, int object,
    size_t max, ngx_http_ai_guard_admin_body_t *b)
{
    if (object ? !YAJL_IS_OBJECT(v) : !YAJL_IS_ARRAY(v)) {
        return ngx_http_ai_guard_admin_fail(b, name,
                                            object ? "\"%s\" must be an "
                                                     "object of strings"
                                                   : "\"%s\" must be an "
                                                     "array of strings",
                                            name);
    }

    if ((object ? v->u.object.len : v->u.array.len) > max) {
        return ngx_http_ai_guard_admin_fail(b, name,
                                            object ? "\"%s\" may hold at "
                                                     "most 16 members"
                                                   : "\"%s\" may hold at "
                                                     "most 16 patterns",
                                            name);
    }

    return 0;
}


/* 64 hex digits: a SHA-256 digest */

static int
ngx_http_ai_guard_admin_hex(yajl_val v, const char *name, u_char *digest,
    ngx_http_ai_guard_admin_body_t *b)
{
    size_t         i;
    u_char         c, d;
    const u_char  *p;

    p = YAJL_IS_STRING(v) ? (const u_char *) v->u.string : NULL;

    if (p == NULL
        || strlen((const char *) p) != 2 * NGX_HTTP_AI_GUARD_ADMIN_DIGEST_LEN)
    {
        goto invalid;
    }

    for (i = 0; i < 2 * NGX_HTTP_AI_GUARD_ADMIN_DIGEST_LEN; i++) {
        c = p[i];

        if (c >= '0' && c <= '9') {
            d = c - '0';

        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;

        } else {
            goto invalid;
        }

        if (i % 2 == 0) {
            digest[i / 2] = (u_char) (d << 4);

        } else {
            digest[i / 2] |= d;
        }
    }

    return 0;

invalid:

    return ngx_http_ai_guard_admin_fail(b, name, "\"%s\" must be 64 "
                                        "lowercase hex digits", name);
}


/* a string of 1 to max bytes, none of them a control character */

static int
ngx_http_ai_guard_admin_string(yajl_val v, const char *name, size_t max,
    ngx_http_ai_guard_admin_str_t *s, ngx_http_ai_guard_admin_body_t *b)
{
    size_t          i, len;
    const u_char   *p;

    if (!YAJL_IS_STRING(v)) {
        return ngx_http_ai_guard_admin_fail(b, name, "\"%s\" must be a "
                                            "string", name);
    }

    p = (const u_char *) v->u.string;
    len = strlen(v->u.string);

    if (len == 0 || len > max) {
        snprintf(b->error, sizeof(b->error), "\"%s\" must be 1 to %zu "
                 "bytes long", name, max);
        b->param = name;
        return -1;
    }

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return ngx_http_ai_guard_admin_fail(b, name, "\"%s\" holds a "
                                                "control character", name);
        }
    }

    memcpy(s->data, p, len);
    s->len = len;

    return 0;
}


int
ngx_http_ai_guard_admin_id_valid(const u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > NGX_HTTP_AI_GUARD_ADMIN_MAX_ID) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z')
              || (p[i] >= '0' && p[i] <= '9')
              || p[i] == '.' || p[i] == '_' || p[i] == '-'))
        {
            return 0;
        }
    }

    return 1;
}


size_t
ngx_http_ai_guard_admin_base62(u_char *out, size_t want, const u_char *rnd,
    size_t n)
{
    size_t  i, k;

    static const char  alphabet[] = "0123456789"
                                    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                    "abcdefghijklmnopqrstuvwxyz";

    k = 0;

    for (i = 0; i < n && k < want; i++) {

        /* 248 = 4 * 62: the bytes above would favour the first symbols */

        if (rnd[i] >= 248) {
            continue;
        }

        out[k++] = alphabet[rnd[i] % 62];
    }

    return k;
}


static int
ngx_http_ai_guard_admin_fail(ngx_http_ai_guard_admin_body_t *b,
    const char *param, const char *fmt, const char *arg)
{
    snprintf(b->error, sizeof(b->error), fmt, arg);
    b->param = param;

    return -1;
}


/* "\u0000" anywhere (a "\\u0000" too: the body is refused, never cut) */

static int
ngx_http_ai_guard_admin_nul(const u_char *p, size_t len)
{
    size_t  i;

    for (i = 0; i + 6 <= len; i++) {
        if (p[i] == '\\' && (p[i + 1] == 'u' || p[i + 1] == 'U')
            && memcmp(p + i + 2, "0000", 4) == 0)
        {
            return 1;
        }
    }

    return 0;
}
