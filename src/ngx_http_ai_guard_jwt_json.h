
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_JWT_JSON_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_JWT_JSON_H_INCLUDED_


/*
 * The decoding under JWT verification: strict base64url, and a streaming
 * JSON walk that hands the values of the members named by dotted paths
 * through nested objects ("app_metadata.tenant") to a callback.  Pure:
 * libc and yajl; yajl works in an 8 KB arena on the walk's stack and
 * falls back to malloc only for a document that needs more.
 *
 * The walk accepts one JSON object, nested at most 64 deep.  A member at
 * a path found twice is "duplicate member"; values inside arrays are
 * handed over only for an array at the path itself (its elements, with
 * elt set), never for arrays nested deeper, and no path goes through an
 * array.
 */

#include <sys/types.h>
#include <stdint.h>
#include <stddef.h>


/* components of a claim path: "a.b.c" has 3 */
#define NGX_HTTP_AI_GUARD_JWT_MAX_PATH       8

/* ngx_http_ai_guard_jwt_json() results */
#define NGX_HTTP_AI_GUARD_JWT_JSON_OK        0
#define NGX_HTTP_AI_GUARD_JWT_JSON_INVALID  -1  /* j->reason says why */
#define NGX_HTTP_AI_GUARD_JWT_JSON_NOMEM    -2

/* the types of the values handed to the callback */
#define NGX_HTTP_AI_GUARD_JWT_T_STRING       1
#define NGX_HTTP_AI_GUARD_JWT_T_NUMBER       2
#define NGX_HTTP_AI_GUARD_JWT_T_OTHER        3   /* true, false, null */
#define NGX_HTTP_AI_GUARD_JWT_T_MAP          4
#define NGX_HTTP_AI_GUARD_JWT_T_ARRAY        5

/* the most bytes n base64url characters decode to */
#define ngx_http_ai_guard_jwt_b64len(n)    ((n) / 4 * 3 + ((n) % 4) * 3 / 4)


/* a byte span; data NULL (or len 0) means "not set" / "absent" */
typedef struct {
    const u_char                    *data;
    size_t                           len;
} ngx_http_ai_guard_jwt_str_t;


/* a path to follow, and how much of it the walk is in */
typedef struct {
    ngx_http_ai_guard_jwt_str_t      comp[NGX_HTTP_AI_GUARD_JWT_MAX_PATH];
    unsigned                         ncomp;
    unsigned                         matched;
    unsigned                         seen;
} ngx_http_ai_guard_jwt_field_t;


typedef struct ngx_http_ai_guard_jwt_json_s  ngx_http_ai_guard_jwt_json_t;

/*
 * A value at the path of fields[field]: its NGX_HTTP_AI_GUARD_JWT_T_*
 * type; for a string its decoded bytes, for a number its text as
 * written (p is NULL for the other types); elt 1 for an element of an
 * array at the path.  Returns 1 to go on, 0 to stop the walk as invalid
 * with j->reason set.
 */
typedef int (*ngx_http_ai_guard_jwt_value_pt)(ngx_http_ai_guard_jwt_json_t *j,
    unsigned field, int type, const u_char *p, size_t len, int elt);


struct ngx_http_ai_guard_jwt_json_s {
    ngx_http_ai_guard_jwt_field_t   *fields;
    unsigned                         nfields;
    ngx_http_ai_guard_jwt_value_pt   value;
    void                            *data;      /* the callback's */
    const char                      *reason;    /* NULL before a walk */
};


/*
 * Sets f up to follow the dotted path p[0..len): 1, or 0 when the path
 * is empty, has an empty part or more than NGX_HTTP_AI_GUARD_JWT_MAX_PATH.
 */
int ngx_http_ai_guard_jwt_path(ngx_http_ai_guard_jwt_field_t *f,
    const u_char *p, size_t len);

/*
 * Walks the JSON object p[0..len), calling j->value for every value at
 * one of the j->nfields paths.  The input must be writable and stay put
 * while its spans are used: a string with escapes is decoded over its
 * own (longer) text, so every span handed over points into p[0..len).
 */
int ngx_http_ai_guard_jwt_json(ngx_http_ai_guard_jwt_json_t *j, u_char *p,
    size_t len);

/*
 * Strict base64url (RFC 7515 section 2): no padding, no characters outside
 * the alphabet, no length of 4n+1, zero trailing bits.  out must hold
 * len * 3 / 4 bytes.  Returns the decoded length, or -1.
 */
ssize_t ngx_http_ai_guard_jwt_base64url_decode(u_char *out, const u_char *in,
    size_t len);


#endif /* _NGX_HTTP_AI_GUARD_JWT_JSON_H_INCLUDED_ */
