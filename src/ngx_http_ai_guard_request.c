
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <string.h>

#if (defined __SSE2__ && defined __GNUC__)
#include <emmintrin.h>
#define NGX_HTTP_AI_GUARD_SSE2  1
#endif

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

/* a bit of rp->seen past the top-level keys */
#define NGX_HTTP_AI_GUARD_SEEN_INCLUDE_USAGE  0x80000000

/*
 * How much of the current token is kept: all of a text (or of anything
 * for the canonical form), enough of a model name to tell it is too long,
 * enough of a key to match the longest one read; nothing of the rest.
 */
#define NGX_HTTP_AI_GUARD_KEEP_ALL            ((size_t) -1)
#define NGX_HTTP_AI_GUARD_KEEP_MODEL                                         \
    (NGX_HTTP_AI_GUARD_REQ_MODEL_LEN + 1)
#define NGX_HTTP_AI_GUARD_KEEP_KEY            32

/* what the digits of the current number said */
#define NGX_HTTP_AI_GUARD_NUM_NEGATIVE        0x01
#define NGX_HTTP_AI_GUARD_NUM_FRACTION        0x02  /* or an exponent */
#define NGX_HTTP_AI_GUARD_NUM_BIG             0x04  /* past INT64_MAX */
#define NGX_HTTP_AI_GUARD_NUM_NONZERO         0x08  /* a digit 1-9 before
                                                       the exponent */

#define NGX_HTTP_AI_GUARD_ONES                0x0101010101010101ULL

/*
 * Whether any of the 8 bytes of w ends a run of plain string bytes: a
 * quote, a backslash, a control character or a byte past ASCII.  Exact
 * as a yes or no: a borrow crosses into the next byte only out of a
 * byte that already answered yes.
 */
#define ngx_http_ai_guard_special(w)                                         \
    (((((w) ^ (0x22 * NGX_HTTP_AI_GUARD_ONES)) - NGX_HTTP_AI_GUARD_ONES)      \
      | (((w) ^ (0x5c * NGX_HTTP_AI_GUARD_ONES)) - NGX_HTTP_AI_GUARD_ONES)    \
      | ((w) - 0x20 * NGX_HTTP_AI_GUARD_ONES) | (w))                         \
     & (0x80 * NGX_HTTP_AI_GUARD_ONES))

#define ngx_http_ai_guard_is_map(ctx)  ((ctx) < NGX_HTTP_AI_GUARD_CTX_ARRAY)

#define ngx_http_ai_guard_is_text(role)                                      \
    ((role) >= NGX_HTTP_AI_GUARD_ROLE_CONTENT                                \
     && (role) <= NGX_HTTP_AI_GUARD_ROLE_INPUT_ITEM)

#define NGX_HTTP_AI_GUARD_ERR_JSON      "request body is not valid JSON"
#define NGX_HTTP_AI_GUARD_ERR_UTF8      "request body is not valid UTF-8"
#define NGX_HTTP_AI_GUARD_ERR_SURROGATE                                      \
    "request body has an unpaired UTF-16 surrogate escape"
#define NGX_HTTP_AI_GUARD_ERR_OBJECT                                         \
    "request body must be a JSON object"
#define NGX_HTTP_AI_GUARD_ERR_TRUNCATED "request body is truncated"
#define NGX_HTTP_AI_GUARD_ERR_NOMEM     "out of memory"


/*
 * States of the parser between two bytes: the structural ones first,
 * then those inside a string, then those inside a number.
 */
