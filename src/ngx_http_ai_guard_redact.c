
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_norm.h"
#include "ngx_http_ai_guard_pii.h"
#include "ngx_http_ai_guard_rewrite_module.h"
#include "ngx_http_ai_guard_zone.h"
#include "ngx_http_ai_guard_redact.h"


/* a finding in a decoded text */

typedef struct {
    size_t                          off;
    size_t                          end;
    unsigned                        index;     /* the detector's */
} ngx_http_ai_guard_finding_t;


/* a value seen in this request, and its number */

typedef struct {
    ngx_str_node_t                  sn;
    ngx_uint_t                      n;
} ngx_http_ai_guard_seen_t;


typedef struct {
    ngx_http_request_t             *request;
    ngx_str_t                      *placeholder;
    ngx_rbtree_t                    tree;
    ngx_rbtree_node_t               sentinel;
    ngx_uint_t                      next[NGX_HTTP_AI_GUARD_PII_DETECTORS];
    ngx_uint_t                      count[NGX_HTTP_AI_GUARD_PII_DETECTORS];
    ngx_array_t                     findings;
} ngx_http_ai_guard_redaction_t;


static ngx_int_t ngx_http_ai_guard_redact_text(
    ngx_http_ai_guard_redaction_t *rd, ngx_str_t *body,
    ngx_http_ai_guard_prompt_text_t *text, unsigned mask,
    ngx_http_ai_guard_rewrite_edit_t *e, const char **hit);
static ngx_int_t ngx_http_ai_guard_redact_number(
    ngx_http_ai_guard_redaction_t *rd, unsigned index, u_char *p, size_t len,
    ngx_uint_t *n);
static u_char *ngx_http_ai_guard_redact_placeholder(u_char *p,
    ngx_str_t *tpl, unsigned index, ngx_uint_t n);
static void ngx_http_ai_guard_redact_count(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_redaction_t *rd);


/* the detectors' names as placeholders write them, by bit index */

static const char  *ngx_http_ai_guard_redact_names[] = {
    "EMAIL", "CARD", "SSN", "PHONE", "IPV4", "SECRET"
};


/* ai_guard_pii_placeholder <text with %D, %N, %%> */

char *
ngx_http_ai_guard_pii_placeholder(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char       *rv;
    u_char     *p, *last;
    ngx_str_t  *value;

    rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    value = cf->args->elts;

    p = value[1].data;
    last = p + value[1].len;

    if (value[1].len == 0 || value[1].len > 64) {
        goto invalid;
    }

    for ( /* void */ ; p < last; p++) {
        if (*p != '%') {
            continue;
        }

        if (++p == last || (*p != 'D' && *p != 'N' && *p != '%')) {
            goto invalid;
        }
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "ai_guard_pii_placeholder: invalid placeholder "
                       "\"%V\", it must be 1 to 64 characters, with "
                       "%%D, %%N or %%%% after each %%", &value[1]);

    return NGX_CONF_ERROR;
}


/*
 * Only a text whose normal form has a finding is looked at again: the
 * others cost what "block" costs, one scan.  The body is read whole only
 * when there is something to replace.
 */

