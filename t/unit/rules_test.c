
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The shipped rules (examples/prompt-injection.rules) through the rules
 * file parser, the literal extraction and the prefilter, against PCRE2
 * on the cases of data/rules/cases.txt: every rule compiles and has a
 * true positive, every family a near miss, and the prefilter never hides
 * a match.
 */

#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdlib.h>
#include <pcre2.h>
#include <tap.h>
#include <ngx_http_ai_guard_rules.h>


#define RT_RULES_MAX  256


typedef struct {
    char                           id[NGX_HTTP_AI_GUARD_RULE_ID_MAX + 1];
    pcre2_code                    *re;
    pcre2_match_data              *md;
    size_t                         nsets;
    ngx_http_ai_guard_literals_t   sets[NGX_HTTP_AI_GUARD_LIT_SETS];
} rt_rule_t;


static rt_rule_t  rt_rules[RT_RULES_MAX];
static size_t     rt_nrules;


static char *
rt_path(const char *rel, char *buf, size_t size)
{
    size_t       n;
    const char  *slash;

    slash = strrchr(__FILE__, '/');
    n = slash ? (size_t) (slash - __FILE__) + 1 : 0;
    snprintf(buf, size, "%.*s%s", (int) n, __FILE__, rel);

    return buf;
}


static u_char *
rt_slurp(const char *path, size_t *len)
{
    long    n;
    FILE   *f;
    u_char *buf;

    f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }

    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);

    buf = malloc(n + 1);
    if (buf == NULL || fread(buf, 1, n, f) != (size_t) n) {
        fclose(f);
        free(buf);
        return NULL;
    }

    fclose(f);
    buf[n] = '\0';
    *len = n;

    return buf;
}


static char *
rt_unescape(char *s)
{
    char  *r, *w;

    for (r = s, w = s; *r; r++) {
        if (r[0] == '\\' && r[1] == 'n') {
            *w++ = '\n';
            r++;

        } else {
            *w++ = *r;
        }
    }

    *w = '\0';

    return s;
}


static int
rt_match(rt_rule_t *r, const char *text)
{
    return pcre2_match(r->re, (PCRE2_SPTR) text, strlen(text), 0, 0, r->md,
                       NULL) >= 0;
}


