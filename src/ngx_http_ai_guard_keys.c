
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <yajl/yajl_parse.h>

#include "ngx_http_ai_guard_date.h"
#include "ngx_http_ai_guard_keys.h"


#define NGX_HTTP_AI_GUARD_KEYS_MAX_MODELS  64


typedef enum {
    NGX_HTTP_AI_GUARD_KF_NONE = 0,
    NGX_HTTP_AI_GUARD_KF_ID,
    NGX_HTTP_AI_GUARD_KF_SHA256,
    NGX_HTTP_AI_GUARD_KF_TENANT,
    NGX_HTTP_AI_GUARD_KF_TIER,
    NGX_HTTP_AI_GUARD_KF_MODELS,
    NGX_HTTP_AI_GUARD_KF_EXPIRES,
    NGX_HTTP_AI_GUARD_KF_DISABLED,
    NGX_HTTP_AI_GUARD_KF_STRIPE
} ngx_http_ai_guard_kf_e;


struct ngx_http_ai_guard_keys_parser_s {
    yajl_handle                  yajl;
    ngx_http_ai_guard_alloc_pt   alloc;
    void                        *pool;

    ngx_http_ai_guard_key_t     *first;
    ngx_http_ai_guard_key_t     *last;
    ngx_http_ai_guard_key_t     *key;
    size_t                       nkeys;

    ngx_http_ai_guard_str_t      models[NGX_HTTP_AI_GUARD_KEYS_MAX_MODELS];
    size_t                       nmodels;

    /* depth 1: the top object, 2: the "keys" array, 3: an entry */
    unsigned                     depth;
    unsigned                     skip;         /* depth a skip began at */
    unsigned                     in_keys:1;
    unsigned                     seen_keys:1;
    unsigned                     has_sha:1;
    ngx_http_ai_guard_kf_e       field;

    /* where the parser is: lines are counted up to it, once */
    const u_char                *chunk;       /* the buffer being parsed */
    size_t                       scanned;     /* of it, counted */
    size_t                       offset;      /* of the chunk in the file */
    size_t                       line;        /* from 1 */
    size_t                       line_start;  /* offset of that line */

    size_t                       err_line;    /* 0: not at a line */
    size_t                       err_column;  /* 0: not at a column */
    char                         err[NGX_HTTP_AI_GUARD_KEYS_ERRLEN];
};


static void ngx_http_ai_guard_keys_count(ngx_http_ai_guard_keys_parser_t *kp,
    size_t pos);
static int ngx_http_ai_guard_keys_fail(ngx_http_ai_guard_keys_parser_t *kp,
    const char *fmt, ...);
static void ngx_http_ai_guard_keys_json_error(
    ngx_http_ai_guard_keys_parser_t *kp, const u_char *p, size_t len);
static int ngx_http_ai_guard_keys_unique_ids(
    ngx_http_ai_guard_keys_parser_t *kp);
static int ngx_http_ai_guard_keys_value(ngx_http_ai_guard_keys_parser_t *kp,
    const char *type);
static int ngx_http_ai_guard_keys_null(void *ctx);
static int ngx_http_ai_guard_keys_boolean(void *ctx, int b);
static int ngx_http_ai_guard_keys_number(void *ctx, const char *s,
    size_t len);
static int ngx_http_ai_guard_keys_string(void *ctx, const u_char *s,
    size_t len);
static int ngx_http_ai_guard_keys_start_map(void *ctx);
static int ngx_http_ai_guard_keys_map_key(void *ctx, const u_char *s,
    size_t len);
static int ngx_http_ai_guard_keys_end_map(void *ctx);
static int ngx_http_ai_guard_keys_start_array(void *ctx);
static int ngx_http_ai_guard_keys_end_array(void *ctx);
static int ngx_http_ai_guard_keys_dup(ngx_http_ai_guard_keys_parser_t *kp,
    ngx_http_ai_guard_str_t *dst, const u_char *s, size_t len);
static int ngx_http_ai_guard_hex_digest(const u_char *s, size_t len,
    u_char *digest);


