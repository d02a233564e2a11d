
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "tap.h"
#include "ngx_http_ai_guard_jwt.h"
#include "data/jwt/fixtures.h"


/* every fixture is valid from 1700000000 to 1700003600 */
#define NOW      1700001000
#define ISS      "https://abcdefghijklmnop.supabase.co/auth/v1"
#define SUB      "6f1c2a4e-2b7d-4f7a-9c1e-0a5b3c2d1e0f"
#define INVALID  NGX_HTTP_AI_GUARD_JWT_INVALID
#define ALL_ALGS                                                             \
    (NGX_HTTP_AI_GUARD_JWT_RSA_ALGS|NGX_HTTP_AI_GUARD_JWT_EC_ALGS            \
     |NGX_HTTP_AI_GUARD_JWT_HMAC_ALGS)


static ngx_http_ai_guard_jwks_t        *all, *rot, *rsa;
static ngx_http_ai_guard_jwt_claims_t   cl;
static ngx_http_ai_guard_jwt_conf_t     conf;
static char                             minted[4096];


static void
set_str(ngx_http_ai_guard_jwt_str_t *s, const char *v)
{
    s->data = (const u_char *) v;
    s->len = v ? strlen(v) : 0;
}


static void
reset_conf(void)
{
    memset(&conf, 0, sizeof(conf));
    conf.algs = ALL_ALGS;
    conf.leeway = 30;
    set_str(&conf.issuer, ISS);
    set_str(&conf.audience, "authenticated");
}


/* the scratch buffer is exactly as long as the token, as documented */

static u_char  keep[8192];


static void
move(ngx_http_ai_guard_jwt_str_t *s, const u_char *scratch)
{
    if (s->data) {
        s->data = keep + (s->data - scratch);
    }
}


static int
verify_at(const ngx_http_ai_guard_jwks_t *jwks, const char *tok, time_t now)
{
    int       rc;
    size_t    len;
    u_char   *scratch;
    unsigned  i;

    len = strlen(tok);
    scratch = malloc(len ? len : 1);
    rc = ngx_http_ai_guard_jwt_verify(jwks, &conf, (const u_char *) tok, len,
                                      now, scratch, len, &cl);

    /* the claims point into scratch: keep a copy for the checks */

    if (len <= sizeof(keep)) {
        memcpy(keep, scratch, len);
        move(&cl.tenant, scratch);
        move(&cl.tier, scratch);
        move(&cl.key_id, scratch);
        move(&cl.sub, scratch);

        for (i = 0; i < cl.nmodels; i++) {
            move(&cl.models[i], scratch);
        }
    }

    free(scratch);

    return rc;
}


static int
verify(const ngx_http_ai_guard_jwks_t *jwks, const char *tok)
{
    return verify_at(jwks, tok, NOW);
}


static void
b64url(char *out, const u_char *in, size_t len)
{
    int     n;
    char   *p;

    n = EVP_EncodeBlock((u_char *) out, in, (int) len);
    out[n] = '\0';

    for (p = out; *p; p++) {
        if (*p == '+') {
            *p = '-';
        } else if (*p == '/') {
            *p = '_';
        } else if (*p == '=') {
            *p = '\0';
            break;
        }
    }
}


/* an HMAC token over exact header and payload text, with hs1's secret */

static const char *
mint_md(const char *md, const char *header, const char *payload)
{
    size_t  n, maclen;
    u_char  mac[64];

    b64url(minted, (const u_char *) header, strlen(header));
    n = strlen(minted);
    minted[n++] = '.';
    b64url(minted + n, (const u_char *) payload, strlen(payload));
    n = strlen(minted);

    EVP_Q_mac(NULL, "HMAC", NULL, md, NULL, fx_hs_secret,
              strlen(fx_hs_secret), (u_char *) minted, n, mac, sizeof(mac),
              &maclen);

    minted[n++] = '.';
    b64url(minted + n, mac, maclen);

    return minted;
}


