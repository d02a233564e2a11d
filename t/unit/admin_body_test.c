
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The admin API's bodies: each field read and bounded, what a request
 * may not set refused, a field twice, a NUL that would cut a string
 * short, and the secret's base62 with its rejected bytes.
 */

#include <stdlib.h>
#include <string.h>

#include "tap.h"
#include "ngx_http_ai_guard_admin_body.h"


#define ALL  (NGX_HTTP_AI_GUARD_ADMIN_ID | NGX_HTTP_AI_GUARD_ADMIN_TENANT    \
              | NGX_HTTP_AI_GUARD_ADMIN_TIER | NGX_HTTP_AI_GUARD_ADMIN_MODELS \
              | NGX_HTTP_AI_GUARD_ADMIN_EXPIRES                              \
              | NGX_HTTP_AI_GUARD_ADMIN_DISABLED                             \
              | NGX_HTTP_AI_GUARD_ADMIN_CUSTOMER                             \
              | NGX_HTTP_AI_GUARD_ADMIN_METADATA)


static ngx_http_ai_guard_admin_body_t  b;


static int
parse(const char *s, unsigned allowed)
{
    return ngx_http_ai_guard_admin_body_parse((const u_char *) s, strlen(s),
                                              allowed, &b);
}


static void
test_fields(void)
{
    is_int(parse("{\"id\":\"acme-1\",\"tenant\":\"acme\",\"tier\":\"pro\","
                 "\"models\":[\"gpt-4o*\",\"o1\"],"
                 "\"expires\":\"2027-01-01T00:00:00Z\",\"disabled\":true,"
                 "\"stripe_customer\":\"cus_1\","
                 "\"metadata\":{\"team\":\"search\",\"cc\":\"42\"}}", ALL),
           0, "every field");
    is_str(b.id.data, b.id.len, "acme-1", "id");
    is_str(b.tenant.data, b.tenant.len, "acme", "tenant");
    is_str(b.tier.data, b.tier.len, "pro", "tier");
    is_int(b.nmodels, 2, "two models");
    is_str(b.models[1].data, b.models[1].len, "o1", "the second model");
    is_int(b.expires, 1798761600LL, "expires");
    is_int(b.disabled, 1, "disabled");
    is_str(b.customer.data, b.customer.len, "cus_1", "customer");
    is_int(b.nmeta, 2, "two metadata members");
    is_str(b.meta[2].data, b.meta[2].len, "cc", "the second's name");
    is_str(b.meta[3].data, b.meta[3].len, "42", "and value, in order");
    is_int(b.has, ALL, "all present");

    is_int(parse("", ALL), 0, "an empty body is no fields");
    is_int(b.has, 0, "none present");

    is_int(parse("{\"expires\":null}", ALL), 0, "expires null");
    is_int(b.expires, 0, "never");

    is_int(parse("{\"grace_seconds\":2592000}",
                 NGX_HTTP_AI_GUARD_ADMIN_GRACE), 0, "30 days of grace");
    is_int(b.grace, 2592000, "the grace");
    is_int(parse("{\"models\":[]}", ALL), 0, "no models");
    is_int(b.has, NGX_HTTP_AI_GUARD_ADMIN_MODELS, "models present, empty");
    is_int(parse("{\"metadata\":{}}", ALL), 0, "no metadata");
    ok(b.has == NGX_HTTP_AI_GUARD_ADMIN_METADATA && b.nmeta == 0,
       "metadata present, empty: it clears");
}


