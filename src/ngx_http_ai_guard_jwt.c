
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <yajl/yajl_parse.h>
#include <yajl/yajl_tree.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "ngx_http_ai_guard_jwt.h"


#define NGX_HTTP_AI_GUARD_JWK_RSA          1
#define NGX_HTTP_AI_GUARD_JWK_EC           2
#define NGX_HTTP_AI_GUARD_JWK_OCT          3

#define NGX_HTTP_AI_GUARD_JWT_RSA_MIN_BITS  2048
#define NGX_HTTP_AI_GUARD_JWT_OCT_MIN_LEN   32

/* enough for yajl's handle, lexer, state stack and first decode buffer */
#define NGX_HTTP_AI_GUARD_JWT_ARENA        8192

/* JSON nesting kept track of; deeper documents are rejected */
#define NGX_HTTP_AI_GUARD_JWT_DEPTH        64

#define NGX_HTTP_AI_GUARD_JWT_T_STRING     1
#define NGX_HTTP_AI_GUARD_JWT_T_NUMBER     2
#define NGX_HTTP_AI_GUARD_JWT_T_OTHER      3   /* true, false, null */
#define NGX_HTTP_AI_GUARD_JWT_T_MAP        4
#define NGX_HTTP_AI_GUARD_JWT_T_ARRAY      5

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

#define ngx_http_ai_guard_jwt_b64len(n)    ((n) / 4 * 3 + ((n) % 4) * 3 / 4)

/* a yajl string value whose type has been checked already */
#define ngx_http_ai_guard_jwk_s(v)         ((const char *) (v)->u.string)


typedef struct {
    const char                      *name;
    unsigned                         bit;
    const char                      *md_name;
    const EVP_MD                  *(*md)(void);
    size_t                           ec_len;     /* r and s, ES* only */
} ngx_http_ai_guard_jwt_alg_t;


typedef struct {
    u_char                          *kid;
    size_t                           kid_len;
    unsigned                         has_kid:1;
    unsigned                         kty;
    unsigned                         algs;
    EVP_PKEY                        *pkey;
    u_char                          *secret;
    size_t                           secret_len;
} ngx_http_ai_guard_jwk_t;


struct ngx_http_ai_guard_jwks_s {
    ngx_http_ai_guard_jwk_t         *keys;
    size_t                           nkeys;
    size_t                           skipped;
    unsigned                         algs;
    unsigned                         has_oct;
};


typedef struct {
    ngx_http_ai_guard_jwt_str_t      comp[NGX_HTTP_AI_GUARD_JWT_MAX_PATH];
    unsigned                         ncomp;
    unsigned                         matched;
    unsigned                         seen;
} ngx_http_ai_guard_jwt_field_t;


typedef struct ngx_http_ai_guard_jwt_json_s  ngx_http_ai_guard_jwt_json_t;

typedef int (*ngx_http_ai_guard_jwt_value_pt)(ngx_http_ai_guard_jwt_json_t *j,
    unsigned field, int type, const u_char *p, size_t len, int elt);


struct ngx_http_ai_guard_jwt_json_s {
    yajl_handle                      yh;
    u_char                          *in;
    size_t                           in_len;
    ngx_http_ai_guard_jwt_field_t   *fields;
    unsigned                         nfields;
    unsigned                         depth;
    unsigned                         narrays;
    uint64_t                         arrays;
    ngx_http_ai_guard_jwt_value_pt   value;
    void                            *data;
    const char                      *reason;
    size_t                           arena_used;
    uint64_t                         arena[NGX_HTTP_AI_GUARD_JWT_ARENA / 8];
};


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


static const ngx_http_ai_guard_jwt_alg_t *ngx_http_ai_guard_jwt_alg_get(
    unsigned bit);
static int ngx_http_ai_guard_jwt_str_eq(const u_char *a, size_t alen,
    const char *b);
static int ngx_http_ai_guard_jwk_b64(yajl_val v, const char *name,
    u_char **out, size_t *outlen, size_t i, char *err, size_t errlen);
static int ngx_http_ai_guard_jwk_parse(yajl_val v, size_t i,
    ngx_http_ai_guard_jwk_t *key, char *err, size_t errlen);
static int ngx_http_ai_guard_jwk_rsa(yajl_val v, size_t i,
    ngx_http_ai_guard_jwk_t *key, char *err, size_t errlen);
static int ngx_http_ai_guard_jwk_ec(yajl_val v, size_t i, const char *crv,
    ngx_http_ai_guard_jwk_t *key, char *err, size_t errlen);
static void ngx_http_ai_guard_jwk_free(ngx_http_ai_guard_jwk_t *key);

static int ngx_http_ai_guard_jwt_path(ngx_http_ai_guard_jwt_field_t *f,
    const u_char *p, size_t len);
static int ngx_http_ai_guard_jwt_json(ngx_http_ai_guard_jwt_json_t *j,
    u_char *p, size_t len);
static const u_char *ngx_http_ai_guard_jwt_stable(
    ngx_http_ai_guard_jwt_json_t *j, const u_char *p, size_t len);
static int ngx_http_ai_guard_jwt_event(ngx_http_ai_guard_jwt_json_t *j,
    int type, const u_char *p, size_t len);
static int ngx_http_ai_guard_jwt_push(ngx_http_ai_guard_jwt_json_t *j,
    int array);
static int ngx_http_ai_guard_jwt_on_null(void *ctx);
static int ngx_http_ai_guard_jwt_on_boolean(void *ctx, int b);
static int ngx_http_ai_guard_jwt_on_number(void *ctx, const char *p,
    size_t len);
static int ngx_http_ai_guard_jwt_on_string(void *ctx, const unsigned char *p,
    size_t len);
static int ngx_http_ai_guard_jwt_on_start_map(void *ctx);
static int ngx_http_ai_guard_jwt_on_map_key(void *ctx,
    const unsigned char *p, size_t len);
static int ngx_http_ai_guard_jwt_on_end_map(void *ctx);
static int ngx_http_ai_guard_jwt_on_start_array(void *ctx);
static int ngx_http_ai_guard_jwt_on_end_array(void *ctx);
static void *ngx_http_ai_guard_jwt_malloc(void *ctx, size_t size);
static void *ngx_http_ai_guard_jwt_realloc(void *ctx, void *ptr, size_t size);
static void ngx_http_ai_guard_jwt_free(void *ctx, void *ptr);

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