/* an HS256 token */

static const char *
mint(const char *header, const char *payload)
{
    return mint_md("SHA256", header, payload);
}


static ngx_http_ai_guard_jwks_t *
jwks_of(const char *text, char *err)
{
    return ngx_http_ai_guard_jwks_parse((const u_char *) text, strlen(text),
                                        err, 256);
}


static void
load_keys(void)
{
    char  err[256];

    all = jwks_of(fx_jwks_json, err);
    ok(all != NULL, "jwks.json parses (%s)", err);

    rot = jwks_of(fx_jwks_rotation_json, err);
    ok(rot != NULL, "jwks-rotation.json parses (%s)", err);

    rsa = jwks_of(fx_jwks_rsa_json, err);
    ok(rsa != NULL, "jwks-rsa.json parses (%s)", err);
}


static void
test_helpers(void)
{
#define PATH(s)                                                              \
    ngx_http_ai_guard_jwt_claim_path_valid((const u_char *) s, strlen(s))

    is_int(PATH("sub"), 1, "path sub");
    is_int(PATH("app_metadata.tenant"), 1, "path app_metadata.tenant");
    is_int(PATH("a.b.c.d.e.f.g.h"), 1, "path of 8 parts");
    is_int(PATH("a.b.c.d.e.f.g.h.i"), 0, "path of 9 parts");
    is_int(PATH(""), 0, "empty path");
    is_int(PATH("a..b"), 0, "path a..b");
    is_int(PATH(".a"), 0, "path .a");
    is_int(PATH("a."), 0, "path a.");

#undef PATH

    is_str(ngx_http_ai_guard_jwt_code(NGX_HTTP_AI_GUARD_JWT_INVALID),
           strlen(ngx_http_ai_guard_jwt_code(NGX_HTTP_AI_GUARD_JWT_INVALID)),
           "invalid_token", "code invalid_token");
    ok(strcmp(ngx_http_ai_guard_jwt_code(NGX_HTTP_AI_GUARD_JWT_EXPIRED),
              "token_expired") == 0, "code token_expired");
    ok(strcmp(ngx_http_ai_guard_jwt_code(
                  NGX_HTTP_AI_GUARD_JWT_NOT_YET_VALID),
              "token_not_yet_valid") == 0, "code token_not_yet_valid");
    ok(strcmp(ngx_http_ai_guard_jwt_code(NGX_HTTP_AI_GUARD_JWT_BAD_ISSUER),
              "invalid_issuer") == 0, "code invalid_issuer");
    ok(strcmp(ngx_http_ai_guard_jwt_code(NGX_HTTP_AI_GUARD_JWT_BAD_AUDIENCE),
              "invalid_audience") == 0, "code invalid_audience");
    ok(strstr(ngx_http_ai_guard_jwt_message(NGX_HTTP_AI_GUARD_JWT_EXPIRED),
              "expired") != NULL, "message for token_expired");
}