static yajl_callbacks  ngx_http_ai_guard_keys_callbacks = {
    ngx_http_ai_guard_keys_null,
    ngx_http_ai_guard_keys_boolean,
    NULL,
    NULL,
    ngx_http_ai_guard_keys_number,
    ngx_http_ai_guard_keys_string,
    ngx_http_ai_guard_keys_start_map,
    ngx_http_ai_guard_keys_map_key,
    ngx_http_ai_guard_keys_end_map,
    ngx_http_ai_guard_keys_start_array,
    ngx_http_ai_guard_keys_end_array
};


ngx_http_ai_guard_keys_parser_t *
ngx_http_ai_guard_keys_parser_create(ngx_http_ai_guard_alloc_pt alloc,
    void *pool)
{
    ngx_http_ai_guard_keys_parser_t  *kp;

    kp = alloc(pool, sizeof(ngx_http_ai_guard_keys_parser_t));
    if (kp == NULL) {
        return NULL;
    }

    memset(kp, 0, sizeof(ngx_http_ai_guard_keys_parser_t));

    kp->alloc = alloc;
    kp->pool = pool;
    kp->line = 1;

    kp->yajl = yajl_alloc(&ngx_http_ai_guard_keys_callbacks, NULL, kp);
    if (kp->yajl == NULL) {
        return NULL;
    }

    return kp;
}


void
ngx_http_ai_guard_keys_parser_free(ngx_http_ai_guard_keys_parser_t *kp)
{
    if (kp != NULL && kp->yajl != NULL) {
        yajl_free(kp->yajl);
        kp->yajl = NULL;
    }
}


int
ngx_http_ai_guard_keys_parse(ngx_http_ai_guard_keys_parser_t *kp,
    const u_char *p, size_t len)
{
    yajl_status  rc;

    kp->chunk = p;
    kp->scanned = 0;

    rc = yajl_parse(kp->yajl, p, len);

    if (rc == yajl_status_ok) {
        ngx_http_ai_guard_keys_count(kp, len);
        kp->offset += len;
        kp->chunk = NULL;
        return 0;
    }

    if (kp->err[0] == '\0') {
        ngx_http_ai_guard_keys_json_error(kp, p, len);
    }

    kp->chunk = NULL;

    return -1;
}


/* the lines up to "pos" of the chunk being parsed: each byte once */

static void
ngx_http_ai_guard_keys_count(ngx_http_ai_guard_keys_parser_t *kp,
    size_t pos)
{
    const u_char  *p, *last, *nl;

    if (kp->chunk == NULL || pos <= kp->scanned) {
        return;
    }

    p = kp->chunk + kp->scanned;
    last = kp->chunk + pos;

    while ((nl = memchr(p, '\n', last - p)) != NULL) {
        kp->line++;
        kp->line_start = kp->offset + (nl - kp->chunk) + 1;
        p = nl + 1;
    }

    kp->scanned = pos;
}


/*
 * yajl's message, where it stopped, and no newline of its own: the
 * caller's log adds one.
 */

static void
ngx_http_ai_guard_keys_json_error(ngx_http_ai_guard_keys_parser_t *kp,
    const u_char *p, size_t len)
{
    size_t   n, pos;
    u_char  *msg;

    pos = p ? yajl_get_bytes_consumed(kp->yajl) : 0;

    if (p && pos <= len) {
        ngx_http_ai_guard_keys_count(kp, pos);
        kp->err_column = kp->offset + pos - kp->line_start + 1;

    } else {
        /* the end of the file: what it lacks */
        kp->err_column = kp->offset - kp->line_start + 1;
    }

    kp->err_line = kp->line;

    msg = yajl_get_error(kp->yajl, 0, p, len);

    n = (msg != NULL) ? strlen((char *) msg) : 0;

    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '
                 || msg[n - 1] == '.'))
    {
        n--;
    }

    snprintf(kp->err, sizeof(kp->err), "invalid JSON: %.*s", (int) n,
             msg ? (char *) msg : "");

    if (msg != NULL) {
        yajl_free_error(kp->yajl, msg);
    }
}