static int ngx_http_ai_guard_jwt_verify_key(const ngx_http_ai_guard_jwk_t *key,
    const ngx_http_ai_guard_jwt_alg_t *a, const u_char *data, size_t dlen,
    const u_char *sig, size_t slen);


static const ngx_http_ai_guard_jwt_alg_t  ngx_http_ai_guard_jwt_algs[] = {
    { "RS256", NGX_HTTP_AI_GUARD_JWT_RS256, "SHA256", EVP_sha256, 0 },
    { "RS384", NGX_HTTP_AI_GUARD_JWT_RS384, "SHA384", EVP_sha384, 0 },
    { "RS512", NGX_HTTP_AI_GUARD_JWT_RS512, "SHA512", EVP_sha512, 0 },
    { "PS256", NGX_HTTP_AI_GUARD_JWT_PS256, "SHA256", EVP_sha256, 0 },
    { "PS384", NGX_HTTP_AI_GUARD_JWT_PS384, "SHA384", EVP_sha384, 0 },
    { "PS512", NGX_HTTP_AI_GUARD_JWT_PS512, "SHA512", EVP_sha512, 0 },
    { "ES256", NGX_HTTP_AI_GUARD_JWT_ES256, "SHA256", EVP_sha256, 32 },
    { "ES384", NGX_HTTP_AI_GUARD_JWT_ES384, "SHA384", EVP_sha384, 48 },
    { "HS256", NGX_HTTP_AI_GUARD_JWT_HS256, "SHA256", EVP_sha256, 0 },
    { "HS384", NGX_HTTP_AI_GUARD_JWT_HS384, "SHA384", EVP_sha384, 0 },
    { "HS512", NGX_HTTP_AI_GUARD_JWT_HS512, "SHA512", EVP_sha512, 0 },
    { NULL, 0, NULL, NULL, 0 }
};


static const char  *ngx_http_ai_guard_jwt_header_names[] = {
    "alg", "kid", "crit"
};


static const char  *ngx_http_ai_guard_jwt_claim_names[] = {
    "exp", "nbf", "iat", "iss", "aud", "sub"
};


static yajl_callbacks  ngx_http_ai_guard_jwt_callbacks = {
    ngx_http_ai_guard_jwt_on_null,
    ngx_http_ai_guard_jwt_on_boolean,
    NULL,
    NULL,
    ngx_http_ai_guard_jwt_on_number,
    ngx_http_ai_guard_jwt_on_string,
    ngx_http_ai_guard_jwt_on_start_map,
    ngx_http_ai_guard_jwt_on_map_key,
    ngx_http_ai_guard_jwt_on_end_map,
    ngx_http_ai_guard_jwt_on_start_array,
    ngx_http_ai_guard_jwt_on_end_array
};


unsigned
ngx_http_ai_guard_jwt_alg(const u_char *name, size_t len)
{
    const ngx_http_ai_guard_jwt_alg_t  *a;

    for (a = ngx_http_ai_guard_jwt_algs; a->name; a++) {
        if (ngx_http_ai_guard_jwt_str_eq(name, len, a->name)) {
            return a->bit;
        }
    }

    return 0;
}


const char *
ngx_http_ai_guard_jwt_alg_name(unsigned alg)
{
    const ngx_http_ai_guard_jwt_alg_t  *a;

    a = ngx_http_ai_guard_jwt_alg_get(alg);

    return a ? a->name : NULL;
}


static const ngx_http_ai_guard_jwt_alg_t *
ngx_http_ai_guard_jwt_alg_get(unsigned bit)
{
    const ngx_http_ai_guard_jwt_alg_t  *a;

    for (a = ngx_http_ai_guard_jwt_algs; a->name; a++) {
        if (a->bit == bit) {
            return a;
        }
    }

    return NULL;
}


static int
ngx_http_ai_guard_jwt_str_eq(const u_char *a, size_t alen, const char *b)
{
    size_t  blen;

    blen = strlen(b);

    return alen == blen && memcmp(a, b, blen) == 0;
}


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
        return "The bearer token has expired.";

    case NGX_HTTP_AI_GUARD_JWT_NOT_YET_VALID:
        return "The bearer token is not valid yet.";

    case NGX_HTTP_AI_GUARD_JWT_BAD_ISSUER:
        return "The bearer token was not issued by an accepted issuer.";

    case NGX_HTTP_AI_GUARD_JWT_BAD_AUDIENCE:
        return "The bearer token was not issued for this audience.";

    case NGX_HTTP_AI_GUARD_JWT_ERROR:
        return "The bearer token could not be verified.";

    default:
        return "The bearer token is invalid.";
    }
}


static int
ngx_http_ai_guard_jwt_b64val(u_char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }

    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }

    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }

    if (c == '-') {
        return 62;
    }

    if (c == '_') {
        return 63;
    }

    return -1;
}


ssize_t
ngx_http_ai_guard_jwt_base64url_decode(u_char *out, const u_char *in,
    size_t len)
{
    int      a, b, c, d;
    u_char  *o;
    size_t   i, tail;

    tail = len % 4;

    if (tail == 1) {
        return -1;
    }

    o = out;

    for (i = 0; i + 4 <= len; i += 4) {
        a = ngx_http_ai_guard_jwt_b64val(in[i]);
        b = ngx_http_ai_guard_jwt_b64val(in[i + 1]);
        c = ngx_http_ai_guard_jwt_b64val(in[i + 2]);
        d = ngx_http_ai_guard_jwt_b64val(in[i + 3]);

        if ((a | b | c | d) < 0) {
            return -1;
        }

        *o++ = (u_char) (a << 2 | b >> 4);
        *o++ = (u_char) (b << 4 | c >> 2);
        *o++ = (u_char) (c << 6 | d);
    }

    if (tail) {
        a = ngx_http_ai_guard_jwt_b64val(in[i]);
        b = ngx_http_ai_guard_jwt_b64val(in[i + 1]);
        c = (tail == 3) ? ngx_http_ai_guard_jwt_b64val(in[i + 2]) : 0;

        if ((a | b | c) < 0) {
            return -1;
        }

        /* the bits past the last whole byte must be zero (canonical) */

        if (tail == 2) {
            if (b & 0x0f) {
                return -1;
            }

            *o++ = (u_char) (a << 2 | b >> 4);

        } else {
            if (c & 0x03) {
                return -1;
            }

            *o++ = (u_char) (a << 2 | b >> 4);
            *o++ = (u_char) (b << 4 | c >> 2);
        }
    }

    return o - out;
}


