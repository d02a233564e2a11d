
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <tap.h>
#include <ngx_http_ai_guard_batch.h>


#define MAX_RECS  16


typedef struct {
    const char                       *tenant;
    const char                       *key;
    const char                       *model;
    const char                       *customer;
    const char                       *scope;
    uint32_t                          day;
    int                               usage;
    uint64_t                          input;
    uint64_t                          output;
    int64_t                           cost;
    size_t                            nitems;
    ngx_http_ai_guard_batch_item_t    items[4];
} rec_spec_t;


/* a record laid out as the outbox keeps it, in malloc()ed memory */

static ngx_http_ai_guard_batch_rec_t *
rec(const rec_spec_t *s)
{
    u_char                         *p;
    size_t                          size;
    ngx_http_ai_guard_batch_rec_t   r, *rp;

    memset(&r, 0, sizeof(r));
    r.day = s->day;
    r.usage = (uint8_t) s->usage;
    r.nitems = (uint8_t) s->nitems;
    r.tenant_len = (uint16_t) strlen(s->tenant);
    r.key_len = (uint16_t) strlen(s->key);
    r.model_len = (uint16_t) strlen(s->model);
    r.customer_len = (uint16_t) strlen(s->customer);
    r.scope_len = (uint16_t) strlen(s->scope);
    r.input = s->input;
    r.output = s->output;
    r.cached = s->input / 2;
    r.estimated = 1;
    r.cost = s->cost;
    r.reasoning = s->output / 2;
    r.cache_write = s->input / 4;

    size = ngx_http_ai_guard_batch_rec_size(&r);

    rp = malloc(size);
    if (rp == NULL) {
        abort();
    }

    *rp = r;
    p = (u_char *) (rp + 1);
    memcpy(p, s->items, s->nitems * sizeof(ngx_http_ai_guard_batch_item_t));
    p += s->nitems * sizeof(ngx_http_ai_guard_batch_item_t);
    memcpy(p, s->tenant, r.tenant_len);
    p += r.tenant_len;
    memcpy(p, s->key, r.key_len);
    p += r.key_len;
    memcpy(p, s->model, r.model_len);
    p += r.model_len;
    memcpy(p, s->customer, r.customer_len);
    p += r.customer_len;
    memcpy(p, s->scope, r.scope_len);

    return rp;
}


static ngx_http_ai_guard_batch_usage_t  usage[MAX_RECS];
static ngx_http_ai_guard_batch_corr_t   corr[4 * MAX_RECS];


static void
aggregate(ngx_http_ai_guard_batch_t *b,
    const ngx_http_ai_guard_batch_rec_t **recs, size_t n)
{
    size_t  nu, nc;

    ngx_http_ai_guard_batch_count(recs, n, &nu, &nc);

    if (nu > MAX_RECS || nc > 4 * MAX_RECS) {
        abort();
    }

    memset(usage, 0xa5, sizeof(usage));
    memset(corr, 0xa5, sizeof(corr));

    b->usage = usage;
    b->nusage = nu;
    b->corr = corr;
    b->ncorr = nc;

    ngx_http_ai_guard_batch_aggregate(b, recs, n);
}


static int
str_is(ngx_http_ai_guard_batch_str_t *s, const char *want)
{
    return s->len == strlen(want) && memcmp(s->data, want, s->len) == 0;
}


static ngx_http_ai_guard_batch_usage_t *
find_usage(ngx_http_ai_guard_batch_t *b, uint32_t day, const char *tenant,
    const char *key, const char *model, const char *customer)
{
    size_t  i;

    for (i = 0; i < b->nusage; i++) {
        if (b->usage[i].day == day && str_is(&b->usage[i].tenant, tenant)
            && str_is(&b->usage[i].key, key)
            && str_is(&b->usage[i].model, model)
            && str_is(&b->usage[i].customer, customer))
        {
            return &b->usage[i];
        }
    }

    return NULL;
}


static ngx_http_ai_guard_batch_corr_t *
find_corr(ngx_http_ai_guard_batch_t *b, const char *scope, uint32_t kind,
    uint64_t window)
{
    size_t  i;

    for (i = 0; i < b->ncorr; i++) {
        if (str_is(&b->corr[i].scope, scope) && b->corr[i].kind == kind
            && b->corr[i].window == window)
        {
            return &b->corr[i];
        }
    }

    return NULL;
}


static const rec_spec_t  specs[] = {
    { "acme", "k1", "gpt-4o", "cus_1", "t4:acme", 20000, 1, 100, 10, 500, 2,
      { { 1000, 40, 0, 4 }, { 5, -1, 0, 8 } } },
    { "acme", "k1", "gpt-4o", "cus_1", "t4:acme", 20000, 1, 200, 20, 700, 2,
      { { 1000, -15, 0, 4 }, { 5, -1, 0, 8 } } },
    { "acme", "k2", "gpt-4o", "cus_1", "t4:acme", 20000, 1, 1, 2, 3, 1,
      { { 1000, 7, 0, 4 } } },
    { "acme", "k1", "gpt-4o", "cus_1", "", 20001, 1, 50, 5, 60, 0, { { 0 } } },
    { "acme", "k1", "gpt-4o-mini", "cus_1", "", 20000, 1, 70, 7, 90, 0,
      { { 0 } } },
    { "acme", "k1", "gpt-4o", "cus_2", "", 20000, 1, 11, 1, 13, 0,
      { { 0 } } },
    { "", "", "", "", "t4:beta", 0, 0, 0, 0, 0, 2,
      { { 9000, 3, 20000, 6 }, { 9000, 4, 20001, 6 } } },
    { "", "", "", "", "t4:beta", 0, 0, 0, 0, 0, 1,
      { { 9000, 5, 20000, 6 } } }
};

