
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "ngx_http_ai_guard_request.h"


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
#define NGX_HTTP_AI_GUARD_CTX_ARRAY           8
#define NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY    8
#define NGX_HTTP_AI_GUARD_CTX_MESSAGES        9
#define NGX_HTTP_AI_GUARD_CTX_PARTS           10
#define NGX_HTTP_AI_GUARD_CTX_PROMPT          11
#define NGX_HTTP_AI_GUARD_CTX_INPUT           12
#define NGX_HTTP_AI_GUARD_CTX_TOOL_CALLS      13
#define NGX_HTTP_AI_GUARD_CTX_LAST            14

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
#define NGX_HTTP_AI_GUARD_ROLE_CONTENT        10
#define NGX_HTTP_AI_GUARD_ROLE_TEXT           11
#define NGX_HTTP_AI_GUARD_ROLE_PROMPT         12
#define NGX_HTTP_AI_GUARD_ROLE_INPUT          13
#define NGX_HTTP_AI_GUARD_ROLE_INPUT_ITEM     14
#define NGX_HTTP_AI_GUARD_ROLE_TOOL_CALLS     15
#define NGX_HTTP_AI_GUARD_ROLE_TOOL_CALL      16
#define NGX_HTTP_AI_GUARD_ROLE_FUNCTION       17
#define NGX_HTTP_AI_GUARD_ROLE_LAST           18

/* the scalar roles, whose value must not be a container */
#define NGX_HTTP_AI_GUARD_ROLE_SCALAR         NGX_HTTP_AI_GUARD_ROLE_TEMPERATURE

/* states of the escape scanner */
#define NGX_HTTP_AI_GUARD_ESC_NONE            0
#define NGX_HTTP_AI_GUARD_ESC_BACKSLASH       1
#define NGX_HTTP_AI_GUARD_ESC_HEX             2
#define NGX_HTTP_AI_GUARD_ESC_LOW             3

/* a bit of rp->seen past the top-level keys */
#define NGX_HTTP_AI_GUARD_SEEN_INCLUDE_USAGE  0x80000000

#define ngx_http_ai_guard_is_map(ctx)  ((ctx) < NGX_HTTP_AI_GUARD_CTX_ARRAY)

#define NGX_HTTP_AI_GUARD_ERR_JSON      "request body is not valid JSON"
#define NGX_HTTP_AI_GUARD_ERR_UTF8      "request body is not valid UTF-8"
#define NGX_HTTP_AI_GUARD_ERR_SURROGATE                                      \
    "request body has an unpaired UTF-16 surrogate escape"
#define NGX_HTTP_AI_GUARD_ERR_OBJECT                                         \
    "request body must be a JSON object"


typedef struct {
    u_char                         *data;
    size_t                          len;
    size_t                          size;
} ngx_http_ai_guard_rbuf_t;


typedef struct {
    u_char                         *key;
    size_t                          off;    /* decoded key, then member */
    size_t                          klen;
    size_t                          len;
} ngx_http_ai_guard_member_t;


/* canonical output under construction for one open container */
typedef struct {
    ngx_http_ai_guard_rbuf_t        buf;    /* objects: their members */
    ngx_http_ai_guard_rbuf_t       *sink;   /* where values here go */
    ngx_http_ai_guard_member_t     *members;
    size_t                          nmembers;
    size_t                          nalloc;
    size_t                          count;
} ngx_http_ai_guard_level_t;


typedef struct {
    size_t                          ascii;  /* ASCII bytes */
    size_t                          other;  /* other code points */
    size_t                          halves; /* their weight, half tokens */
} ngx_http_ai_guard_count_t;


typedef struct {
    size_t                          len;
    const char                     *name;
    unsigned                        role;
    const char                     *dup;
    const char                     *type;
} ngx_http_ai_guard_key_t;


struct ngx_http_ai_guard_request_parser_s {
    yajl_handle                     yajl;
    ngx_http_ai_guard_text_pt       text;
    void                           *data;
    ngx_http_ai_guard_request_t     req;
    const char                     *error;
    const char                     *param;
    ngx_http_ai_guard_count_t       count;
    size_t                          bytes;
    uint32_t                        seen;
    int                             rc;
    unsigned                        depth;
    unsigned                        role;
    unsigned                        key;
    unsigned                        esc;
    unsigned                        hex;
    unsigned                        nhex;
    unsigned                        low:1;
    unsigned                        root:1;
    unsigned                        finished:1;
    ngx_http_ai_guard_level_t      *levels;
    ngx_http_ai_guard_rbuf_t        out;
    uint8_t                         ctx[NGX_HTTP_AI_GUARD_REQ_MAX_DEPTH + 1];
};


static int ngx_http_ai_guard_request_null(void *ctx);
static int ngx_http_ai_guard_request_boolean(void *ctx, int b);
static int ngx_http_ai_guard_request_number(void *ctx, const char *s,
    size_t len);
static int ngx_http_ai_guard_request_string(void *ctx, const u_char *s,
    size_t len);
static int ngx_http_ai_guard_request_start_map(void *ctx);
static int ngx_http_ai_guard_request_map_key(void *ctx, const u_char *s,
    size_t len);
static int ngx_http_ai_guard_request_end_map(void *ctx);
static int ngx_http_ai_guard_request_start_array(void *ctx);
static int ngx_http_ai_guard_request_end_array(void *ctx);

static int ngx_http_ai_guard_request_fail(
    ngx_http_ai_guard_request_parser_t *rp, int rc, const char *error,
    const char *param);
static unsigned ngx_http_ai_guard_request_role(
    ngx_http_ai_guard_request_parser_t *rp);
static int ngx_http_ai_guard_request_scalar(
    ngx_http_ai_guard_request_parser_t *rp, unsigned role);
static int ngx_http_ai_guard_request_open(
    ngx_http_ai_guard_request_parser_t *rp, int map);
static int ngx_http_ai_guard_request_text(
    ngx_http_ai_guard_request_parser_t *rp, const u_char *p, size_t len);
static int ngx_http_ai_guard_request_utf8(const u_char *p, size_t len,
    ngx_http_ai_guard_count_t *count);