ngx_http_ai_guard_jwks_t *
ngx_http_ai_guard_jwks_parse(const u_char *p, size_t len, char *err,
    size_t errlen)
{
    int                        rc;
    char                      *text, *nl, yerr[256];
    size_t                     i, n;
    yajl_val                   root, keys, v;
    const char                *path[2];
    ngx_http_ai_guard_jwks_t  *jwks;

    if (errlen) {
        err[0] = '\0';
    }

    if (memchr(p, '\0', len) != NULL) {
        snprintf(err, errlen, "JWKS contains a NUL byte");
        return NULL;
    }

    text = malloc(len + 1);
    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }

    memcpy(text, p, len);
    text[len] = '\0';

    yerr[0] = '\0';
    root = yajl_tree_parse(text, yerr, sizeof(yerr));

    OPENSSL_cleanse(text, len);
    free(text);

    if (root == NULL) {
        /* only the first line: the rest quotes the text, maybe a secret */
        nl = strchr(yerr, '\n');
        if (nl) {
            *nl = '\0';
        }

        snprintf(err, errlen, "JWKS is not valid JSON: %s", yerr);
        return NULL;
    }

    keys = NULL;
    n = 1;

    if (YAJL_IS_OBJECT(root)) {
        path[0] = "keys";
        path[1] = NULL;
        keys = yajl_tree_get(root, path, yajl_t_any);

        if (keys != NULL) {
            if (!YAJL_IS_ARRAY(keys)) {
                snprintf(err, errlen, "JWKS \"keys\" is not an array");
                yajl_tree_free(root);
                return NULL;
            }

            n = keys->u.array.len;

        } else {
            path[0] = "kty";
            if (yajl_tree_get(root, path, yajl_t_any) == NULL) {
                snprintf(err, errlen, "JWKS has no \"keys\" array");
                yajl_tree_free(root);
                return NULL;
            }
        }

    } else {
        snprintf(err, errlen, "JWKS is not a JSON object");
        yajl_tree_free(root);
        return NULL;
    }

    jwks = calloc(1, sizeof(ngx_http_ai_guard_jwks_t));
    if (jwks == NULL) {
        snprintf(err, errlen, "out of memory");
        yajl_tree_free(root);
        return NULL;
    }

    jwks->keys = calloc(n ? n : 1, sizeof(ngx_http_ai_guard_jwk_t));
    if (jwks->keys == NULL) {
        snprintf(err, errlen, "out of memory");
        goto failed;
    }

    for (i = 0; i < n; i++) {
        v = keys ? keys->u.array.values[i] : root;

        rc = ngx_http_ai_guard_jwk_parse(v, i, &jwks->keys[jwks->nkeys],
                                         err, errlen);
        if (rc < 0) {
            goto failed;
        }

        if (rc == 0) {
            jwks->skipped++;
            continue;
        }

        jwks->algs |= jwks->keys[jwks->nkeys].algs;

        if (jwks->keys[jwks->nkeys].kty == NGX_HTTP_AI_GUARD_JWK_OCT) {
            jwks->has_oct = 1;
        }

        jwks->nkeys++;
    }

    if (jwks->nkeys == 0) {
        snprintf(err, errlen, "JWKS has no usable signing key (%zu skipped)",
                 jwks->skipped);
        goto failed;
    }

    yajl_tree_free(root);

    return jwks;

failed:

    yajl_tree_free(root);
    ngx_http_ai_guard_jwks_free(jwks);

    return NULL;
}