static void
test_valid(void)
{
    reset_conf();

    is_int(verify(all, fx_rs256_jwt), 0, "RS256 verifies");
    is_str(cl.sub.data, cl.sub.len, SUB, "RS256: sub");
    is_str(cl.tenant.data, cl.tenant.len, SUB, "RS256: tenant defaults to sub");
    is_str(cl.key_id.data, cl.key_id.len, SUB, "RS256: key_id defaults to sub");
    is_int(cl.tier.len, 0, "RS256: no tier claim configured");
    is_int(cl.exp, 1700003600, "RS256: exp");
    is_int(cl.iat, 1700000000, "RS256: iat");
    ok(cl.has_iat && !cl.has_nbf, "RS256: iat, no nbf");
    is_int(cl.alg, NGX_HTTP_AI_GUARD_JWT_RS256, "RS256: alg reported");

    is_int(verify(all, fx_rs256_nokid_jwt), 0, "RS256 without kid verifies");
    is_int(verify(all, fx_rs384_jwt), 0, "RS384 verifies");
    is_int(verify(all, fx_ps256_jwt), 0, "PS256 verifies");
    is_int(verify(all, fx_es256_jwt), 0, "ES256 verifies");
    is_int(cl.alg, NGX_HTTP_AI_GUARD_JWT_ES256, "ES256: alg reported");
    is_int(verify(all, fx_es256_nokid_jwt), 0, "ES256 without kid verifies");
    is_int(verify(all, fx_es384_jwt), 0, "ES384 verifies");
    is_int(verify(all, fx_hs256_jwt), 0, "HS256 verifies with the oct key");
    is_int(verify(all, fx_hs256_nokid_jwt), 0, "HS256 without kid verifies");

    conf.algs = NGX_HTTP_AI_GUARD_JWT_DEFAULT_ALGS;
    is_int(verify(all, fx_rs256_jwt), 0, "default algs: RS256 ok");
    is_int(verify(all, fx_es256_jwt), 0, "default algs: ES256 ok");
    is_int(verify(all, fx_rs384_jwt), INVALID, "default algs: RS384 refused");
    ok(cl.reason != NULL && strstr(cl.reason, "not allowed") != NULL,
       "reason: %s", cl.reason ? cl.reason : "(none)");
    is_int(verify(all, fx_hs256_jwt), INVALID, "default algs: HS256 refused");
    reset_conf();
}


static void
test_keys(void)
{
    reset_conf();

    is_int(verify(rot, fx_rs256_jwt), 0, "rotation: old key's token ok");
    is_int(verify(rot, fx_rs256_rsa2_jwt), 0, "rotation: new key's token ok");
    is_int(verify(rot, fx_rs256_rsa2_nokid_jwt), 0,
           "rotation: new key's token without kid ok (each key tried)");
    is_int(verify(all, fx_rs256_rsa2_jwt), INVALID,
           "key removed from the set: its token refused");
    ok(strstr(cl.reason, "unknown") != NULL, "reason: %s", cl.reason);
    is_int(verify(all, fx_rs256_rsa2_nokid_jwt), INVALID,
           "key removed, no kid: refused");
    ok(strstr(cl.reason, "bad signature") != NULL, "reason: %s", cl.reason);

    is_int(verify(all, fx_rs256_wrongkid_jwt), INVALID, "wrong kid refused");
    ok(strstr(cl.reason, "unknown \"kid\"") != NULL, "reason: %s", cl.reason);
    is_int(verify(rot, fx_rs256_kidswap_jwt), INVALID,
           "rsa2's signature under rsa1's kid refused");
    is_int(verify(all, fx_tampered_jwt), INVALID, "tampered payload refused");
    ok(strstr(cl.reason, "bad signature") != NULL, "reason: %s", cl.reason);
    is_int(verify(all, fx_es256_der_jwt), INVALID,
           "ES256 with a DER signature refused");
    is_int(verify(all, fx_es256_as384_jwt), INVALID,
           "P-256 signature as ES384 under the P-384 kid refused");

    /* algorithm confusion: the RSA public key as an HMAC secret */
    is_int(verify(all, fx_hs256_rsapem_jwt), INVALID,
           "HS256 keyed with the RSA public PEM (kid rsa1) refused");
    ok(strstr(cl.reason, "no key of the token's") != NULL,
       "reason: %s", cl.reason);
    is_int(verify(all, fx_hs256_rsapem_nokid_jwt), INVALID,
           "HS256 keyed with the RSA public PEM (no kid) refused");
    is_int(verify(rsa, fx_hs256_rsapem_nokid_jwt), INVALID,
           "same against an RSA-only set refused");
    is_int(verify(rsa, fx_hs256_rsapem_jwt), INVALID,
           "same with kid against an RSA-only set refused");
    is_int(verify(all, fx_hs256_rsajwk_jwt), INVALID,
           "HS256 keyed with the RSA public JWK refused");

    /* alg none, whatever the allowlist says */
    conf.algs = ~0u;
    is_int(verify(all, fx_alg_none_jwt), INVALID, "alg none refused");
    ok(strstr(cl.reason, "none") != NULL, "reason: %s", cl.reason);
    is_int(verify(all, fx_alg_none_kid_jwt), INVALID,
           "alg none with a kid refused");
    is_int(verify(all, fx_alg_None_jwt), INVALID, "alg None refused");
    is_int(verify(all, fx_crit_jwt), INVALID, "crit header refused");
    ok(strstr(cl.reason, "crit") != NULL, "reason: %s", cl.reason);
    reset_conf();
}