typedef enum {
    sw_value = 0,       /* a value; the root at depth 0 */
    sw_value_or_end,    /* after '[' */
    sw_key_or_end,      /* after '{' */
    sw_key,             /* after ',' in an object */
    sw_colon,
    sw_next,            /* after a value: ',' or its container's end */
    sw_done,            /* after the root */
    sw_literal,         /* in true, false or null */
    sw_string,
    sw_escape,          /* after '\' */
    sw_hex,             /* in the four digits of \uXXXX */
    sw_low,             /* after a high surrogate escape: its low half */
    sw_minus,
    sw_zero,            /* a leading zero */
    sw_int,
    sw_dot,
    sw_frac,
    sw_e,
    sw_exp_sign,
    sw_exp
} ngx_http_ai_guard_request_state_e;


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
    ngx_http_ai_guard_text_pt       text;
    void                           *data;
    ngx_http_ai_guard_request_t     req;
    const char                     *error;
    const char                     *param;
    ngx_http_ai_guard_count_t       count;
    size_t                          bytes;
    uint32_t                        seen;
    int                             rc;
    unsigned                        state;
    unsigned                        depth;
    unsigned                        role;
    unsigned                        key;

    /* the current token */
    unsigned                        vrole;  /* a string value's role */
    unsigned                        need;   /* UTF-8 continuation bytes */
    unsigned                        hex;
    unsigned                        nhex;
    unsigned                        high;   /* a high surrogate escape */
    unsigned                        nflags;
    u_char                          lo;     /* the next continuation */
    u_char                          hi;     /* byte's range */
    u_char                          lit;    /* 't', 'f' or 'n' */
    unsigned                        is_key:1;
    unsigned                        finished:1;
    const char                     *literal;
    uint64_t                        num;
    size_t                          keep;
    size_t                          slen;   /* decoded bytes kept so far */
    size_t                          wide;   /* of them, bytes past ASCII */
    size_t                          other;
    size_t                          halves;
    ngx_http_ai_guard_rbuf_t        scratch;

    ngx_http_ai_guard_level_t      *levels;
    size_t                          nlevels;    /* of them, initialized */
    ngx_http_ai_guard_rbuf_t        out;
    uint8_t                         ctx[NGX_HTTP_AI_GUARD_REQ_MAX_DEPTH + 1];
};


static int ngx_http_ai_guard_request_fail(
    ngx_http_ai_guard_request_parser_t *rp, int rc, const char *error,
    const char *param);
static void ngx_http_ai_guard_request_begin(
    ngx_http_ai_guard_request_parser_t *rp, size_t keep);
static int ngx_http_ai_guard_request_keep(
    ngx_http_ai_guard_request_parser_t *rp, const u_char *p, size_t len);
static int ngx_http_ai_guard_request_token(
    ngx_http_ai_guard_request_parser_t *rp, const u_char *s,
    const u_char *p, const u_char **t, size_t *len);
static const u_char *ngx_http_ai_guard_request_skip(const u_char *p,
    const u_char *end);
static int ngx_http_ai_guard_request_lead(
    ngx_http_ai_guard_request_parser_t *rp, u_char c);
static int ngx_http_ai_guard_request_escape(
    ngx_http_ai_guard_request_parser_t *rp, uint32_t cp);
static unsigned ngx_http_ai_guard_request_role(
    ngx_http_ai_guard_request_parser_t *rp);
static int ngx_http_ai_guard_request_scalar(
    ngx_http_ai_guard_request_parser_t *rp, unsigned role);
static int ngx_http_ai_guard_request_open(
    ngx_http_ai_guard_request_parser_t *rp, int map);
static int ngx_http_ai_guard_request_close(
    ngx_http_ai_guard_request_parser_t *rp, int map);
static int ngx_http_ai_guard_request_key(
    ngx_http_ai_guard_request_parser_t *rp, const u_char *s, size_t len);
static int ngx_http_ai_guard_request_string(
    ngx_http_ai_guard_request_parser_t *rp, const u_char *s, size_t len);
static int ngx_http_ai_guard_request_number(
    ngx_http_ai_guard_request_parser_t *rp, const u_char *s,
    const u_char *p);
static int ngx_http_ai_guard_request_literal(
    ngx_http_ai_guard_request_parser_t *rp);
static int ngx_http_ai_guard_request_text(
    ngx_http_ai_guard_request_parser_t *rp, const u_char *p, size_t len);
static int ngx_http_ai_guard_request_utf8(const u_char *p, size_t len,
    ngx_http_ai_guard_count_t *count);
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
    rp->state = sw_value;
    rp->req.stream = -1;
    rp->req.include_usage = -1;
    rp->req.max_tokens = -1;
    rp->req.n = -1;

    if (want_canonical) {
        /* the levels are set up as the nesting first reaches them */

        rp->levels = malloc((NGX_HTTP_AI_GUARD_REQ_MAX_DEPTH + 1)
                            * sizeof(ngx_http_ai_guard_level_t));
        if (rp->levels == NULL) {
            free(rp);
            return NULL;
        }

        memset(&rp->levels[0], 0, sizeof(ngx_http_ai_guard_level_t));
        rp->levels[0].sink = &rp->out;
        rp->nlevels = 1;
    }

    return rp;
}