static int
ngx_http_ai_guard_jwk_parse(yajl_val v, size_t i,
    ngx_http_ai_guard_jwk_t *key, char *err, size_t errlen)
{
    int          rc;
    size_t       k;
    unsigned     alg, mask;
    yajl_val     kty, use, ops, op, valg, kid, crv;
    const char  *path[2], *name;

    crv = NULL;

    if (!YAJL_IS_OBJECT(v)) {
        snprintf(err, errlen, "keys[%zu]: not a JSON object", i);
        return -1;
    }

    path[1] = NULL;

    path[0] = "kty";
    kty = yajl_tree_get(v, path, yajl_t_any);
    path[0] = "use";
    use = yajl_tree_get(v, path, yajl_t_any);
    path[0] = "key_ops";
    ops = yajl_tree_get(v, path, yajl_t_any);
    path[0] = "alg";
    valg = yajl_tree_get(v, path, yajl_t_any);
    path[0] = "kid";
    kid = yajl_tree_get(v, path, yajl_t_any);

    if (kty == NULL || !YAJL_IS_STRING(kty)) {
        snprintf(err, errlen, "keys[%zu]: no \"kty\" string", i);
        return -1;
    }

    if (use != NULL) {
        if (!YAJL_IS_STRING(use)) {
            snprintf(err, errlen, "keys[%zu]: \"use\" is not a string", i);
            return -1;
        }

        if (strcmp(ngx_http_ai_guard_jwk_s(use), "sig") != 0) {
            return 0;
        }
    }

    if (ops != NULL) {
        if (!YAJL_IS_ARRAY(ops)) {
            snprintf(err, errlen, "keys[%zu]: \"key_ops\" is not an array",
                     i);
            return -1;
        }

        for (k = 0; k < ops->u.array.len; k++) {
            op = ops->u.array.values[k];

            if (YAJL_IS_STRING(op)
                && strcmp(ngx_http_ai_guard_jwk_s(op), "verify") == 0)
            {
                break;
            }
        }

        if (k == ops->u.array.len) {
            return 0;
        }
    }

    alg = 0;

    if (valg != NULL) {
        if (!YAJL_IS_STRING(valg)) {
            snprintf(err, errlen, "keys[%zu]: \"alg\" is not a string", i);
            return -1;
        }

        name = ngx_http_ai_guard_jwk_s(valg);
        alg = ngx_http_ai_guard_jwt_alg((u_char *) name, strlen(name));
        if (alg == 0) {
            /* an encryption key or an alg not supported here */
            return 0;
        }
    }

    if (kid != NULL && !YAJL_IS_STRING(kid)) {
        snprintf(err, errlen, "keys[%zu]: \"kid\" is not a string", i);
        return -1;
    }

    if (strcmp(ngx_http_ai_guard_jwk_s(kty), "RSA") == 0) {
        key->kty = NGX_HTTP_AI_GUARD_JWK_RSA;
        mask = NGX_HTTP_AI_GUARD_JWT_RSA_ALGS;

    } else if (strcmp(ngx_http_ai_guard_jwk_s(kty), "EC") == 0) {
        path[0] = "crv";
        crv = yajl_tree_get(v, path, yajl_t_any);

        if (crv == NULL || !YAJL_IS_STRING(crv)) {
            snprintf(err, errlen, "keys[%zu]: EC key without \"crv\"", i);
            return -1;
        }

        if (strcmp(ngx_http_ai_guard_jwk_s(crv), "P-256") == 0) {
            mask = NGX_HTTP_AI_GUARD_JWT_ES256;

        } else if (strcmp(ngx_http_ai_guard_jwk_s(crv), "P-384") == 0) {
            mask = NGX_HTTP_AI_GUARD_JWT_ES384;

        } else {
            return 0;
        }

        key->kty = NGX_HTTP_AI_GUARD_JWK_EC;

    } else if (strcmp(ngx_http_ai_guard_jwk_s(kty), "oct") == 0) {
        key->kty = NGX_HTTP_AI_GUARD_JWK_OCT;
        mask = NGX_HTTP_AI_GUARD_JWT_HMAC_ALGS;

    } else {
        return 0;
    }

    if (alg) {
        if (!(alg & mask)) {
            snprintf(err, errlen,
                     "keys[%zu]: \"alg\" %s does not fit kty %s%s%s", i,
                     ngx_http_ai_guard_jwt_alg_name(alg),
                     ngx_http_ai_guard_jwk_s(kty),
                     key->kty == NGX_HTTP_AI_GUARD_JWK_EC ? " " : "",
                     key->kty == NGX_HTTP_AI_GUARD_JWK_EC
                     ? ngx_http_ai_guard_jwk_s(crv) : "");
            return -1;
        }

        mask = alg;
    }

    key->algs = mask;

    switch (key->kty) {

    case NGX_HTTP_AI_GUARD_JWK_RSA:
        rc = ngx_http_ai_guard_jwk_rsa(v, i, key, err, errlen);
        break;

    case NGX_HTTP_AI_GUARD_JWK_EC:
        rc = ngx_http_ai_guard_jwk_ec(v, i, ngx_http_ai_guard_jwk_s(crv), key,
                                      err, errlen);
        break;

    default: /* NGX_HTTP_AI_GUARD_JWK_OCT */
        rc = ngx_http_ai_guard_jwk_b64(v, "k", &key->secret,
                                       &key->secret_len, i, err, errlen);

        if (rc == 1 && key->secret_len < NGX_HTTP_AI_GUARD_JWT_OCT_MIN_LEN) {
            snprintf(err, errlen,
                     "keys[%zu]: oct key shorter than %d bytes", i,
                     NGX_HTTP_AI_GUARD_JWT_OCT_MIN_LEN);
            rc = -1;
        }

        break;
    }

    if (rc != 1) {
        ngx_http_ai_guard_jwk_free(key);
        return -1;
    }

    if (kid != NULL) {
        key->kid_len = strlen(ngx_http_ai_guard_jwk_s(kid));
        key->kid = malloc(key->kid_len + 1);

        if (key->kid == NULL) {
            snprintf(err, errlen, "out of memory");
            ngx_http_ai_guard_jwk_free(key);
            return -1;
        }

        memcpy(key->kid, ngx_http_ai_guard_jwk_s(kid), key->kid_len + 1);
        key->has_kid = 1;
    }

    return 1;
}


static int
ngx_http_ai_guard_jwk_b64(yajl_val v, const char *name, u_char **out,
    size_t *outlen, size_t i, char *err, size_t errlen)
{
    size_t       len;
    ssize_t      n;
    yajl_val     m;
    const char  *path[2], *s;

    path[0] = name;
    path[1] = NULL;

    m = yajl_tree_get(v, path, yajl_t_any);

    if (m == NULL || !YAJL_IS_STRING(m)) {
        snprintf(err, errlen, "keys[%zu]: no \"%s\" string", i, name);
        return -1;
    }

    s = ngx_http_ai_guard_jwk_s(m);
    len = strlen(s);

    /* JWKs are unpadded, but tolerate a padded one at configuration */

    if (len % 4 == 0) {
        while (len && s[len - 1] == '=' && strlen(s) - len < 2) {
            len--;
        }
    }

    *out = malloc(ngx_http_ai_guard_jwt_b64len(len) + 1);
    if (*out == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }

    n = ngx_http_ai_guard_jwt_base64url_decode(*out, (u_char *) s, len);

    if (n <= 0) {
        snprintf(err, errlen, "keys[%zu]: \"%s\" is not base64url", i, name);
        free(*out);
        *out = NULL;
        return -1;
    }

    *outlen = n;

    return 1;
}


static int
ngx_http_ai_guard_jwk_rsa(yajl_val v, size_t i, ngx_http_ai_guard_jwk_t *key,
    char *err, size_t errlen)
{
    int              rc;
    u_char          *n, *e;
    size_t           nlen, elen;
    BIGNUM          *bn, *be;
    OSSL_PARAM      *params;
    EVP_PKEY_CTX    *ctx;
    OSSL_PARAM_BLD  *bld;

    n = NULL;
    e = NULL;
    bn = NULL;
    be = NULL;
    bld = NULL;
    params = NULL;
    ctx = NULL;
    rc = -1;

    if (ngx_http_ai_guard_jwk_b64(v, "n", &n, &nlen, i, err, errlen) != 1
        || ngx_http_ai_guard_jwk_b64(v, "e", &e, &elen, i, err, errlen) != 1)
    {
        goto done;
    }

    bn = BN_bin2bn(n, (int) nlen, NULL);
    be = BN_bin2bn(e, (int) elen, NULL);

    if (bn == NULL || be == NULL) {
        snprintf(err, errlen, "out of memory");
        goto done;
    }

    if (!BN_is_odd(be) || BN_is_one(be)) {
        snprintf(err, errlen, "keys[%zu]: invalid RSA exponent \"e\"", i);
        goto done;
    }

    if (BN_num_bits(bn) < NGX_HTTP_AI_GUARD_JWT_RSA_MIN_BITS) {
        snprintf(err, errlen, "keys[%zu]: RSA key shorter than %d bits", i,
                 NGX_HTTP_AI_GUARD_JWT_RSA_MIN_BITS);
        goto done;
    }

    bld = OSSL_PARAM_BLD_new();

    if (bld == NULL
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn)
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be)
        || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
    {
        snprintf(err, errlen, "out of memory");
        goto done;
    }

    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);

    if (ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &key->pkey, EVP_PKEY_PUBLIC_KEY, params)
           != 1)
    {
        snprintf(err, errlen, "keys[%zu]: OpenSSL rejected the RSA key", i);
        goto done;
    }

    rc = 1;