static void
test_time(void)
{
    reset_conf();

    is_int(verify(all, fx_expired_jwt), NGX_HTTP_AI_GUARD_JWT_EXPIRED,
           "expired token");
    conf.leeway = 600;
    is_int(verify(all, fx_expired_jwt), 0, "expired within a 600s leeway");
    conf.leeway = 30;

    is_int(verify_at(all, fx_rs256_jwt, 1700003629), 0,
           "exp + leeway - 1: valid");
    is_int(verify_at(all, fx_rs256_jwt, 1700003630),
           NGX_HTTP_AI_GUARD_JWT_EXPIRED, "exp + leeway: expired");
    conf.leeway = 0;
    is_int(verify_at(all, fx_rs256_jwt, 1700003600),
           NGX_HTTP_AI_GUARD_JWT_EXPIRED, "exp, no leeway: expired");
    conf.leeway = 30;

    is_int(verify(all, fx_nbf_future_jwt), NGX_HTTP_AI_GUARD_JWT_NOT_YET_VALID,
           "nbf in the future");
    is_int(verify_at(all, fx_nbf_future_jwt, 1700001970), 0,
           "nbf within leeway: valid");
    ok(cl.has_nbf && cl.nbf == 1700002000, "nbf reported");
    is_int(verify(all, fx_iat_future_jwt), NGX_HTTP_AI_GUARD_JWT_NOT_YET_VALID,
           "iat in the future");

    is_int(verify(all, fx_no_exp_jwt), INVALID, "no exp: invalid_token");
    ok(strstr(cl.reason, "exp") != NULL, "reason: %s", cl.reason);
    is_int(verify(all, fx_exp_string_jwt), INVALID, "exp as a string refused");
    is_int(verify(all, fx_exp_float_jwt), 0, "exp as a float accepted");
    is_int(cl.exp, 1700003600, "float exp value");
    is_int(verify(all, fx_dup_exp_jwt), INVALID, "duplicate exp refused");
    ok(strstr(cl.reason, "duplicate") != NULL, "reason: %s", cl.reason);

    set_str(&conf.issuer, NULL);
    set_str(&conf.audience, NULL);
    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"exp\":99999999999999999999}")),
           INVALID, "exp beyond int64 refused");
    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"exp\":9223372036854775807}")),
           0, "exp INT64_MAX accepted");
    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"exp\":1e300}")),
           INVALID, "exp 1e300 refused");
    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"exp\":-1}")),
           NGX_HTTP_AI_GUARD_JWT_EXPIRED, "exp -1: expired");
}


