
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <string.h>

#include "ngx_http_ai_guard_json.h"
#include "ngx_http_ai_guard_canon.h"
#include "ngx_http_ai_guard_request.h"
#include "ngx_http_ai_guard_request_fields.h"


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

/* a number a count must not be: negative, a fraction, past INT64_MAX */
#define NGX_HTTP_AI_GUARD_NOT_COUNT                                          \
    (NGX_HTTP_AI_GUARD_JSON_NEGATIVE|NGX_HTTP_AI_GUARD_JSON_FRACTION         \
     |NGX_HTTP_AI_GUARD_JSON_EXPONENT|NGX_HTTP_AI_GUARD_JSON_BIG)

#define NGX_HTTP_AI_GUARD_ERR_JSON      "request body is not valid JSON"
#define NGX_HTTP_AI_GUARD_ERR_UTF8      "request body is not valid UTF-8"
#define NGX_HTTP_AI_GUARD_ERR_SURROGATE                                      \
    "request body has an unpaired UTF-16 surrogate escape"
#define NGX_HTTP_AI_GUARD_ERR_OBJECT                                         \
    "request body must be a JSON object"
#define NGX_HTTP_AI_GUARD_ERR_TRUNCATED "request body is truncated"
#define NGX_HTTP_AI_GUARD_ERR_NOMEM     "out of memory"


/*
 * States of the parser between two bytes: the structural ones, then
 * those inside a token; an escape and a number have states of their own
 * in the decoders of ngx_http_ai_guard_json.c.
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
    sw_number
} ngx_http_ai_guard_request_state_e;


typedef struct {
    size_t                          ascii;  /* ASCII bytes */
    size_t                          other;  /* other code points */
    size_t                          halves; /* their weight, half tokens */
} ngx_http_ai_guard_count_t;


struct ngx_http_ai_guard_request_parser_s {
    ngx_http_ai_guard_text_pt         text;
    void                             *data;
    ngx_http_ai_guard_request_t       req;
    const char                       *error;
    const char                       *param;
    ngx_http_ai_guard_count_t         count;
    size_t                            bytes;
    size_t                            sstart; /* the string token's span */
    size_t                            send;   /* in the body */
    uint32_t                          seen;
    int                               rc;
    unsigned                          state;
    unsigned                          depth;
    unsigned                          role;
    unsigned                          key;

    /* the current token */
    unsigned                          vrole;  /* a string value's role */
    unsigned                          need;   /* UTF-8 continuation bytes */
    u_char                            lo;     /* the next continuation */
    u_char                            hi;     /* byte's range */
    u_char                            lit;    /* 't', 'f' or 'n' */
    unsigned                          is_key:1;
    unsigned                          track:1;  /* its decoded length */
    unsigned                          finished:1;
    const char                       *literal;
    ngx_http_ai_guard_json_escape_t   esc;
    ngx_http_ai_guard_json_number_t   num;
    size_t                            keep;
    size_t                            slen;   /* decoded bytes so far */
    size_t                            wide;   /* of them, bytes past ASCII */
    size_t                            other;
    size_t                            halves;
    ngx_http_ai_guard_rbuf_t          scratch;

    ngx_http_ai_guard_canon_t         canon;
    uint32_t                          groups;
    uint8_t                           ctx[NGX_HTTP_AI_GUARD_REQ_MAX_DEPTH + 1];
    /* the content array a text at this depth is a part of; 0: none */
    uint32_t                          group[NGX_HTTP_AI_GUARD_REQ_MAX_DEPTH
                                            + 1];
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
    ngx_http_ai_guard_request_parser_t *rp, const u_char *p, size_t len,
    unsigned counted);
static uint64_t ngx_http_ai_guard_request_tokens(
    ngx_http_ai_guard_count_t *count, size_t texts);
static void ngx_http_ai_guard_request_result(
    ngx_http_ai_guard_request_parser_t *rp,
    ngx_http_ai_guard_request_t *out);