ngx_http_ai_guard_keys_t *
ngx_http_ai_guard_keys_finish(ngx_http_ai_guard_keys_parser_t *kp)
{
    size_t                     n, i, mask;
    ngx_http_ai_guard_key_t   *k, **slots;
    ngx_http_ai_guard_keys_t  *keys;

    if (yajl_complete_parse(kp->yajl) != yajl_status_ok) {
        if (kp->err[0] == '\0') {
            ngx_http_ai_guard_keys_json_error(kp, NULL, 0);
        }

        return NULL;
    }

    if (!kp->seen_keys) {
        ngx_http_ai_guard_keys_fail(kp, "no \"keys\" array: the file is "
                                    "{\"keys\": [{\"id\": ..., "
                                    "\"sha256\": ...}, ...]}");
        return NULL;
    }

    if (ngx_http_ai_guard_keys_unique_ids(kp) != 0) {
        return NULL;
    }

    /* a power of two at least twice the keys: short probe sequences */

    for (n = 16; n < kp->nkeys * 2; n <<= 1) { /* void */ }

    mask = n - 1;

    slots = kp->alloc(kp->pool, n * sizeof(ngx_http_ai_guard_key_t *));
    keys = kp->alloc(kp->pool, sizeof(ngx_http_ai_guard_keys_t));
    if (slots == NULL || keys == NULL) {
        ngx_http_ai_guard_keys_fail(kp, "out of memory");
        return NULL;
    }

    memset(slots, 0, n * sizeof(ngx_http_ai_guard_key_t *));

    for (k = kp->first; k; k = k->next) {

        /* digests are uniform: their first bytes are a fine hash */

        memcpy(&i, k->digest, sizeof(size_t));

        for (i &= mask; slots[i]; i = (i + 1) & mask) {
            if (memcmp(slots[i]->digest, k->digest,
                       NGX_HTTP_AI_GUARD_DIGEST_LEN) == 0)
            {
                kp->err_line = k->line;
                ngx_http_ai_guard_keys_fail(kp,
                             "entry %zu (\"%.*s\"): duplicate sha256, "
                             "the same as entry %zu (\"%.*s\") at line %zu",
                             k->index, (int) k->id.len, k->id.data,
                             slots[i]->index, (int) slots[i]->id.len,
                             slots[i]->id.data, slots[i]->line);
                return NULL;
            }
        }

        slots[i] = k;
    }

    keys->slots = slots;
    keys->mask = mask;
    keys->nkeys = kp->nkeys;
    keys->first = kp->first;

    return keys;
}


/*
 * Ids name keys in the reports and the log: two entries of one id would
 * make them ambiguous.  A table of the ids' hashes, for this check only.
 */

static int
ngx_http_ai_guard_keys_unique_ids(ngx_http_ai_guard_keys_parser_t *kp)
{
    size_t                     n, i, j, mask;
    uint64_t                   h;
    ngx_http_ai_guard_key_t   *k, *o, **slots;

    for (n = 16; n < kp->nkeys * 2; n <<= 1) { /* void */ }

    mask = n - 1;

    slots = calloc(n, sizeof(ngx_http_ai_guard_key_t *));
    if (slots == NULL) {
        ngx_http_ai_guard_keys_fail(kp, "out of memory");
        return -1;
    }

    for (k = kp->first; k; k = k->next) {

        /* FNV-1a */

        h = 14695981039346656037ULL;

        for (j = 0; j < k->id.len; j++) {
            h = (h ^ k->id.data[j]) * 1099511628211ULL;
        }

        for (i = (size_t) h & mask; (o = slots[i]) != NULL;
             i = (i + 1) & mask)
        {
            if (o->id.len == k->id.len
                && memcmp(o->id.data, k->id.data, k->id.len) == 0)
            {
                kp->err_line = k->line;
                ngx_http_ai_guard_keys_fail(kp,
                             "entry %zu: duplicate id \"%.*s\", the same as "
                             "entry %zu at line %zu: ids must be unique",
                             k->index, (int) k->id.len, k->id.data,
                             o->index, o->line);
                free(slots);
                return -1;
            }
        }

        slots[i] = k;
    }

    free(slots);

    return 0;
}


const char *
ngx_http_ai_guard_keys_error(ngx_http_ai_guard_keys_parser_t *kp)
{
    return kp->err[0] ? kp->err : "unknown error";
}


/* the line (from 1) of the error, 0 when it has none; and its column */

size_t
ngx_http_ai_guard_keys_error_line(ngx_http_ai_guard_keys_parser_t *kp,
    size_t *column)
{
    *column = kp->err_column;

    return kp->err_line;
}