static void
test_iss_aud(void)
{
    reset_conf();

    is_int(verify(all, fx_wrong_iss_jwt), NGX_HTTP_AI_GUARD_JWT_BAD_ISSUER,
           "wrong iss");
    is_int(verify(all, fx_wrong_aud_jwt), NGX_HTTP_AI_GUARD_JWT_BAD_AUDIENCE,
           "wrong aud");
    is_int(verify(all, fx_aud_array_jwt), 0, "aud array containing ours");
    is_int(verify(all, fx_aud_array_wrong_jwt),
           NGX_HTTP_AI_GUARD_JWT_BAD_AUDIENCE, "aud array without ours");

    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"exp\":1700003600,\"aud\":\"authenticated\"}")),
           NGX_HTTP_AI_GUARD_JWT_BAD_ISSUER, "missing iss when required");
    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"exp\":1700003600,\"iss\":\"" ISS "\"}")),
           NGX_HTTP_AI_GUARD_JWT_BAD_AUDIENCE, "missing aud when required");
    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"exp\":1700003600,\"iss\":[\"" ISS "\"],"
                            "\"aud\":\"authenticated\"}")),
           NGX_HTTP_AI_GUARD_JWT_BAD_ISSUER, "iss as an array refused");
    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"exp\":1700003600,\"iss\":\"" ISS "/\","
                            "\"aud\":\"authenticated\"}")),
           NGX_HTTP_AI_GUARD_JWT_BAD_ISSUER, "iss with a trailing slash");

    set_str(&conf.issuer, NULL);
    set_str(&conf.audience, NULL);
    is_int(verify(all, fx_wrong_iss_jwt), 0, "iss unchecked when unset");
    is_int(verify(all, fx_wrong_aud_jwt), 0, "aud unchecked when unset");
    reset_conf();
}