static int ngx_http_ai_guard_request_canon(
    ngx_http_ai_guard_request_parser_t *rp, const u_char *p, size_t len,
    int string);


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

    if (want_canonical
        && ngx_http_ai_guard_canon_init(&rp->canon,
                                        NGX_HTTP_AI_GUARD_REQ_MAX_DEPTH)
           != 0)
    {
        free(rp);
        return NULL;
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
                    p = ngx_http_ai_guard_json_skip(p, end);
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
                rp->send = rp->bytes - (end - p) + 1;

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
                if (rp->track
                    && ngx_http_ai_guard_request_keep(rp, s, p - s) != 0)
                {
                    goto nomem;
                }

                p++;
                ngx_http_ai_guard_json_escape_init(&rp->esc, 1);
                state = sw_escape;
                continue;
            }

            /* a control character */

            goto json;

        case sw_escape:
            p = ngx_http_ai_guard_json_escape(&rp->esc, p, end);

            switch (rp->esc.rc) {

            case NGX_HTTP_AI_GUARD_JSON_AGAIN:
                continue;

            case NGX_HTTP_AI_GUARD_JSON_DONE:
                break;

            case NGX_HTTP_AI_GUARD_JSON_SURROGATE:
                goto surrogate;

            default:
                goto json;
            }

            if (ngx_http_ai_guard_request_escape(rp, rp->esc.cp) != 0) {
                goto nomem;
            }

            s = p;
            state = sw_string;
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

                if (rp->canon.levels
                    || (rp->text && ngx_http_ai_guard_is_text(rp->vrole)))
                {
                    n = NGX_HTTP_AI_GUARD_KEEP_ALL;

                } else if (rp->vrole == NGX_HTTP_AI_GUARD_ROLE_MODEL) {
                    n = NGX_HTTP_AI_GUARD_KEEP_MODEL;

                } else if (rp->vrole == NGX_HTTP_AI_GUARD_ROLE_TYPE) {
                    n = NGX_HTTP_AI_GUARD_KEEP_KEY;

                } else {
                    n = 0;
                }

                ngx_http_ai_guard_request_begin(rp, n);
                rp->sstart = rp->bytes - (end - p);

                /* a counted text's length counts, kept or not */
                rp->track |= ngx_http_ai_guard_is_counted(rp->vrole);

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
                ngx_http_ai_guard_request_begin(rp, rp->canon.levels
                                                ? NGX_HTTP_AI_GUARD_KEEP_ALL
                                                : 0);
                ngx_http_ai_guard_json_number_init(&rp->num);
                s = p;
                state = sw_number;
                p = ngx_http_ai_guard_json_number(&rp->num, p, end);
                goto number;

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

            if (rp->canon.levels
                || (rp->text
                    && rp->ctx[rp->depth] == NGX_HTTP_AI_GUARD_CTX_ALL_MAP))
            {
                n = NGX_HTTP_AI_GUARD_KEEP_ALL;

            } else if (rp->ctx[rp->depth] == NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP
                       || rp->ctx[rp->depth] == NGX_HTTP_AI_GUARD_CTX_ALL_MAP)
            {
                n = 0;

            } else {
                n = NGX_HTTP_AI_GUARD_KEEP_KEY;
            }

            ngx_http_ai_guard_request_begin(rp, n);
            rp->sstart = rp->bytes - (end - p);

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

        case sw_number:
            p = ngx_http_ai_guard_json_number(&rp->num, p, end);
            goto number;
        }

        /* not reached: every state goes on, or jumps to one of these */

    number:

        if (rp->num.rc == NGX_HTTP_AI_GUARD_JSON_AGAIN) {
            continue;
        }

        if (rp->num.rc != NGX_HTTP_AI_GUARD_JSON_DONE) {
            goto json;
        }

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

    if (rp->track
        && (state == sw_string || state == sw_number)
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
                error = NGX_HTTP_AI_GUARD_ERR_JSON;
                break;

            case sw_number:
                error = ngx_http_ai_guard_json_number_whole(&rp->num)
                        ? NGX_HTTP_AI_GUARD_ERR_TRUNCATED
                        : NGX_HTTP_AI_GUARD_ERR_JSON;
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
    if (rp->canon.levels == NULL || !rp->finished
        || rp->rc != NGX_HTTP_AI_GUARD_REQ_OK)
    {
        *p = NULL;
        *len = 0;
        return NGX_HTTP_AI_GUARD_REQ_INVALID;
    }

    *p = rp->canon.out.data;
    *len = rp->canon.out.len;

    return NGX_HTTP_AI_GUARD_REQ_OK;
}