ngx_http_ai_guard_key_t *
ngx_http_ai_guard_keys_lookup(ngx_http_ai_guard_keys_t *keys,
    const u_char *digest)
{
    size_t                    i;
    ngx_http_ai_guard_key_t  *k;

    memcpy(&i, digest, sizeof(size_t));

    for (i &= keys->mask; (k = keys->slots[i]) != NULL;
         i = (i + 1) & keys->mask)
    {
        if (memcmp(k->digest, digest, sizeof(size_t)) == 0) {
            /* the caller compares all of the digest in constant time */
            return k;
        }
    }

    return NULL;
}


static int
ngx_http_ai_guard_keys_fail(ngx_http_ai_guard_keys_parser_t *kp,
    const char *fmt, ...)
{
    va_list  args;

    if (kp->err[0] == '\0') {
        va_start(args, fmt);
        vsnprintf(kp->err, sizeof(kp->err), fmt, args);
        va_end(args);

        /* in a callback: the token that failed ends here */

        if (kp->chunk && kp->err_line == 0) {
            ngx_http_ai_guard_keys_count(kp,
                                         yajl_get_bytes_consumed(kp->yajl));
            kp->err_line = kp->line;
        }
    }

    return 0;
}


/*
 * A value other than the one expected: inside an entry it is an error
 * when the field is known; anywhere else it is skipped.
 */

static int
ngx_http_ai_guard_keys_value(ngx_http_ai_guard_keys_parser_t *kp,
    const char *type)
{
    static const char  *names[] = {
        "", "id", "sha256", "tenant", "tier", "models", "expires",
        "disabled", "stripe_customer"
    };

    if (kp->skip) {
        return 1;
    }

    if (kp->depth == 2 && kp->in_keys) {
        return ngx_http_ai_guard_keys_fail(kp, "entry %zu: %s, not an object",
                                           kp->nkeys + 1, type);
    }

    if (kp->depth == 3 && kp->field != NGX_HTTP_AI_GUARD_KF_NONE) {
        return ngx_http_ai_guard_keys_fail(kp, "entry %zu: \"%s\" is %s",
                                           kp->nkeys, names[kp->field],
                                           type);
    }

    if (kp->depth == 4) {
        return ngx_http_ai_guard_keys_fail(kp,
                                      "entry %zu: \"models\" has %s, "
                                      "not a string", kp->nkeys, type);
    }

    if (kp->depth == 0) {
        return ngx_http_ai_guard_keys_fail(kp, "the file is %s, "
                                           "not an object", type);
    }

    return 1;
}


static int
ngx_http_ai_guard_keys_null(void *ctx)
{
    ngx_http_ai_guard_keys_parser_t  *kp = ctx;

    if (kp->depth == 3 && !kp->skip) {
        /* null is "not set" for every optional field */
        if (kp->field == NGX_HTTP_AI_GUARD_KF_ID
            || kp->field == NGX_HTTP_AI_GUARD_KF_SHA256)
        {
            return ngx_http_ai_guard_keys_value(kp, "null");
        }

        return 1;
    }

    return ngx_http_ai_guard_keys_value(kp, "null");
}


static int
ngx_http_ai_guard_keys_boolean(void *ctx, int b)
{
    ngx_http_ai_guard_keys_parser_t  *kp = ctx;

    if (kp->depth == 3 && !kp->skip
        && kp->field == NGX_HTTP_AI_GUARD_KF_DISABLED)
    {
        kp->key->disabled = b ? 1 : 0;
        return 1;
    }

    return ngx_http_ai_guard_keys_value(kp, "a boolean");
}


static int
ngx_http_ai_guard_keys_number(void *ctx, const char *s, size_t len)
{
    return ngx_http_ai_guard_keys_value(ctx, "a number");
}


