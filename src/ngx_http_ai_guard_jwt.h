
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_JWT_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_JWT_H_INCLUDED_


/*
 * JWT (JWS compact serialization) verification against a JWKS read from
 * disk at configuration time.  Pure: libc, yajl and OpenSSL's EVP API; no
 * nginx runtime, no pools, no logging, so unit tests and fuzz/jwt.c reach
 * all of it.
 *
 * Configuration time: ngx_http_ai_guard_jwks_parse() turns the JWKS text
 * into keys (malloc), ngx_http_ai_guard_jwks_free() releases them.
 *
 * Request time: ngx_http_ai_guard_jwt_verify() checks one token.  It does
 * not malloc for its own data: the caller passes a scratch buffer at least
 * as long as the token, which receives the decoded header, signature and
 * payload; the claim spans returned point into it.  yajl works in an 8 KB
 * arena on the stack (about 10 KB of stack in all), OpenSSL allocates as
 * it likes; the OpenSSL error queue is left empty.
 *
 * Rules, in the order they are applied:
 *
 *  - the token is exactly three base64url parts; padding, characters
 *    outside the alphabet and non-zero trailing bits are rejected;
 *  - the header is a JSON object with a string "alg" naming a supported
 *    algorithm that is also in conf->algs ("none" never is); a "crit"
 *    member is rejected, as no extension is understood;
 *  - "kid" present: only keys with that kid are tried; absent: every key
 *    that may verify "alg" is tried.  Keys embedded in or pointed to by
 *    the header (jwk, jku, x5c, x5u) are never used.  A key may verify an
 *    alg only if its kty agrees (RSA: RS* and PS*, EC: ES* of its own
 *    curve, oct: HS*) and, when the JWK has "alg", only that alg: an RSA
 *    public key is never used as an HMAC secret;
 *  - the signature; only then the payload is decoded;
 *  - the payload is a JSON object; "exp" is REQUIRED (a token that never
 *    expires is invalid_token); exp, nbf and iat are numbers (fractions are
 *    rounded down), anything else there is invalid_token;
 *  - exp: expired when now - leeway >= exp;  nbf: not yet valid when
 *    nbf > now + leeway;  iat later than now + leeway: not yet valid;
 *  - conf->issuer set: "iss" must equal it byte for byte;
 *  - conf->audience set: "aud" is that string or an array containing it.
 *
 * Claims: a path is dotted and walks nested objects ("app_metadata.tenant",
 * as Supabase puts custom claims); arrays are not walked.  tenant, tier
 * and key_id take a string, or an integer whose JSON text is used as is
 * (tenant 42 gives "42"); any other type leaves the claim absent (len 0).
 * models takes an array of strings or one string separated by spaces or
 * commas; the first NGX_HTTP_AI_GUARD_JWT_MAX_MODELS are kept.  A claim
 * that the token carries twice (duplicate JSON member), or whose string
 * holds a control character, is invalid_token.
 */


#include <sys/types.h>
#include <stdint.h>
#include <stddef.h>
#include <time.h>


#define NGX_HTTP_AI_GUARD_JWT_OK              0
#define NGX_HTTP_AI_GUARD_JWT_INVALID        -1  /* invalid_token */
#define NGX_HTTP_AI_GUARD_JWT_EXPIRED        -2  /* token_expired */
#define NGX_HTTP_AI_GUARD_JWT_NOT_YET_VALID  -3  /* token_not_yet_valid */
#define NGX_HTTP_AI_GUARD_JWT_BAD_ISSUER     -4  /* invalid_issuer */
#define NGX_HTTP_AI_GUARD_JWT_BAD_AUDIENCE   -5  /* invalid_audience */
#define NGX_HTTP_AI_GUARD_JWT_ERROR          -6  /* internal: 500 */

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