static void
test_claims(void)
{
    unsigned    i;
    char        payload[1024];
    size_t      n;

    reset_conf();
    set_str(&conf.tenant, "app_metadata.tenant");
    set_str(&conf.tier, "app_metadata.tier");
    set_str(&conf.models, "app_metadata.models");

    is_int(verify(all, fx_supabase_jwt), 0, "Supabase ES256 token verifies");
    is_str(cl.tenant.data, cl.tenant.len, "acme",
           "Supabase: tenant from app_metadata (not user_metadata)");
    is_str(cl.tier.data, cl.tier.len, "pro", "Supabase: tier");
    is_str(cl.key_id.data, cl.key_id.len, SUB, "Supabase: key_id is sub");
    is_int(cl.nmodels, 2, "Supabase: 2 models");
    if (cl.nmodels == 2) {
        is_str(cl.models[0].data, cl.models[0].len, "gpt-4o", "model 0");
        is_str(cl.models[1].data, cl.models[1].len, "gpt-4o-mini*",
               "model 1");
    }

    is_int(verify(all, fx_supabase_hs256_jwt), 0,
           "Supabase HS256 (legacy secret) token verifies");
    is_str(cl.tier.data, cl.tier.len, "free", "Supabase HS256: tier");
    is_int(cl.nmodels, 0, "Supabase HS256: no models claim");

    set_str(&conf.tenant, "user_metadata.tenant");
    is_int(verify(all, fx_supabase_jwt), 0, "tenant from another path");
    is_str(cl.tenant.data, cl.tenant.len, "forged",
           "the path is what the operator configured");

    reset_conf();
    set_str(&conf.issuer, NULL);
    set_str(&conf.audience, NULL);
    set_str(&conf.tenant, "tenant");
    set_str(&conf.tier, "org.plan.name");
    set_str(&conf.key_id, "org.id");
    set_str(&conf.models, "org.models");

    is_int(verify(all, fx_claims_misc_jwt), 0, "claims_misc verifies");
    is_str(cl.tenant.data, cl.tenant.len, "acme\\/x",
           "escaped tenant decoded in place");
    is_str(cl.tier.data, cl.tier.len, "team", "3-level path, escaped");
    is_str(cl.key_id.data, cl.key_id.len, "42",
           "integer claim as its JSON text");
    is_str(cl.sub.data, cl.sub.len, "u1", "sub");
    is_int(cl.nmodels, 3, "models from a separated string");
    if (cl.nmodels == 3) {
        is_str(cl.models[0].data, cl.models[0].len, "gpt-4o", "model 0");
        is_str(cl.models[1].data, cl.models[1].len, "o1-mini", "model 1");
        is_str(cl.models[2].data, cl.models[2].len, "claude-3", "model 2");
    }

    set_str(&conf.key_id, "arr.org.id");
    is_int(verify(all, fx_claims_misc_jwt), 0, "path through an array");
    is_int(cl.key_id.len, 0, "arrays are not walked");

    set_str(&conf.tenant, "tenant");
    set_str(&conf.tier, "tier");
    set_str(&conf.key_id, "kid");
    set_str(&conf.models, "models");
    is_int(verify(all, fx_claims_types_jwt), 0, "claims_types verifies");
    is_int(cl.tenant.len, 0, "object tenant: absent");
    is_int(cl.tier.len, 0, "boolean tier: absent");
    is_int(cl.key_id.len, 0, "float key_id: absent");
    is_int(cl.nmodels, 2, "models: strings kept, others skipped");
    if (cl.nmodels == 2) {
        is_str(cl.models[0].data, cl.models[0].len, "a", "model a");
        is_str(cl.models[1].data, cl.models[1].len, "c", "model c");
    }

    is_int(verify(all, fx_claims_ctrl_jwt), INVALID,
           "control character in sub refused");

    n = snprintf(payload, sizeof(payload), "{\"exp\":1700003600,\"models\":[");
    for (i = 0; i < 20; i++) {
        n += snprintf(payload + n, sizeof(payload) - n, "%s\"m%u\"",
                      i ? "," : "", i);
    }
    snprintf(payload + n, sizeof(payload) - n, "]}");
    is_int(verify(all, mint("{\"alg\":\"HS256\"}", payload)), 0,
           "20 models");
    is_int(cl.nmodels, NGX_HTTP_AI_GUARD_JWT_MAX_MODELS,
           "models capped at 16");
    is_str(cl.models[15].data, cl.models[15].len, "m15", "16th model");

    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"exp\":1700003600,\"tenant\":\"a\","
                            "\"tenant\":\"b\"}")),
           INVALID, "duplicate tenant refused");

    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"exp\":1700003600,\"tenant\":\"\\u00e9t\\u00e9"
                            "\\ud83d\\ude00\"}")),
           0, "unicode escapes in tenant");
    is_str(cl.tenant.data, cl.tenant.len, "\xc3\xa9t\xc3\xa9\xf0\x9f\x98\x80",
           "unicode tenant decoded to UTF-8");

    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"exp\":1700003600,\"tenant\":-7}")),
           0, "negative integer tenant");
    is_str(cl.tenant.data, cl.tenant.len, "-7", "tenant -7");

    set_str(&conf.tenant, "a.b");
    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"a\":{\"x\":{\"b\":\"no\"},\"b\":\"yes\","
                            "\"c\":{}},\"exp\":1700003600}")),
           0, "nested siblings");
    is_str(cl.tenant.data, cl.tenant.len, "yes", "a.b, not a.x.b");
    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"a\":{\"x\":{\"b\":\"no\"}},\"b\":\"no\","
                            "\"exp\":1700003600}")),
           0, "b outside a");
    is_int(cl.tenant.len, 0, "a.b absent");
    is_int(verify(all, mint("{\"alg\":\"HS256\"}",
                            "{\"a\":{\"b\":\"x\"},\"a\":{\"b\":\"y\"},"
                            "\"exp\":1700003600}")),
           INVALID, "a.b given twice refused");
    reset_conf();
}


