
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>

#include "ngx_http_ai_guard_jwt.h"


/*
 * The first byte picks a mode and a configuration; the rest is either
 *
 *  - (mode bit 0 clear) a token as a client sends it: base64url, header
 *    JSON, key choice and signature checks, which a fuzzer cannot pass;
 *  - (mode bit 0 set) header JSON, a NUL, payload JSON: the target
 *    encodes and signs them with the set's HMAC key, so the payload
 *    decoding and claim extraction behind the signature are reached too.
 *
 * Every claim span returned must lie in the scratch buffer, which is
 * exactly as long as the token.
 */


#define NGX_HTTP_AI_GUARD_FUZZ_SECRET  "fuzz-secret-0123456789abcdef-0123"

static const char  ngx_http_ai_guard_fuzz_jwks[] =
    "{\"keys\":["
    "{\"kty\":\"oct\",\"kid\":\"hs1\","
    "\"k\":\"ZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZi0wMTIz\"},"
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"ec256\","
    "\"x\":\"vdVJnaUogSNudhkZIBy2l1jFWGsnDBw9zsioD3OjYAw\","
    "\"y\":\"Agq5sR8fGsKxRl5k-bzrJ_2bJZNK17FwDFYHpgJvSe8\"}"
    "]}";


static ngx_http_ai_guard_jwks_t  *ngx_http_ai_guard_fuzz_keys;


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static size_t ngx_http_ai_guard_fuzz_b64url(u_char *out, const u_char *in,
    size_t len);
static void ngx_http_ai_guard_fuzz_check(const u_char *scratch, size_t len,
    const ngx_http_ai_guard_jwt_str_t *s);


static size_t
ngx_http_ai_guard_fuzz_b64url(u_char *out, const u_char *in, size_t len)
{
    int      n;
    u_char  *p;

    n = EVP_EncodeBlock(out, in, (int) len);

    for (p = out; p < out + n; p++) {
        if (*p == '+') {
            *p = '-';

        } else if (*p == '/') {
            *p = '_';

        } else if (*p == '=') {
            return p - out;
        }
    }

    return n;
}


static void
ngx_http_ai_guard_fuzz_check(const u_char *scratch, size_t len,
    const ngx_http_ai_guard_jwt_str_t *s)
{
    volatile u_char  c;

    if (s->len == 0) {
        return;
    }

    if (s->data < scratch || s->data + s->len > scratch + len) {
        abort();
    }

    c = s->data[0];
    c = s->data[s->len - 1];
    (void) c;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                              rc;
    char                             err[256];
    u_char                          *token, *scratch, *p, mac[64];
    size_t                           len, maclen;
    ssize_t                          n;
    unsigned                         mode, i;
    const u_char                    *nul, *hdr, *pay;
    size_t                           hlen, plen;
    ngx_http_ai_guard_jwt_conf_t     conf;
    ngx_http_ai_guard_jwt_claims_t   cl;

    if (ngx_http_ai_guard_fuzz_keys == NULL) {
        ngx_http_ai_guard_fuzz_keys = ngx_http_ai_guard_jwks_parse(
                (const u_char *) ngx_http_ai_guard_fuzz_jwks,
                sizeof(ngx_http_ai_guard_fuzz_jwks) - 1, err, sizeof(err));
        if (ngx_http_ai_guard_fuzz_keys == NULL) {
            abort();
        }
    }

    if (size == 0 || size > 65536) {
        return 0;
    }

    mode = data[0];
    data++;
    size--;

    memset(&conf, 0, sizeof(conf));
    conf.algs = (mode & 0x02) ? ~0u : NGX_HTTP_AI_GUARD_JWT_HS256
                                      |NGX_HTTP_AI_GUARD_JWT_ES256;
    conf.leeway = (mode & 0x04) ? 30 : 0;

    if (mode & 0x08) {
        conf.issuer.data = (const u_char *) "https://x.supabase.co/auth/v1";
        conf.issuer.len = sizeof("https://x.supabase.co/auth/v1") - 1;
        conf.audience.data = (const u_char *) "authenticated";
        conf.audience.len = sizeof("authenticated") - 1;
    }

    if (mode & 0x10) {
        conf.tenant.data = (const u_char *) "app_metadata.tenant";
        conf.tenant.len = sizeof("app_metadata.tenant") - 1;
        conf.tier.data = (const u_char *) "app_metadata.tier";
        conf.tier.len = sizeof("app_metadata.tier") - 1;
        conf.models.data = (const u_char *) "models";
        conf.models.len = sizeof("models") - 1;
        conf.key_id.data = (const u_char *) "a.b.c";
        conf.key_id.len = sizeof("a.b.c") - 1;
    }

    if (mode & 0x01) {
        nul = memchr(data, '\0', size);

        if (nul) {
            hdr = data;
            hlen = nul - data;
            pay = nul + 1;
            plen = size - hlen - 1;

        } else {
            hdr = (const u_char *) "{\"alg\":\"HS256\"}";
            hlen = sizeof("{\"alg\":\"HS256\"}") - 1;
            pay = data;
            plen = size;
        }

        /* EVP_EncodeBlock() writes 4 bytes per 3, and a NUL */
        token = malloc((hlen + plen) * 2 + 128);
        if (token == NULL) {
            return 0;
        }

        p = token;
        p += ngx_http_ai_guard_fuzz_b64url(p, hdr, hlen);
        *p++ = '.';
        p += ngx_http_ai_guard_fuzz_b64url(p, pay, plen);

        if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL,
                      NGX_HTTP_AI_GUARD_FUZZ_SECRET,
                      sizeof(NGX_HTTP_AI_GUARD_FUZZ_SECRET) - 1,
                      token, p - token, mac, sizeof(mac), &maclen)
            == NULL)
        {
            abort();
        }

        *p++ = '.';
        p += ngx_http_ai_guard_fuzz_b64url(p, mac, maclen);
        len = p - token;

    } else {
        token = malloc(size ? size : 1);
        if (token == NULL) {
            return 0;
        }

        memcpy(token, data, size);
        len = size;
    }

    scratch = malloc(len ? len : 1);
    if (scratch == NULL) {
        free(token);
        return 0;
    }

    /* the decoder on its own, over the raw bytes */

    n = ngx_http_ai_guard_jwt_base64url_decode(scratch, token, len);
    if (n > (ssize_t) (len * 3 / 4)) {
        abort();
    }

    rc = ngx_http_ai_guard_jwt_verify(ngx_http_ai_guard_fuzz_keys, &conf,
                                      token, len, 1700001000, scratch, len,
                                      &cl);

    if (rc != NGX_HTTP_AI_GUARD_JWT_OK && cl.reason == NULL) {
        abort();
    }

    if (rc == NGX_HTTP_AI_GUARD_JWT_OK) {
        ngx_http_ai_guard_fuzz_check(scratch, len, &cl.tenant);
        ngx_http_ai_guard_fuzz_check(scratch, len, &cl.tier);
        ngx_http_ai_guard_fuzz_check(scratch, len, &cl.key_id);
        ngx_http_ai_guard_fuzz_check(scratch, len, &cl.sub);

        if (cl.nmodels > NGX_HTTP_AI_GUARD_JWT_MAX_MODELS) {
            abort();
        }

        for (i = 0; i < cl.nmodels; i++) {
            ngx_http_ai_guard_fuzz_check(scratch, len, &cl.models[i]);
        }
    }

    (void) ngx_http_ai_guard_jwt_code(rc);

    free(scratch);
    free(token);

    return 0;
}