static void
test_shipped(void)
{
    int                               rc, errcode, family_ok, lit_ok;
    char                              path[512], line[2048], *text, *sp;
    char                              fam[64], seen_tp[64][64];
    char                              desc[2048];
    char                              seen_nm[64][64];
    FILE                             *f;
    u_char                           *buf, *acbuf, *vsbuf;
    u_char                            found[RT_RULES_MAX
                                            * NGX_HTTP_AI_GUARD_LIT_SETS],
                                      vfound[RT_RULES_MAX
                                             * NGX_HTTP_AI_GUARD_LIT_SETS];
    size_t                            len, i, j, k, nfam_tp, nfam_nm, nlits;
    size_t                            group, ngot, vdiff;
    size_t                            erroff, size, base[RT_RULES_MAX];
    rt_rule_t                        *r;
    ngx_http_ai_guard_ac_t           *ac;
    ngx_http_ai_guard_vscan_t        *vs;
    static ngx_http_ai_guard_lit_t    all[RT_RULES_MAX
                                          * NGX_HTTP_AI_GUARD_LIT_SETS
                                          * NGX_HTTP_AI_GUARD_LIT_ALTS];
    ngx_http_ai_guard_rule_t          rule;
    ngx_http_ai_guard_rules_parser_t  ps;

    buf = rt_slurp(rt_path("../../examples/prompt-injection.rules", path,
                           sizeof(path)), &len);
    ok(buf != NULL, "read %s", path);
    if (buf == NULL) {
        return;
    }

    ngx_http_ai_guard_rules_init(&ps, buf, len);

    while ((rc = ngx_http_ai_guard_rules_next(&ps, &rule))
           == NGX_HTTP_AI_GUARD_RULES_OK && rt_nrules < RT_RULES_MAX)
    {
        r = &rt_rules[rt_nrules++];
        memcpy(r->id, rule.id, rule.id_len);
        r->id[rule.id_len] = '\0';

        /* as the glue compiles them: code points, Unicode classes */

        r->re = pcre2_compile((PCRE2_SPTR) rule.regex, rule.regex_len,
                              PCRE2_UTF|PCRE2_UCP,
                              &errcode, &erroff, NULL);
        if (r->re == NULL) {
            ok(0, "rule %s compiles (error %d at %zu)", r->id, errcode,
               erroff);
            rt_nrules--;
            continue;
        }

        ok(pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE) == 0,
           "rule %s compiles, JIT too", r->id);
        r->md = pcre2_match_data_create_from_pattern(r->re, NULL);

        ok(strncmp((char *) rule.regex, "(?i)", 4) == 0
           || strncmp((char *) rule.regex, "(?im)", 5) == 0,
           "rule %s is case-insensitive", r->id);

        r->nsets = ngx_http_ai_guard_regex_requires(rule.regex,
                                                    rule.regex_len, r->sets,
                                                    NGX_HTTP_AI_GUARD_LIT_SETS);
    }

    is_int(rc, NGX_HTTP_AI_GUARD_RULES_DONE, "the shipped file parses");
    ok(rt_nrules >= 30, "%zu rules, at least 30", rt_nrules);

    /*
     * The prefilter over all rules' requirements, as the glue builds it:
     * a group a set, every set of a rule; all its groups must have a hit
     * for a rule to run.
     */

    nlits = 0;
    group = 0;

    for (i = 0; i < rt_nrules; i++) {
        base[i] = group;

        for (k = 0; k < rt_rules[i].nsets; k++) {
            for (j = 0; j < rt_rules[i].sets[k].n; j++) {
                all[nlits].data = rt_rules[i].sets[k].data[j];
                all[nlits].len = rt_rules[i].sets[k].len[j];
                all[nlits].group = group;
                nlits++;
            }

            group++;
        }
    }

    size = ngx_http_ai_guard_ac_size(all, nlits);
    acbuf = malloc(size);
    ac = ngx_http_ai_guard_ac_build(acbuf, size, all, nlits);
    ok(ac != NULL, "prefilter of %zu literals in %zu bytes", nlits, size);

    /* the vector scan the glue picks on this CPU, compared on every case */

    size = ngx_http_ai_guard_vscan_size(all, nlits);
    vsbuf = malloc(size ? size : 1);
    vs = ngx_http_ai_guard_vscan_build(vsbuf, size, all, nlits,
                                       ngx_http_ai_guard_vscan_cpu());
    if (ngx_http_ai_guard_vscan_cpu() != NGX_HTTP_AI_GUARD_VSCAN_NONE) {
        ok(vs != NULL, "vector prefilter of the same literals in %zu bytes",
           size);
    }
    vdiff = 0;

    f = fopen(rt_path("data/rules/cases.txt", path, sizeof(path)), "r");
    ok(f != NULL, "read %s", path);
    if (f == NULL || ac == NULL) {
        return;
    }

    nfam_tp = 0;
    nfam_nm = 0;

    while (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\n")] = '\0';

        if (line[0] != '+' && line[0] != '-') {
            continue;
        }

        sp = strchr(line, ' ');
        if (sp == NULL) {
            continue;
        }

        *sp = '\0';
        snprintf(desc, sizeof(desc), "%s", sp + 1);
        text = rt_unescape(sp + 1);

        ngot = ngx_http_ai_guard_ac_scan(ac, (u_char *) text, strlen(text),
                                         found);

        if (vs != NULL
            && (ngx_http_ai_guard_vscan_scan(vs, (u_char *) text,
                                             strlen(text), vfound)
                != ngot
                || memcmp(found, vfound, group) != 0))
        {
            vdiff++;
            printf("# vector prefilter differs on: %s\n", text);
        }

        /* the prefilter never hides a match */

        lit_ok = 1;

        for (i = 0; i < rt_nrules; i++) {
            if (!rt_match(&rt_rules[i], text)) {
                continue;
            }

            family_ok = 1;

            for (k = 0; k < rt_rules[i].nsets; k++) {
                family_ok &= found[base[i] + k];
            }

            if (!family_ok) {
                lit_ok = 0;
                printf("# prefilter misses %s on: %s\n", rt_rules[i].id,
                       text);
            }
        }

        ok(lit_ok, "prefilter passes every rule that matches: %.40s", desc);

        if (line[0] == '+') {
            for (i = 0; i < rt_nrules; i++) {
                if (strcmp(rt_rules[i].id, line + 1) == 0) {
                    break;
                }
            }

            ok(i < rt_nrules && rt_match(&rt_rules[i], text),
               "%s matches: %s", line + 1, desc);

            snprintf(fam, sizeof(fam), "%.*s",
                     (int) strcspn(line + 1, "."), line + 1);

            for (k = 0; k < nfam_tp && strcmp(seen_tp[k], fam); k++) {
                /* void */
            }

            if (k == nfam_tp && nfam_tp < 64) {
                strcpy(seen_tp[nfam_tp++], fam);
            }

        } else {
            for (i = 0; i < rt_nrules; i++) {
                if (rt_match(&rt_rules[i], text)) {
                    break;
                }
            }

            ok(i == rt_nrules, "near miss passes (%s): %s",
               i < rt_nrules ? rt_rules[i].id : "no rule", desc);

            for (k = 0; k < nfam_nm && strcmp(seen_nm[k], line + 1); k++) {
                /* void */
            }

            if (k == nfam_nm && nfam_nm < 64) {
                strcpy(seen_nm[nfam_nm++], line + 1);
            }
        }
    }

    fclose(f);

    /* every family has a near miss, every rule a true positive */

    for (k = 0; k < nfam_tp; k++) {
        for (i = 0; i < nfam_nm && strcmp(seen_tp[k], seen_nm[i]); i++) {
            /* void */
        }

        ok(i < nfam_nm, "family %s has a near miss", seen_tp[k]);
    }

    f = fopen(rt_path("data/rules/cases.txt", path, sizeof(path)), "r");

    for (i = 0; f && i < rt_nrules; i++) {
        rewind(f);
        family_ok = 0;

        while (fgets(line, sizeof(line), f)) {
            sp = strchr(line, ' ');
            if (line[0] == '+' && sp
                && (size_t) (sp - line - 1) == strlen(rt_rules[i].id)
                && memcmp(line + 1, rt_rules[i].id, sp - line - 1) == 0)
            {
                family_ok = 1;
            }
        }

        ok(family_ok, "rule %s has a true positive", rt_rules[i].id);
    }

    if (f) {
        fclose(f);
    }

    is_int(vdiff, 0, "the vector prefilter finds what the DFA finds on "
           "every case");

    free(vsbuf);
    free(acbuf);
    free(buf);
}