done:

    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    BN_free(bn);
    BN_free(be);
    free(n);
    free(e);
    ERR_clear_error();

    return rc;
}


static int
ngx_http_ai_guard_jwk_ec(yajl_val v, size_t i, const char *crv,
    ngx_http_ai_guard_jwk_t *key, char *err, size_t errlen)
{
    int              rc;
    u_char          *x, *y, pub[1 + 2 * 48];
    size_t           xlen, ylen, flen;
    OSSL_PARAM      *params;
    const char      *group;
    EVP_PKEY_CTX    *ctx, *cctx;
    OSSL_PARAM_BLD  *bld;

    x = NULL;
    y = NULL;
    bld = NULL;
    params = NULL;
    ctx = NULL;
    cctx = NULL;
    rc = -1;

    if (strcmp(crv, "P-256") == 0) {
        group = "prime256v1";
        flen = 32;

    } else {
        group = "secp384r1";
        flen = 48;
    }

    if (ngx_http_ai_guard_jwk_b64(v, "x", &x, &xlen, i, err, errlen) != 1
        || ngx_http_ai_guard_jwk_b64(v, "y", &y, &ylen, i, err, errlen) != 1)
    {
        goto done;
    }

    if (xlen != flen || ylen != flen) {
        snprintf(err, errlen,
                 "keys[%zu]: EC \"x\" and \"y\" must be %zu bytes for %s",
                 i, flen, crv);
        goto done;
    }

    pub[0] = 0x04;
    memcpy(pub + 1, x, flen);
    memcpy(pub + 1 + flen, y, flen);

    bld = OSSL_PARAM_BLD_new();

    if (bld == NULL
        || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
                                            group, 0)
        || !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
                                             pub, 1 + 2 * flen)
        || (params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
    {
        snprintf(err, errlen, "out of memory");
        goto done;
    }

    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

    if (ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) != 1
        || EVP_PKEY_fromdata(ctx, &key->pkey, EVP_PKEY_PUBLIC_KEY, params)
           != 1)
    {
        snprintf(err, errlen, "keys[%zu]: \"x\", \"y\" is not a point on %s",
                 i, crv);
        goto done;
    }

    cctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);

    if (cctx == NULL || EVP_PKEY_public_check(cctx) != 1) {
        snprintf(err, errlen, "keys[%zu]: EC point is not on %s", i, crv);
        goto done;
    }

    rc = 1;

done:

    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_CTX_free(cctx);
    free(x);
    free(y);
    ERR_clear_error();

    return rc;
}


static void
ngx_http_ai_guard_jwk_free(ngx_http_ai_guard_jwk_t *key)
{
    EVP_PKEY_free(key->pkey);
    key->pkey = NULL;

    if (key->secret) {
        OPENSSL_cleanse(key->secret, key->secret_len);
        free(key->secret);
        key->secret = NULL;
    }

    free(key->kid);
    key->kid = NULL;
}


void
ngx_http_ai_guard_jwks_free(ngx_http_ai_guard_jwks_t *jwks)
{
    size_t  i;

    if (jwks == NULL) {
        return;
    }

    if (jwks->keys) {
        for (i = 0; i < jwks->nkeys; i++) {
            ngx_http_ai_guard_jwk_free(&jwks->keys[i]);
        }

        free(jwks->keys);
    }

    free(jwks);
}


size_t
ngx_http_ai_guard_jwks_count(const ngx_http_ai_guard_jwks_t *jwks)
{
    return jwks ? jwks->nkeys : 0;
}


size_t
ngx_http_ai_guard_jwks_skipped(const ngx_http_ai_guard_jwks_t *jwks)
{
    return jwks ? jwks->skipped : 0;
}


unsigned
ngx_http_ai_guard_jwks_has_oct(const ngx_http_ai_guard_jwks_t *jwks)
{
    return jwks ? jwks->has_oct : 0;
}


unsigned
ngx_http_ai_guard_jwks_algs(const ngx_http_ai_guard_jwks_t *jwks)
{
    return jwks ? jwks->algs : 0;
}


int
ngx_http_ai_guard_jwt_claim_path_valid(const u_char *path, size_t len)
{
    ngx_http_ai_guard_jwt_field_t  f;

    return ngx_http_ai_guard_jwt_path(&f, path, len);
}


static int
ngx_http_ai_guard_jwt_path(ngx_http_ai_guard_jwt_field_t *f, const u_char *p,
    size_t len)
{
    const u_char  *last, *dot;

    memset(f, 0, sizeof(ngx_http_ai_guard_jwt_field_t));

    if (p == NULL || len == 0) {
        return 0;
    }

    last = p + len;

    for ( ;; ) {
        dot = memchr(p, '.', last - p);
        if (dot == NULL) {
            dot = last;
        }

        if (dot == p || f->ncomp == NGX_HTTP_AI_GUARD_JWT_MAX_PATH) {
            f->ncomp = 0;
            return 0;
        }

        f->comp[f->ncomp].data = p;
        f->comp[f->ncomp].len = dot - p;
        f->ncomp++;

        if (dot == last) {
            return 1;
        }

        p = dot + 1;
    }
}


/*
 * yajl allocates from a small arena on the stack so that a request's
 * parse does not malloc; a document that needs more falls back to libc.
 */