ngx_int_t
ngx_http_ai_guard_redact(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx)
{
    size_t                             off;
    ngx_str_t                          body;
    ngx_int_t                          rc;
    ngx_uint_t                         i, n;
    ngx_array_t                        edits;
    ngx_http_ai_guard_redaction_t      rd;
    ngx_http_ai_guard_prompt_text_t   *text;
    ngx_http_ai_guard_rewrite_edit_t  *e;

    text = ctx->texts ? ctx->texts->elts : NULL;
    n = ctx->texts ? ctx->texts->nelts : 0;

    for (i = 0; i < n; i++) {
        if (ngx_http_ai_guard_pii_scan(text[i].text.data, text[i].text.len,
                                       alcf->pii, &off))
        {
            break;
        }
    }

    if (i == n) {
        return NGX_OK;
    }

    if (ngx_http_ai_guard_body_whole(r, ctx, &body) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&rd, sizeof(ngx_http_ai_guard_redaction_t));

    rd.request = r;
    rd.placeholder = &alcf->pii_placeholder;
    ngx_rbtree_init(&rd.tree, &rd.sentinel, ngx_str_rbtree_insert_value);

    if (ngx_array_init(&rd.findings, r->pool, 4,
                       sizeof(ngx_http_ai_guard_finding_t))
        != NGX_OK
        || ngx_array_init(&edits, r->pool, 4,
                          sizeof(ngx_http_ai_guard_rewrite_edit_t))
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    /* the parser hands the texts over in the body's order */

    for ( /* void */ ; i < n; i++) {
        if (!ngx_http_ai_guard_pii_scan(text[i].text.data, text[i].text.len,
                                        alcf->pii, &off))
        {
            continue;
        }

        e = ngx_array_push(&edits);
        if (e == NULL) {
            return NGX_ERROR;
        }

        rc = ngx_http_ai_guard_redact_text(&rd, &body, &text[i], alcf->pii,
                                           e, &ctx->pii_hit);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    ngx_http_ai_guard_redact_count(r, alcf, &rd);

    return ngx_http_ai_guard_body_rewrite(r, alcf, ctx, &body, edits.elts,
                                          edits.nelts);
}


/*
 * The text as sent (decoded from its JSON string in the body), each
 * finding replaced; then the normal form of the result is scanned again,
 * so that what only the normal form shows (a fullwidth "＠") is refused
 * rather than passed.
 */

static ngx_int_t
ngx_http_ai_guard_redact_text(ngx_http_ai_guard_redaction_t *rd,
    ngx_str_t *body, ngx_http_ai_guard_prompt_text_t *text, unsigned mask,
    ngx_http_ai_guard_rewrite_edit_t *e, const char **hit)
{
    u_char                       *dec, *out, *p, *norm;
    size_t                        len, pos, off, end, size;
    ssize_t                       dlen;
    unsigned                      bit;
    ngx_uint_t                    i, num;
    ngx_http_ai_guard_finding_t  *f;

    if (text->end > body->len || text->start >= text->end) {
        ngx_log_error(NGX_LOG_ALERT, rd->request->connection->log, 0,
                      "ai_guard: a text outside the body");
        return NGX_ERROR;
    }

    dec = ngx_pnalloc(rd->request->pool, text->end - text->start);
    if (dec == NULL) {
        return NGX_ERROR;
    }

    dlen = ngx_http_ai_guard_rewrite_decode(body->data + text->start,
                                            text->end - text->start, dec);
    if (dlen < 0) {
        ngx_log_error(NGX_LOG_ALERT, rd->request->connection->log, 0,
                      "ai_guard: a text that is not a JSON string");
        return NGX_ERROR;
    }

    /* the findings, then the room they need */

    rd->findings.nelts = 0;
    size = dlen;

    for (pos = 0; pos < (size_t) dlen; pos += end) {
        bit = ngx_http_ai_guard_pii_find(dec + pos, dlen - pos, mask, &off,
                                         &end);
        if (bit == 0) {
            break;
        }

        f = ngx_array_push(&rd->findings);
        if (f == NULL) {
            return NGX_ERROR;
        }

        f->off = pos + off;
        f->end = pos + end;
        f->index = ngx_http_ai_guard_pii_index(bit);

        size += rd->placeholder->len * NGX_INT_T_LEN;
    }

    out = ngx_pnalloc(rd->request->pool, size);
    if (out == NULL) {
        return NGX_ERROR;
    }

    p = out;
    pos = 0;
    f = rd->findings.elts;

    for (i = 0; i < rd->findings.nelts; i++) {
        p = ngx_cpymem(p, dec + pos, f[i].off - pos);

        if (ngx_http_ai_guard_redact_number(rd, f[i].index, dec + f[i].off,
                                            f[i].end - f[i].off, &num)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        p = ngx_http_ai_guard_redact_placeholder(p, rd->placeholder,
                                                 f[i].index, num);
        rd->count[f[i].index]++;
        pos = f[i].end;
    }

    p = ngx_cpymem(p, dec + pos, dlen - pos);
    len = p - out;

    norm = ngx_pnalloc(rd->request->pool, len);
    if (norm == NULL) {
        return NGX_ERROR;
    }

    bit = ngx_http_ai_guard_pii_scan(norm,
                                     ngx_http_ai_guard_norm(norm, out, len),
                                     mask, &off);
    if (bit) {
        *hit = ngx_http_ai_guard_pii_name(bit);
        return NGX_DECLINED;
    }

    e->start = text->start;
    e->end = text->end;
    e->len = ngx_http_ai_guard_rewrite_escape_len(out, len);

    e->data = ngx_pnalloc(rd->request->pool, e->len);
    if (e->data == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_http_ai_guard_rewrite_escape((u_char *) e->data, out, len);

    return NGX_OK;
}


/* the same value, the same number: "[EMAIL_1]" is one address */

static ngx_int_t
ngx_http_ai_guard_redact_number(ngx_http_ai_guard_redaction_t *rd,
    unsigned index, u_char *p, size_t len, ngx_uint_t *n)
{
    u_char                    *key;
    uint32_t                   hash;
    ngx_str_t                  k;
    ngx_http_ai_guard_seen_t  *seen;

    key = ngx_pnalloc(rd->request->pool, len + 1);
    if (key == NULL) {
        return NGX_ERROR;
    }

    key[0] = (u_char) index;
    ngx_memcpy(key + 1, p, len);

    k.data = key;
    k.len = len + 1;
    hash = ngx_crc32_short(key, len + 1);

    seen = (ngx_http_ai_guard_seen_t *) ngx_str_rbtree_lookup(&rd->tree, &k,
                                                              hash);
    if (seen) {
        *n = seen->n;
        return NGX_OK;
    }

    seen = ngx_palloc(rd->request->pool, sizeof(ngx_http_ai_guard_seen_t));
    if (seen == NULL) {
        return NGX_ERROR;
    }

    seen->sn.node.key = hash;
    seen->sn.str = k;
    seen->n = ++rd->next[index];

    ngx_rbtree_insert(&rd->tree, &seen->sn.node);

    *n = seen->n;

    return NGX_OK;
}


static u_char *
ngx_http_ai_guard_redact_placeholder(u_char *p, ngx_str_t *tpl,
    unsigned index, ngx_uint_t n)
{
    u_char  *s, *last;

    last = tpl->data + tpl->len;

    for (s = tpl->data; s < last; s++) {
        if (*s != '%' || s + 1 == last) {
            *p++ = *s;
            continue;
        }

        switch (*++s) {

        case 'D':
            p = ngx_sprintf(p, "%s", ngx_http_ai_guard_redact_names[index]);
            break;

        case 'N':
            p = ngx_sprintf(p, "%ui", n);
            break;

        default:
            *p++ = *s;
        }
    }

    return p;
}


/* which detectors, how many times, never the values */

static void
ngx_http_ai_guard_redact_count(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_redaction_t *rd)
{
    u_char                         buf[NGX_HTTP_AI_GUARD_PII_DETECTORS
                                       * (16 + NGX_INT_T_LEN)];
    u_char                        *p, *last;
    ngx_uint_t                     i;
    ngx_http_ai_guard_zone_t      *zone;
    ngx_http_ai_guard_main_conf_t *amcf;

    amcf = ngx_http_get_module_main_conf(r, ngx_http_ai_guard_module);
    zone = &amcf->zones[NGX_HTTP_AI_GUARD_PART_SERIES];

    p = buf;
    last = buf + sizeof(buf);

    for (i = 0; i < NGX_HTTP_AI_GUARD_PII_DETECTORS; i++) {
        if (rd->count[i] == 0) {
            continue;
        }

        p = ngx_slprintf(p, last, " pii:%s:%ui",
                         ngx_http_ai_guard_pii_name(1u << i), rd->count[i]);

        if (zone->sh) {
            (void) ngx_atomic_fetch_add(&zone->sh->redacted[i],
                                        (ngx_atomic_int_t) rd->count[i]);
        }
    }

    ngx_log_error(alcf->log_level, r->connection->log, 0,
                  "ai_guard: redacted in the prompt:%*s", p - buf, buf);
}