static int ngx_http_ai_guard_request_uint(const char *s, size_t len,
    int64_t *value);
static int ngx_http_ai_guard_request_zero(const char *s, size_t len);
static int ngx_http_ai_guard_request_escapes(
    ngx_http_ai_guard_request_parser_t *rp, const u_char *p, size_t len);
static void ngx_http_ai_guard_request_yajl_error(
    ngx_http_ai_guard_request_parser_t *rp);
static uint64_t ngx_http_ai_guard_request_tokens(
    ngx_http_ai_guard_count_t *count, size_t texts);
static void ngx_http_ai_guard_request_result(
    ngx_http_ai_guard_request_parser_t *rp,
    ngx_http_ai_guard_request_t *out);

static int ngx_http_ai_guard_canon_value(
    ngx_http_ai_guard_request_parser_t *rp, const u_char *p, size_t len,
    int string);
static int ngx_http_ai_guard_canon_start(
    ngx_http_ai_guard_request_parser_t *rp, int map);
static int ngx_http_ai_guard_canon_key(
    ngx_http_ai_guard_request_parser_t *rp, const u_char *p, size_t len);
static int ngx_http_ai_guard_canon_end_map(
    ngx_http_ai_guard_request_parser_t *rp);
static int ngx_http_ai_guard_canon_cmp(const void *one, const void *two);
static int ngx_http_ai_guard_rbuf_reserve(ngx_http_ai_guard_rbuf_t *b,
    size_t n);
static int ngx_http_ai_guard_rbuf_add(ngx_http_ai_guard_rbuf_t *b,
    const u_char *p, size_t len);
static int ngx_http_ai_guard_rbuf_escape(ngx_http_ai_guard_rbuf_t *b,
    const u_char *p, size_t len);


static yajl_callbacks  ngx_http_ai_guard_request_callbacks = {
    ngx_http_ai_guard_request_null,
    ngx_http_ai_guard_request_boolean,
    NULL,
    NULL,
    ngx_http_ai_guard_request_number,
    ngx_http_ai_guard_request_string,
    ngx_http_ai_guard_request_start_map,
    ngx_http_ai_guard_request_map_key,
    ngx_http_ai_guard_request_end_map,
    ngx_http_ai_guard_request_start_array,
    ngx_http_ai_guard_request_end_array
};


#define ngx_http_ai_guard_key(name, role, type)                              \
    { sizeof(name) - 1, name, NGX_HTTP_AI_GUARD_ROLE_##role,                 \
      "duplicate key \"" name "\" in request body", type }

#define NGX_HTTP_AI_GUARD_ERR_UINT  "\" must be a non-negative integer"

/* the top-level keys read; a duplicate of any of them is an error */
static ngx_http_ai_guard_key_t  ngx_http_ai_guard_request_keys[] = {
    ngx_http_ai_guard_key("model", MODEL, "\"model\" must be a string"),
    ngx_http_ai_guard_key("messages", MESSAGES, NULL),
    ngx_http_ai_guard_key("stream", STREAM, "\"stream\" must be a boolean"),
    ngx_http_ai_guard_key("max_tokens", MAX_TOKENS,
                          "\"max_tokens" NGX_HTTP_AI_GUARD_ERR_UINT),
    ngx_http_ai_guard_key("max_completion_tokens", MAX_TOKENS,
                          "\"max_completion_tokens"
                          NGX_HTTP_AI_GUARD_ERR_UINT),
    ngx_http_ai_guard_key("max_output_tokens", MAX_TOKENS,
                          "\"max_output_tokens" NGX_HTTP_AI_GUARD_ERR_UINT),
    ngx_http_ai_guard_key("n", N, "\"n" NGX_HTTP_AI_GUARD_ERR_UINT),
    ngx_http_ai_guard_key("temperature", TEMPERATURE, NULL),
    ngx_http_ai_guard_key("stream_options", STREAM_OPTIONS, NULL),
    ngx_http_ai_guard_key("system", CONTENT, NULL),
    ngx_http_ai_guard_key("instructions", CONTENT, NULL),
    ngx_http_ai_guard_key("prompt", PROMPT, NULL),
    ngx_http_ai_guard_key("input", INPUT, NULL),
    { 0, NULL, 0, NULL, NULL }
};

static ngx_http_ai_guard_key_t  ngx_http_ai_guard_request_include_usage =
    ngx_http_ai_guard_key("include_usage", INCLUDE_USAGE,
                          "\"stream_options.include_usage\" must be "
                          "a boolean");


/* the role of an array's elements; objects take it from their keys */
static const uint8_t  ngx_http_ai_guard_request_elements[] = {
    0, 0, 0, 0, 0, 0, 0, 0,
    NGX_HTTP_AI_GUARD_ROLE_NONE,            /* IGNORE_ARRAY */
    NGX_HTTP_AI_GUARD_ROLE_MESSAGE,         /* MESSAGES */
    NGX_HTTP_AI_GUARD_ROLE_CONTENT,         /* PARTS */
    NGX_HTTP_AI_GUARD_ROLE_TEXT,            /* PROMPT */
    NGX_HTTP_AI_GUARD_ROLE_INPUT_ITEM,      /* INPUT */
    NGX_HTTP_AI_GUARD_ROLE_TOOL_CALL        /* TOOL_CALLS */
};


/* the context a container opens in, by role: objects, then arrays */
static const uint8_t  ngx_http_ai_guard_request_maps[] = {
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* NONE */
    0, 0, 0, 0, 0,                          /* scalars: type errors */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* TEMPERATURE */
    NGX_HTTP_AI_GUARD_CTX_STREAM_OPTIONS,   /* STREAM_OPTIONS */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* MESSAGES */
    NGX_HTTP_AI_GUARD_CTX_MESSAGE,          /* MESSAGE */
    NGX_HTTP_AI_GUARD_CTX_PART,             /* CONTENT */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* TEXT */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* PROMPT */
    NGX_HTTP_AI_GUARD_CTX_MESSAGE,          /* INPUT */
    NGX_HTTP_AI_GUARD_CTX_MESSAGE,          /* INPUT_ITEM */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* TOOL_CALLS */
    NGX_HTTP_AI_GUARD_CTX_TOOL_CALL,        /* TOOL_CALL */
    NGX_HTTP_AI_GUARD_CTX_FUNCTION          /* FUNCTION */
};