static void *
ngx_http_ai_guard_jwt_malloc(void *ctx, size_t size)
{
    u_char                        *p;
    size_t                         n;
    ngx_http_ai_guard_jwt_json_t  *j;

    j = ctx;
    n = (size + 16 + 15) & ~(size_t) 15;

    if (size < NGX_HTTP_AI_GUARD_JWT_ARENA
        && n <= NGX_HTTP_AI_GUARD_JWT_ARENA - j->arena_used)
    {
        p = (u_char *) j->arena + j->arena_used;
        j->arena_used += n;
        *(size_t *) p = size;
        return p + 16;
    }

    return malloc(size);
}


static int
ngx_http_ai_guard_jwt_in_arena(ngx_http_ai_guard_jwt_json_t *j, void *ptr)
{
    uintptr_t  p, a;

    p = (uintptr_t) ptr;
    a = (uintptr_t) j->arena;

    return p >= a && p < a + NGX_HTTP_AI_GUARD_JWT_ARENA;
}


static void *
ngx_http_ai_guard_jwt_realloc(void *ctx, void *ptr, size_t size)
{
    void                          *p;
    size_t                         old, n, m;
    ngx_http_ai_guard_jwt_json_t  *j;

    j = ctx;

    if (ptr == NULL) {
        return ngx_http_ai_guard_jwt_malloc(ctx, size);
    }

    if (!ngx_http_ai_guard_jwt_in_arena(j, ptr)) {
        return realloc(ptr, size);
    }

    old = *(size_t *) ((u_char *) ptr - 16);

    if (size <= old) {
        return ptr;
    }

    /* the last block grows in place: yajl's stacks and buffers double */

    n = (old + 16 + 15) & ~(size_t) 15;
    m = (size + 16 + 15) & ~(size_t) 15;

    if (size < NGX_HTTP_AI_GUARD_JWT_ARENA
        && (u_char *) ptr - 16 + n == (u_char *) j->arena + j->arena_used
        && m - n <= NGX_HTTP_AI_GUARD_JWT_ARENA - j->arena_used)
    {
        j->arena_used += m - n;
        *(size_t *) ((u_char *) ptr - 16) = size;
        return ptr;
    }

    p = ngx_http_ai_guard_jwt_malloc(ctx, size);
    if (p == NULL) {
        return NULL;
    }

    memcpy(p, ptr, old);

    return p;
}


static void
ngx_http_ai_guard_jwt_free(void *ctx, void *ptr)
{
    if (ptr != NULL && !ngx_http_ai_guard_jwt_in_arena(ctx, ptr)) {
        free(ptr);
    }
}


/*
 * A streaming parse that follows the members named by j->fields (dotted
 * paths through nested objects) and hands their values to j->value.
 * Strings are handed over as spans into the input, which must be writable:
 * yajl hands an unescaped string as a pointer into the input, and an
 * escaped one is copied back over its own (always longer) encoding.
 */