static int
ngx_http_ai_guard_keys_string(void *ctx, const u_char *s, size_t len)
{
    ngx_http_ai_guard_keys_parser_t  *kp = ctx;

    ngx_http_ai_guard_key_t  *k;

    if (kp->skip) {
        return 1;
    }

    if (kp->depth == 4) {
        if (kp->nmodels == NGX_HTTP_AI_GUARD_KEYS_MAX_MODELS) {
            return ngx_http_ai_guard_keys_fail(kp,
                                  "entry %zu: more than %d \"models\"",
                                  kp->nkeys, NGX_HTTP_AI_GUARD_KEYS_MAX_MODELS);
        }

        return ngx_http_ai_guard_keys_dup(kp, &kp->models[kp->nmodels++],
                                          s, len);
    }

    if (kp->depth != 3) {
        return ngx_http_ai_guard_keys_value(kp, "a string");
    }

    k = kp->key;

    if (len > NGX_HTTP_AI_GUARD_KEYS_MAX_FIELD) {
        return ngx_http_ai_guard_keys_fail(kp, "entry %zu: a value longer "
                                           "than %d bytes", kp->nkeys,
                                           NGX_HTTP_AI_GUARD_KEYS_MAX_FIELD);
    }

    switch (kp->field) {

    case NGX_HTTP_AI_GUARD_KF_ID:
        if (len == 0) {
            return ngx_http_ai_guard_keys_fail(kp, "entry %zu: empty \"id\"",
                                               kp->nkeys);
        }

        return ngx_http_ai_guard_keys_dup(kp, &k->id, s, len);

    case NGX_HTTP_AI_GUARD_KF_SHA256:
        if (ngx_http_ai_guard_hex_digest(s, len, k->digest) != 0) {
            return ngx_http_ai_guard_keys_fail(kp, "entry %zu: \"sha256\" "
                                               "must be 64 hex digits",
                                               kp->nkeys);
        }

        kp->has_sha = 1;
        return 1;

    case NGX_HTTP_AI_GUARD_KF_TENANT:
        return ngx_http_ai_guard_keys_dup(kp, &k->tenant, s, len);

    case NGX_HTTP_AI_GUARD_KF_TIER:
        return ngx_http_ai_guard_keys_dup(kp, &k->tier, s, len);

    case NGX_HTTP_AI_GUARD_KF_STRIPE:
        return ngx_http_ai_guard_keys_dup(kp, &k->stripe_customer, s, len);

    case NGX_HTTP_AI_GUARD_KF_EXPIRES:
        if (ngx_http_ai_guard_parse_rfc3339(s, len, &k->expires) != 0) {
            return ngx_http_ai_guard_keys_fail(kp, "entry %zu: \"expires\" "
                                               "is not an RFC 3339 date "
                                               "such as 2027-01-01T00:00:00Z",
                                               kp->nkeys);
        }

        return 1;

    case NGX_HTTP_AI_GUARD_KF_MODELS:
        /* a single glob is accepted as a one-element list */
        kp->nmodels = 0;
        if (ngx_http_ai_guard_keys_dup(kp, &kp->models[0], s, len) == 0) {
            return 0;
        }

        kp->nmodels = 1;
        return ngx_http_ai_guard_keys_end_array(kp);

    case NGX_HTTP_AI_GUARD_KF_DISABLED:
        return ngx_http_ai_guard_keys_value(kp, "a string");

    default:
        return 1;
    }
}


static int
ngx_http_ai_guard_keys_start_map(void *ctx)
{
    ngx_http_ai_guard_keys_parser_t  *kp = ctx;

    ngx_http_ai_guard_key_t  *k;

    if (kp->skip || kp->depth == 1 || kp->depth >= 3 || !kp->in_keys) {

        if (kp->depth == 0) {
            kp->depth = 1;
            return 1;
        }

        if (!kp->skip) {
            if (kp->depth == 3
                && kp->field != NGX_HTTP_AI_GUARD_KF_NONE)
            {
                return ngx_http_ai_guard_keys_value(kp, "an object");
            }

            if (kp->depth == 4) {
                return ngx_http_ai_guard_keys_value(kp, "an object");
            }

            kp->skip = kp->depth + 1;
        }

        kp->depth++;
        return 1;
    }

    /* depth 2 inside "keys": a new entry */

    k = kp->alloc(kp->pool, sizeof(ngx_http_ai_guard_key_t));
    if (k == NULL) {
        return ngx_http_ai_guard_keys_fail(kp, "out of memory");
    }

    memset(k, 0, sizeof(ngx_http_ai_guard_key_t));

    k->index = ++kp->nkeys;

    ngx_http_ai_guard_keys_count(kp, yajl_get_bytes_consumed(kp->yajl));
    k->line = kp->line;

    if (kp->last) {
        kp->last->next = k;

    } else {
        kp->first = k;
    }

    kp->last = k;
    kp->key = k;
    kp->has_sha = 0;
    kp->field = NGX_HTTP_AI_GUARD_KF_NONE;
    kp->depth = 3;

    return 1;
}


