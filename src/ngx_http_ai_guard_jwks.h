
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_JWKS_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_JWKS_H_INCLUDED_


/*
 * The JSON Web Key Set a JWT is verified with, and the JWS algorithms.
 * Pure: libc, yajl and OpenSSL's EVP API; no nginx runtime, no pools, no
 * logging.
 *
 * Configuration time: ngx_http_ai_guard_jwks_parse() turns the JWKS text
 * into keys (malloc), ngx_http_ai_guard_jwks_free() releases them.
 * Request time: ngx_http_ai_guard_jwks_verify() checks a signature with
 * the keys that may verify it; it does not malloc, OpenSSL allocates as
 * it likes, and the OpenSSL error queue is left empty.
 */


#include <sys/types.h>
#include <stdint.h>
#include <stddef.h>

#include "ngx_http_ai_guard_jwt_json.h"


#define NGX_HTTP_AI_GUARD_JWT_RS256          0x0001
#define NGX_HTTP_AI_GUARD_JWT_RS384          0x0002
#define NGX_HTTP_AI_GUARD_JWT_RS512          0x0004
#define NGX_HTTP_AI_GUARD_JWT_PS256          0x0008
#define NGX_HTTP_AI_GUARD_JWT_PS384          0x0010
#define NGX_HTTP_AI_GUARD_JWT_PS512          0x0020
#define NGX_HTTP_AI_GUARD_JWT_ES256          0x0040
#define NGX_HTTP_AI_GUARD_JWT_ES384          0x0080
#define NGX_HTTP_AI_GUARD_JWT_HS256          0x0100
#define NGX_HTTP_AI_GUARD_JWT_HS384          0x0200
#define NGX_HTTP_AI_GUARD_JWT_HS512          0x0400

#define NGX_HTTP_AI_GUARD_JWT_RSA_ALGS       0x003f
#define NGX_HTTP_AI_GUARD_JWT_EC_ALGS        0x00c0
#define NGX_HTTP_AI_GUARD_JWT_HMAC_ALGS      0x0700

/* the default for ai_guard_jwt_algorithms */
#define NGX_HTTP_AI_GUARD_JWT_DEFAULT_ALGS                                    \
    (NGX_HTTP_AI_GUARD_JWT_RS256|NGX_HTTP_AI_GUARD_JWT_ES256)


typedef struct ngx_http_ai_guard_jwks_s  ngx_http_ai_guard_jwks_t;


/*
 * Parses a JWKS document ({"keys": [...]}, or one bare JWK).  RSA keys
 * (n, e; at least 2048 bits), EC keys on P-256 and P-384 (crv, x, y) and
 * oct keys (k; at least 32 bytes).  kid, alg, use and key_ops are
 * optional; keys whose use is not "sig", whose key_ops lack "verify",
 * whose alg is not a signature alg this module knows, or whose kty/crv it
 * does not support are skipped (counted by _jwks_skipped()).  A key with
 * a bad member is an error naming its index in "keys", as is a document
 * left with no usable key.  On error returns NULL with a NUL-terminated
 * message in err.
 */
ngx_http_ai_guard_jwks_t *ngx_http_ai_guard_jwks_parse(const u_char *p,
    size_t len, char *err, size_t errlen);
void ngx_http_ai_guard_jwks_free(ngx_http_ai_guard_jwks_t *jwks);

/* usable keys, skipped keys */
size_t ngx_http_ai_guard_jwks_count(const ngx_http_ai_guard_jwks_t *jwks);
size_t ngx_http_ai_guard_jwks_skipped(const ngx_http_ai_guard_jwks_t *jwks);

/* 1 if the set has an oct (HMAC) key: HS* may be allowed only then */
unsigned ngx_http_ai_guard_jwks_has_oct(const ngx_http_ai_guard_jwks_t *jwks);

/* the union of the algs some key of the set can verify */
unsigned ngx_http_ai_guard_jwks_algs(const ngx_http_ai_guard_jwks_t *jwks);

/* "RS256" -> NGX_HTTP_AI_GUARD_JWT_RS256; unknown names and "none": 0 */
unsigned ngx_http_ai_guard_jwt_alg(const u_char *name, size_t len);
const char *ngx_http_ai_guard_jwt_alg_name(unsigned alg);

/*
 * Verifies the JWS signature sig over data ("header.payload" as the
 * token has them) with the keys of the set that may: a key of a kty that
 * fits "alg" (RSA: RS* and PS*, EC: ES* of its own curve, oct: HS*),
 * pinned to "alg" when its JWK has one, and, when kid is not NULL, whose
 * kid is that.  Returns 1 when a key verifies it; 0 when none does, or
 * -1 when OpenSSL failed to run, with *reason (a static string) saying
 * why.
 */
int ngx_http_ai_guard_jwks_verify(const ngx_http_ai_guard_jwks_t *jwks,
    unsigned alg, const ngx_http_ai_guard_jwt_str_t *kid, const u_char *data,
    size_t dlen, const u_char *sig, size_t slen, const char **reason);


#endif /* _NGX_HTTP_AI_GUARD_JWKS_H_INCLUDED_ */