static int
ngx_http_ai_guard_jwt_json(ngx_http_ai_guard_jwt_json_t *j, u_char *p,
    size_t len)
{
    yajl_status        st;
    yajl_alloc_funcs   af;

    af.malloc = ngx_http_ai_guard_jwt_malloc;
    af.realloc = ngx_http_ai_guard_jwt_realloc;
    af.free = ngx_http_ai_guard_jwt_free;
    af.ctx = j;

    j->arena_used = 0;
    j->depth = 0;
    j->narrays = 0;
    j->arrays = 0;
    j->in = p;
    j->in_len = len;

    j->yh = yajl_alloc(&ngx_http_ai_guard_jwt_callbacks, &af, j);
    if (j->yh == NULL) {
        j->reason = "out of memory";
        return NGX_HTTP_AI_GUARD_JWT_ERROR;
    }

    st = yajl_parse(j->yh, p, len);

    if (st == yajl_status_ok) {
        st = yajl_complete_parse(j->yh);
    }

    yajl_free(j->yh);
    j->yh = NULL;

    if (st != yajl_status_ok) {
        if (j->reason == NULL) {
            j->reason = "not valid JSON";
        }

        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    if (j->depth != 0) {
        j->reason = "not a JSON object";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    return NGX_HTTP_AI_GUARD_JWT_OK;
}


static const u_char *
ngx_http_ai_guard_jwt_stable(ngx_http_ai_guard_jwt_json_t *j,
    const u_char *p, size_t len)
{
    size_t     consumed;
    u_char    *dst;
    uintptr_t  a, s;

    a = (uintptr_t) p;
    s = (uintptr_t) j->in;

    if (a >= s && a <= s + j->in_len && len <= s + j->in_len - a) {
        return p;
    }

    /*
     * An escaped string, decoded into yajl's buffer.  The token just
     * lexed ends at the closing quote, at consumed - 1, and its escaped
     * text is longer than the decoded one: the copy lands inside it.
     */

    consumed = yajl_get_bytes_consumed(j->yh);

    if (consumed > j->in_len || consumed < len + 3) {
        return NULL;
    }

    dst = j->in + consumed - 1 - len;
    memmove(dst, p, len);

    return dst;
}


static int
ngx_http_ai_guard_jwt_event(ngx_http_ai_guard_jwt_json_t *j, int type,
    const u_char *p, size_t len)
{
    int                             elt, top_array, stable;
    unsigned                        i, maps;
    ngx_http_ai_guard_jwt_field_t  *f;

    if (j->depth == 0) {
        if (type == NGX_HTTP_AI_GUARD_JWT_T_MAP) {
            return 1;
        }

        j->reason = "not a JSON object";
        return 0;
    }

    if (j->narrays > 1) {
        return 1;
    }

    top_array = (j->arrays >> (j->depth - 1)) & 1;

    if (j->narrays == 1 && !top_array) {
        return 1;
    }

    elt = top_array;
    maps = j->depth - j->narrays;
    stable = 0;

    for (i = 0; i < j->nfields; i++) {
        f = &j->fields[i];

        if (f->ncomp != maps || f->matched != maps) {
            continue;
        }

        if (!elt) {
            if (f->seen) {
                j->reason = "duplicate member";
                return 0;
            }

            f->seen = 1;
        }

        if (type == NGX_HTTP_AI_GUARD_JWT_T_NUMBER && !stable) {
            /* yajl hands numbers as spans of the input: make sure */

            if ((uintptr_t) p < (uintptr_t) j->in
                || (uintptr_t) p + len > (uintptr_t) j->in + j->in_len)
            {
                j->reason = "number outside the input";
                return 0;
            }

            stable = 1;
        }

        if (type == NGX_HTTP_AI_GUARD_JWT_T_STRING && !stable) {
            p = ngx_http_ai_guard_jwt_stable(j, p, len);
            if (p == NULL) {
                j->reason = "string outside the input";
                return 0;
            }

            stable = 1;
        }

        if (!j->value(j, i, type, p, len, elt)) {
            return 0;
        }
    }

    return 1;
}


static int
ngx_http_ai_guard_jwt_push(ngx_http_ai_guard_jwt_json_t *j, int array)
{
    if (j->depth == NGX_HTTP_AI_GUARD_JWT_DEPTH) {
        j->reason = "JSON nested too deeply";
        return 0;
    }

    if (array) {
        j->arrays |= (uint64_t) 1 << j->depth;
        j->narrays++;

    } else {
        j->arrays &= ~((uint64_t) 1 << j->depth);
    }

    j->depth++;

    return 1;
}


static int
ngx_http_ai_guard_jwt_on_null(void *ctx)
{
    return ngx_http_ai_guard_jwt_event(ctx, NGX_HTTP_AI_GUARD_JWT_T_OTHER,
                                       NULL, 0);
}


static int
ngx_http_ai_guard_jwt_on_boolean(void *ctx, int b)
{
    (void) b;

    return ngx_http_ai_guard_jwt_event(ctx, NGX_HTTP_AI_GUARD_JWT_T_OTHER,
                                       NULL, 0);
}


static int
ngx_http_ai_guard_jwt_on_number(void *ctx, const char *p, size_t len)
{
    return ngx_http_ai_guard_jwt_event(ctx, NGX_HTTP_AI_GUARD_JWT_T_NUMBER,
                                       (const u_char *) p, len);
}


static int
ngx_http_ai_guard_jwt_on_string(void *ctx, const unsigned char *p,
    size_t len)
{
    return ngx_http_ai_guard_jwt_event(ctx, NGX_HTTP_AI_GUARD_JWT_T_STRING,
                                       p, len);
}


static int
ngx_http_ai_guard_jwt_on_start_map(void *ctx)
{
    ngx_http_ai_guard_jwt_json_t  *j;

    j = ctx;

    if (!ngx_http_ai_guard_jwt_event(j, NGX_HTTP_AI_GUARD_JWT_T_MAP, NULL, 0))
    {
        return 0;
    }

    return ngx_http_ai_guard_jwt_push(j, 0);
}


static int
ngx_http_ai_guard_jwt_on_map_key(void *ctx, const unsigned char *p,
    size_t len)
{
    unsigned                        i, d;
    ngx_http_ai_guard_jwt_json_t   *j;
    ngx_http_ai_guard_jwt_field_t  *f;

    j = ctx;

    if (j->narrays) {
        return 1;
    }

    d = j->depth;

    for (i = 0; i < j->nfields; i++) {
        f = &j->fields[i];

        if (f->matched + 1 < d) {
            continue;
        }

        f->matched = d - 1;

        if (d <= f->ncomp
            && f->comp[d - 1].len == len
            && memcmp(f->comp[d - 1].data, p, len) == 0)
        {
            f->matched = d;
        }
    }

    return 1;
}


static int
ngx_http_ai_guard_jwt_on_end_map(void *ctx)
{
    unsigned                        i;
    ngx_http_ai_guard_jwt_json_t   *j;
    ngx_http_ai_guard_jwt_field_t  *f;

    j = ctx;

    if (j->narrays == 0) {
        for (i = 0; i < j->nfields; i++) {
            f = &j->fields[i];

            if (f->matched >= j->depth) {
                f->matched = j->depth - 1;
            }
        }
    }

    j->depth--;

    return 1;
}


static int
ngx_http_ai_guard_jwt_on_start_array(void *ctx)
{
    ngx_http_ai_guard_jwt_json_t  *j;

    j = ctx;

    if (!ngx_http_ai_guard_jwt_event(j, NGX_HTTP_AI_GUARD_JWT_T_ARRAY, NULL,
                                     0))
    {
        return 0;
    }

    return ngx_http_ai_guard_jwt_push(j, 1);
}


static int
ngx_http_ai_guard_jwt_on_end_array(void *ctx)
{
    ngx_http_ai_guard_jwt_json_t  *j;

    j = ctx;

    j->depth--;
    j->narrays--;

    return 1;
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


int
ngx_http_ai_guard_jwt_verify(const ngx_http_ai_guard_jwks_t *jwks,
    const ngx_http_ai_guard_jwt_conf_t *conf, const u_char *token,
    size_t len, time_t now, u_char *scratch, size_t scratch_len,
    ngx_http_ai_guard_jwt_claims_t *out)
{
    int                                 rc, matched_kid, tried;
    u_char                             *hdr, *sig, *pay;
    size_t                              i, hlen, plen, slen;
    ssize_t                             n;
    int64_t                             lo, hi, leeway;
    const u_char                       *d1, *d2, *last;
    ngx_http_ai_guard_jwk_t            *key;
    ngx_http_ai_guard_jwt_json_t        j;
    ngx_http_ai_guard_jwt_header_t      h;
    ngx_http_ai_guard_jwt_payload_t     pl;
    const ngx_http_ai_guard_jwt_alg_t  *a;
    ngx_http_ai_guard_jwt_field_t       fields[NGX_HTTP_AI_GUARD_JWT_C_N];

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

    /* header */

    hdr = scratch;
    n = ngx_http_ai_guard_jwt_base64url_decode(hdr, token, d1 - token);
    if (n < 0) {
        out->reason = "header is not base64url";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    hlen = n;

    memset(&h, 0, sizeof(ngx_http_ai_guard_jwt_header_t));
    memset(fields, 0, sizeof(fields));

    for (i = 0; i < NGX_HTTP_AI_GUARD_JWT_H_N; i++) {
        (void) ngx_http_ai_guard_jwt_path(&fields[i],
                    (u_char *) ngx_http_ai_guard_jwt_header_names[i],
                    strlen(ngx_http_ai_guard_jwt_header_names[i]));
    }

    j.fields = fields;
    j.nfields = NGX_HTTP_AI_GUARD_JWT_H_N;
    j.value = ngx_http_ai_guard_jwt_header_value;
    j.data = &h;
    j.reason = NULL;

    rc = ngx_http_ai_guard_jwt_json(&j, hdr, hlen);
    if (rc != NGX_HTTP_AI_GUARD_JWT_OK) {
        out->reason = j.reason;
        return rc;
    }

    if (!h.has_alg) {
        out->reason = "header has no \"alg\"";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    if (h.alg == 0) {
        out->reason = "\"alg\" is \"none\" or not supported";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    if (!(h.alg & conf->algs)) {
        out->reason = "\"alg\" is not allowed";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    a = ngx_http_ai_guard_jwt_alg_get(h.alg);

    /* signature */

    sig = hdr + hlen;
    n = ngx_http_ai_guard_jwt_base64url_decode(sig, d2 + 1, last - d2 - 1);
    if (n <= 0) {
        out->reason = "signature is empty or not base64url";
        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    slen = n;

    matched_kid = 0;
    tried = 0;
    rc = 0;

    for (i = 0; i < jwks->nkeys; i++) {
        key = &jwks->keys[i];

        if (h.has_kid) {
            if (!key->has_kid
                || key->kid_len != h.kid.len
                || memcmp(key->kid, h.kid.data, h.kid.len) != 0)
            {
                continue;
            }

            matched_kid = 1;
        }

        if (!(key->algs & h.alg)) {
            continue;
        }

        tried++;

        rc = ngx_http_ai_guard_jwt_verify_key(key, a, token, d2 - token,
                                              sig, slen);
        if (rc != 0) {
            break;
        }
    }

    if (rc < 0) {
        out->reason = "signature verification failed to run";
        return NGX_HTTP_AI_GUARD_JWT_ERROR;
    }

    if (rc == 0) {
        if (h.has_kid && !matched_kid) {
            out->reason = "unknown \"kid\"";

        } else if (tried == 0) {
            out->reason = "no key of the token's \"alg\"";

        } else {
            out->reason = "bad signature";
        }

        return NGX_HTTP_AI_GUARD_JWT_INVALID;
    }

    out->alg = h.alg;

    /* payload, only now that it is authentic */

    pay = sig + slen;
    n = ngx_http_ai_guard_jwt_base64url_decode(pay, d1 + 1, d2 - d1 - 1);
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
    if (rc != NGX_HTTP_AI_GUARD_JWT_OK) {
        out->reason = j.reason;
        return rc;
    }

    /* time; leeway is clamped so that the sums below cannot overflow */

    leeway = conf->leeway;
    if (leeway < 0) {
        leeway = 0;

    } else if (leeway > 86400 * 365) {
        leeway = 86400 * 365;
    }

    lo = (int64_t) now - leeway;
    hi = (int64_t) now + leeway;

    if (!pl.has_exp) {
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

    if (conf->issuer.len && !pl.iss_ok) {
        out->reason = "\"iss\" does not match";
        return NGX_HTTP_AI_GUARD_JWT_BAD_ISSUER;
    }

    if (conf->audience.len && !pl.aud_ok) {
        out->reason = "\"aud\" does not match";
        return NGX_HTTP_AI_GUARD_JWT_BAD_AUDIENCE;
    }

    return NGX_HTTP_AI_GUARD_JWT_OK;
}


static int
ngx_http_ai_guard_jwt_verify_key(const ngx_http_ai_guard_jwk_t *key,
    const ngx_http_ai_guard_jwt_alg_t *a, const u_char *data, size_t dlen,
    const u_char *sig, size_t slen)
{
    int            rc;
    u_char         mac[EVP_MAX_MD_SIZE], der[160], *dp;
    size_t         maclen;
    BIGNUM        *r, *s;
    ECDSA_SIG     *es;
    EVP_MD_CTX    *md;
    EVP_PKEY_CTX  *pctx;

    if (key->kty == NGX_HTTP_AI_GUARD_JWK_OCT) {
        if (EVP_Q_mac(NULL, "HMAC", NULL, a->md_name, NULL, key->secret,
                      key->secret_len, data, dlen, mac, sizeof(mac), &maclen)
            == NULL)
        {
            ERR_clear_error();
            return -1;
        }

        rc = (slen == maclen && CRYPTO_memcmp(mac, sig, slen) == 0);
        OPENSSL_cleanse(mac, sizeof(mac));

        return rc;
    }

    if (a->ec_len) {
        /* JOSE's raw r || s, each the size of the field, to DER */

        if (slen != 2 * a->ec_len) {
            return 0;
        }

        es = ECDSA_SIG_new();
        r = BN_bin2bn(sig, (int) a->ec_len, NULL);
        s = BN_bin2bn(sig + a->ec_len, (int) a->ec_len, NULL);

        if (es == NULL || r == NULL || s == NULL
            || ECDSA_SIG_set0(es, r, s) != 1)
        {
            ECDSA_SIG_free(es);
            BN_free(r);
            BN_free(s);
            ERR_clear_error();
            return -1;
        }

        rc = i2d_ECDSA_SIG(es, NULL);

        if (rc <= 0 || (size_t) rc > sizeof(der)) {
            ECDSA_SIG_free(es);
            ERR_clear_error();
            return -1;
        }

        dp = der;
        slen = i2d_ECDSA_SIG(es, &dp);
        sig = der;

        ECDSA_SIG_free(es);
    }

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return -1;
    }

    pctx = NULL;

    if (EVP_DigestVerifyInit(md, &pctx, a->md(), NULL, key->pkey) != 1) {
        EVP_MD_CTX_free(md);
        ERR_clear_error();
        return -1;
    }

    if (a->bit & (NGX_HTTP_AI_GUARD_JWT_PS256
                  |NGX_HTTP_AI_GUARD_JWT_PS384
                  |NGX_HTTP_AI_GUARD_JWT_PS512))
    {
        if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0
            || EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST)
               <= 0)
        {
            EVP_MD_CTX_free(md);
            ERR_clear_error();
            return -1;
        }
    }

    rc = EVP_DigestVerify(md, sig, slen, data, dlen);

    EVP_MD_CTX_free(md);
    ERR_clear_error();

    return rc == 1;
}
