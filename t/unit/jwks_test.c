
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The JWKS parser (every kind of key, skipped keys, each error naming its
 * key), the alg names, and the signature check with the keys of a set:
 * kid selection, keys pinned to an alg, a bad signature.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "tap.h"
#include "ngx_http_ai_guard_jwks.h"
#include "data/jwt/fixtures.h"


static ngx_http_ai_guard_jwks_t  *all, *rot, *rsa;


static ngx_http_ai_guard_jwks_t *
jwks_of(const char *text, char *err)
{
    return ngx_http_ai_guard_jwks_parse((const u_char *) text, strlen(text),
                                        err, 256);
}


static void
test_jwks(void)
{
    char                       err[256];
    ngx_http_ai_guard_jwks_t  *j;

    all = jwks_of(fx_jwks_json, err);
    ok(all != NULL, "jwks.json parses (%s)", err);
    is_int(ngx_http_ai_guard_jwks_count(all), 4, "jwks.json: 4 keys");
    is_int(ngx_http_ai_guard_jwks_has_oct(all), 1, "jwks.json: has oct");
    is_int(ngx_http_ai_guard_jwks_algs(all),
           NGX_HTTP_AI_GUARD_JWT_RSA_ALGS|NGX_HTTP_AI_GUARD_JWT_EC_ALGS
           |NGX_HTTP_AI_GUARD_JWT_HS256,
           "jwks.json: algs (oct key pinned to HS256)");

    rot = jwks_of(fx_jwks_rotation_json, err);
    ok(rot != NULL, "jwks-rotation.json parses (%s)", err);
    is_int(ngx_http_ai_guard_jwks_count(rot), 2, "rotation: 2 keys");
    is_int(ngx_http_ai_guard_jwks_has_oct(rot), 0, "rotation: no oct");

    rsa = jwks_of(fx_jwks_rsa_json, err);
    ok(rsa != NULL, "jwks-rsa.json parses (%s)", err);

    j = jwks_of(fx_rsa1_jwk, err);
    ok(j != NULL, "a bare JWK parses as a set of one");
    is_int(ngx_http_ai_guard_jwks_count(j), 1, "bare JWK: 1 key");
    ngx_http_ai_guard_jwks_free(j);

    j = jwks_of("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"},"
                "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\","
                "\"e\":\"AQAB\"},"
                "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\","
                "\"y\":\"AA\"},"
                "{\"kty\":\"RSA\",\"alg\":\"RSA-OAEP\","
                "\"n\":\"A\",\"e\":\"A\"},"
                "{\"kty\":\"oct\",\"key_ops\":[\"encrypt\"],\"k\":\"AA\"},"
                "{\"kty\":\"oct\",\"key_ops\":[\"sign\",\"verify\"],"
                "\"k\":\"MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=\"}]}",
                err);
    ok(j != NULL, "unsupported and non-signing keys are skipped (%s)", err);
    is_int(ngx_http_ai_guard_jwks_count(j), 1, "skipping: 1 usable key");
    is_int(ngx_http_ai_guard_jwks_skipped(j), 5, "skipping: 5 skipped");
    is_int(ngx_http_ai_guard_jwks_algs(j), NGX_HTTP_AI_GUARD_JWT_HMAC_ALGS,
           "oct key without alg: HS256/384/512 (padded k tolerated)");
    ngx_http_ai_guard_jwks_free(j);

#define BAD(text, want, name)                                                \
    j = jwks_of(text, err);                                                  \
    ok(j == NULL && strstr(err, want) != NULL, "%s: \"%s\"", name, err);      \
    ngx_http_ai_guard_jwks_free(j)

    BAD("{\"keys\":[", "not valid JSON", "not JSON");
    BAD("[]", "not a JSON object", "array document");
    BAD("{\"kids\":[]}", "no \"keys\"", "no keys member");
    BAD("{\"keys\":{}}", "not an array", "keys not an array");
    BAD("{\"keys\":[]}", "no usable signing key", "empty set");
    BAD("{\"keys\":[{\"kty\":\"OKP\"}]}", "no usable signing key (1 skipped)",
        "only unsupported keys");
    BAD("{\"keys\":[{\"n\":\"AQAB\"}]}", "keys[0]: no \"kty\"", "kty missing");
    BAD("{\"keys\":[{\"kty\":\"OKP\"},{\"kty\":\"oct\",\"k\":\"AAAA\"}]}",
        "keys[1]: oct key shorter", "error names the key's index");
    BAD("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"},{\"kty\":\"RSA\","
        "\"e\":\"AQAB\"}]}", "keys[0]: oct key shorter", "short oct key");
    BAD("{\"keys\":[{\"kty\":\"RSA\",\"e\":\"AQAB\"}]}",
        "keys[0]: no \"n\"", "RSA without n");
    BAD("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AB+C\",\"e\":\"AQAB\"}]}",
        "keys[0]: \"n\" is not base64url", "RSA n with '+'");
    BAD("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"////\",\"e\":\"AQAB\"}]}",
        "not base64url", "RSA n in base64, not base64url");
    BAD("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"_____________________________"
        "__________________________________________________________________"
        "__________________________________________________________________"
        "_____________8\",\"e\":\"AQAB\"}]}", "shorter than 2048 bits",
        "1024-bit RSA key");
    BAD("{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"ES256\",\"n\":\"AQAB\","
        "\"e\":\"AQAB\"}]}", "keys[0]: \"alg\" ES256 does not fit kty RSA",
        "RSA key with alg ES256");
    BAD("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"alg\":\"ES384\","
        "\"x\":\"AA\",\"y\":\"AA\"}]}", "does not fit kty EC P-256",
        "P-256 key with alg ES384");
    BAD("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\","
        "\"y\":\"AAAA\"}]}", "must be 32 bytes", "short EC coordinates");
    BAD("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
        "\"x\":\"vdVJnaUogSNudhkZIBy2l1jFWGsnDBw9zsioD3OjYAw\","
        "\"y\":\"Agq5sR8fGsKxRl5k-bzrJ_2bJZNK17FwDFYHpgJvSe0\"}]}",
        "keys[0]: \"x\", \"y\" is not a point on P-256",
        "EC point off the curve");
    BAD("{\"keys\":[{\"kty\":\"oct\",\"kid\":7,\"k\":\"AA\"}]}",
        "\"kid\" is not a string", "numeric kid");
    BAD("{\"keys\":[{\"kty\":\"oct\",\"use\":1,\"k\":\"AA\"}]}",
        "\"use\" is not a string", "numeric use");
    BAD("{\"keys\":[{\"kty\":\"EC\",\"x\":\"AA\"}]}", "without \"crv\"",
        "EC without crv");

