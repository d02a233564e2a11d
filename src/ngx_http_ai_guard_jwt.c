
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <string.h>
#include <math.h>

#include "ngx_http_ai_guard_jwt.h"


/* header members */
#define NGX_HTTP_AI_GUARD_JWT_H_ALG        0
#define NGX_HTTP_AI_GUARD_JWT_H_KID        1
#define NGX_HTTP_AI_GUARD_JWT_H_CRIT       2
#define NGX_HTTP_AI_GUARD_JWT_H_N          3

/* payload claims */
#define NGX_HTTP_AI_GUARD_JWT_C_EXP        0
#define NGX_HTTP_AI_GUARD_JWT_C_NBF        1
#define NGX_HTTP_AI_GUARD_JWT_C_IAT        2
#define NGX_HTTP_AI_GUARD_JWT_C_ISS        3
#define NGX_HTTP_AI_GUARD_JWT_C_AUD        4
#define NGX_HTTP_AI_GUARD_JWT_C_SUB        5
#define NGX_HTTP_AI_GUARD_JWT_C_TENANT     6
#define NGX_HTTP_AI_GUARD_JWT_C_TIER       7
#define NGX_HTTP_AI_GUARD_JWT_C_KEY_ID     8
#define NGX_HTTP_AI_GUARD_JWT_C_MODELS     9
#define NGX_HTTP_AI_GUARD_JWT_C_N          10


typedef struct {
    unsigned                         alg;
    unsigned                         has_alg:1;
    unsigned                         has_kid:1;
    ngx_http_ai_guard_jwt_str_t      kid;
} ngx_http_ai_guard_jwt_header_t;


typedef struct {
    const ngx_http_ai_guard_jwt_conf_t  *conf;
    ngx_http_ai_guard_jwt_claims_t      *out;
    unsigned                             has_exp:1;
    unsigned                             iss_ok:1;
    unsigned                             aud_ok:1;
} ngx_http_ai_guard_jwt_payload_t;


static int ngx_http_ai_guard_jwt_header(
    const ngx_http_ai_guard_jwt_conf_t *conf, const u_char *b64, size_t len,
    u_char *hdr, size_t *hlen, ngx_http_ai_guard_jwt_header_t *h,
    ngx_http_ai_guard_jwt_claims_t *out);
static int ngx_http_ai_guard_jwt_payload(
    const ngx_http_ai_guard_jwt_conf_t *conf, const u_char *b64, size_t len,
    u_char *pay, time_t now, ngx_http_ai_guard_jwt_claims_t *out);
static int ngx_http_ai_guard_jwt_check(
    const ngx_http_ai_guard_jwt_payload_t *pl, time_t now);
static int ngx_http_ai_guard_jwt_json_rc(int rc);
static int ngx_http_ai_guard_jwt_header_value(ngx_http_ai_guard_jwt_json_t *j,
    unsigned field, int type, const u_char *p, size_t len, int elt);
static int ngx_http_ai_guard_jwt_payload_value(
    ngx_http_ai_guard_jwt_json_t *j, unsigned field, int type,
    const u_char *p, size_t len, int elt);
static int ngx_http_ai_guard_jwt_date(const u_char *p, size_t len,
    int64_t *out);
static int ngx_http_ai_guard_jwt_is_int(const u_char *p, size_t len);
static int ngx_http_ai_guard_jwt_printable(const u_char *p, size_t len);
static void ngx_http_ai_guard_jwt_add_models(
    ngx_http_ai_guard_jwt_claims_t *out, const u_char *p, size_t len,
    int whole);


static const char  *ngx_http_ai_guard_jwt_header_names[] = {
    "alg", "kid", "crit"
};


static const char  *ngx_http_ai_guard_jwt_claim_names[] = {
    "exp", "nbf", "iat", "iss", "aud", "sub"
};


