
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * libFuzzer target for the JWKS parser: any bytes as a key set.  A set
 * that parses has a usable key, algs only of the kinds it holds, and an
 * error message otherwise; every set is checked against a signature made
 * of the input's last bytes under every alg, with and without a kid, and
 * freed (LeakSanitizer sees what it misses).  RSA and EC keys a fuzzer
 * rarely forms; the seeds in fuzz/corpus/jwks hold real ones.
 */

#include <stdlib.h>
#include <string.h>

#include "ngx_http_ai_guard_jwks.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                          rc;
    char                         err[256];
    size_t                       slen;
    unsigned                     alg, algs;
    const char                  *reason;
    ngx_http_ai_guard_jwks_t    *jwks;
    ngx_http_ai_guard_jwt_str_t  kid;

    if (size > 65536) {
        return 0;
    }

    err[0] = 'x';

    jwks = ngx_http_ai_guard_jwks_parse(data, size, err, sizeof(err));

    if (jwks == NULL) {
        if (err[0] == '\0' || memchr(err, '\0', sizeof(err)) == NULL) {
            abort();
        }

        return 0;
    }

    algs = ngx_http_ai_guard_jwks_algs(jwks);

    if (ngx_http_ai_guard_jwks_count(jwks) == 0 || algs == 0
        || (algs & ~(NGX_HTTP_AI_GUARD_JWT_RSA_ALGS
                     |NGX_HTTP_AI_GUARD_JWT_EC_ALGS
                     |NGX_HTTP_AI_GUARD_JWT_HMAC_ALGS))
        || (ngx_http_ai_guard_jwks_has_oct(jwks)
            != ((algs & NGX_HTTP_AI_GUARD_JWT_HMAC_ALGS) != 0)))
    {
        abort();
    }

    slen = size < 64 ? size : 64;
    kid.data = data;
    kid.len = size < 8 ? size : 8;

    for (alg = 1; alg <= NGX_HTTP_AI_GUARD_JWT_HS512; alg <<= 1) {
        reason = NULL;
        rc = ngx_http_ai_guard_jwks_verify(jwks, alg, NULL, data, size,
                                           data + size - slen, slen, &reason);

        if (rc < -1 || rc > 1 || (rc != 1 && reason == NULL)) {
            abort();
        }

        rc = ngx_http_ai_guard_jwks_verify(jwks, alg, &kid, data, size,
                                           data + size - slen, slen, &reason);

        if (rc < -1 || rc > 1) {
            abort();
        }
    }

    ngx_http_ai_guard_jwks_free(jwks);

    return 0;
}
