
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_JWT_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_JWT_H_INCLUDED_


/*
 * JWT (JWS compact serialization) verification against a JWKS read from
 * disk at configuration time (ngx_http_ai_guard_jwks.h).  Pure: libc,
 * yajl and OpenSSL's EVP API; no nginx runtime, no pools, no logging, so
 * unit tests and fuzz/jwt.c reach all of it.
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

#include "ngx_http_ai_guard_jwt_json.h"
#include "ngx_http_ai_guard_jwks.h"


#define NGX_HTTP_AI_GUARD_JWT_OK              0
#define NGX_HTTP_AI_GUARD_JWT_INVALID        -1  /* invalid_token */
#define NGX_HTTP_AI_GUARD_JWT_EXPIRED        -2  /* token_expired */
#define NGX_HTTP_AI_GUARD_JWT_NOT_YET_VALID  -3  /* token_not_yet_valid */
#define NGX_HTTP_AI_GUARD_JWT_BAD_ISSUER     -4  /* invalid_issuer */
#define NGX_HTTP_AI_GUARD_JWT_BAD_AUDIENCE   -5  /* invalid_audience */
#define NGX_HTTP_AI_GUARD_JWT_ERROR          -6  /* internal: 500 */

#define NGX_HTTP_AI_GUARD_JWT_MAX_MODELS     16


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


#endif /* _NGX_HTTP_AI_GUARD_JWT_H_INCLUDED_ */