static int
ngx_http_ai_guard_keys_map_key(void *ctx, const u_char *s, size_t len)
{
    ngx_http_ai_guard_keys_parser_t  *kp = ctx;

    static const struct {
        const char              *name;
        ngx_http_ai_guard_kf_e   field;
    } fields[] = {
        { "id", NGX_HTTP_AI_GUARD_KF_ID },
        { "sha256", NGX_HTTP_AI_GUARD_KF_SHA256 },
        { "tenant", NGX_HTTP_AI_GUARD_KF_TENANT },
        { "tier", NGX_HTTP_AI_GUARD_KF_TIER },
        { "models", NGX_HTTP_AI_GUARD_KF_MODELS },
        { "expires", NGX_HTTP_AI_GUARD_KF_EXPIRES },
        { "disabled", NGX_HTTP_AI_GUARD_KF_DISABLED },
        { "stripe_customer", NGX_HTTP_AI_GUARD_KF_STRIPE },
        { NULL, NGX_HTTP_AI_GUARD_KF_NONE }
    };

    size_t  i;

    if (kp->skip) {
        return 1;
    }

    if (kp->depth == 1) {
        kp->in_keys = (len == 4 && memcmp(s, "keys", 4) == 0);
        return 1;
    }

    /* depth 3: a field of an entry; unknown fields are skipped */

    kp->field = NGX_HTTP_AI_GUARD_KF_NONE;

    for (i = 0; fields[i].name; i++) {
        if (strlen(fields[i].name) == len
            && memcmp(fields[i].name, s, len) == 0)
        {
            kp->field = fields[i].field;
            break;
        }
    }

    return 1;
}


static int
ngx_http_ai_guard_keys_end_map(void *ctx)
{
    ngx_http_ai_guard_keys_parser_t  *kp = ctx;

    ngx_http_ai_guard_key_t  *k;

    kp->depth--;

    if (kp->skip) {
        if (kp->depth < kp->skip) {
            kp->skip = 0;
        }

        return 1;
    }

    if (kp->depth != 2) {
        return 1;
    }

    /* the end of an entry */

    k = kp->key;

    if (k->id.len == 0) {
        return ngx_http_ai_guard_keys_fail(kp, "entry %zu: no \"id\"",
                                           k->index);
    }

    if (!kp->has_sha) {
        return ngx_http_ai_guard_keys_fail(kp, "entry %zu (\"%.*s\"): "
                                           "no \"sha256\"", k->index,
                                           (int) k->id.len, k->id.data);
    }

    if (k->tenant.len == 0) {
        /* a key of no tenant is a tenant of its own */
        k->tenant = k->id;
    }

    kp->field = NGX_HTTP_AI_GUARD_KF_NONE;

    return 1;
}


static int
ngx_http_ai_guard_keys_start_array(void *ctx)
{
    ngx_http_ai_guard_keys_parser_t  *kp = ctx;

    if (kp->skip) {
        kp->depth++;
        return 1;
    }

    if (kp->depth == 1 && kp->in_keys) {
        kp->seen_keys = 1;
        kp->depth = 2;
        return 1;
    }

    if (kp->depth == 3 && kp->field == NGX_HTTP_AI_GUARD_KF_MODELS) {
        kp->nmodels = 0;
        kp->depth = 4;
        return 1;
    }

    if (kp->depth == 0 || kp->depth == 4
        || (kp->depth == 3 && kp->field != NGX_HTTP_AI_GUARD_KF_NONE)
        || (kp->depth == 2 && kp->in_keys))
    {
        return ngx_http_ai_guard_keys_value(kp, "an array");
    }

    kp->skip = kp->depth + 1;
    kp->depth++;

    return 1;
}