const char *
ngx_http_ai_guard_jwt_code(int rc)
{
    switch (rc) {

    case NGX_HTTP_AI_GUARD_JWT_OK:
        return "ok";

    case NGX_HTTP_AI_GUARD_JWT_EXPIRED:
        return "token_expired";

    case NGX_HTTP_AI_GUARD_JWT_NOT_YET_VALID:
        return "token_not_yet_valid";

    case NGX_HTTP_AI_GUARD_JWT_BAD_ISSUER:
        return "invalid_issuer";

    case NGX_HTTP_AI_GUARD_JWT_BAD_AUDIENCE:
        return "invalid_audience";

    case NGX_HTTP_AI_GUARD_JWT_ERROR:
        return "internal_error";

    default:
        return "invalid_token";
    }
}


const char *
ngx_http_ai_guard_jwt_message(int rc)
{
    switch (rc) {

    case NGX_HTTP_AI_GUARD_JWT_OK:
        return "The bearer token is valid.";

    case NGX_HTTP_AI_GUARD_JWT_EXPIRED:
        return "The bearer token has expired: get a new one from the "
               "identity provider.";

    case NGX_HTTP_AI_GUARD_JWT_NOT_YET_VALID:
        return "The bearer token is not valid yet (its \"nbf\" is in "
               "the future): check the clock of its issuer.";

    case NGX_HTTP_AI_GUARD_JWT_BAD_ISSUER:
        return "The bearer token was not issued by an accepted issuer: "
               "use a token of this API's identity provider.";

    case NGX_HTTP_AI_GUARD_JWT_BAD_AUDIENCE:
        return "The bearer token was not issued for this audience: "
               "request a token for this API.";

    case NGX_HTTP_AI_GUARD_JWT_ERROR:
        return "The bearer token could not be verified.";

    default:
        return "The bearer token is invalid: send a token of this "
               "API's identity provider, or an API key.";
    }
}


int
ngx_http_ai_guard_jwt_claim_path_valid(const u_char *path, size_t len)
{
    ngx_http_ai_guard_jwt_field_t  f;

    return ngx_http_ai_guard_jwt_path(&f, path, len);
}