#define NSPECS  (sizeof(specs) / sizeof(specs[0]))


static void
check_sums(ngx_http_ai_guard_batch_t *b, const char *order)
{
    ngx_http_ai_guard_batch_corr_t   *c;
    ngx_http_ai_guard_batch_usage_t  *u;

    is_int(b->nusage, 5, "%s: one row a day, tenant, key, model, customer",
           order);

    u = find_usage(b, 20000, "acme", "k1", "gpt-4o", "cus_1");
    ok(u != NULL, "%s: the row of k1 on day 20000", order);

    if (u) {
        is_int(u->requests, 2, "%s: two requests add up", order);
        is_int(u->input, 300, "%s: input adds up", order);
        is_int(u->output, 30, "%s: output adds up", order);
        is_int(u->cached, 150, "%s: cached adds up", order);
        is_int(u->estimated, 2, "%s: estimated adds up", order);
        is_int(u->cost, 1200, "%s: cost adds up", order);
        is_int(u->reasoning, 15, "%s: reasoning adds up", order);
        is_int(u->cache_write, 75, "%s: cache writes add up", order);
    }

    u = find_usage(b, 20000, "acme", "k2", "gpt-4o", "cus_1");
    ok(u && u->requests == 1 && u->input == 1,
       "%s: another key is another row", order);

    u = find_usage(b, 20001, "acme", "k1", "gpt-4o", "cus_1");
    ok(u && u->requests == 1 && u->cost == 60,
       "%s: another day is another row", order);

    u = find_usage(b, 20000, "acme", "k1", "gpt-4o-mini", "cus_1");
    ok(u && u->requests == 1 && u->input == 70 && u->cost == 90,
       "%s: another model is another row", order);

    /* a key whose customer changed (a reload) bills each to its own */

    u = find_usage(b, 20000, "acme", "k1", "gpt-4o", "cus_2");
    ok(u && u->requests == 1 && u->input == 11 && u->cost == 13,
       "%s: another customer is another row", order);

    /* kind 4 of t4:acme: 40 - 15 + 7; kind 8: -1 - 1 */

    c = find_corr(b, "t4:acme", 4, 0);
    ok(c && c->delta == 32 && c->limit == 1000,
       "%s: the deltas of one counter add up", order);

    c = find_corr(b, "t4:acme", 8, 0);
    ok(c && c->delta == -2, "%s: negative deltas add up", order);

    c = find_corr(b, "t4:beta", 6, 20000);
    ok(c && c->delta == 8, "%s: one quota window adds up", order);

    c = find_corr(b, "t4:beta", 6, 20001);
    ok(c && c->delta == 4, "%s: another window is another counter",
       order);

    is_int(b->ncorr, 4, "%s: four counters", order);
}


static void
test_sums(void)
{
    size_t                                i;
    ngx_http_ai_guard_batch_t             b;
    const ngx_http_ai_guard_batch_rec_t  *recs[NSPECS], *rev[NSPECS];
    const ngx_http_ai_guard_batch_rec_t  *rot[NSPECS];

    for (i = 0; i < NSPECS; i++) {
        recs[i] = rec(&specs[i]);
    }

    for (i = 0; i < NSPECS; i++) {
        rev[i] = recs[NSPECS - 1 - i];
        rot[i] = recs[(i + 3) % NSPECS];
    }

    aggregate(&b, recs, NSPECS);
    check_sums(&b, "in order");

    /* the first record of a row or counter decides where it goes */

    ok(b.nusage == 5 && str_is(&b.usage[0].key, "k1")
       && b.usage[0].day == 20000 && str_is(&b.usage[1].key, "k2")
       && b.usage[2].day == 20001 && str_is(&b.usage[3].model, "gpt-4o-mini")
       && str_is(&b.usage[4].customer, "cus_2"),
       "rows in the order of their first record");

    ok(b.ncorr == 4 && b.corr[0].kind == 4 && b.corr[1].kind == 8
       && b.corr[2].window == 20000 && b.corr[3].window == 20001,
       "corrections in the order of their first record");

    aggregate(&b, rev, NSPECS);
    check_sums(&b, "reversed");

    aggregate(&b, rot, NSPECS);
    check_sums(&b, "rotated");

    aggregate(&b, recs, 0);
    ok(b.nusage == 0 && b.ncorr == 0, "no records, nothing");

    for (i = 0; i < NSPECS; i++) {
        free((void *) recs[i]);
    }
}