static const uint8_t  ngx_http_ai_guard_request_arrays[] = {
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* NONE */
    0, 0, 0, 0, 0,                          /* scalars: type errors */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* TEMPERATURE */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* STREAM_OPTIONS */
    NGX_HTTP_AI_GUARD_CTX_MESSAGES,         /* MESSAGES */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* MESSAGE */
    NGX_HTTP_AI_GUARD_CTX_PARTS,            /* CONTENT */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* TEXT */
    NGX_HTTP_AI_GUARD_CTX_PROMPT,           /* PROMPT */
    NGX_HTTP_AI_GUARD_CTX_INPUT,            /* INPUT */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* INPUT_ITEM */
    NGX_HTTP_AI_GUARD_CTX_TOOL_CALLS,       /* TOOL_CALLS */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* TOOL_CALL */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY      /* FUNCTION */
};


ngx_http_ai_guard_request_parser_t *
ngx_http_ai_guard_request_create(int want_canonical,
    ngx_http_ai_guard_text_pt text, void *data)
{
    ngx_http_ai_guard_request_parser_t  *rp;

    rp = calloc(1, sizeof(ngx_http_ai_guard_request_parser_t));
    if (rp == NULL) {
        return NULL;
    }

    rp->text = text;
    rp->data = data;
    rp->req.stream = -1;
    rp->req.include_usage = -1;
    rp->req.max_tokens = -1;
    rp->req.n = -1;

    if (want_canonical) {
        rp->levels = calloc(NGX_HTTP_AI_GUARD_REQ_MAX_DEPTH + 1,
                            sizeof(ngx_http_ai_guard_level_t));
        if (rp->levels == NULL) {
            free(rp);
            return NULL;
        }

        rp->levels[0].sink = &rp->out;
    }

    /*
     * yajl's defaults are what is wanted: strings validated as UTF-8, no
     * comments, no trailing garbage, one value, no partial values.
     */

    rp->yajl = yajl_alloc(&ngx_http_ai_guard_request_callbacks, NULL, rp);
    if (rp->yajl == NULL) {
        free(rp->levels);
        free(rp);
        return NULL;
    }

    return rp;
}


int
ngx_http_ai_guard_request_feed(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *p, size_t len)
{
    yajl_status  st;

    if (rp->rc != NGX_HTTP_AI_GUARD_REQ_OK) {
        return rp->rc;
    }

    if (rp->finished) {
        return ngx_http_ai_guard_request_fail(rp,
                                     NGX_HTTP_AI_GUARD_REQ_INVALID,
                                     NGX_HTTP_AI_GUARD_ERR_JSON, NULL);
    }

    if (len == 0) {
        return NGX_HTTP_AI_GUARD_REQ_OK;
    }

    rp->bytes += len;

    if (ngx_http_ai_guard_request_escapes(rp, p, len) != 0) {
        return rp->rc;
    }

    st = yajl_parse(rp->yajl, p, len);

    if (st == yajl_status_ok) {
        return NGX_HTTP_AI_GUARD_REQ_OK;
    }

    if (rp->rc == NGX_HTTP_AI_GUARD_REQ_OK) {
        ngx_http_ai_guard_request_yajl_error(rp);
    }

    return rp->rc;
}


int
ngx_http_ai_guard_request_finish(ngx_http_ai_guard_request_parser_t *rp,
    ngx_http_ai_guard_request_t *out)
{
    yajl_status  st;

    if (rp->rc == NGX_HTTP_AI_GUARD_REQ_OK && !rp->finished) {
        rp->finished = 1;

        if (rp->bytes == 0) {
            (void) ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_INVALID,
                                         "request body is empty", NULL);

        } else if (rp->esc != NGX_HTTP_AI_GUARD_ESC_NONE) {
            (void) ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_INVALID,
                                         "request body is truncated", NULL);

        } else {
            st = yajl_complete_parse(rp->yajl);

            if (st != yajl_status_ok
                && rp->rc == NGX_HTTP_AI_GUARD_REQ_OK)
            {
                ngx_http_ai_guard_request_yajl_error(rp);
            }
        }
    }

    if (out) {
        ngx_http_ai_guard_request_result(rp, out);
    }

    return rp->rc;
}


const char *
ngx_http_ai_guard_request_error(ngx_http_ai_guard_request_parser_t *rp)
{
    return rp->error;
}


const char *
ngx_http_ai_guard_request_error_param(ngx_http_ai_guard_request_parser_t *rp)
{
    return rp->param;
}


int
ngx_http_ai_guard_request_canonical(ngx_http_ai_guard_request_parser_t *rp,
    u_char **p, size_t *len)
{
    if (rp->levels == NULL || !rp->finished
        || rp->rc != NGX_HTTP_AI_GUARD_REQ_OK)
    {
        *p = NULL;
        *len = 0;
        return NGX_HTTP_AI_GUARD_REQ_INVALID;
    }

    *p = rp->out.data;
    *len = rp->out.len;

    return NGX_HTTP_AI_GUARD_REQ_OK;
}


void
ngx_http_ai_guard_request_free(ngx_http_ai_guard_request_parser_t *rp)
{
    size_t  i;

    if (rp == NULL) {
        return;
    }

    if (rp->yajl) {
        yajl_free(rp->yajl);
    }

    if (rp->levels) {
        for (i = 0; i <= NGX_HTTP_AI_GUARD_REQ_MAX_DEPTH; i++) {
            free(rp->levels[i].buf.data);
            free(rp->levels[i].members);
        }

        free(rp->levels);
    }

    free(rp->out.data);
    free(rp);
}


/*
 * The estimate (docs/estimate.md has the rule and its measured error):
 * a quarter token per ASCII byte, the weight of the other code points
 * (see ngx_http_ai_guard_request_utf8()), both rounded up, and four
 * tokens per text for the message framing the vendors add.
 */

