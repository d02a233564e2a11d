
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_ADMIN_BODY_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_ADMIN_BODY_H_INCLUDED_


/*
 * The body of an admin API request (docs/admin.md): a JSON object of
 * known fields, each bounded, copied into the struct.  Pure code: the
 * admin's bytes are parsed here, where unit tests and fuzzing reach them.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "ngx_http_ai_guard_limit.h"


#define NGX_HTTP_AI_GUARD_ADMIN_MAX_BODY    16384
#define NGX_HTTP_AI_GUARD_ADMIN_MAX_ID      64
#define NGX_HTTP_AI_GUARD_ADMIN_MAX_STR     128
#define NGX_HTTP_AI_GUARD_ADMIN_MAX_MODELS  16
#define NGX_HTTP_AI_GUARD_ADMIN_MAX_META    16
#define NGX_HTTP_AI_GUARD_ADMIN_MAX_GRACE   (30 * 86400)

/* a key's own budget: USD above 0, at most a million (pico-USD) */
#define NGX_HTTP_AI_GUARD_ADMIN_MAX_USD     1000000000000000000LL

/* the fields, as bits of "has" */
#define NGX_HTTP_AI_GUARD_ADMIN_ID          0x01
#define NGX_HTTP_AI_GUARD_ADMIN_TENANT      0x02
#define NGX_HTTP_AI_GUARD_ADMIN_TIER        0x04
#define NGX_HTTP_AI_GUARD_ADMIN_MODELS      0x08
#define NGX_HTTP_AI_GUARD_ADMIN_EXPIRES     0x10
#define NGX_HTTP_AI_GUARD_ADMIN_DISABLED    0x20
#define NGX_HTTP_AI_GUARD_ADMIN_CUSTOMER    0x40
#define NGX_HTTP_AI_GUARD_ADMIN_GRACE       0x80
#define NGX_HTTP_AI_GUARD_ADMIN_LIMITS      0x4000
#define NGX_HTTP_AI_GUARD_ADMIN_METADATA    0x8000

/* the fields of the store's own files only (docs/admin.md, durable) */
#define NGX_HTTP_AI_GUARD_ADMIN_SEQ         0x100
#define NGX_HTTP_AI_GUARD_ADMIN_CREATED     0x200
#define NGX_HTTP_AI_GUARD_ADMIN_SHA256      0x400
#define NGX_HTTP_AI_GUARD_ADMIN_OLD_SHA256  0x800
#define NGX_HTTP_AI_GUARD_ADMIN_OLD_UNTIL   0x1000
#define NGX_HTTP_AI_GUARD_ADMIN_DELETED     0x2000

#define NGX_HTTP_AI_GUARD_ADMIN_DIGEST_LEN  32


typedef struct {
    size_t      len;
    u_char      data[NGX_HTTP_AI_GUARD_ADMIN_MAX_STR];
} ngx_http_ai_guard_admin_str_t;


typedef struct {
    unsigned                        has;
    ngx_http_ai_guard_admin_str_t   id;
    ngx_http_ai_guard_admin_str_t   tenant;
    ngx_http_ai_guard_admin_str_t   tier;
    ngx_http_ai_guard_admin_str_t   customer;
    ngx_http_ai_guard_admin_str_t   models[NGX_HTTP_AI_GUARD_ADMIN_MAX_MODELS];
    size_t                          nmodels;

    /* metadata: names and their values, in the order given */
    ngx_http_ai_guard_admin_str_t   meta[2 * NGX_HTTP_AI_GUARD_ADMIN_MAX_META];
    size_t                          nmeta;

    int64_t                         expires;      /* 0: never */
    int64_t                         grace;        /* seconds */
    int                             disabled;

    /*
     * "limits": by kind, the value of each limit the object names
     * ("limits_set", a bit a kind) or removes with null ("limits_null")
     */
    uint64_t                        limits[NGX_HTTP_AI_GUARD_LIMIT_NKINDS];
    unsigned                        limits_set;
    unsigned                        limits_null;

    /* the store's files: a key's state, or its deletion, in order */
    uint64_t                        seq;
    int64_t                         created;
    int64_t                         old_until;
    u_char                          digest[NGX_HTTP_AI_GUARD_ADMIN_DIGEST_LEN];
    u_char                          old_digest[
                                        NGX_HTTP_AI_GUARD_ADMIN_DIGEST_LEN];
    int                             deleted;

    /* what was wrong, and the field it was in ("" : the body) */
    char                            error[256];
    const char                     *param;
} ngx_http_ai_guard_admin_body_t;


/*
 * 0: parsed, every field present in "allowed"; -1: error and param say
 * why.  An empty body (len 0) is an object without fields.
 */
int ngx_http_ai_guard_admin_body_parse(const u_char *p, size_t len,
    unsigned allowed, ngx_http_ai_guard_admin_body_t *b);

/* an id: 1 to 64 bytes of [A-Za-z0-9._-]; 1: valid */
int ngx_http_ai_guard_admin_id_valid(const u_char *p, size_t len);

/*
 * Up to "want" base62 symbols from n random bytes: a byte of 248 or more
 * is skipped, so that every symbol is equally likely.  Returns how many
 * were written; the caller asks again with fresh bytes for the rest.
 */
size_t ngx_http_ai_guard_admin_base62(u_char *out, size_t want,
    const u_char *rnd, size_t n);


#endif /* _NGX_HTTP_AI_GUARD_ADMIN_BODY_H_INCLUDED_ */