void
ngx_http_ai_guard_request_free(ngx_http_ai_guard_request_parser_t *rp)
{
    if (rp == NULL) {
        return;
    }

    ngx_http_ai_guard_canon_free(&rp->canon);

    free(rp->scratch.data);
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
    size_t                     n[4];
    ngx_http_ai_guard_count_t  count;

    if (ngx_http_ai_guard_json_utf8_count(p, len, n) != 0) {
        return len;
    }

    count.ascii = n[0];
    count.other = n[1] + n[2] + n[3];
    count.halves = n[1] + 2 * n[2] + 4 * n[3];

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
    rp->track = (keep != 0);
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

    rp->slen += len;

    n = rp->keep - rp->scratch.len;

    if (n > len) {
        n = len;
    }

    if (n == 0) {
        return 0;
    }

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
 * Strict UTF-8, as ngx_http_ai_guard_json_utf8_lead() has it.  A lead
 * byte sets the range of the byte after it, and counts for the estimate:
 * a two-byte sequence (Latin, Cyrillic, Greek, Arabic, Hebrew) weighs
 * half a token, a three-byte one (CJK, most symbols) one, a four-byte one
 * (emoji) two.
 */

static int
ngx_http_ai_guard_request_lead(ngx_http_ai_guard_request_parser_t *rp,
    u_char c)
{
    unsigned  n;

    n = ngx_http_ai_guard_json_utf8_lead(c, &rp->lo, &rp->hi);

    if (n == 0) {
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

    n = ngx_http_ai_guard_json_utf8_encode(buf, cp);

    if (n > 1) {
        rp->wide += n;
        rp->other++;
        rp->halves += (size_t) 1 << (n - 2);
    }

    if (!rp->track) {
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

        if (rp->canon.levels) {
            return ngx_http_ai_guard_request_canon(rp, (u_char *) "null", 4,
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

    if (rp->canon.levels) {
        return rp->lit == 't'
               ? ngx_http_ai_guard_request_canon(rp, (u_char *) "true", 4, 0)
               : ngx_http_ai_guard_request_canon(rp, (u_char *) "false", 5,
                                                 0);
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
        if (rp->num.flags & NGX_HTTP_AI_GUARD_NOT_COUNT) {
            return ngx_http_ai_guard_request_scalar(rp, role);
        }

        /*
         * the largest counts: Gemini's generationConfig is an object whose
         * duplicate keys no check refuses, and a reservation must cover
         * whichever one the upstream takes
         */

        if (role == NGX_HTTP_AI_GUARD_ROLE_N) {
            if ((int64_t) rp->num.value > rp->req.n) {
                rp->req.n = (int64_t) rp->num.value;
            }

        } else if ((int64_t) rp->num.value > rp->req.max_tokens) {
            rp->req.max_tokens = (int64_t) rp->num.value;
        }

        break;

    case NGX_HTTP_AI_GUARD_ROLE_TEMPERATURE:
        rp->req.deterministic =
                       !(rp->num.flags & NGX_HTTP_AI_GUARD_JSON_NONZERO);
        break;

    case NGX_HTTP_AI_GUARD_ROLE_MODEL:
    case NGX_HTTP_AI_GUARD_ROLE_STREAM:
    case NGX_HTTP_AI_GUARD_ROLE_INCLUDE_USAGE:
        return ngx_http_ai_guard_request_scalar(rp, role);

    default:
        break;
    }

    if (rp->canon.levels) {
        if (ngx_http_ai_guard_request_token(rp, s, p, &t, &n) != 0) {
            return ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                         NGX_HTTP_AI_GUARD_ERR_NOMEM, NULL);
        }

        return ngx_http_ai_guard_request_canon(rp, t, n, 0);
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
        if (ngx_http_ai_guard_request_text(rp, s, len, 1) == 0) {
            return 0;
        }

        break;

    case NGX_HTTP_AI_GUARD_ROLE_EXTRA:
    case NGX_HTTP_AI_GUARD_ROLE_ALL:
        if (ngx_http_ai_guard_request_text(rp, s, len, 0) == 0) {
            return 0;
        }

        break;

    case NGX_HTTP_AI_GUARD_ROLE_TYPE:
        rp->ctx[rp->depth] = (uint8_t) ngx_http_ai_guard_request_type(
                                               rp->ctx[rp->depth], s, len);
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

    if (rp->canon.levels) {
        return ngx_http_ai_guard_request_canon(rp, s, len, 1);
    }

    return 1;
}


static int
ngx_http_ai_guard_request_text(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *p, size_t len, unsigned counted)
{
    ngx_http_ai_guard_text_t  t;

    if (counted) {
        rp->count.ascii += len - rp->wide;
        rp->count.other += rp->other;
        rp->count.halves += rp->halves;
        rp->req.text_bytes += len;
        rp->req.texts++;
    }

    if (rp->text == NULL) {
        return 1;
    }

    t.data = p;
    t.len = len;
    t.group = counted ? rp->group[rp->depth] : 0;
    t.start = rp->sstart;
    t.end = rp->send;
    t.ascii = (rp->wide == 0);
    t.counted = counted;

    if (rp->text(rp->data, &t) != 0) {
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

    if (rp->canon.levels
        && ngx_http_ai_guard_canon_open(&rp->canon, rp->depth,
                               !ngx_http_ai_guard_is_map(rp->ctx[rp->depth]),
                               map)
           != 0)
    {
        return ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                              NGX_HTTP_AI_GUARD_ERR_NOMEM,
                                              NULL);
    }

    rp->group[rp->depth + 1] = (child == NGX_HTTP_AI_GUARD_CTX_PARTS)
                               ? ++rp->groups : rp->group[rp->depth];
    rp->ctx[++rp->depth] = (uint8_t) child;
    rp->role = NGX_HTTP_AI_GUARD_ROLE_NONE;

    return 1;
}


static int
ngx_http_ai_guard_request_close(ngx_http_ai_guard_request_parser_t *rp,
    int map)
{
    if (rp->canon.levels
        && ngx_http_ai_guard_canon_close(&rp->canon, rp->depth, map) != 0)
    {
        return ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                              NGX_HTTP_AI_GUARD_ERR_NOMEM,
                                              NULL);
    }

    rp->depth--;

    return 1;
}


/*
 * A key ends.  Outside the objects whose keys are read (and without the
 * canonical form) nothing of it was kept, and nothing need be done.  A
 * key of a schema (every string of it a text) is a text too: the model
 * reads a property's name.
 */

static int
ngx_http_ai_guard_request_key(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *s, size_t len)
{
    int                             top;
    unsigned                        ctx;
    const ngx_http_ai_guard_key_t  *k;

    ctx = rp->ctx[rp->depth];

    rp->role = ngx_http_ai_guard_request_field(ctx, s, len, &top);

    if (top >= 0) {
        k = &ngx_http_ai_guard_request_keys[top];

        if (rp->seen & (1u << top)) {
            return ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_INVALID,
                                         k->dup, k->name);
        }

        rp->seen |= 1u << top;
        rp->key = top;

    } else if (rp->role == NGX_HTTP_AI_GUARD_ROLE_INCLUDE_USAGE) {
        k = &ngx_http_ai_guard_request_include_usage;

        if (rp->seen & NGX_HTTP_AI_GUARD_SEEN_INCLUDE_USAGE) {
            return ngx_http_ai_guard_request_fail(rp,
                                         NGX_HTTP_AI_GUARD_REQ_INVALID,
                                         k->dup, k->name);
        }

        rp->seen |= NGX_HTTP_AI_GUARD_SEEN_INCLUDE_USAGE;

    } else if (ctx == NGX_HTTP_AI_GUARD_CTX_ALL_MAP
               && ngx_http_ai_guard_request_text(rp, s, len, 0) == 0)
    {
        return 0;
    }

    if (rp->canon.levels
        && ngx_http_ai_guard_canon_key(&rp->canon, rp->depth, s, len) != 0)
    {
        return ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                              NGX_HTTP_AI_GUARD_ERR_NOMEM,
                                              NULL);
    }

    return 1;
}


/* a scalar for the canonical form, in the container at the depth */

static int
ngx_http_ai_guard_request_canon(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *p, size_t len, int string)
{
    if (ngx_http_ai_guard_canon_value(&rp->canon, rp->depth,
                               !ngx_http_ai_guard_is_map(rp->ctx[rp->depth]),
                               p, len, string)
        != 0)
    {
        return ngx_http_ai_guard_request_fail(rp, NGX_HTTP_AI_GUARD_REQ_NOMEM,
                                              NGX_HTTP_AI_GUARD_ERR_NOMEM,
                                              NULL);
    }

    return 1;
}