uint64_t
ngx_http_ai_guard_request_estimate(const u_char *p, size_t len)
{
    ngx_http_ai_guard_count_t  count;

    if (ngx_http_ai_guard_request_utf8(p, len, &count) != 0) {
        return len;
    }

    return ngx_http_ai_guard_request_tokens(&count, 0);
}


static uint64_t
ngx_http_ai_guard_request_tokens(ngx_http_ai_guard_count_t *count,
    size_t texts)
{
    return ((uint64_t) count->ascii + 3) / 4
           + ((uint64_t) count->halves + 1) / 2
           + NGX_HTTP_AI_GUARD_REQ_TEXT_TOKENS * (uint64_t) texts;
}


static void
ngx_http_ai_guard_request_result(ngx_http_ai_guard_request_parser_t *rp,
    ngx_http_ai_guard_request_t *out)
{
    *out = rp->req;

    out->model[out->model_len] = '\0';
    out->text_chars = rp->count.ascii + rp->count.other;
    out->estimate = ngx_http_ai_guard_request_tokens(&rp->count,
                                                     rp->req.texts);
}


static int
ngx_http_ai_guard_request_fail(ngx_http_ai_guard_request_parser_t *rp,
    int rc, const char *error, const char *param)
{
    if (rp->rc == NGX_HTTP_AI_GUARD_REQ_OK) {
        rp->rc = rc;
        rp->error = error;
        rp->param = param;
    }

    return 0;
}


static void
ngx_http_ai_guard_request_yajl_error(ngx_http_ai_guard_request_parser_t *rp)
{
    const char     *error;
    unsigned char  *msg;

    /*
     * yajl has no error codes, only a message it allocates; match it to
     * one of ours, so that no body byte reaches the client.
     */

    error = NGX_HTTP_AI_GUARD_ERR_JSON;

    msg = yajl_get_error(rp->yajl, 0, NULL, 0);

    if (msg) {
        if (strstr((char *) msg, "UTF8")) {
            error = NGX_HTTP_AI_GUARD_ERR_UTF8;

        } else if (strstr((char *) msg, "premature EOF")) {
            error = "request body is truncated";

        } else if (strstr((char *) msg, "trailing garbage")) {
            error = "unexpected data after the JSON object";
        }

        yajl_free_error(rp->yajl, msg);
    }

    (void) ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_INVALID,
                                          error, NULL);
}


static unsigned
ngx_http_ai_guard_request_role(ngx_http_ai_guard_request_parser_t *rp)
{
    unsigned  ctx;

    ctx = rp->ctx[rp->depth];

    if (ngx_http_ai_guard_is_map(ctx)) {
        return rp->role;
    }

    return ngx_http_ai_guard_request_elements[ctx];
}


/* a scalar of the wrong type for a role that wants one of its own */

static int
ngx_http_ai_guard_request_scalar(ngx_http_ai_guard_request_parser_t *rp,
    unsigned role)
{
    const ngx_http_ai_guard_key_t  *k;

    if (role == NGX_HTTP_AI_GUARD_ROLE_INCLUDE_USAGE) {
        k = &ngx_http_ai_guard_request_include_usage;

    } else {
        k = &ngx_http_ai_guard_request_keys[rp->key];
    }

    return ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_INVALID,
                                          k->type, k->name);
}


static int
ngx_http_ai_guard_request_null(void *ctx)
{
    ngx_http_ai_guard_request_parser_t  *rp = ctx;

    if (rp->depth == 0) {
        return ngx_http_ai_guard_request_fail(rp,
                                     NGX_HTTP_AI_GUARD_REQ_INVALID,
                                     NGX_HTTP_AI_GUARD_ERR_OBJECT, NULL);
    }

    if (ngx_http_ai_guard_request_role(rp) == NGX_HTTP_AI_GUARD_ROLE_MODEL) {
        return ngx_http_ai_guard_request_scalar(rp,
                                                NGX_HTTP_AI_GUARD_ROLE_MODEL);
    }

    if (rp->levels) {
        return ngx_http_ai_guard_canon_value(rp, (u_char *) "null", 4, 0);
    }

    return 1;
}


static int
ngx_http_ai_guard_request_boolean(void *ctx, int b)
{
    ngx_http_ai_guard_request_parser_t  *rp = ctx;

    unsigned  role;

    if (rp->depth == 0) {
        return ngx_http_ai_guard_request_fail(rp,
                                     NGX_HTTP_AI_GUARD_REQ_INVALID,
                                     NGX_HTTP_AI_GUARD_ERR_OBJECT, NULL);
    }

    role = ngx_http_ai_guard_request_role(rp);

    switch (role) {

    case NGX_HTTP_AI_GUARD_ROLE_STREAM:
        rp->req.stream = b ? 1 : 0;
        break;

    case NGX_HTTP_AI_GUARD_ROLE_INCLUDE_USAGE:
        rp->req.include_usage = b ? 1 : 0;
        break;

    case NGX_HTTP_AI_GUARD_ROLE_MODEL:
    case NGX_HTTP_AI_GUARD_ROLE_MAX_TOKENS:
    case NGX_HTTP_AI_GUARD_ROLE_N:
        return ngx_http_ai_guard_request_scalar(rp, role);

    default:
        break;
    }

    if (rp->levels) {
        return b ? ngx_http_ai_guard_canon_value(rp, (u_char *) "true", 4, 0)
                 : ngx_http_ai_guard_canon_value(rp, (u_char *) "false", 5,
                                                 0);
    }

    return 1;
}