/*
 * The false-positive rate on data/rules/benign.txt (util/
 * gen-benign-prompts): each prompt normalised as the glue does, every
 * rule run (the prefilter only skips rules, it is checked above).  The
 * rate is stated in docs/rules.md; more than 1% fails.
 */

static void
test_benign(void)
{
    char    path[512], line[2048];
    FILE   *f;
    size_t  i, n, hits, len;

    f = fopen(rt_path("data/rules/benign.txt", path, sizeof(path)), "r");
    ok(f != NULL, "read %s", path);
    if (f == NULL) {
        return;
    }

    n = 0;
    hits = 0;

    while (fgets(line, sizeof(line), f)) {
        len = strcspn(line, "\n");

        if (len == 0 || line[0] == '#') {
            continue;
        }

        len = ngx_http_ai_guard_norm((u_char *) line, (u_char *) line, len);
        line[len] = '\0';
        n++;

        for (i = 0; i < rt_nrules; i++) {
            if (rt_match(&rt_rules[i], line)) {
                printf("# benign prompt hit by %s: %s\n", rt_rules[i].id,
                       line);
                hits++;
                break;
            }
        }
    }

    fclose(f);

    ok(n >= 2000, "%zu benign prompts, at least 2,000", n);
    ok(hits * 100 <= n, "false positives: %zu of %zu (%.2f%%), at most 1%%",
       hits, n, n ? 100.0 * hits / n : 0.0);
}


int
main(void)
{
    size_t  i;

    test_shipped();
    test_benign();

    for (i = 0; i < rt_nrules; i++) {
        pcre2_match_data_free(rt_rules[i].md);
        pcre2_code_free(rt_rules[i].re);
    }

    return done_testing();
}