/*
 * RFC 8259 JSON, byte by byte: no comments, one value, nothing after it
 * but whitespace.  A string's plain bytes are skipped 8 at a time; only
 * a text, a model name, a key that may be one of ours and, for the
 * canonical form, every string and number are kept, decoded, in the
 * scratch buffer, and only when they span two buffers or have escapes:
 * a token whole in one buffer is handed on in place.
 */

int
ngx_http_ai_guard_request_feed(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *p, size_t len)
{
    u_char                              c;
    size_t                              n;
    uint32_t                            cp;
    const u_char                       *s, *t, *end;
    ngx_http_ai_guard_request_state_e   state;

    if (rp->rc != NGX_HTTP_AI_GUARD_REQ_OK) {
        return rp->rc;
    }

    if (rp->finished) {
        (void) ngx_http_ai_guard_request_fail(rp,
                                     NGX_HTTP_AI_GUARD_REQ_INVALID,
                                     NGX_HTTP_AI_GUARD_ERR_JSON, NULL);
        return rp->rc;
    }

    rp->bytes += len;

    state = rp->state;
    end = p + len;
    s = p;

    while (p < end) {

        switch (state) {

        case sw_string:

            for ( ;; ) {

                if (rp->need == 0) {
                    p = ngx_http_ai_guard_request_skip(p, end);
                }

                if (p == end) {
                    break;
                }

                c = *p;

                if (c >= 0x80) {
                    if (rp->need) {
                        if (c < rp->lo || c > rp->hi) {
                            goto utf8;
                        }

                        rp->need--;
                        rp->lo = 0x80;
                        rp->hi = 0xbf;

                    } else if (ngx_http_ai_guard_request_lead(rp, c) != 0) {
                        goto utf8;
                    }

                    p++;
                    continue;
                }

                if (rp->need) {
                    goto utf8;
                }

                if (c >= 0x20 && c != '"' && c != '\\') {
                    p++;
                    continue;
                }

                break;
            }

            if (p == end) {
                continue;
            }

            if (c == '"') {
                if (ngx_http_ai_guard_request_token(rp, s, p, &t, &n) != 0) {
                    goto nomem;
                }

                p++;

                if (rp->is_key) {
                    if (ngx_http_ai_guard_request_key(rp, t, n) == 0) {
                        goto failed;
                    }

                    state = sw_colon;

                } else {
                    if (ngx_http_ai_guard_request_string(rp, t, n) == 0) {
                        goto failed;
                    }

                    state = sw_next;
                }

                continue;
            }

            if (c == '\\') {
                if (rp->keep
                    && ngx_http_ai_guard_request_keep(rp, s, p - s) != 0)
                {
                    goto nomem;
                }

                p++;
                state = sw_escape;
                continue;
            }

            /* a control character */

            goto json;

        case sw_escape:
            c = *p++;

            if (c == 'u') {
                rp->hex = 0;
                rp->nhex = 0;
                state = sw_hex;
                continue;
            }

            if (rp->high) {
                goto surrogate;
            }

            switch (c) {
            case '"':
            case '\\':
            case '/':
                break;
            case 'b':
                c = '\b';
                break;
            case 'f':
                c = '\f';
                break;
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            default:
                goto json;
            }

            if (rp->keep && ngx_http_ai_guard_request_keep(rp, &c, 1) != 0) {
                goto nomem;
            }

            s = p;
            state = sw_string;
            continue;

        case sw_hex:
            c = *p;

            if (c >= '0' && c <= '9') {
                cp = c - '0';

            } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
                cp = (c | 0x20) - 'a' + 10;

            } else {
                goto json;
            }

            p++;
            rp->hex = (rp->hex << 4) | cp;

            if (++rp->nhex < 4) {
                continue;
            }

            cp = rp->hex;

            if (rp->high) {
                if (cp < 0xdc00 || cp > 0xdfff) {
                    goto surrogate;
                }

                cp = 0x10000 + ((rp->high - 0xd800) << 10) + (cp - 0xdc00);
                rp->high = 0;

            } else if (cp >= 0xd800 && cp <= 0xdbff) {
                rp->high = cp;
                state = sw_low;
                continue;

            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                goto surrogate;
            }

            if (ngx_http_ai_guard_request_escape(rp, cp) != 0) {
                goto nomem;
            }

            s = p;
            state = sw_string;
            continue;

        case sw_low:
            if (*p != '\\') {
                goto surrogate;
            }

            p++;
            state = sw_escape;
            continue;

        case sw_value_or_end:
            if (*p == ']') {
                goto close;
            }

            /* fall through */

        case sw_value:
            c = *p;

            switch (c) {

            case ' ':
            case '\t':
            case '\n':
            case '\r':
                p++;
                continue;

            case '{':
            case '[':
                if (ngx_http_ai_guard_request_open(rp, c == '{') == 0) {
                    goto failed;
                }

                p++;
                state = (c == '{') ? sw_key_or_end : sw_value_or_end;
                continue;

            default:
                break;
            }

            if (rp->depth == 0) {
                if (c == '"' || c == '-' || (c >= '0' && c <= '9')
                    || c == 't' || c == 'f' || c == 'n')
                {
                    (void) ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_INVALID,
                                         NGX_HTTP_AI_GUARD_ERR_OBJECT, NULL);
                    goto failed;
                }

                goto json;
            }

            switch (c) {

            case '"':
                rp->vrole = ngx_http_ai_guard_request_role(rp);
                rp->is_key = 0;

                if (rp->levels || ngx_http_ai_guard_is_text(rp->vrole)) {
                    n = NGX_HTTP_AI_GUARD_KEEP_ALL;

                } else if (rp->vrole == NGX_HTTP_AI_GUARD_ROLE_MODEL) {
                    n = NGX_HTTP_AI_GUARD_KEEP_MODEL;

                } else {
                    n = 0;
                }

                ngx_http_ai_guard_request_begin(rp, n);

                s = ++p;
                state = sw_string;
                continue;

            case '-':
            case '0':
            case '1':
            case '2':
            case '3':
            case '4':
            case '5':
            case '6':
            case '7':
            case '8':
            case '9':
                ngx_http_ai_guard_request_begin(rp, rp->levels
                                                ? NGX_HTTP_AI_GUARD_KEEP_ALL
                                                : 0);
                rp->num = 0;
                rp->nflags = 0;
                s = p;

                if (c == '-') {
                    rp->nflags = NGX_HTTP_AI_GUARD_NUM_NEGATIVE;
                    state = sw_minus;

                } else if (c == '0') {
                    state = sw_zero;

                } else {
                    rp->num = c - '0';
                    rp->nflags = NGX_HTTP_AI_GUARD_NUM_NONZERO;
                    state = sw_int;
                }

                p++;
                continue;

            case 't':
                rp->literal = "rue";
                break;

            case 'f':
                rp->literal = "alse";
                break;

            case 'n':
                rp->literal = "ull";
                break;

            default:
                goto json;
            }

            rp->lit = c;
            p++;
            state = sw_literal;
            continue;

        case sw_literal:
            if (*p != (u_char) *rp->literal) {
                goto json;
            }

            p++;

            if (*++rp->literal != '\0') {
                continue;
            }

            if (ngx_http_ai_guard_request_literal(rp) == 0) {
                goto failed;
            }

            state = sw_next;
            continue;

        case sw_key_or_end:
            if (*p == '}') {
                goto close;
            }

            /* fall through */

        case sw_key:
            c = *p;

            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                p++;
                continue;
            }

            if (c != '"') {
                goto json;
            }

            rp->is_key = 1;

            if (rp->levels) {
                n = NGX_HTTP_AI_GUARD_KEEP_ALL;

            } else if (rp->ctx[rp->depth] == NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP)
            {
                n = 0;

            } else {
                n = NGX_HTTP_AI_GUARD_KEEP_KEY;
            }

            ngx_http_ai_guard_request_begin(rp, n);

            s = ++p;
            state = sw_string;
            continue;

        case sw_colon:
            c = *p++;

            if (c == ':') {
                state = sw_value;
                continue;
            }

            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                continue;
            }

            goto json;

        case sw_next:
            c = *p;

            if (c == ',') {
                p++;
                state = ngx_http_ai_guard_is_map(rp->ctx[rp->depth])
                        ? sw_key : sw_value;
                continue;
            }

            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                p++;
                continue;
            }

            if (c == (ngx_http_ai_guard_is_map(rp->ctx[rp->depth])
                      ? '}' : ']'))
            {
                goto close;
            }

            goto json;

        case sw_done:
            c = *p++;

            if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                continue;
            }

            (void) ngx_http_ai_guard_request_fail(rp,
                                     NGX_HTTP_AI_GUARD_REQ_INVALID,
                                     "unexpected data after the JSON object",
                                     NULL);
            goto failed;

        case sw_minus:
            c = *p;

            if (c == '0') {
                state = sw_zero;

            } else if (c >= '1' && c <= '9') {
                rp->num = c - '0';
                rp->nflags |= NGX_HTTP_AI_GUARD_NUM_NONZERO;
                state = sw_int;

            } else {
                goto json;
            }

            p++;
            continue;

        case sw_int:
            c = *p;

            if (c >= '0' && c <= '9') {
                cp = c - '0';

                /* INT64_MAX is 9223372036854775807 */

                if (rp->num > 922337203685477580ULL
                    || (rp->num == 922337203685477580ULL && cp > 7))
                {
                    rp->nflags |= NGX_HTTP_AI_GUARD_NUM_BIG;

                } else {
                    rp->num = rp->num * 10 + cp;
                }

                if (cp) {
                    rp->nflags |= NGX_HTTP_AI_GUARD_NUM_NONZERO;
                }

                p++;
                continue;
            }

            /* fall through */

        case sw_zero:
            c = *p;

            if (c == '.') {
                rp->nflags |= NGX_HTTP_AI_GUARD_NUM_FRACTION;
                state = sw_dot;

            } else if (c == 'e' || c == 'E') {
                rp->nflags |= NGX_HTTP_AI_GUARD_NUM_FRACTION;
                state = sw_e;

            } else {
                goto number;
            }

            p++;
            continue;

        case sw_dot:
        case sw_frac:
            c = *p;

            if (c >= '0' && c <= '9') {
                if (c != '0') {
                    rp->nflags |= NGX_HTTP_AI_GUARD_NUM_NONZERO;
                }

                p++;
                state = sw_frac;
                continue;
            }

            if (state == sw_dot) {
                goto json;
            }

            if (c == 'e' || c == 'E') {
                p++;
                state = sw_e;
                continue;
            }

            goto number;

        case sw_e:
            c = *p;

            if (c == '+' || c == '-') {
                p++;
                state = sw_exp_sign;
                continue;
            }

            /* fall through */

        case sw_exp_sign:
        case sw_exp:
            c = *p;

            if (c >= '0' && c <= '9') {
                p++;
                state = sw_exp;
                continue;
            }

            if (state != sw_exp) {
                goto json;
            }

            goto number;
        }

        /* not reached: every state goes on, or jumps to one of these */

    number:

        /* the byte after a number is the next token's: not consumed */

        if (ngx_http_ai_guard_request_number(rp, s, p) == 0) {
            goto failed;
        }

        state = sw_next;
        continue;

    close:

        if (ngx_http_ai_guard_request_close(rp, *p == '}') == 0) {
            goto failed;
        }

        p++;
        state = rp->depth ? sw_next : sw_done;
    }

    /* the buffer ends inside a token: keep what of it is wanted */

    if (rp->keep
        && (state == sw_string || state >= sw_minus)
        && ngx_http_ai_guard_request_keep(rp, s, end - s) != 0)
    {
        goto nomem;
    }

    rp->state = state;

    return NGX_HTTP_AI_GUARD_REQ_OK;