#undef BAD
}


static void
test_algs(void)
{
#define ALG(s)  ngx_http_ai_guard_jwt_alg((const u_char *) s, strlen(s))

    is_int(ALG("RS256"), NGX_HTTP_AI_GUARD_JWT_RS256, "alg RS256");
    is_int(ALG("PS256"), NGX_HTTP_AI_GUARD_JWT_PS256, "alg PS256");
    is_int(ALG("ES384"), NGX_HTTP_AI_GUARD_JWT_ES384, "alg ES384");
    is_int(ALG("HS512"), NGX_HTTP_AI_GUARD_JWT_HS512, "alg HS512");
    is_int(ALG("none"), 0, "alg none is never a bit");
    is_int(ALG("rs256"), 0, "alg names are case-sensitive");
    is_int(ALG("RS2560"), 0, "alg RS2560 unknown");
    ok(strcmp(ngx_http_ai_guard_jwt_alg_name(NGX_HTTP_AI_GUARD_JWT_ES256),
              "ES256") == 0, "alg name ES256");
    ok(ngx_http_ai_guard_jwt_alg_name(0) == NULL, "alg name of 0: NULL");

#undef ALG
}


/* HMAC-SHA256 with hs1's secret over "data", as a JWS signature */

static void
test_verify(void)
{
    int                          rc;
    u_char                       mac[64];
    size_t                       maclen;
    const char                  *data, *reason;
    ngx_http_ai_guard_jwt_str_t  kid;

    data = "eyJhbGciOiJIUzI1NiJ9.e30";

    EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, fx_hs_secret,
              strlen(fx_hs_secret), (const u_char *) data, strlen(data), mac,
              sizeof(mac), &maclen);

#define VERIFY(alg, k, sig, slen)                                            \
    reason = NULL;                                                           \
    rc = ngx_http_ai_guard_jwks_verify(all, alg, k, (const u_char *) data,   \
                                       strlen(data), sig, slen, &reason)

    kid.data = (const u_char *) "hs1";
    kid.len = 3;

    VERIFY(NGX_HTTP_AI_GUARD_JWT_HS256, &kid, mac, maclen);
    is_int(rc, 1, "HS256 with kid hs1 verifies");

    VERIFY(NGX_HTTP_AI_GUARD_JWT_HS256, NULL, mac, maclen);
    is_int(rc, 1, "HS256 without a kid: the oct key is tried");

    VERIFY(NGX_HTTP_AI_GUARD_JWT_HS256, NULL, mac, maclen - 1);
    is_int(rc, 0, "a short MAC does not verify");
    is_str(reason, reason ? strlen(reason) : 0, "bad signature",
           "reason: bad signature");

    mac[0] ^= 1;
    VERIFY(NGX_HTTP_AI_GUARD_JWT_HS256, &kid, mac, maclen);
    is_int(rc, 0, "a changed MAC does not verify");
    mac[0] ^= 1;

    VERIFY(NGX_HTTP_AI_GUARD_JWT_HS384, &kid, mac, maclen);
    is_int(rc, 0, "hs1 is pinned to HS256: not tried for HS384");
    is_str(reason, reason ? strlen(reason) : 0,
           "no key of the token's \"alg\"", "reason: no key of the alg");

    kid.data = (const u_char *) "rsa1";
    kid.len = 4;

    VERIFY(NGX_HTTP_AI_GUARD_JWT_HS256, &kid, mac, maclen);
    is_int(rc, 0, "an RSA key is never an HMAC secret");
    is_str(reason, reason ? strlen(reason) : 0,
           "no key of the token's \"alg\"", "reason: no key of the alg");

    kid.data = (const u_char *) "hs2";

    VERIFY(NGX_HTTP_AI_GUARD_JWT_HS256, &kid, mac, maclen);
    is_int(rc, 0, "an unknown kid");
    is_str(reason, reason ? strlen(reason) : 0, "unknown \"kid\"",
           "reason: unknown kid");

    kid.len = 0;

    VERIFY(NGX_HTTP_AI_GUARD_JWT_HS256, &kid, mac, maclen);
    is_int(rc, 0, "an empty kid matches no key");

    VERIFY(0, NULL, mac, maclen);
    is_int(rc, 0, "no alg");

    VERIFY(NGX_HTTP_AI_GUARD_JWT_ES256, NULL, mac, maclen);
    is_int(rc, 0, "an ES256 signature of the wrong length");
    is_str(reason, reason ? strlen(reason) : 0, "bad signature",
           "reason: bad signature");

#undef VERIFY
}


int
main(void)
{
    test_jwks();
    test_algs();

    if (all) {
        test_verify();
    }

    ngx_http_ai_guard_jwks_free(all);
    ngx_http_ai_guard_jwks_free(rot);
    ngx_http_ai_guard_jwks_free(rsa);

    return done_testing();
}