int
ngx_http_ai_guard_jwt_verify(const ngx_http_ai_guard_jwks_t *jwks,
    const ngx_http_ai_guard_jwt_conf_t *conf, const u_char *token,
    size_t len, time_t now, u_char *scratch, size_t scratch_len,
    ngx_http_ai_guard_jwt_claims_t *out)
{
    int                              rc;
    u_char                          *hdr, *sig;
    size_t                           hlen, slen;
    ssize_t                          n;
    const char                      *reason;
    const u_char                    *d1, *d2, *last;
    ngx_http_ai_guard_jwt_header_t   h;

    memset(out, 0, sizeof(ngx_http_ai_guard_jwt_claims_t));

    if (jwks == NULL || conf == NULL || token == NULL) {
        out->reason = "no keys";
        return NGX_HTTP_AI_GUARD_JWT_ERROR;
    }

    if (scratch_len < len) {
        out->reason = "scratch buffer shorter than the token";
        return NGX_HTTP_AI_GUARD_JWT_ERROR;
    }

    /* three parts */

    last = token + len;

    d1 = memchr(token, '.', len);
    d2 = d1 ? memchr(d1 + 1, '.', last - d1 - 1) : NULL;

    if (d2 == NULL || memchr(d2 + 1, '.', last - d2 - 1) != NULL) {
        out->reason = "not three dot-separated parts";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    if (d1 == token || d2 == d1 + 1) {
        out->reason = "empty header or payload";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    hdr = scratch;

    rc = ngx_http_ai_guard_jwt_header(conf, token, d1 - token, hdr, &hlen,
                                      &h, out);
    if (rc != NGX_HTTP_AI_GUARD_JWT_OK) {
        return rc;
    }

    /* signature */

    sig = hdr + hlen;
    n = ngx_http_ai_guard_jwt_base64url_decode(sig, d2 + 1, last - d2 - 1);
    if (n <= 0) {
        out->reason = "signature is empty or not base64url";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    slen = n;

    rc = ngx_http_ai_guard_jwks_verify(jwks, h.alg, h.has_kid ? &h.kid : NULL,
                                       token, d2 - token, sig, slen,
                                       &reason);
    if (rc != 1) {
        out->reason = reason;
        return (rc < 0) ? NGX_HTTP_AI_GUARD_JWT_ERROR
                        : NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    out->alg = h.alg;

    /* payload, only now that it is authentic */

    return ngx_http_ai_guard_jwt_payload(conf, d1 + 1, d2 - d1 - 1,
                                         sig + slen, now, out);
}


/* the header, decoded into hdr: its alg, one that conf allows, and kid */

static int
ngx_http_ai_guard_jwt_header(const ngx_http_ai_guard_jwt_conf_t *conf,
    const u_char *b64, size_t len, u_char *hdr, size_t *hlen,
    ngx_http_ai_guard_jwt_header_t *h, ngx_http_ai_guard_jwt_claims_t *out)
{
    int                             rc;
    size_t                          i;
    ssize_t                         n;
    ngx_http_ai_guard_jwt_json_t    j;
    ngx_http_ai_guard_jwt_field_t   fields[NGX_HTTP_AI_GUARD_JWT_H_N];

    n = ngx_http_ai_guard_jwt_base64url_decode(hdr, b64, len);
    if (n < 0) {
        out->reason = "header is not base64url";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    *hlen = n;

    memset(h, 0, sizeof(ngx_http_ai_guard_jwt_header_t));
    memset(fields, 0, sizeof(fields));

    for (i = 0; i < NGX_HTTP_AI_GUARD_JWT_H_N; i++) {
        (void) ngx_http_ai_guard_jwt_path(&fields[i],
                    (u_char *) ngx_http_ai_guard_jwt_header_names[i],
                    strlen(ngx_http_ai_guard_jwt_header_names[i]));
    }

    j.fields = fields;
    j.nfields = NGX_HTTP_AI_GUARD_JWT_H_N;
    j.value = ngx_http_ai_guard_jwt_header_value;
    j.data = h;
    j.reason = NULL;

    rc = ngx_http_ai_guard_jwt_json(&j, hdr, *hlen);
    if (rc != NGX_HTTP_AI_GUARD_JWT_JSON_OK) {
        out->reason = j.reason;
        return ngx_http_ai_guard_jwt_json_rc(rc);
    }

    if (!h->has_alg) {
        out->reason = "header has no \"alg\"";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    if (h->alg == 0) {
        out->reason = "\"alg\" is \"none\" or not supported";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    if (!(h->alg & conf->algs)) {
        out->reason = "\"alg\" is not allowed";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    return NGX_HTTP_AI_GUARD_JWT_OK;
}


/* the payload, decoded into pay: the claims, then the checks on them */

static int
ngx_http_ai_guard_jwt_payload(const ngx_http_ai_guard_jwt_conf_t *conf,
    const u_char *b64, size_t len, u_char *pay, time_t now,
    ngx_http_ai_guard_jwt_claims_t *out)
{
    int                               rc;
    size_t                            i, plen;
    ssize_t                           n;
    ngx_http_ai_guard_jwt_json_t      j;
    ngx_http_ai_guard_jwt_payload_t   pl;
    ngx_http_ai_guard_jwt_field_t     fields[NGX_HTTP_AI_GUARD_JWT_C_N];

    n = ngx_http_ai_guard_jwt_base64url_decode(pay, b64, len);
    if (n < 0) {
        out->reason = "payload is not base64url";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    plen = n;

    memset(fields, 0, sizeof(fields));

    for (i = 0; i < NGX_HTTP_AI_GUARD_JWT_C_TENANT; i++) {
        (void) ngx_http_ai_guard_jwt_path(&fields[i],
                    (u_char *) ngx_http_ai_guard_jwt_claim_names[i],
                    strlen(ngx_http_ai_guard_jwt_claim_names[i]));
    }

    if (conf->tenant.len) {
        (void) ngx_http_ai_guard_jwt_path(
                    &fields[NGX_HTTP_AI_GUARD_JWT_C_TENANT],
                    conf->tenant.data, conf->tenant.len);

    } else {
        (void) ngx_http_ai_guard_jwt_path(
                    &fields[NGX_HTTP_AI_GUARD_JWT_C_TENANT],
                    (u_char *) "sub", 3);
    }

    if (conf->key_id.len) {
        (void) ngx_http_ai_guard_jwt_path(
                    &fields[NGX_HTTP_AI_GUARD_JWT_C_KEY_ID],
                    conf->key_id.data, conf->key_id.len);

    } else {
        (void) ngx_http_ai_guard_jwt_path(
                    &fields[NGX_HTTP_AI_GUARD_JWT_C_KEY_ID],
                    (u_char *) "sub", 3);
    }

    (void) ngx_http_ai_guard_jwt_path(&fields[NGX_HTTP_AI_GUARD_JWT_C_TIER],
                                      conf->tier.data, conf->tier.len);
    (void) ngx_http_ai_guard_jwt_path(&fields[NGX_HTTP_AI_GUARD_JWT_C_MODELS],
                                      conf->models.data, conf->models.len);

    memset(&pl, 0, sizeof(ngx_http_ai_guard_jwt_payload_t));
    pl.conf = conf;
    pl.out = out;

    j.fields = fields;
    j.nfields = NGX_HTTP_AI_GUARD_JWT_C_N;
    j.value = ngx_http_ai_guard_jwt_payload_value;
    j.data = &pl;
    j.reason = NULL;

    rc = ngx_http_ai_guard_jwt_json(&j, pay, plen);
    if (rc != NGX_HTTP_AI_GUARD_JWT_JSON_OK) {
        out->reason = j.reason;
        return ngx_http_ai_guard_jwt_json_rc(rc);
    }

    return ngx_http_ai_guard_jwt_check(&pl, now);
}


/* time; then issuer and audience, when conf names them */

static int
ngx_http_ai_guard_jwt_check(const ngx_http_ai_guard_jwt_payload_t *pl,
    time_t now)
{
    int64_t                                lo, hi, leeway;
    ngx_http_ai_guard_jwt_claims_t        *out;
    const ngx_http_ai_guard_jwt_conf_t    *conf;

    conf = pl->conf;
    out = pl->out;

    /* leeway is clamped so that the sums below cannot overflow */

    leeway = conf->leeway;
    if (leeway < 0) {
        leeway = 0;

    } else if (leeway > 86400 * 365) {
        leeway = 86400 * 365;
    }

    lo = (int64_t) now - leeway;
    hi = (int64_t) now + leeway;

    if (!pl->has_exp) {
        out->reason = "no \"exp\" claim";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    if (out->exp <= lo) {
        out->reason = "\"exp\" has passed";
        return NGX_HTTP_AI_GUARD_JWT_EXPIRED;
    }

    if (out->has_nbf && out->nbf > hi) {
        out->reason = "\"nbf\" is in the future";
        return NGX_HTTP_AI_GUARD_JWT_NOT_YET_VALID;
    }

    if (out->has_iat && out->iat > hi) {
        out->reason = "\"iat\" is in the future";
        return NGX_HTTP_AI_GUARD_JWT_NOT_YET_VALID;
    }

    if (conf->issuer.len && !pl->iss_ok) {
        out->reason = "\"iss\" does not match";
        return NGX_HTTP_AI_GUARD_JWT_BAD_ISSUER;
    }

    if (conf->audience.len && !pl->aud_ok) {
        out->reason = "\"aud\" does not match";
        return NGX_HTTP_AI_GUARD_JWT_BAD_AUDIENCE;
    }

    return NGX_HTTP_AI_GUARD_JWT_OK;
}


/* a failed walk: invalid JSON, or no memory for yajl */

static int
ngx_http_ai_guard_jwt_json_rc(int rc)
{
    return (rc == NGX_HTTP_AI_GUARD_JWT_JSON_NOMEM)
           ? NGX_HTTP_AI_GUARD_JWT_ERROR : NGX_HTTP_AI_GUARD_JWT_INVALID;
}


static int
ngx_http_ai_guard_jwt_header_value(ngx_http_ai_guard_jwt_json_t *j,
    unsigned field, int type, const u_char *p, size_t len, int elt)
{
    ngx_http_ai_guard_jwt_header_t  *h;

    (void) elt;

    h = j->data;

    switch (field) {

    case NGX_HTTP_AI_GUARD_JWT_H_ALG:
        if (type != NGX_HTTP_AI_GUARD_JWT_T_STRING) {
            j->reason = "\"alg\" is not a string";
            return 0;
        }

        h->alg = ngx_http_ai_guard_jwt_alg(p, len);
        h->has_alg = 1;
        return 1;

    case NGX_HTTP_AI_GUARD_JWT_H_KID:
        if (type != NGX_HTTP_AI_GUARD_JWT_T_STRING) {
            j->reason = "\"kid\" is not a string";
            return 0;
        }

        h->kid.data = p;
        h->kid.len = len;
        h->has_kid = 1;
        return 1;

    default: /* NGX_HTTP_AI_GUARD_JWT_H_CRIT */
        j->reason = "\"crit\" extensions are not supported";
        return 0;
    }
}


static int
ngx_http_ai_guard_jwt_payload_value(ngx_http_ai_guard_jwt_json_t *j,
    unsigned field, int type, const u_char *p, size_t len, int elt)
{
    int64_t                            *t;
    ngx_http_ai_guard_jwt_str_t        *s;
    ngx_http_ai_guard_jwt_claims_t     *out;
    ngx_http_ai_guard_jwt_payload_t    *pl;
    const ngx_http_ai_guard_jwt_str_t  *want;

    pl = j->data;
    out = pl->out;

    switch (field) {

    case NGX_HTTP_AI_GUARD_JWT_C_EXP:
    case NGX_HTTP_AI_GUARD_JWT_C_NBF:
    case NGX_HTTP_AI_GUARD_JWT_C_IAT:

        if (type != NGX_HTTP_AI_GUARD_JWT_T_NUMBER) {
            j->reason = "exp, nbf or iat is not a number";
            return 0;
        }

        if (field == NGX_HTTP_AI_GUARD_JWT_C_EXP) {
            t = &out->exp;
            pl->has_exp = 1;

        } else if (field == NGX_HTTP_AI_GUARD_JWT_C_NBF) {
            t = &out->nbf;
            out->has_nbf = 1;

        } else {
            t = &out->iat;
            out->has_iat = 1;
        }

        if (!ngx_http_ai_guard_jwt_date(p, len, t)) {
            j->reason = "exp, nbf or iat is out of range";
            return 0;
        }

        return 1;

    case NGX_HTTP_AI_GUARD_JWT_C_ISS:
    case NGX_HTTP_AI_GUARD_JWT_C_AUD:

        if (type != NGX_HTTP_AI_GUARD_JWT_T_STRING) {
            return 1;
        }

        if (field == NGX_HTTP_AI_GUARD_JWT_C_ISS) {
            want = &pl->conf->issuer;
            if (!elt && want->len && want->len == len
                && memcmp(want->data, p, len) == 0)
            {
                pl->iss_ok = 1;
            }

        } else {
            want = &pl->conf->audience;
            if (want->len && want->len == len
                && memcmp(want->data, p, len) == 0)
            {
                pl->aud_ok = 1;
            }
        }

        return 1;

    case NGX_HTTP_AI_GUARD_JWT_C_MODELS:

        if (type == NGX_HTTP_AI_GUARD_JWT_T_STRING) {
            if (!ngx_http_ai_guard_jwt_printable(p, len)) {
                j->reason = "claim contains a control character";
                return 0;
            }

            ngx_http_ai_guard_jwt_add_models(out, p, len, elt);
        }

        return 1;

    default:
        break;
    }

    /* sub, tenant, tier, key_id */

    if (elt) {
        return 1;
    }

    if (type == NGX_HTTP_AI_GUARD_JWT_T_NUMBER) {
        if (field == NGX_HTTP_AI_GUARD_JWT_C_SUB
            || !ngx_http_ai_guard_jwt_is_int(p, len))
        {
            return 1;
        }

    } else if (type != NGX_HTTP_AI_GUARD_JWT_T_STRING) {
        return 1;
    }

    if (!ngx_http_ai_guard_jwt_printable(p, len)) {
        j->reason = "claim contains a control character";
        return 0;
    }

    switch (field) {

    case NGX_HTTP_AI_GUARD_JWT_C_SUB:
        s = &out->sub;
        break;

    case NGX_HTTP_AI_GUARD_JWT_C_TENANT:
        s = &out->tenant;
        break;

    case NGX_HTTP_AI_GUARD_JWT_C_TIER:
        s = &out->tier;
        break;

    default: /* NGX_HTTP_AI_GUARD_JWT_C_KEY_ID */
        s = &out->key_id;
        break;
    }

    s->data = p;
    s->len = len;

    return 1;
}


static int
ngx_http_ai_guard_jwt_is_int(const u_char *p, size_t len)
{
    size_t  i;

    i = (len && p[0] == '-') ? 1 : 0;

    if (i == len) {
        return 0;
    }

    for ( /* void */ ; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return 0;
        }
    }

    return 1;
}


static int
ngx_http_ai_guard_jwt_printable(const u_char *p, size_t len)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (p[i] < 0x20 || p[i] == 0x7f) {
            return 0;
        }
    }

    return 1;
}


static void
ngx_http_ai_guard_jwt_add_models(ngx_http_ai_guard_jwt_claims_t *out,
    const u_char *p, size_t len, int whole)
{
    const u_char  *last, *start;

    if (whole) {
        if (len && out->nmodels < NGX_HTTP_AI_GUARD_JWT_MAX_MODELS) {
            out->models[out->nmodels].data = p;
            out->models[out->nmodels].len = len;
            out->nmodels++;
        }

        return;
    }

    last = p + len;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == ',')) {
            p++;
        }

        start = p;

        while (p < last && *p != ' ' && *p != ',') {
            p++;
        }

        if (p == start) {
            break;
        }

        if (out->nmodels == NGX_HTTP_AI_GUARD_JWT_MAX_MODELS) {
            return;
        }

        out->models[out->nmodels].data = start;
        out->models[out->nmodels].len = p - start;
        out->nmodels++;
    }
}


/* a JSON number as seconds; fractions are truncated toward -inf */

static int
ngx_http_ai_guard_jwt_date(const u_char *p, size_t len, int64_t *out)
{
    int       neg;
    char      buf[64], *end;
    double    d;
    size_t    i;
    uint64_t  v;

    if (ngx_http_ai_guard_jwt_is_int(p, len)) {
        neg = (p[0] == '-');
        v = 0;

        for (i = neg; i < len; i++) {
            if (v > (UINT64_MAX - 9) / 10) {
                return 0;
            }

            v = v * 10 + (p[i] - '0');
        }

        if (v > (uint64_t) INT64_MAX) {
            return 0;
        }

        *out = neg ? -(int64_t) v : (int64_t) v;

        return 1;
    }

    if (len == 0 || len >= sizeof(buf)) {
        return 0;
    }

    memcpy(buf, p, len);
    buf[len] = '\0';

    d = strtod(buf, &end);

    if (end != buf + len || !isfinite(d) || d >= 9.2e18 || d <= -9.2e18) {
        return 0;
    }

    /* floor() without libm, which the module does not link */

    *out = (int64_t) d;

    if ((double) *out > d) {
        *out -= 1;
    }

    return 1;
}