static int
ngx_http_ai_guard_request_number(void *ctx, const char *s, size_t len)
{
    ngx_http_ai_guard_request_parser_t  *rp = ctx;

    int64_t   v;
    unsigned  role;

    if (rp->depth == 0) {
        return ngx_http_ai_guard_request_fail(rp,
                                     NGX_HTTP_AI_GUARD_REQ_INVALID,
                                     NGX_HTTP_AI_GUARD_ERR_OBJECT, NULL);
    }

    role = ngx_http_ai_guard_request_role(rp);

    switch (role) {

    case NGX_HTTP_AI_GUARD_ROLE_MAX_TOKENS:
    case NGX_HTTP_AI_GUARD_ROLE_N:
        if (ngx_http_ai_guard_request_uint(s, len, &v) != 0) {
            return ngx_http_ai_guard_request_scalar(rp, role);
        }

        if (role == NGX_HTTP_AI_GUARD_ROLE_N) {
            rp->req.n = v;

        } else if (v > rp->req.max_tokens) {
            rp->req.max_tokens = v;
        }

        break;

    case NGX_HTTP_AI_GUARD_ROLE_TEMPERATURE:
        rp->req.deterministic = ngx_http_ai_guard_request_zero(s, len);
        break;

    case NGX_HTTP_AI_GUARD_ROLE_MODEL:
    case NGX_HTTP_AI_GUARD_ROLE_STREAM:
    case NGX_HTTP_AI_GUARD_ROLE_INCLUDE_USAGE:
        return ngx_http_ai_guard_request_scalar(rp, role);

    default:
        break;
    }

    if (rp->levels) {
        return ngx_http_ai_guard_canon_value(rp, (u_char *) s, len, 0);
    }

    return 1;
}


static int
ngx_http_ai_guard_request_string(void *ctx, const u_char *s, size_t len)
{
    ngx_http_ai_guard_request_parser_t  *rp = ctx;

    size_t                     i;
    unsigned                   role;
    ngx_http_ai_guard_count_t  count;

    if (rp->depth == 0) {
        return ngx_http_ai_guard_request_fail(rp,
                                     NGX_HTTP_AI_GUARD_REQ_INVALID,
                                     NGX_HTTP_AI_GUARD_ERR_OBJECT, NULL);
    }

    role = ngx_http_ai_guard_request_role(rp);

    switch (role) {

    case NGX_HTTP_AI_GUARD_ROLE_CONTENT:
    case NGX_HTTP_AI_GUARD_ROLE_TEXT:
    case NGX_HTTP_AI_GUARD_ROLE_PROMPT:
    case NGX_HTTP_AI_GUARD_ROLE_INPUT:
    case NGX_HTTP_AI_GUARD_ROLE_INPUT_ITEM:
        if (ngx_http_ai_guard_request_text(rp, s, len) == 0) {
            return 0;
        }

        break;

    case NGX_HTTP_AI_GUARD_ROLE_MODEL:
        if (len > NGX_HTTP_AI_GUARD_REQ_MODEL_LEN) {
            return ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_INVALID,
                                         "\"model\" is too long", "model");
        }

        /* the name goes into logs and variables: no control bytes */

        for (i = 0; i < len; i++) {
            if (s[i] < 0x20 || s[i] == 0x7f) {
                return ngx_http_ai_guard_request_fail(rp,
                                             NGX_HTTP_AI_GUARD_REQ_INVALID,
                                             "\"model\" has a control "
                                             "character", "model");
            }
        }

        memcpy(rp->req.model, s, len);
        rp->req.model_len = len;

        /* fall through */

    default:
        if (role > NGX_HTTP_AI_GUARD_ROLE_MODEL
            && role < NGX_HTTP_AI_GUARD_ROLE_SCALAR)
        {
            return ngx_http_ai_guard_request_scalar(rp, role);
        }

        if (ngx_http_ai_guard_request_utf8(s, len, &count) != 0) {
            return ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_INVALID,
                                         NGX_HTTP_AI_GUARD_ERR_UTF8, NULL);
        }
    }

    if (rp->levels) {
        return ngx_http_ai_guard_canon_value(rp, s, len, 1);
    }

    return 1;
}


static int
ngx_http_ai_guard_request_text(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *p, size_t len)
{
    ngx_http_ai_guard_count_t  count;

    if (ngx_http_ai_guard_request_utf8(p, len, &count) != 0) {
        return ngx_http_ai_guard_request_fail(rp,
                                     NGX_HTTP_AI_GUARD_REQ_INVALID,
                                     NGX_HTTP_AI_GUARD_ERR_UTF8, NULL);
    }

    rp->count.ascii += count.ascii;
    rp->count.other += count.other;
    rp->count.halves += count.halves;
    rp->req.text_bytes += len;
    rp->req.texts++;

    if (rp->text && rp->text(rp->data, p, len) != 0) {
        return ngx_http_ai_guard_request_fail(rp,
                                     NGX_HTTP_AI_GUARD_REQ_ABORTED,
                                     "request rejected while reading "
                                     "its text", NULL);
    }

    return 1;
}


static int
ngx_http_ai_guard_request_start_map(void *ctx)
{
    return ngx_http_ai_guard_request_open(ctx, 1);
}


static int
ngx_http_ai_guard_request_start_array(void *ctx)
{
    return ngx_http_ai_guard_request_open(ctx, 0);
}


static int
ngx_http_ai_guard_request_open(ngx_http_ai_guard_request_parser_t *rp,
    int map)
{
    unsigned  role, child;

    if (rp->depth == 0) {
        if (!map || rp->root) {
            return ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_INVALID,
                                         NGX_HTTP_AI_GUARD_ERR_OBJECT, NULL);
        }

        rp->root = 1;
        child = NGX_HTTP_AI_GUARD_CTX_TOP;

    } else {
        if (rp->depth == NGX_HTTP_AI_GUARD_REQ_MAX_DEPTH) {
            return ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_INVALID,
                                         "request body is nested "
                                         "too deeply", NULL);
        }

        role = ngx_http_ai_guard_request_role(rp);

        if (role > NGX_HTTP_AI_GUARD_ROLE_NONE
            && role < NGX_HTTP_AI_GUARD_ROLE_SCALAR)
        {
            return ngx_http_ai_guard_request_scalar(rp, role);
        }

        child = map ? ngx_http_ai_guard_request_maps[role]
                    : ngx_http_ai_guard_request_arrays[role];
    }

    if (rp->levels && ngx_http_ai_guard_canon_start(rp, map) == 0) {
        return 0;
    }

    rp->ctx[++rp->depth] = (uint8_t) child;
    rp->role = NGX_HTTP_AI_GUARD_ROLE_NONE;

    return 1;
}