json:

    (void) ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_INVALID,
                                          NGX_HTTP_AI_GUARD_ERR_JSON, NULL);
    goto failed;

utf8:

    (void) ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_INVALID,
                                          NGX_HTTP_AI_GUARD_ERR_UTF8, NULL);
    goto failed;

surrogate:

    (void) ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_INVALID,
                                          NGX_HTTP_AI_GUARD_ERR_SURROGATE,
                                          NULL);
    goto failed;

nomem:

    (void) ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                          NGX_HTTP_AI_GUARD_ERR_NOMEM, NULL);

failed:

    rp->state = state;

    return rp->rc;
}


int
ngx_http_ai_guard_request_finish(ngx_http_ai_guard_request_parser_t *rp,
    ngx_http_ai_guard_request_t *out)
{
    const char  *error;

    if (rp->rc == NGX_HTTP_AI_GUARD_REQ_OK && !rp->finished) {
        rp->finished = 1;

        if (rp->bytes == 0) {
            (void) ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_INVALID,
                                         "request body is empty", NULL);

        } else if (rp->state != sw_done) {

            switch (rp->state) {

            case sw_string:
                error = rp->need ? NGX_HTTP_AI_GUARD_ERR_UTF8
                                 : NGX_HTTP_AI_GUARD_ERR_TRUNCATED;
                break;

            /* a token that cannot end here */
            case sw_literal:
            case sw_minus:
            case sw_dot:
            case sw_e:
            case sw_exp_sign:
                error = NGX_HTTP_AI_GUARD_ERR_JSON;
                break;

            default:
                error = NGX_HTTP_AI_GUARD_ERR_TRUNCATED;
            }

            (void) ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_INVALID,
                                         error, NULL);
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

    if (rp->levels) {
        for (i = 0; i < rp->nlevels; i++) {
            free(rp->levels[i].buf.data);
            free(rp->levels[i].members);
        }

        free(rp->levels);
    }

    free(rp->scratch.data);
    free(rp->out.data);
    free(rp);
}