/* the issue's default for ai_guard_jwt_algorithms */
#define NGX_HTTP_AI_GUARD_JWT_DEFAULT_ALGS                                    \
    (NGX_HTTP_AI_GUARD_JWT_RS256|NGX_HTTP_AI_GUARD_JWT_ES256)

#define NGX_HTTP_AI_GUARD_JWT_MAX_MODELS     16

/* components of a claim path: "a.b.c" has 3 */
#define NGX_HTTP_AI_GUARD_JWT_MAX_PATH       8


typedef struct ngx_http_ai_guard_jwks_s  ngx_http_ai_guard_jwks_t;


/* a byte span; data NULL (or len 0) means "not set" / "absent" */
typedef struct {
    const u_char                *data;
    size_t                       len;
} ngx_http_ai_guard_jwt_str_t;


typedef struct {
    unsigned                     algs;      /* NGX_HTTP_AI_GUARD_JWT_* */
    time_t                       leeway;    /* seconds, for exp/nbf/iat */
    ngx_http_ai_guard_jwt_str_t  issuer;    /* unset: iss not checked */
    ngx_http_ai_guard_jwt_str_t  audience;  /* unset: aud not checked */
    ngx_http_ai_guard_jwt_str_t  tenant;    /* claim path; unset: "sub" */
    ngx_http_ai_guard_jwt_str_t  tier;      /* unset: not extracted */
    ngx_http_ai_guard_jwt_str_t  key_id;    /* unset: "sub" */
    ngx_http_ai_guard_jwt_str_t  models;    /* unset: not extracted */
} ngx_http_ai_guard_jwt_conf_t;


/* spans point into the scratch buffer passed to _jwt_verify() */
typedef struct {
    ngx_http_ai_guard_jwt_str_t  tenant;
    ngx_http_ai_guard_jwt_str_t  tier;
    ngx_http_ai_guard_jwt_str_t  key_id;
    ngx_http_ai_guard_jwt_str_t  sub;
    ngx_http_ai_guard_jwt_str_t  models[NGX_HTTP_AI_GUARD_JWT_MAX_MODELS];
    unsigned                     nmodels;
    unsigned                     alg;       /* the alg that verified */
    unsigned                     has_nbf:1;
    unsigned                     has_iat:1;
    int64_t                      exp;
    int64_t                      nbf;
    int64_t                      iat;

    /*
     * Why the token failed, for the error log: a static string that never
     * holds bytes of the token.
     */
    const char                  *reason;
} ngx_http_ai_guard_jwt_claims_t;


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

/* 1 if path is a valid dotted claim path (non-empty parts, at most 8) */
int ngx_http_ai_guard_jwt_claim_path_valid(const u_char *path, size_t len);

/*
 * Verifies token[0..len) (no "Bearer " prefix) at time now.  scratch must
 * hold at least len bytes.  Returns NGX_HTTP_AI_GUARD_JWT_OK with out
 * filled, or an error code with out->reason set.
 */
int ngx_http_ai_guard_jwt_verify(const ngx_http_ai_guard_jwks_t *jwks,
    const ngx_http_ai_guard_jwt_conf_t *conf, const u_char *token,
    size_t len, time_t now, u_char *scratch, size_t scratch_len,
    ngx_http_ai_guard_jwt_claims_t *out);

/* "invalid_token", "token_expired", ... for the error contract's code */
const char *ngx_http_ai_guard_jwt_code(int rc);

/* a short message for the error body; never contains the token */
const char *ngx_http_ai_guard_jwt_message(int rc);

/*
 * Strict base64url (RFC 7515 section 2): no padding, no characters outside
 * the alphabet, no length of 4n+1, zero trailing bits.  out must hold
 * len * 3 / 4 bytes.  Returns the decoded length, or -1.
 */
ssize_t ngx_http_ai_guard_jwt_base64url_decode(u_char *out, const u_char *in,
    size_t len);


#endif /* _NGX_HTTP_AI_GUARD_JWT_H_INCLUDED_ */