static void
test_refused(void)
{
    size_t  i;
    char   *big;

    static const struct {
        const char  *body;
        const char  *param;
        const char  *what;
    } bad[] = {
        { "{", "", "not JSON" },
        { "[]", "", "an array" },
        { "{\"id\":\"a\",\"admin\":1}", "", "an unknown field" },
        { "{\"grace_seconds\":1}", "", "a field of another request" },
        { "{\"id\":\"a\",\"id\":\"b\"}", "id", "a field twice" },
        { "{\"id\":\"a b\"}", "id", "a space in an id" },
        { "{\"id\":\"\"}", "id", "an empty id" },
        { "{\"tenant\":\"\"}", "tenant", "an empty tenant" },
        { "{\"tenant\":\"a\\u0000b\"}", "", "a NUL" },
        { "{\"tenant\":\"a\\u0001b\"}", "tenant", "a control character" },
        { "{\"tenant\":\"a\\u007fb\"}", "tenant", "DEL" },
        { "{\"tenant\":1}", "tenant", "a number" },
        { "{\"models\":{}}", "models", "an object of models" },
        { "{\"models\":[null]}", "models", "a null model" },
        { "{\"expires\":\"2027-13-01T00:00:00Z\"}", "expires", "month 13" },
        { "{\"expires\":1798761600}", "expires", "a number of seconds" },
        { "{\"disabled\":1}", "disabled", "1 for true" },
        { "{\"metadata\":[]}", "metadata", "an array of metadata" },
        { "{\"metadata\":{\"a\":1}}", "metadata", "a number's metadata" },
        { "{\"metadata\":{\"a\":null}}", "metadata", "a null metadata" },
        { "{\"metadata\":{\"\":\"v\"}}", "metadata", "an empty name" },
        { "{\"metadata\":{\"a\":\"\"}}", "metadata", "an empty value" },
        { "{\"metadata\":{\"a\\u0001\":\"v\"}}", "metadata",
          "a control character in a name" },
        { "{\"metadata\":{\"a\":\"1\",\"b\":\"2\",\"a\":\"3\"}}",
          "metadata", "a name twice" },
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        is_int(parse(bad[i].body, ALL), -1, "%s: refused", bad[i].what);
        is_str(b.param, strlen(b.param), bad[i].param, "%s: param",
               bad[i].what);
        ok(b.error[0] != '\0', "%s: says why", bad[i].what);
    }

    is_int(parse("{\"grace_seconds\":2592001}",
                 NGX_HTTP_AI_GUARD_ADMIN_GRACE), -1, "grace past 30 days");
    is_int(parse("{\"grace_seconds\":-1}", NGX_HTTP_AI_GUARD_ADMIN_GRACE),
           -1, "a negative grace");
    is_int(parse("{\"grace_seconds\":1e3}", NGX_HTTP_AI_GUARD_ADMIN_GRACE),
           -1, "a grace as a double");

    /* 65 bytes of id, 129 of tenant, 17 models */

    is_int(parse("{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaaa\"}", ALL), -1, "an id of 65 bytes");
    is_int(parse("{\"id\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaaaaaaaaaa\"}", ALL), 0, "an id of 64 bytes");
    is_int(parse("{\"models\":[\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
                 "\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
                 "\"a\"]}", ALL), -1, "17 models");

    /* 16 metadata members at most, 128 bytes a name or a value */

    is_int(parse("{\"metadata\":{\"a\":\"1\",\"b\":\"1\",\"c\":\"1\","
                 "\"d\":\"1\",\"e\":\"1\",\"f\":\"1\",\"g\":\"1\","
                 "\"h\":\"1\",\"i\":\"1\",\"j\":\"1\",\"k\":\"1\","
                 "\"l\":\"1\",\"m\":\"1\",\"n\":\"1\",\"o\":\"1\","
                 "\"p\":\"1\"}}", ALL), 0, "16 metadata members");
    is_int(b.nmeta, 16, "all kept");
    is_int(parse("{\"metadata\":{\"a\":\"1\",\"b\":\"1\",\"c\":\"1\","
                 "\"d\":\"1\",\"e\":\"1\",\"f\":\"1\",\"g\":\"1\","
                 "\"h\":\"1\",\"i\":\"1\",\"j\":\"1\",\"k\":\"1\","
                 "\"l\":\"1\",\"m\":\"1\",\"n\":\"1\",\"o\":\"1\","
                 "\"p\":\"1\",\"q\":\"1\"}}", ALL), -1, "17 members");
    is_str(b.param, strlen(b.param), "metadata", "17 members: param");

    big = malloc(NGX_HTTP_AI_GUARD_ADMIN_MAX_BODY + 2);
    if (big == NULL) {
        return;
    }

    memset(big, ' ', NGX_HTTP_AI_GUARD_ADMIN_MAX_BODY + 1);
    big[0] = '{';
    big[NGX_HTTP_AI_GUARD_ADMIN_MAX_BODY] = '}';
    big[NGX_HTTP_AI_GUARD_ADMIN_MAX_BODY + 1] = '\0';

    is_int(parse(big, ALL), -1, "a body over the bound");

    big[NGX_HTTP_AI_GUARD_ADMIN_MAX_BODY - 1] = '}';
    big[NGX_HTTP_AI_GUARD_ADMIN_MAX_BODY] = '\0';

    is_int(parse(big, ALL), 0, "a body at the bound");

    free(big);
}