static int
ngx_http_ai_guard_request_map_key(void *ctx, const u_char *s, size_t len)
{
    ngx_http_ai_guard_request_parser_t  *rp = ctx;

    unsigned                   i;
    ngx_http_ai_guard_key_t   *k;
    ngx_http_ai_guard_count_t  count;

    if (ngx_http_ai_guard_request_utf8(s, len, &count) != 0) {
        return ngx_http_ai_guard_request_fail(rp,
                                     NGX_HTTP_AI_GUARD_REQ_INVALID,
                                     NGX_HTTP_AI_GUARD_ERR_UTF8, NULL);
    }

    rp->role = NGX_HTTP_AI_GUARD_ROLE_NONE;

    switch (rp->ctx[rp->depth]) {

    case NGX_HTTP_AI_GUARD_CTX_TOP:
        for (i = 0; ngx_http_ai_guard_request_keys[i].len; i++) {
            k = &ngx_http_ai_guard_request_keys[i];

            if (k->len != len || memcmp(k->name, s, len) != 0) {
                continue;
            }

            if (rp->seen & (1u << i)) {
                return ngx_http_ai_guard_request_fail(rp,
                                             NGX_HTTP_AI_GUARD_REQ_INVALID,
                                             k->dup, k->name);
            }

            rp->seen |= 1u << i;
            rp->key = i;
            rp->role = k->role;
            break;
        }

        break;

    case NGX_HTTP_AI_GUARD_CTX_MESSAGE:
        if (len == 7 && memcmp(s, "content", 7) == 0) {
            rp->role = NGX_HTTP_AI_GUARD_ROLE_CONTENT;

        } else if (len == 10 && memcmp(s, "tool_calls", 10) == 0) {
            rp->role = NGX_HTTP_AI_GUARD_ROLE_TOOL_CALLS;

        } else if (len == 13 && memcmp(s, "function_call", 13) == 0) {
            rp->role = NGX_HTTP_AI_GUARD_ROLE_FUNCTION;

        } else if (len == 9 && memcmp(s, "arguments", 9) == 0) {
            rp->role = NGX_HTTP_AI_GUARD_ROLE_TEXT;

        } else if (len == 6 && memcmp(s, "output", 6) == 0) {
            rp->role = NGX_HTTP_AI_GUARD_ROLE_CONTENT;
        }

        break;

    case NGX_HTTP_AI_GUARD_CTX_PART:
        if (len == 4 && memcmp(s, "text", 4) == 0) {
            rp->role = NGX_HTTP_AI_GUARD_ROLE_TEXT;

        } else if (len == 7 && memcmp(s, "content", 7) == 0) {
            rp->role = NGX_HTTP_AI_GUARD_ROLE_CONTENT;
        }

        break;

    case NGX_HTTP_AI_GUARD_CTX_TOOL_CALL:
        if (len == 8 && memcmp(s, "function", 8) == 0) {
            rp->role = NGX_HTTP_AI_GUARD_ROLE_FUNCTION;
        }

        break;

    case NGX_HTTP_AI_GUARD_CTX_FUNCTION:
        if (len == 9 && memcmp(s, "arguments", 9) == 0) {
            rp->role = NGX_HTTP_AI_GUARD_ROLE_TEXT;
        }

        break;

    case NGX_HTTP_AI_GUARD_CTX_STREAM_OPTIONS:
        k = &ngx_http_ai_guard_request_include_usage;

        if (len == k->len && memcmp(s, k->name, len) == 0) {
            if (rp->seen & NGX_HTTP_AI_GUARD_SEEN_INCLUDE_USAGE) {
                return ngx_http_ai_guard_request_fail(rp,
                                             NGX_HTTP_AI_GUARD_REQ_INVALID,
                                             k->dup, k->name);
            }

            rp->seen |= NGX_HTTP_AI_GUARD_SEEN_INCLUDE_USAGE;
            rp->role = k->role;
        }

        break;

    default:
        break;
    }

    if (rp->levels) {
        return ngx_http_ai_guard_canon_key(rp, s, len);
    }

    return 1;
}


static int
ngx_http_ai_guard_request_end_map(void *ctx)
{
    ngx_http_ai_guard_request_parser_t  *rp = ctx;

    if (rp->levels && ngx_http_ai_guard_canon_end_map(rp) == 0) {
        return 0;
    }

    rp->depth--;

    return 1;
}


static int
ngx_http_ai_guard_request_end_array(void *ctx)
{
    ngx_http_ai_guard_request_parser_t  *rp = ctx;

    if (rp->levels
        && ngx_http_ai_guard_rbuf_add(rp->levels[rp->depth].sink,
                                      (u_char *) "]", 1) != 0)
    {
        return ngx_http_ai_guard_request_fail(rp,
                                     NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                     "out of memory", NULL);
    }

    rp->depth--;

    return 1;
}


/*
 * Strict UTF-8 (RFC 3629): yajl checks only the shape of a sequence and
 * lets overlong forms, encoded surrogates and code points past U+10FFFF
 * through.  Counts for the estimate as it goes: a two-byte sequence
 * (Latin, Cyrillic, Greek, Arabic, Hebrew) weighs half a token, a
 * three-byte one (CJK, most symbols) one, a four-byte one (emoji) two.
 */

static int
ngx_http_ai_guard_request_utf8(const u_char *p, size_t len,
    ngx_http_ai_guard_count_t *count)
{
    u_char         c, lo, hi;
    size_t         n, a, o, h;
    uint64_t       w;
    const u_char  *end;

    a = 0;
    o = 0;
    h = 0;
    end = p + len;

    while (p < end) {

        if (end - p >= 8) {
            memcpy(&w, p, 8);

            if ((w & 0x8080808080808080ULL) == 0) {
                p += 8;
                a += 8;
                continue;
            }
        }

        c = *p++;

        if (c < 0x80) {
            a++;
            continue;
        }

        lo = 0x80;
        hi = 0xbf;

        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;

        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;

            if (c == 0xe0) {
                lo = 0xa0;

            } else if (c == 0xed) {
                hi = 0x9f;
            }

        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;

            if (c == 0xf0) {
                lo = 0x90;

            } else if (c == 0xf4) {
                hi = 0x8f;
            }

        } else {
            return -1;
        }

        if ((size_t) (end - p) < n || p[0] < lo || p[0] > hi) {
            return -1;
        }

        p++;
        h += (size_t) 1 << (n - 1);

        while (--n) {
            if ((*p & 0xc0) != 0x80) {
                return -1;
            }

            p++;
        }

        o++;
    }

    count->ascii = a;
    count->other = o;
    count->halves = h;

    return 0;
}