/*
 * The estimate (docs/estimate.md has the rule and its measured error):
 * a quarter token per ASCII byte, the weight of the other code points
 * (see ngx_http_ai_guard_request_lead()), both rounded up, and four
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


/* a string or a number starts */

static void
ngx_http_ai_guard_request_begin(ngx_http_ai_guard_request_parser_t *rp,
    size_t keep)
{
    rp->keep = keep;
    rp->slen = 0;
    rp->scratch.len = 0;
    rp->wide = 0;
    rp->other = 0;
    rp->halves = 0;
}


/* decoded bytes of the current token, kept up to rp->keep */

static int
ngx_http_ai_guard_request_keep(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *p, size_t len)
{
    size_t  n;

    n = rp->keep - rp->scratch.len;

    if (n > len) {
        n = len;
    }

    rp->slen += len;

    return ngx_http_ai_guard_rbuf_add(&rp->scratch, p, n);
}


/*
 * The current token, ending at p: in place when none of it was kept
 * before (it lies whole in this buffer and has no escapes), else in the
 * scratch buffer.  Only its first rp->keep bytes are there to read.
 */

static int
ngx_http_ai_guard_request_token(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *s, const u_char *p, const u_char **t, size_t *len)
{
    if (rp->slen == 0) {
        *t = s;
        *len = p - s;
        return 0;
    }

    if (ngx_http_ai_guard_request_keep(rp, s, p - s) != 0) {
        return -1;
    }

    *t = rp->scratch.data;
    *len = rp->slen;

    return 0;
}