static int
ngx_http_ai_guard_keys_end_array(void *ctx)
{
    ngx_http_ai_guard_keys_parser_t  *kp = ctx;

    size_t                    size;
    ngx_http_ai_guard_key_t  *k;

    if (kp->skip) {
        kp->depth--;

        if (kp->depth < kp->skip) {
            kp->skip = 0;
        }

        return 1;
    }

    if (kp->depth == 2) {
        kp->in_keys = 0;
        kp->depth = 1;
        return 1;
    }

    if (kp->depth == 4 || kp->field == NGX_HTTP_AI_GUARD_KF_MODELS) {
        k = kp->key;
        size = kp->nmodels * sizeof(ngx_http_ai_guard_str_t);

        if (kp->nmodels) {
            k->models = kp->alloc(kp->pool, size);
            if (k->models == NULL) {
                return ngx_http_ai_guard_keys_fail(kp, "out of memory");
            }

            memcpy(k->models, kp->models, size);
        }

        /* an empty list allows no model at all, as it says */
        k->nmodels = kp->nmodels;
        k->has_models = 1;
        kp->depth = 3;
        return 1;
    }

    kp->depth--;

    return 1;
}


static int
ngx_http_ai_guard_keys_dup(ngx_http_ai_guard_keys_parser_t *kp,
    ngx_http_ai_guard_str_t *dst, const u_char *s, size_t len)
{
    dst->data = kp->alloc(kp->pool, len + 1);
    if (dst->data == NULL) {
        return ngx_http_ai_guard_keys_fail(kp, "out of memory");
    }

    memcpy(dst->data, s, len);
    dst->data[len] = '\0';
    dst->len = len;

    return 1;
}


static int
ngx_http_ai_guard_hex_digest(const u_char *s, size_t len, u_char *digest)
{
    size_t  i;
    u_char  c, v;

    if (len != 2 * NGX_HTTP_AI_GUARD_DIGEST_LEN) {
        return -1;
    }

    for (i = 0; i < len; i++) {
        c = s[i];

        if (c >= '0' && c <= '9') {
            v = c - '0';

        } else {
            c |= 0x20;

            if (c >= 'a' && c <= 'f') {
                v = c - 'a' + 10;

            } else {
                return -1;
            }
        }

        if (i & 1) {
            digest[i / 2] |= v;

        } else {
            digest[i / 2] = v << 4;
        }
    }

    return 0;
}


static int
ngx_http_ai_guard_digits(const u_char *p, size_t n, int *v)
{
    size_t  i;

    *v = 0;

    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return -1;
        }

        *v = *v * 10 + (p[i] - '0');
    }

    return 0;
}


int
ngx_http_ai_guard_parse_rfc3339(const u_char *p, size_t len, int64_t *t)
{
    int            y, mo, d, h, mi, s, oh, om, mdays;
    int64_t        off;
    const u_char  *end;

    static const int  days[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
                                 30, 31 };

    /* YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */

    end = p + len;

    if (len < 20
        || ngx_http_ai_guard_digits(p, 4, &y) != 0 || p[4] != '-'
        || ngx_http_ai_guard_digits(p + 5, 2, &mo) != 0 || p[7] != '-'
        || ngx_http_ai_guard_digits(p + 8, 2, &d) != 0
        || (p[10] != 'T' && p[10] != 't' && p[10] != ' ')
        || ngx_http_ai_guard_digits(p + 11, 2, &h) != 0 || p[13] != ':'
        || ngx_http_ai_guard_digits(p + 14, 2, &mi) != 0 || p[16] != ':'
        || ngx_http_ai_guard_digits(p + 17, 2, &s) != 0)
    {
        return -1;
    }

    if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 60) {
        return -1;
    }

    mdays = days[mo - 1];

    if (mo == 2 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0))) {
        mdays = 28;
    }

    if (d > mdays) {
        return -1;
    }

    p += 19;

    if (p < end && *p == '.') {
        for (p++; p < end && *p >= '0' && *p <= '9'; p++) { /* void */ }
    }

    if (p == end) {
        return -1;
    }

    if ((*p == 'Z' || *p == 'z') && p + 1 == end) {
        off = 0;

    } else if ((*p == '+' || *p == '-') && end - p == 6 && p[3] == ':'
               && ngx_http_ai_guard_digits(p + 1, 2, &oh) == 0
               && ngx_http_ai_guard_digits(p + 4, 2, &om) == 0
               && oh < 24 && om < 60)
    {
        off = (oh * 60 + om) * 60;
        off = (*p == '+') ? off : -off;

    } else {
        return -1;
    }

    *t = ngx_http_ai_guard_days_from_civil(y, mo, d) * 86400
         + h * 3600 + mi * 60 + s - off;

    return 0;
}