/* digits only, fits int64: no sign, fraction or exponent */

static int
ngx_http_ai_guard_request_uint(const char *s, size_t len, int64_t *value)
{
    size_t    i;
    uint64_t  v, d;

    v = 0;

    for (i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return -1;
        }

        d = (uint64_t) (s[i] - '0');

        if (v > ((uint64_t) INT64_MAX - d) / 10) {
            return -1;
        }

        v = v * 10 + d;
    }

    if (len == 0) {
        return -1;
    }

    *value = (int64_t) v;

    return 0;
}


/* a JSON number (yajl checked its grammar) whose digits are all zero */

static int
ngx_http_ai_guard_request_zero(const char *s, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (s[i] == 'e' || s[i] == 'E') {
            break;
        }

        if (s[i] >= '1' && s[i] <= '9') {
            return 0;
        }
    }

    return 1;
}


/*
 * yajl decodes a lone high surrogate escape to "?" (dropping the byte
 * after it), a lone low one to an encoded surrogate, and pairs a high one
 * with any "\u" that follows.  So the escapes are checked here, on the
 * raw bytes, before yajl sees them.  A backslash outside a string is a
 * syntax error yajl reports, so every backslash can be read as the start
 * of an escape and the scanner need not track strings.
 */

static int
ngx_http_ai_guard_request_escapes(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *p, size_t len)
{
    u_char         c;
    unsigned       d;
    const u_char  *end;

    end = p + len;

    while (p < end) {

        switch (rp->esc) {

        case NGX_HTTP_AI_GUARD_ESC_NONE:
            p = memchr(p, '\\', end - p);
            if (p == NULL) {
                return 0;
            }

            p++;
            rp->esc = NGX_HTTP_AI_GUARD_ESC_BACKSLASH;
            break;

        case NGX_HTTP_AI_GUARD_ESC_BACKSLASH:
            if (*p == 'u') {
                rp->esc = NGX_HTTP_AI_GUARD_ESC_HEX;
                rp->hex = 0;
                rp->nhex = 0;

            } else if (rp->low) {
                goto surrogate;

            } else {
                rp->esc = NGX_HTTP_AI_GUARD_ESC_NONE;
            }

            p++;
            break;

        case NGX_HTTP_AI_GUARD_ESC_HEX:
            c = *p;

            if (c >= '0' && c <= '9') {
                d = c - '0';

            } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
                d = (c | 0x20) - 'a' + 10;

            } else {
                /* not an escape: yajl reports the syntax error */
                rp->esc = NGX_HTTP_AI_GUARD_ESC_NONE;
                rp->low = 0;
                break;
            }

            p++;
            rp->hex = (rp->hex << 4) | d;

            if (++rp->nhex < 4) {
                break;
            }

            rp->esc = NGX_HTTP_AI_GUARD_ESC_NONE;

            if (rp->low) {
                if (rp->hex < 0xdc00 || rp->hex > 0xdfff) {
                    goto surrogate;
                }

                rp->low = 0;

            } else if (rp->hex >= 0xd800 && rp->hex <= 0xdbff) {
                rp->low = 1;
                rp->esc = NGX_HTTP_AI_GUARD_ESC_LOW;

            } else if (rp->hex >= 0xdc00 && rp->hex <= 0xdfff) {
                goto surrogate;
            }

            break;

        default: /* NGX_HTTP_AI_GUARD_ESC_LOW */
            if (*p != '\\') {
                goto surrogate;
            }

            p++;
            rp->esc = NGX_HTTP_AI_GUARD_ESC_BACKSLASH;
            break;
        }
    }

    return 0;

surrogate:

    (void) ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_INVALID,
                                          NGX_HTTP_AI_GUARD_ERR_SURROGATE,
                                          NULL);

    return -1;
}


/*
 * Canonical form.  Each open object collects its members in a buffer of
 * its own, each member prefixed with its decoded key for sorting; arrays
 * and scalars write straight into the nearest open object's buffer (the
 * sink).  When an object closes, its members are sorted and copied into
 * the sink of its parent.  Memory stays within a small multiple of the
 * body, and the copies within the depth of object nesting.
 */

static int
ngx_http_ai_guard_canon_value(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *p, size_t len, int string)
{
    ngx_http_ai_guard_level_t  *lv;

    lv = &rp->levels[rp->depth];

    if (!ngx_http_ai_guard_is_map(rp->ctx[rp->depth]) && lv->count++ > 0) {
        if (ngx_http_ai_guard_rbuf_add(lv->sink, (u_char *) ",", 1) != 0) {
            goto nomem;
        }
    }

    if (string) {
        if (ngx_http_ai_guard_rbuf_escape(lv->sink, p, len) != 0) {
            goto nomem;
        }

    } else if (ngx_http_ai_guard_rbuf_add(lv->sink, p, len) != 0) {
        goto nomem;
    }

    return 1;

nomem:

    return ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                          "out of memory", NULL);
}


static int
ngx_http_ai_guard_canon_start(ngx_http_ai_guard_request_parser_t *rp,
    int map)
{
    ngx_http_ai_guard_level_t  *lv, *child;

    lv = &rp->levels[rp->depth];
    child = lv + 1;
    child->count = 0;

    if (map) {
        if (rp->depth > 0 && !ngx_http_ai_guard_is_map(rp->ctx[rp->depth])
            && lv->count++ > 0
            && ngx_http_ai_guard_rbuf_add(lv->sink, (u_char *) ",", 1) != 0)
        {
            goto nomem;
        }

        child->buf.len = 0;
        child->nmembers = 0;
        child->sink = &child->buf;

        return 1;
    }

    if (!ngx_http_ai_guard_is_map(rp->ctx[rp->depth]) && lv->count++ > 0) {
        if (ngx_http_ai_guard_rbuf_add(lv->sink, (u_char *) ",", 1) != 0) {
            goto nomem;
        }
    }

    child->sink = lv->sink;

    if (ngx_http_ai_guard_rbuf_add(child->sink, (u_char *) "[", 1) != 0) {
        goto nomem;
    }

    return 1;

nomem:

    return ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                          "out of memory", NULL);
}