/*
 * The first byte from p on that ends a run of plain string bytes, or a
 * point less than 8 bytes before the end: 16 bytes at a time with SSE2
 * (x86-64 always has it), else 8.  A signed compare with ' ' catches the
 * control characters and the bytes past ASCII together.
 */

static const u_char *
ngx_http_ai_guard_request_skip(const u_char *p, const u_char *end)
{
    uint64_t  w;
#if (NGX_HTTP_AI_GUARD_SSE2)
    int       m;
    __m128i   v, quote, backslash, space;

    quote = _mm_set1_epi8('"');
    backslash = _mm_set1_epi8('\\');
    space = _mm_set1_epi8(' ');

    while (end - p >= 16) {
        v = _mm_loadu_si128((const __m128i *) p);

        m = _mm_movemask_epi8(
                _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote),
                                          _mm_cmpeq_epi8(v, backslash)),
                             _mm_cmplt_epi8(v, space)));

        if (m) {
            return p + __builtin_ctz(m);
        }

        p += 16;
    }
#endif

    while (end - p >= 8) {
        memcpy(&w, p, 8);

        if (ngx_http_ai_guard_special(w)) {
            break;
        }

        p += 8;
    }

    return p;
}


/*
 * Strict UTF-8 (RFC 3629): no overlong forms, encoded surrogates or code
 * points past U+10FFFF.  A lead byte sets the range of the byte after
 * it, and counts for the estimate: a two-byte sequence (Latin, Cyrillic,
 * Greek, Arabic, Hebrew) weighs half a token, a three-byte one (CJK,
 * most symbols) one, a four-byte one (emoji) two.
 */

static int
ngx_http_ai_guard_request_lead(ngx_http_ai_guard_request_parser_t *rp,
    u_char c)
{
    unsigned  n;

    rp->lo = 0x80;
    rp->hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        n = 1;

    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2;

        if (c == 0xe0) {
            rp->lo = 0xa0;

        } else if (c == 0xed) {
            rp->hi = 0x9f;
        }

    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3;

        if (c == 0xf0) {
            rp->lo = 0x90;

        } else if (c == 0xf4) {
            rp->hi = 0x8f;
        }

    } else {
        return -1;
    }

    rp->need = n;
    rp->wide += n + 1;
    rp->other++;
    rp->halves += (size_t) 1 << (n - 1);

    return 0;
}