/* the store's own lines: fields no admin request may set */

static void
test_records(void)
{
    is_int(parse("{\"seq\":7,\"id\":\"a\",\"tenant\":\"t\","
                 "\"created\":1700000000,\"sha256\":\""
                 "000102030405060708090a0b0c0d0e0f"
                 "101112131415161718191a1b1c1d1e1f\","
                 "\"old_sha256\":\""
                 "ffffffffffffffffffffffffffffffff"
                 "ffffffffffffffffffffffffffffffff\","
                 "\"old_until\":1700000100}", ~0u), 0, "a key's line");
    is_int(b.seq, 7, "seq");
    is_int(b.created, 1700000000, "created");
    is_int(b.old_until, 1700000100, "old_until");
    is_int(b.digest[0], 0, "digest, first byte");
    is_int(b.digest[31], 0x1f, "digest, last byte");
    is_int(b.old_digest[17], 0xff, "old digest");

    is_int(parse("{\"seq\":8,\"id\":\"a\",\"deleted\":true}", ~0u), 0,
           "a deletion");
    is_int(b.deleted, 1, "deleted");

    is_int(parse("{\"sha256\":\"00\"}", ~0u), -1, "a short digest");
    is_int(parse("{\"sha256\":\"000102030405060708090A0B0C0D0E0F"
                 "101112131415161718191a1b1c1d1e1f\"}", ~0u), -1,
           "upper case hex");
    is_int(parse("{\"seq\":-1}", ~0u), -1, "a negative seq");

    is_int(parse("{\"sha256\":\"000102030405060708090a0b0c0d0e0f"
                 "101112131415161718191a1b1c1d1e1f\"}", ALL), -1,
           "no admin request sets a digest");
    is_int(parse("{\"seq\":1}", ALL), -1, "nor a seq");
}


static void
test_base62(void)
{
    u_char  out[8], rnd[8];
    size_t  n;

    /* 0 is "0", 61 "z", 62 "0" again, 10 "A"; 248 and up skipped */

    rnd[0] = 0;
    rnd[1] = 61;
    rnd[2] = 248;
    rnd[3] = 255;
    rnd[4] = 62;
    rnd[5] = 247;
    rnd[6] = 10;

    n = ngx_http_ai_guard_admin_base62(out, 8, rnd, 7);
    is_str(out, n, "0z0zA", "bytes from 248 up are skipped, 247 is z");

    n = ngx_http_ai_guard_admin_base62(out, 2, rnd, 7);
    is_str(out, n, "0z", "no more than wanted");
}


/*
 * "limits": the tier's names and units; null removes one; every other
 * shape a client may send (negative, fractional, huge, a string of a
 * count, a number of USD, an unknown name, a name twice) refused.
 */