static int
ngx_http_ai_guard_canon_key(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *p, size_t len)
{
    size_t                       n;
    ngx_http_ai_guard_level_t   *lv;
    ngx_http_ai_guard_member_t  *m;

    lv = &rp->levels[rp->depth];

    if (lv->nmembers) {
        m = &lv->members[lv->nmembers - 1];
        m->len = lv->buf.len - m->off;
    }

    if (lv->nmembers == lv->nalloc) {
        n = lv->nalloc ? lv->nalloc * 2 : 16;

        m = realloc(lv->members, n * sizeof(ngx_http_ai_guard_member_t));
        if (m == NULL) {
            goto nomem;
        }

        lv->members = m;
        lv->nalloc = n;
    }

    m = &lv->members[lv->nmembers++];
    m->off = lv->buf.len;
    m->klen = len;
    m->len = 0;

    if (ngx_http_ai_guard_rbuf_add(&lv->buf, p, len) != 0
        || ngx_http_ai_guard_rbuf_escape(&lv->buf, p, len) != 0
        || ngx_http_ai_guard_rbuf_add(&lv->buf, (u_char *) ":", 1) != 0)
    {
        goto nomem;
    }

    return 1;

nomem:

    return ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                          "out of memory", NULL);
}


static int
ngx_http_ai_guard_canon_end_map(ngx_http_ai_guard_request_parser_t *rp)
{
    size_t                       i, n;
    ngx_http_ai_guard_rbuf_t    *sink;
    ngx_http_ai_guard_level_t   *lv;
    ngx_http_ai_guard_member_t  *m;

    lv = &rp->levels[rp->depth];
    sink = rp->levels[rp->depth - 1].sink;
    n = lv->nmembers;

    if (n) {
        lv->members[n - 1].len = lv->buf.len - lv->members[n - 1].off;
    }

    for (i = 0; i < n; i++) {
        lv->members[i].key = lv->buf.data + lv->members[i].off;
    }

    if (n > 1) {
        qsort(lv->members, n, sizeof(ngx_http_ai_guard_member_t),
              ngx_http_ai_guard_canon_cmp);
    }

    if (ngx_http_ai_guard_rbuf_reserve(sink, lv->buf.len + 2) != 0) {
        return ngx_http_ai_guard_request_fail(rp,
                                     NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                     "out of memory", NULL);
    }

    sink->data[sink->len++] = '{';

    for (i = 0; i < n; i++) {
        m = &lv->members[i];

        if (i) {
            sink->data[sink->len++] = ',';
        }

        memcpy(sink->data + sink->len, m->key + m->klen, m->len - m->klen);
        sink->len += m->len - m->klen;
    }

    sink->data[sink->len++] = '}';

    lv->buf.len = 0;
    lv->nmembers = 0;

    return 1;
}


/* bytewise by decoded key; equal keys keep their order */

static int
ngx_http_ai_guard_canon_cmp(const void *one, const void *two)
{
    int                                rc;
    size_t                             n;
    const ngx_http_ai_guard_member_t  *a, *b;

    a = one;
    b = two;
    n = a->klen < b->klen ? a->klen : b->klen;

    rc = n ? memcmp(a->key, b->key, n) : 0;

    if (rc == 0) {
        if (a->klen != b->klen) {
            rc = a->klen < b->klen ? -1 : 1;

        } else {
            rc = a->off < b->off ? -1 : (a->off > b->off);
        }
    }

    return rc;
}


static int
ngx_http_ai_guard_rbuf_reserve(ngx_http_ai_guard_rbuf_t *b, size_t n)
{
    size_t   size;
    u_char  *p;

    if (b->size - b->len >= n) {
        return 0;
    }

    size = b->size ? b->size : 256;

    while (size - b->len < n) {
        if (size > ((size_t) -1) / 2) {
            return -1;
        }

        size *= 2;
    }

    p = realloc(b->data, size);
    if (p == NULL) {
        return -1;
    }

    b->data = p;
    b->size = size;

    return 0;
}


static int
ngx_http_ai_guard_rbuf_add(ngx_http_ai_guard_rbuf_t *b, const u_char *p,
    size_t len)
{
    if (ngx_http_ai_guard_rbuf_reserve(b, len) != 0) {
        return -1;
    }

    if (len) {
        memcpy(b->data + b->len, p, len);
        b->len += len;
    }

    return 0;
}


/*
 * Minimal, deterministic escaping: '"', '\\' and the control characters,
 * the usual short forms where JSON has one, else \u00xx in lower case.
 */

static int
ngx_http_ai_guard_rbuf_escape(ngx_http_ai_guard_rbuf_t *b, const u_char *p,
    size_t len)
{
    u_char        *d, c;
    size_t         i, n;
    static u_char  hex[] = "0123456789abcdef";

    n = len + 2;

    for (i = 0; i < len; i++) {
        c = p[i];

        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n'
            || c == '\r' || c == '\t')
        {
            n += 1;

        } else if (c < 0x20) {
            n += 5;
        }
    }

    if (ngx_http_ai_guard_rbuf_reserve(b, n) != 0) {
        return -1;
    }

    d = b->data + b->len;
    *d++ = '"';

    for (i = 0; i < len; i++) {
        c = p[i];

        if (c >= 0x20 && c != '"' && c != '\\') {
            *d++ = c;
            continue;
        }

        *d++ = '\\';

        switch (c) {
        case '"':
        case '\\':
            *d++ = c;
            break;
        case '\b':
            *d++ = 'b';
            break;
        case '\f':
            *d++ = 'f';
            break;
        case '\n':
            *d++ = 'n';
            break;
        case '\r':
            *d++ = 'r';
            break;
        case '\t':
            *d++ = 't';
            break;
        default:
            *d++ = 'u';
            *d++ = '0';
            *d++ = '0';
            *d++ = hex[c >> 4];
            *d++ = hex[c & 0xf];
        }
    }

    *d++ = '"';
    b->len = d - b->data;

    return 0;
}