static void
test_distinct(void)
{
    ngx_http_ai_guard_batch_t             b;
    const ngx_http_ai_guard_batch_rec_t  *recs[4];

    /* the strings are compared one by one, never as one run of bytes */

    static const rec_spec_t  s[] = {
        { "ab", "c", "m", "", "t2:ab", 1, 1, 1, 0, 0, 1,
          { { 10, 1, 0, 1 } } },
        { "a", "bc", "m", "", "t1:a", 1, 1, 1, 0, 0, 1,
          { { 10, 1, 0, 1 } } },
        { "a", "bc", "m", "x", "t1:a", 1, 1, 1, 0, 0, 1,
          { { 11, 1, 0, 1 } } },
        { "a", "bc", "m", "x", "t1:a", 1, 1, 1, 0, 0, 1,
          { { 10, 1, 0, 2 } } }
    };

    recs[0] = rec(&s[0]);
    recs[1] = rec(&s[1]);
    recs[2] = rec(&s[2]);
    recs[3] = rec(&s[3]);

    aggregate(&b, recs, 4);

    is_int(b.nusage, 3, "tenant \"ab\" key \"c\" is not tenant \"a\" key "
           "\"bc\"; another customer is another row");
    is_int(b.ncorr, 4, "another limit or kind is another counter");

    free((void *) recs[0]);
    free((void *) recs[1]);
    free((void *) recs[2]);
    free((void *) recs[3]);
}


static void
test_cancel(void)
{
    ngx_http_ai_guard_batch_t             b;
    const ngx_http_ai_guard_batch_rec_t  *recs[2];

    static const rec_spec_t  s[] = {
        { "", "", "", "", "t1:a", 0, 0, 0, 0, 0, 2,
          { { 10, 5, 0, 4 }, { 3, 1, 0, 8 } } },
        { "", "", "", "", "t1:a", 0, 0, 0, 0, 0, 1,
          { { 10, -5, 0, 4 } } }
    };

    recs[0] = rec(&s[0]);
    recs[1] = rec(&s[1]);

    aggregate(&b, recs, 2);

    is_int(b.nusage, 0, "records without usage make no row");
    ok(b.ncorr == 1 && b.corr[0].kind == 8 && b.corr[0].delta == 1,
       "a correction that cancels out is left out");

    free((void *) recs[0]);
    free((void *) recs[1]);
}


static void
test_saturate(void)
{
    ngx_http_ai_guard_batch_t             b;
    const ngx_http_ai_guard_batch_rec_t  *recs[4];

    static const rec_spec_t  s[] = {
        { "a", "k", "m", "", "t1:a", 1, 1, UINT64_MAX - 1, UINT64_MAX,
          INT64_MAX, 2,
          { { 10, INT64_MAX, 0, 4 }, { 10, -INT64_MAX, 0, 5 } } },
        { "a", "k", "m", "", "t1:a", 1, 1, 5, 1, 1, 2,
          { { 10, INT64_MAX, 0, 4 }, { 10, -INT64_MAX, 0, 5 } } },
        { "b", "k", "m", "", "", 1, 1, 0, 0, -INT64_MAX, 0, { { 0 } } },
        { "b", "k", "m", "", "", 1, 1, 0, 0, -INT64_MAX, 0, { { 0 } } }
    };

    recs[0] = rec(&s[0]);
    recs[1] = rec(&s[1]);
    recs[2] = rec(&s[2]);
    recs[3] = rec(&s[3]);

    aggregate(&b, recs, 4);

    ok(b.nusage == 2 && b.usage[0].input == UINT64_MAX
       && b.usage[0].output == UINT64_MAX, "token sums saturate");
    ok(b.nusage == 2 && b.usage[0].cost == INT64_MAX,
       "a cost saturates at INT64_MAX");
    ok(b.nusage == 2 && b.usage[1].cost == -INT64_MAX,
       "a negative cost saturates at -INT64_MAX");
    ok(b.ncorr == 2 && b.corr[0].delta == INT64_MAX,
       "a delta saturates at INT64_MAX");
    ok(b.ncorr == 2 && b.corr[1].delta == -INT64_MAX,
       "a negative delta saturates at -INT64_MAX");

    free((void *) recs[0]);
    free((void *) recs[1]);
    free((void *) recs[2]);
    free((void *) recs[3]);
}


static void
test_size(void)
{
    ngx_http_ai_guard_batch_rec_t  *r;

    r = rec(&specs[0]);

    is_int(ngx_http_ai_guard_batch_rec_size(r),
           sizeof(ngx_http_ai_guard_batch_rec_t)
           + 2 * sizeof(ngx_http_ai_guard_batch_item_t) + 4 + 2 + 6 + 5 + 7,
           "a record's size: header, items, strings");
    is_int(sizeof(ngx_http_ai_guard_batch_rec_t) % 8, 0,
           "items after a header stay aligned");

    free(r);
}


int
main(void)
{
    test_sums();
    test_distinct();
    test_cancel();
    test_saturate();
    test_size();

    return done_testing();
}