static void
test_malformed(void)
{
    int          rc;
    char         t[4096], *p;
    size_t       n;
    u_char       small[8];
    const char  *dot;

    reset_conf();

#define BAD(tok, name)                                                       \
    is_int(verify(all, tok), INVALID, "%s (%s)", name,                       \
           cl.reason ? cl.reason : "")

    BAD("", "empty token");
    BAD("abc", "one part");
    BAD("a.b", "two parts");
    BAD("a.b.c.d", "four parts");
    BAD("a.b.c.d.e", "five parts (JWE)");
    BAD("..", "empty parts");

    strcpy(t, fx_rs256_jwt);
    strcat(t, "=");
    BAD(t, "padded signature");

    strcpy(t, fx_rs256_jwt);
    t[strlen(t) - 1] = (t[strlen(t) - 1] == 'B') ? 'C' : 'B';
    BAD(t, "signature with non-zero trailing bits");

    strcpy(t, fx_rs256_jwt);
    dot = strchr(t, '.');
    t[dot - t + 1] = '+';
    BAD(t, "'+' in the payload");

    strcpy(t, fx_rs256_jwt);
    t[0] = '/';
    BAD(t, "'/' in the header");

    strcpy(t, fx_rs256_jwt);
    p = strchr(t, '.');
    memmove(p + 2, p, strlen(p) + 1);
    p[0] = '=';
    p[1] = '=';
    BAD(t, "padded header");

    strcpy(t, fx_rs256_jwt);
    p = strrchr(t, '.');
    p[1] = '\0';
    BAD(t, "empty signature");

    strcpy(t, fx_rs256_jwt);
    p = strchr(t, '.');
    n = strlen(t);
    t[n] = ' ';
    t[n + 1] = '\0';
    BAD(t, "trailing space");

    BAD(mint("[\"alg\",\"HS256\"]", "{\"exp\":1700003600}"),
        "header is an array");
    BAD(mint("\"HS256\"", "{\"exp\":1700003600}"), "header is a string");
    BAD(mint("{\"alg\":\"HS256\"", "{\"exp\":1700003600}"),
        "header is truncated JSON");
    BAD(mint("{\"alg\":\"HS256\"} {}", "{\"exp\":1700003600}"),
        "header with trailing garbage");
    BAD(mint("{\"typ\":\"JWT\"}", "{\"exp\":1700003600}"),
        "header without alg");
    BAD(mint("{\"alg\":256}", "{\"exp\":1700003600}"), "numeric alg");
    BAD(mint("{\"alg\":\"HS256\",\"alg\":\"HS256\"}", "{\"exp\":1700003600}"),
        "duplicate alg");
    BAD(mint("{\"alg\":\"HS256\",\"kid\":1}", "{\"exp\":1700003600}"),
        "numeric kid");
    BAD(mint("{\"alg\":\"HS256\"}", "[]"), "payload is an array");
    BAD(mint("{\"alg\":\"HS256\"}", ""), "empty payload");
    BAD(mint("{\"alg\":\"HS256\"}", "{\"exp\":1700003600} x"),
        "payload with trailing garbage");
    BAD(mint("{\"alg\":\"HS256\"}", "{\"exp\":1700003600,\"s\":\"\xff\"}"),
        "payload with invalid UTF-8");
    BAD(fx_not_object_jwt, "payload not an object");
    BAD(fx_payload_badjson_jwt, "payload not JSON");

    /* deep nesting is refused, not a stack problem */
    strcpy(t, "{\"exp\":1700003600,\"a\":");
    for (n = 0; n < 100; n++) {
        strcat(t, "[");
    }
    for (n = 0; n < 100; n++) {
        strcat(t, "]");
    }
    strcat(t, "}");
    BAD(mint("{\"alg\":\"HS256\"}", t), "nested 100 deep");

    set_str(&conf.issuer, NULL);
    set_str(&conf.audience, NULL);
    is_int(verify(all, mint("{\"alg\":\"HS256\",\"typ\":\"at+jwt\","
                            "\"jku\":\"https://evil.test/jwks\","
                            "\"x\":{\"alg\":\"none\"}}",
                            "{\"exp\":1700003600,\"x\":[{\"exp\":1}]}")),
           0, "unknown header members and nested exp ignored");
    is_int(cl.exp, 1700003600, "top-level exp used");

#undef BAD

    rc = ngx_http_ai_guard_jwt_verify(all, &conf,
                                      (const u_char *) fx_rs256_jwt,
                                      strlen(fx_rs256_jwt), NOW, small,
                                      sizeof(small), &cl);
    is_int(rc, NGX_HTTP_AI_GUARD_JWT_ERROR, "scratch too small: internal");
}