/* a \uXXXX escape, or a pair of them, as UTF-8; counted as lead() does */

static int
ngx_http_ai_guard_request_escape(ngx_http_ai_guard_request_parser_t *rp,
    uint32_t cp)
{
    u_char  buf[4];
    size_t  n;

    if (cp < 0x80) {
        buf[0] = (u_char) cp;
        n = 1;

    } else if (cp < 0x800) {
        buf[0] = (u_char) (0xc0 | (cp >> 6));
        buf[1] = (u_char) (0x80 | (cp & 0x3f));
        n = 2;

    } else if (cp < 0x10000) {
        buf[0] = (u_char) (0xe0 | (cp >> 12));
        buf[1] = (u_char) (0x80 | ((cp >> 6) & 0x3f));
        buf[2] = (u_char) (0x80 | (cp & 0x3f));
        n = 3;

    } else {
        buf[0] = (u_char) (0xf0 | (cp >> 18));
        buf[1] = (u_char) (0x80 | ((cp >> 12) & 0x3f));
        buf[2] = (u_char) (0x80 | ((cp >> 6) & 0x3f));
        buf[3] = (u_char) (0x80 | (cp & 0x3f));
        n = 4;
    }

    if (n > 1) {
        rp->wide += n;
        rp->other++;
        rp->halves += (size_t) 1 << (n - 2);
    }

    if (rp->keep == 0) {
        return 0;
    }

    return ngx_http_ai_guard_request_keep(rp, buf, n);
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
ngx_http_ai_guard_request_literal(ngx_http_ai_guard_request_parser_t *rp)
{
    unsigned  role;

    role = ngx_http_ai_guard_request_role(rp);

    if (rp->lit == 'n') {
        if (role == NGX_HTTP_AI_GUARD_ROLE_MODEL) {
            return ngx_http_ai_guard_request_scalar(rp, role);
        }

        if (rp->levels) {
            return ngx_http_ai_guard_canon_value(rp, (u_char *) "null", 4,
                                                 0);
        }

        return 1;
    }

    switch (role) {

    case NGX_HTTP_AI_GUARD_ROLE_STREAM:
        rp->req.stream = (rp->lit == 't');
        break;

    case NGX_HTTP_AI_GUARD_ROLE_INCLUDE_USAGE:
        rp->req.include_usage = (rp->lit == 't');
        break;

    case NGX_HTTP_AI_GUARD_ROLE_MODEL:
    case NGX_HTTP_AI_GUARD_ROLE_MAX_TOKENS:
    case NGX_HTTP_AI_GUARD_ROLE_N:
        return ngx_http_ai_guard_request_scalar(rp, role);

    default:
        break;
    }

    if (rp->levels) {
        return rp->lit == 't'
               ? ngx_http_ai_guard_canon_value(rp, (u_char *) "true", 4, 0)
               : ngx_http_ai_guard_canon_value(rp, (u_char *) "false", 5, 0);
    }

    return 1;
}


/* a number ends at p: its grammar was checked, its digits read */

static int
ngx_http_ai_guard_request_number(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *s, const u_char *p)
{
    size_t         n;
    unsigned       role;
    const u_char  *t;

    role = ngx_http_ai_guard_request_role(rp);

    switch (role) {

    case NGX_HTTP_AI_GUARD_ROLE_MAX_TOKENS:
    case NGX_HTTP_AI_GUARD_ROLE_N:
        if (rp->nflags & (NGX_HTTP_AI_GUARD_NUM_NEGATIVE
                          | NGX_HTTP_AI_GUARD_NUM_FRACTION
                          | NGX_HTTP_AI_GUARD_NUM_BIG))
        {
            return ngx_http_ai_guard_request_scalar(rp, role);
        }

        if (role == NGX_HTTP_AI_GUARD_ROLE_N) {
            rp->req.n = (int64_t) rp->num;

        } else if ((int64_t) rp->num > rp->req.max_tokens) {
            rp->req.max_tokens = (int64_t) rp->num;
        }

        break;

    case NGX_HTTP_AI_GUARD_ROLE_TEMPERATURE:
        rp->req.deterministic =
                           !(rp->nflags & NGX_HTTP_AI_GUARD_NUM_NONZERO);
        break;

    case NGX_HTTP_AI_GUARD_ROLE_MODEL:
    case NGX_HTTP_AI_GUARD_ROLE_STREAM:
    case NGX_HTTP_AI_GUARD_ROLE_INCLUDE_USAGE:
        return ngx_http_ai_guard_request_scalar(rp, role);

    default:
        break;
    }

    if (rp->levels) {
        if (ngx_http_ai_guard_request_token(rp, s, p, &t, &n) != 0) {
            return ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                         NGX_HTTP_AI_GUARD_ERR_NOMEM, NULL);
        }

        return ngx_http_ai_guard_canon_value(rp, t, n, 0);
    }

    return 1;
}