static void
test_limits(void)
{
    size_t  i;

    static const struct {
        const char  *body;
        const char  *param;
        const char  *what;
    } bad[] = {
        { "{\"limits\":[]}", "limits", "an array of limits" },
        { "{\"limits\":60}", "limits", "a number for the object" },
        { "{\"limits\":{\"rps\":1}}", "limits", "an unknown limit" },
        { "{\"limits\":{\"max_tokens\":1}}", "limits",
          "a tier option that is not a limit" },
        { "{\"limits\":{\"rpm\":0}}", "limits.rpm", "rpm 0" },
        { "{\"limits\":{\"rpm\":-5}}", "limits.rpm", "a negative rpm" },
        { "{\"limits\":{\"rpm\":1.5}}", "limits.rpm", "a fractional rpm" },
        { "{\"limits\":{\"rpm\":\"60\"}}", "limits.rpm",
          "rpm in a string" },
        { "{\"limits\":{\"tpd\":1000000000001}}", "limits.tpd",
          "tpd past the tier's largest" },
        { "{\"limits\":{\"tpd\":99999999999999999999999}}", "limits.tpd",
          "tpd past 64 bits" },
        { "{\"limits\":{\"rpm\":1,\"rpm\":2}}", "limits.rpm",
          "rpm twice" },
        { "{\"limits\":{\"budget_day\":5}}", "limits.budget_day",
          "a budget as a number" },
        { "{\"limits\":{\"budget_day\":\"-5\"}}", "limits.budget_day",
          "a negative budget" },
        { "{\"limits\":{\"budget_day\":\"0\"}}", "limits.budget_day",
          "a budget of 0" },
        { "{\"limits\":{\"budget_day\":\"1e3\"}}", "limits.budget_day",
          "a budget with an exponent" },
        { "{\"limits\":{\"budget_month\":\"0.0000000000001\"}}",
          "limits.budget_month", "below a pico-USD" },
        { "{\"limits\":{\"budget_month\":\"1000000.000001\"}}",
          "limits.budget_month", "past a million USD" },
        { "{\"limits\":{\"budget_month\":\"20/month\"}}",
          "limits.budget_month", "the tier's period syntax" },
    };

    is_int(parse("{\"limits\":{\"rpm\":60,\"tokens_month\":1000000000000,"
                 "\"concurrency\":2,\"budget_month\":\"20.50\","
                 "\"budget_day\":\"1000000\",\"tpd\":null}}",
                 NGX_HTTP_AI_GUARD_ADMIN_LIMITS), 0, "limits");
    is_int(b.limits[NGX_HTTP_AI_GUARD_LIMIT_RPM], 60, "rpm");
    is_int(b.limits[NGX_HTTP_AI_GUARD_LIMIT_TOKENS_MONTH], 1000000000000LL,
           "tokens_month at the tier's largest");
    is_int(b.limits[NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH], 20500000000000LL,
           "a budget in pico-USD");
    is_int(b.limits[NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY],
           1000000000000000000LL, "a million USD");
    is_int(b.limits_set, (1u << NGX_HTTP_AI_GUARD_LIMIT_RPM)
                         | (1u << NGX_HTTP_AI_GUARD_LIMIT_TOKENS_MONTH)
                         | (1u << NGX_HTTP_AI_GUARD_LIMIT_CONCURRENCY)
                         | (1u << NGX_HTTP_AI_GUARD_LIMIT_BUDGET_MONTH)
                         | (1u << NGX_HTTP_AI_GUARD_LIMIT_BUDGET_DAY),
           "the limits set");
    is_int(b.limits_null, 1u << NGX_HTTP_AI_GUARD_LIMIT_TPD, "tpd removed");

    is_int(parse("{\"limits\":{\"rpm\":1}}", ALL), -1,
           "limits where the request does not take them");

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        is_int(parse(bad[i].body, NGX_HTTP_AI_GUARD_ADMIN_LIMITS), -1,
               "%s: refused", bad[i].what);
        is_str(b.param, strlen(b.param), bad[i].param, "%s: param",
               bad[i].what);
        ok(b.error[0] != '\0', "%s: says why", bad[i].what);
    }
}


int
main(void)
{
    test_fields();
    test_refused();
    test_limits();
    test_records();
    test_base62();

    return done_testing();
}