/*
 * Every algorithm: a valid token verifies, and the same token with its
 * signature cut to 3 bytes (an HS256 forgery in 2^24 tries, were only
 * the bytes sent compared), 3 or 303 bytes longer (past any MAC's
 * buffer) or empty is invalid.
 */

static void
test_signature_lengths(void)
{
    char                       t[4096], jwks[4096], err[256], *p;
    size_t                     i, cut;
    ngx_http_ai_guard_jwks_t  *anyhs;

    static const char  payload[] =
        "{\"iss\":\"" ISS "\",\"aud\":\"authenticated\",\"sub\":\"" SUB "\","
        "\"iat\":1700000000,\"exp\":1700003600}";

    struct {
        const char  *name;
        const char  *token;
    } toks[] = {
        { "RS256", fx_rs256_jwt }, { "RS384", fx_rs384_jwt },
        { "RS512", fx_rs512_jwt }, { "PS256", fx_ps256_jwt },
        { "PS384", fx_ps384_jwt }, { "PS512", fx_ps512_jwt },
        { "ES256", fx_es256_jwt }, { "ES384", fx_es384_jwt },
        { "HS256", NULL }, { "HS384", NULL }, { "HS512", NULL }
    };

    reset_conf();

    /* jwks.json with its oct key for every HS algorithm, not HS256 alone */

    strcpy(jwks, fx_jwks_json);
    p = strstr(jwks, "\"alg\":\"HS256\",");
    ok(p != NULL, "jwks.json pins its oct key to HS256");

    if (p == NULL) {
        return;
    }

    memmove(p, p + 14, strlen(p + 14) + 1);
    anyhs = jwks_of(jwks, err);
    ok(anyhs != NULL, "the oct key for any HS algorithm (%s)", err);

    if (anyhs == NULL) {
        return;
    }

    for (i = 0; i < sizeof(toks) / sizeof(toks[0]); i++) {

        if (toks[i].token) {
            strcpy(t, toks[i].token);

        } else {
            snprintf(err, sizeof(err), "{\"alg\":\"%s\",\"kid\":\"hs1\"}",
                     toks[i].name);
            strcpy(t, mint_md(toks[i].name[2] == '2' ? "SHA256"
                              : toks[i].name[2] == '3' ? "SHA384" : "SHA512",
                              err, payload));
        }

        is_int(verify(anyhs, t), 0, "%s verifies", toks[i].name);
        is_int(cl.alg, ngx_http_ai_guard_jwt_alg((u_char *) toks[i].name, 5),
               "%s: its alg", toks[i].name);

        cut = strrchr(t, '.') - t + 1;

        strcat(t, "AAAA");
        is_int(verify(anyhs, t), INVALID, "%s: 3 bytes too long (%s)",
               toks[i].name, cl.reason ? cl.reason : "");

        p = t + strlen(t);
        memset(p, 'A', 400);
        p[400] = '\0';
        is_int(verify(anyhs, t), INVALID, "%s: 303 bytes too long (%s)",
               toks[i].name, cl.reason ? cl.reason : "");

        t[cut + 4] = '\0';
        is_int(verify(anyhs, t), INVALID, "%s: cut to 3 bytes (%s)",
               toks[i].name, cl.reason ? cl.reason : "");

        t[cut] = '\0';
        is_int(verify(anyhs, t), INVALID, "%s: empty (%s)", toks[i].name,
               cl.reason ? cl.reason : "");
    }

    ngx_http_ai_guard_jwks_free(anyhs);
}


int
main(void)
{
    load_keys();
    test_helpers();

    if (all && rot && rsa) {
        test_valid();
        test_keys();
        test_time();
        test_iss_aud();
        test_claims();
        test_malformed();
        test_signature_lengths();
    }

    ngx_http_ai_guard_jwks_free(all);
    ngx_http_ai_guard_jwks_free(rot);
    ngx_http_ai_guard_jwks_free(rsa);

    return done_testing();
}