/* a string value ends; its UTF-8 was checked on the way */

static int
ngx_http_ai_guard_request_string(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *s, size_t len)
{
    size_t    i;
    unsigned  role;

    role = rp->vrole;

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

        break;

    case NGX_HTTP_AI_GUARD_ROLE_STREAM:
    case NGX_HTTP_AI_GUARD_ROLE_INCLUDE_USAGE:
    case NGX_HTTP_AI_GUARD_ROLE_MAX_TOKENS:
    case NGX_HTTP_AI_GUARD_ROLE_N:
        return ngx_http_ai_guard_request_scalar(rp, role);

    default:
        break;
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
    rp->count.ascii += len - rp->wide;
    rp->count.other += rp->other;
    rp->count.halves += rp->halves;
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
ngx_http_ai_guard_request_open(ngx_http_ai_guard_request_parser_t *rp,
    int map)
{
    unsigned  role, child;

    if (rp->depth == 0) {
        if (!map) {
            return ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_INVALID,
                                         NGX_HTTP_AI_GUARD_ERR_OBJECT, NULL);
        }

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
ngx_http_ai_guard_request_close(ngx_http_ai_guard_request_parser_t *rp,
    int map)
{
    if (rp->levels) {
        if (map) {
            if (ngx_http_ai_guard_canon_end_map(rp) == 0) {
                return 0;
            }

        } else if (ngx_http_ai_guard_rbuf_add(rp->levels[rp->depth].sink,
                                              (u_char *) "]", 1)
                   != 0)
        {
            return ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                         NGX_HTTP_AI_GUARD_ERR_NOMEM, NULL);
        }
    }

    rp->depth--;

    return 1;
}


/*
 * A key ends.  Outside the objects whose keys are read (and without the
 * canonical form) nothing of it was kept, and nothing need be done.
 */

static int
ngx_http_ai_guard_request_key(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *s, size_t len)
{
    unsigned                   i;
    ngx_http_ai_guard_key_t   *k;

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


/*
 * UTF-8 of a text on its own, for the estimate: the rule of lead(), with
 * 8 ASCII bytes at a time.
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

    if (rp->depth + 1 == rp->nlevels) {
        memset(child, 0, sizeof(ngx_http_ai_guard_level_t));
        rp->nlevels++;
    }

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
 * Runs of other bytes are found as the parser finds them and copied.
 */

static int
ngx_http_ai_guard_rbuf_escape(ngx_http_ai_guard_rbuf_t *b, const u_char *p,
    size_t len)
{
    u_char         c, *d;
    size_t         n;
    const u_char  *q, *end;
    static u_char  hex[] = "0123456789abcdef";

    end = p + len;

    if (ngx_http_ai_guard_rbuf_reserve(b, len + 2) != 0) {
        return -1;
    }

    b->data[b->len++] = '"';

    for ( ;; ) {

        for (q = p; q < end; q++) {
            q = ngx_http_ai_guard_request_skip(q, end);

            if (q == end) {
                break;
            }

            c = *q;

            if (c < 0x20 || c == '"' || c == '\\') {
                break;
            }
        }

        /* 6 for an escape, 1 for the closing quote */

        n = q - p;

        if (ngx_http_ai_guard_rbuf_reserve(b, n + 7) != 0) {
            return -1;
        }

        d = b->data + b->len;

        if (n) {
            memcpy(d, p, n);
            d += n;
        }

        if (q == end) {
            break;
        }

        c = *q;
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

        b->len = d - b->data;
        p = q + 1;
    }

    *d++ = '"';
    b->len = d - b->data;

    return 0;
}
