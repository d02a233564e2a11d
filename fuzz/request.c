
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/types.h>

#include "ngx_http_ai_guard_request.h"


/*
 * The first byte picks a split point; the rest is the body, fed in two
 * pieces to a parser building the canonical form, and in three to one
 * that does not: both must come to the same result.  A valid body is
 * then parsed again from its canonical form, which must come out the
 * same.
 */


typedef struct {
    size_t  texts;
    size_t  bytes;
} ngx_http_ai_guard_fuzz_t;


static int ngx_http_ai_guard_fuzz_text(void *data,
    const ngx_http_ai_guard_text_t *t);
static int ngx_http_ai_guard_fuzz_parse(const u_char *p, size_t len,
    size_t split, ngx_http_ai_guard_request_t *req,
    ngx_http_ai_guard_fuzz_t *f, u_char **canon, size_t *canon_len);
static int ngx_http_ai_guard_fuzz_plain(const u_char *p, size_t len,
    size_t split, ngx_http_ai_guard_request_t *req,
    ngx_http_ai_guard_fuzz_t *f);

static void ngx_http_ai_guard_fuzz_path(const u_char *p, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/*
 * The input as a path too: a model found in it lies inside it, right
 * after a "/models/" and before a ':', within the bound, with no '/'.
 */

static void
ngx_http_ai_guard_fuzz_path(const u_char *p, size_t len)
{
    int            rc;
    size_t         mlen;
    const u_char  *m;

    rc = ngx_http_ai_guard_request_path_model(p, len, 16, &m, &mlen);

    if (rc == 0) {
        return;
    }

    if (rc > 2 || m < p + 8 || mlen == 0 || mlen > 16
        || m + mlen >= p + len || m[mlen] != ':'
        || memcmp(m - 8, "/models/", 8) != 0
        || memchr(m, '/', mlen) != NULL)
    {
        abort();
    }
}


static int
ngx_http_ai_guard_fuzz_text(void *data, const ngx_http_ai_guard_text_t *t)
{
    ngx_http_ai_guard_fuzz_t  *f = data;

    size_t           i;
    volatile u_char  c;

    if (t->len) {
        c = t->data[0];
        c = t->data[t->len - 1];
        (void) c;
    }

    /* "ascii" says what it says */

    for (i = 0; t->ascii && i < t->len; i++) {
        if (t->data[i] >= 0x80) {
            abort();
        }
    }

    if (!t->counted) {
        if (t->group != 0) {
            abort();
        }

        return 0;
    }

    f->texts++;
    f->bytes += t->len;

    return 0;
}


static int
ngx_http_ai_guard_fuzz_parse(const u_char *p, size_t len, size_t split,
    ngx_http_ai_guard_request_t *req, ngx_http_ai_guard_fuzz_t *f,
    u_char **canon, size_t *canon_len)
{
    int                                  rc;
    u_char                              *c;
    size_t                               n;
    ngx_http_ai_guard_request_parser_t  *rp;

    rp = ngx_http_ai_guard_request_create(1, ngx_http_ai_guard_fuzz_text, f);
    if (rp == NULL) {
        abort();
    }

    rc = ngx_http_ai_guard_request_feed(rp, p, split);
    if (rc == NGX_HTTP_AI_GUARD_REQ_OK) {
        rc = ngx_http_ai_guard_request_feed(rp, p + split, len - split);
    }

    if (ngx_http_ai_guard_request_finish(rp, req) != rc
        && rc != NGX_HTTP_AI_GUARD_REQ_OK)
    {
        abort();
    }

    rc = ngx_http_ai_guard_request_finish(rp, req);

    if (rc != NGX_HTTP_AI_GUARD_REQ_OK) {
        if (ngx_http_ai_guard_request_error(rp) == NULL
            || rc != NGX_HTTP_AI_GUARD_REQ_INVALID)
        {
            abort();
        }

    } else {
        if (req->texts != f->texts || req->text_bytes != f->bytes
            || req->text_chars > req->text_bytes
            || req->model_len > NGX_HTTP_AI_GUARD_REQ_MODEL_LEN
            || req->stream < -1 || req->stream > 1
            || req->max_tokens < -1 || req->n < -1
            || req->estimate < 4 * (uint64_t) req->texts)
        {
            abort();
        }

        if (ngx_http_ai_guard_request_canonical(rp, &c, &n)
            != NGX_HTTP_AI_GUARD_REQ_OK
            || n == 0 || c[0] != '{' || c[n - 1] != '}' || n > len)
        {
            abort();
        }

        if (canon) {
            *canon = malloc(n);
            if (*canon == NULL) {
                abort();
            }

            memcpy(*canon, c, n);
            *canon_len = n;
        }
    }

    ngx_http_ai_guard_request_free(rp);

    return rc;
}


/* without the canonical form, fed at split / 2, split and the end */

static int
ngx_http_ai_guard_fuzz_plain(const u_char *p, size_t len, size_t split,
    ngx_http_ai_guard_request_t *req, ngx_http_ai_guard_fuzz_t *f)
{
    int                                  rc;
    ngx_http_ai_guard_request_parser_t  *rp;

    rp = ngx_http_ai_guard_request_create(0, ngx_http_ai_guard_fuzz_text, f);
    if (rp == NULL) {
        abort();
    }

    rc = ngx_http_ai_guard_request_feed(rp, p, split / 2);
    if (rc == NGX_HTTP_AI_GUARD_REQ_OK) {
        rc = ngx_http_ai_guard_request_feed(rp, p + split / 2,
                                            split - split / 2);
    }

    if (rc == NGX_HTTP_AI_GUARD_REQ_OK) {
        (void) ngx_http_ai_guard_request_feed(rp, p + split, len - split);
    }

    rc = ngx_http_ai_guard_request_finish(rp, req);

    ngx_http_ai_guard_request_free(rp);

    return rc;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                          rc, plain;
    u_char                      *canon, *again;
    size_t                       split, len, again_len;
    ngx_http_ai_guard_fuzz_t     f1, f2, f3;
    ngx_http_ai_guard_request_t  r1, r2, r3;

    if (size == 0) {
        return 0;
    }

    ngx_http_ai_guard_fuzz_path(data, size);

    len = size - 1;
    split = len ? data[0] % (len + 1) : 0;

    memset(&f3, 0, sizeof(f3));
    plain = ngx_http_ai_guard_fuzz_plain(data + 1, len, split, &r3, &f3);

    memset(&f1, 0, sizeof(f1));
    canon = NULL;

    rc = ngx_http_ai_guard_fuzz_parse(data + 1, len, split, &r1, &f1,
                                      &canon, &len);

    if (plain != rc
        || (rc == NGX_HTTP_AI_GUARD_REQ_OK
            && (memcmp(&r1, &r3, sizeof(r1)) != 0
                || f1.texts != f3.texts || f1.bytes != f3.bytes)))
    {
        abort();
    }

    if (rc != NGX_HTTP_AI_GUARD_REQ_OK) {
        return 0;
    }

    /* the canonical form parses to the same request and to itself */

    memset(&f2, 0, sizeof(f2));
    again = NULL;

    rc = ngx_http_ai_guard_fuzz_parse(canon, len, len / 2, &r2, &f2,
                                      &again, &again_len);

    if (rc != NGX_HTTP_AI_GUARD_REQ_OK
        || r1.model_len != r2.model_len
        || memcmp(r1.model, r2.model, r1.model_len) != 0
        || r1.stream != r2.stream || r1.max_tokens != r2.max_tokens
        || r1.n != r2.n || r1.include_usage != r2.include_usage
        || r1.deterministic != r2.deterministic
        || r1.text_bytes != r2.text_bytes || r1.texts != r2.texts
        || r1.estimate != r2.estimate
        || again_len != len || memcmp(canon, again, len) != 0)
    {
        abort();
    }

    free(canon);
    free(again);

    return 0;
}
