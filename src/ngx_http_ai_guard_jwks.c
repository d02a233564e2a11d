
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yajl/yajl_tree.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "ngx_http_ai_guard_jwks.h"


#define NGX_HTTP_AI_GUARD_JWK_RSA          1
#define NGX_HTTP_AI_GUARD_JWK_EC           2
#define NGX_HTTP_AI_GUARD_JWK_OCT          3

#define NGX_HTTP_AI_GUARD_JWT_RSA_MIN_BITS  2048
#define NGX_HTTP_AI_GUARD_JWT_OCT_MIN_LEN   32

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
static int ngx_http_ai_guard_jwk_verify(const ngx_http_ai_guard_jwk_t *key,
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
ngx_http_ai_guard_jwks_verify(const ngx_http_ai_guard_jwks_t *jwks,
    unsigned alg, const ngx_http_ai_guard_jwt_str_t *kid, const u_char *data,
    size_t dlen, const u_char *sig, size_t slen, const char **reason)
{
    int                                 rc, matched_kid, tried;
    size_t                              i;
    ngx_http_ai_guard_jwk_t            *key;
    const ngx_http_ai_guard_jwt_alg_t  *a;

    a = ngx_http_ai_guard_jwt_alg_get(alg);

    if (a == NULL) {
        *reason = "\"alg\" is \"none\" or not supported";
        return 0;
    }

    matched_kid = 0;
    tried = 0;
    rc = 0;

    for (i = 0; i < jwks->nkeys; i++) {
        key = &jwks->keys[i];

        if (kid) {
            if (!key->has_kid
                || key->kid_len != kid->len
                || memcmp(key->kid, kid->data, kid->len) != 0)
            {
                continue;
            }

            matched_kid = 1;
        }

        if (!(key->algs & alg)) {
            continue;
        }

        tried++;

        rc = ngx_http_ai_guard_jwk_verify(key, a, data, dlen, sig, slen);
        if (rc != 0) {
            break;
        }
    }

    if (rc < 0) {
        *reason = "signature verification failed to run";
        return -1;
    }

    if (rc == 0) {
        if (kid && !matched_kid) {
            *reason = "unknown \"kid\"";

        } else if (tried == 0) {
            *reason = "no key of the token's \"alg\"";

        } else {
            *reason = "bad signature";
        }

        return 0;
    }

    return 1;
}


static int
ngx_http_ai_guard_jwk_verify(const ngx_http_ai_guard_jwk_t *key,
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
