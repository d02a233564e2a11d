
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REQUEST_FIELDS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REQUEST_FIELDS_H_INCLUDED_


/*
 * Which fields of a request body are what, for the request parser
 * (ngx_http_ai_guard_request.c): the contexts a container opens in, the
 * roles a key or an array gives the value after it, and the keys read in
 * each context.  Pure tables and one lookup; the list of the texts the
 * model reads, per dialect, is in ngx_http_ai_guard_request.h.
 */


#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


/*
 * Contexts of an open container: what the object or array at a given
 * depth is.  Objects are below NGX_HTTP_AI_GUARD_CTX_ARRAY, arrays from it.
 */
#define NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP      0
#define NGX_HTTP_AI_GUARD_CTX_TOP             1
#define NGX_HTTP_AI_GUARD_CTX_MESSAGE         2
#define NGX_HTTP_AI_GUARD_CTX_PART            3
#define NGX_HTTP_AI_GUARD_CTX_TOOL_CALL       4
#define NGX_HTTP_AI_GUARD_CTX_FUNCTION        5
#define NGX_HTTP_AI_GUARD_CTX_STREAM_OPTIONS  6
#define NGX_HTTP_AI_GUARD_CTX_TOOL            7
#define NGX_HTTP_AI_GUARD_CTX_THREAD          8
#define NGX_HTTP_AI_GUARD_CTX_SOURCE          9
#define NGX_HTTP_AI_GUARD_CTX_SOURCE_BINARY   10    /* "type": "base64" */
#define NGX_HTTP_AI_GUARD_CTX_PART_IMAGE      11    /* "type": "image" */
#define NGX_HTTP_AI_GUARD_CTX_ALL_MAP         12    /* every string a text */
#define NGX_HTTP_AI_GUARD_CTX_GEN_CONFIG      13    /* Gemini's */
#define NGX_HTTP_AI_GUARD_CTX_ARRAY           16
#define NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY    16
#define NGX_HTTP_AI_GUARD_CTX_MESSAGES        17
#define NGX_HTTP_AI_GUARD_CTX_PARTS           18
#define NGX_HTTP_AI_GUARD_CTX_PROMPT          19
#define NGX_HTTP_AI_GUARD_CTX_INPUT           20
#define NGX_HTTP_AI_GUARD_CTX_TOOL_CALLS      21
#define NGX_HTTP_AI_GUARD_CTX_TOOLS           22
#define NGX_HTTP_AI_GUARD_CTX_ALL_ARRAY       23
#define NGX_HTTP_AI_GUARD_CTX_LAST            24

/* roles: what the next value is, from its key or its array */
#define NGX_HTTP_AI_GUARD_ROLE_NONE           0
#define NGX_HTTP_AI_GUARD_ROLE_MODEL          1
#define NGX_HTTP_AI_GUARD_ROLE_STREAM         2
#define NGX_HTTP_AI_GUARD_ROLE_INCLUDE_USAGE  3
#define NGX_HTTP_AI_GUARD_ROLE_MAX_TOKENS     4
#define NGX_HTTP_AI_GUARD_ROLE_N              5
#define NGX_HTTP_AI_GUARD_ROLE_TEMPERATURE    6
#define NGX_HTTP_AI_GUARD_ROLE_STREAM_OPTIONS 7
#define NGX_HTTP_AI_GUARD_ROLE_MESSAGES       8
#define NGX_HTTP_AI_GUARD_ROLE_MESSAGE        9
#define NGX_HTTP_AI_GUARD_ROLE_TOOLS          10
#define NGX_HTTP_AI_GUARD_ROLE_TOOL           11
#define NGX_HTTP_AI_GUARD_ROLE_TOOL_CALLS     12
#define NGX_HTTP_AI_GUARD_ROLE_TOOL_CALL      13
#define NGX_HTTP_AI_GUARD_ROLE_FUNCTION       14
#define NGX_HTTP_AI_GUARD_ROLE_THREAD         15
#define NGX_HTTP_AI_GUARD_ROLE_SOURCE         16
#define NGX_HTTP_AI_GUARD_ROLE_TYPE           17
#define NGX_HTTP_AI_GUARD_ROLE_GEN_CONFIG     18
/* the texts the estimate counts */
#define NGX_HTTP_AI_GUARD_ROLE_CONTENT        19
#define NGX_HTTP_AI_GUARD_ROLE_TEXT           20
#define NGX_HTTP_AI_GUARD_ROLE_PROMPT         21
#define NGX_HTTP_AI_GUARD_ROLE_INPUT          22
#define NGX_HTTP_AI_GUARD_ROLE_INPUT_ITEM     23
/* texts the rules read and the estimate does not count */
#define NGX_HTTP_AI_GUARD_ROLE_EXTRA          24
#define NGX_HTTP_AI_GUARD_ROLE_ALL            25
#define NGX_HTTP_AI_GUARD_ROLE_LAST           26

/* the scalar roles, whose value must not be a container */
#define NGX_HTTP_AI_GUARD_ROLE_SCALAR         NGX_HTTP_AI_GUARD_ROLE_TEMPERATURE

#define ngx_http_ai_guard_is_map(ctx)  ((ctx) < NGX_HTTP_AI_GUARD_CTX_ARRAY)

#define ngx_http_ai_guard_is_text(role)                                      \
    ((role) >= NGX_HTTP_AI_GUARD_ROLE_CONTENT)

#define ngx_http_ai_guard_is_counted(role)                                   \
    ((role) >= NGX_HTTP_AI_GUARD_ROLE_CONTENT                                \
     && (role) <= NGX_HTTP_AI_GUARD_ROLE_INPUT_ITEM)


typedef struct {
    size_t                          len;
    const char                     *name;
    unsigned                        role;
    const char                     *dup;
    const char                     *type;
} ngx_http_ai_guard_key_t;


/* the top-level keys read, NULL-terminated; a duplicate is an error */
extern const ngx_http_ai_guard_key_t  ngx_http_ai_guard_request_keys[];
extern const ngx_http_ai_guard_key_t  ngx_http_ai_guard_request_include_usage;

/* by context: the role of an array's elements */
extern const uint8_t  ngx_http_ai_guard_request_elements[];

/* by role: the context an object, or an array, opens in */
extern const uint8_t  ngx_http_ai_guard_request_maps[];
extern const uint8_t  ngx_http_ai_guard_request_arrays[];


/*
 * The role of the value of key s in an object of context ctx.  A
 * top-level key sets *top to its index in ngx_http_ai_guard_request_keys,
 * for the duplicate check; any other leaves it -1.
 */
unsigned ngx_http_ai_guard_request_field(unsigned ctx, const u_char *s,
    size_t len, int *top);

/*
 * A "type" value in context ctx: the context the object goes on in (an
 * image block has no text source, a base64 source no text data).
 */
unsigned ngx_http_ai_guard_request_type(unsigned ctx, const u_char *s,
    size_t len);

#endif /* _NGX_HTTP_AI_GUARD_REQUEST_FIELDS_H_INCLUDED_ */
