
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_KEYS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_KEYS_H_INCLUDED_


/*
 * The keys file: JSON with SHA-256 digests of API keys, never the keys.
 * Pure code (no nginx runtime): memory comes from the caller's allocator,
 * so the configuration pool owns the table and a reload frees it.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_AI_GUARD_DIGEST_LEN  32
#define NGX_HTTP_AI_GUARD_KEYS_ERRLEN 256
#define NGX_HTTP_AI_GUARD_KEYS_MAX_FIELD  1024


/* the layout of ngx_str_t, so the glue hands these to nginx as they are */
typedef struct {
    size_t                      len;
    u_char                     *data;
} ngx_http_ai_guard_str_t;


typedef struct ngx_http_ai_guard_key_s  ngx_http_ai_guard_key_t;

struct ngx_http_ai_guard_key_s {
    u_char                      digest[NGX_HTTP_AI_GUARD_DIGEST_LEN];
    ngx_http_ai_guard_str_t     id;
    ngx_http_ai_guard_str_t     tenant;
    ngx_http_ai_guard_str_t     tier;
    ngx_http_ai_guard_str_t     stripe_customer;
    ngx_http_ai_guard_str_t    *models;
    size_t                      nmodels;
    int64_t                     expires;     /* unix seconds, 0: never */
    void                       *tier_conf;   /* resolved by the glue */
    const uint64_t             *limits;      /* its own, by kind; NULL:
                                                none (docs/admin.md) */
    ngx_http_ai_guard_key_t    *next;        /* file order */
    size_t                      index;       /* entry number, from 1 */
    size_t                      line;        /* in the file, from 1 */
    unsigned                    disabled:1;
    unsigned                    has_models:1;
};


typedef void *(*ngx_http_ai_guard_alloc_pt)(void *pool, size_t size);


typedef struct {
    ngx_http_ai_guard_key_t   **slots;       /* open addressing */
    size_t                      mask;
    size_t                      nkeys;
    ngx_http_ai_guard_key_t    *first;       /* the entries, in file order */
} ngx_http_ai_guard_keys_t;


typedef struct ngx_http_ai_guard_keys_parser_s
    ngx_http_ai_guard_keys_parser_t;


ngx_http_ai_guard_keys_parser_t *ngx_http_ai_guard_keys_parser_create(
    ngx_http_ai_guard_alloc_pt alloc, void *pool);
int ngx_http_ai_guard_keys_parse(ngx_http_ai_guard_keys_parser_t *kp,
    const u_char *p, size_t len);
ngx_http_ai_guard_keys_t *ngx_http_ai_guard_keys_finish(
    ngx_http_ai_guard_keys_parser_t *kp);
const char *ngx_http_ai_guard_keys_error(ngx_http_ai_guard_keys_parser_t *kp);
size_t ngx_http_ai_guard_keys_error_line(ngx_http_ai_guard_keys_parser_t *kp,
    size_t *column);
void ngx_http_ai_guard_keys_parser_free(ngx_http_ai_guard_keys_parser_t *kp);

ngx_http_ai_guard_key_t *ngx_http_ai_guard_keys_lookup(
    ngx_http_ai_guard_keys_t *keys, const u_char *digest);

int ngx_http_ai_guard_parse_rfc3339(const u_char *p, size_t len,
    int64_t *t);


#endif /* _NGX_HTTP_AI_GUARD_KEYS_H_INCLUDED_ */
