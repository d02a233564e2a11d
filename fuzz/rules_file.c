
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * libFuzzer target for the rules file parser, the literal prefilter and
 * the Aho-Corasick scan.  Properties: spans stay inside the input, ids
 * are well formed, a duplicate is reported exactly when a naive list of
 * the ids seen has it; for each regex PCRE2 accepts and matches in the
 * input, one of its extracted literals occurs in the matched text; the
 * automaton finds exactly the literals a naive search finds.
 */

#define PCRE2_CODE_UNIT_WIDTH 8

#include <stdlib.h>
#include <string.h>
#include <pcre2.h>
#include <ngx_http_ai_guard_rules_file.h>
#include <ngx_http_ai_guard_literals.h>
#include <ngx_http_ai_guard_ac.h>
#include <ngx_http_ai_guard_norm.h>


#define NGX_HTTP_AI_GUARD_FUZZ_RULES  64


static int ngx_http_ai_guard_fuzz_has(const u_char *p, size_t len,
    const u_char *lit, size_t n);
static void ngx_http_ai_guard_fuzz_sound(pcre2_code *re,
    pcre2_match_data *md, pcre2_match_context *mc, const u_char *p,
    size_t len, ngx_http_ai_guard_literals_t *sets, size_t nsets);


static int
ngx_http_ai_guard_fuzz_has(const u_char *p, size_t len, const u_char *lit,
    size_t n)
{
    size_t  i, k;

    if (n == 0) {
        return 1;
    }

    for (i = 0; i + n <= len; i++) {
        for (k = 0; k < n; k++) {
            u_char a = p[i + k], b = lit[k];

            a = (a >= 'A' && a <= 'Z') ? a | 0x20 : a;
            b = (b >= 'A' && b <= 'Z') ? b | 0x20 : b;

            if (a != b) {
                break;
            }
        }

        if (k == n) {
            return 1;
        }
    }

    return 0;
}


/* a match of re in p holds a literal of each set, up to its end */

static void
ngx_http_ai_guard_fuzz_sound(pcre2_code *re, pcre2_match_data *md,
    pcre2_match_context *mc, const u_char *p, size_t len,
    ngx_http_ai_guard_literals_t *sets, size_t nsets)
{
    size_t       j, k;
    PCRE2_SIZE  *ov;

    if (nsets == 0 || pcre2_match(re, p, len, 0, 0, md, mc) < 0) {
        return;
    }

    ov = pcre2_get_ovector_pointer(md);

    /*
     * \K moves the reported start past text the regex consumed, so a
     * literal is looked for up to the match's end.
     */

    for (j = 0; ov[0] <= ov[1] && j < nsets; j++) {
        for (k = 0; k < sets[j].n; k++) {
            if (ngx_http_ai_guard_fuzz_has(p, ov[1], sets[j].data[k],
                                           sets[j].len[k]))
            {
                break;
            }
        }

        if (k == sets[j].n) {
            abort();
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                                rc, errcode, dup;
    size_t                             nsets;
    u_char                             found[NGX_HTTP_AI_GUARD_FUZZ_RULES
                                             * NGX_HTTP_AI_GUARD_LIT_ALTS];
    size_t                             n, i, k, nlits, erroff, acsize;
    void                              *acbuf;
    PCRE2_SIZE                        *ov;
    u_char                            *norm;
    size_t                             nsize;
    pcre2_code                        *re, *reu;
    pcre2_match_data                  *md, *mdu;
    pcre2_match_context               *mc;
    ngx_http_ai_guard_ac_t            *ac;
    ngx_http_ai_guard_lit_t            lits[NGX_HTTP_AI_GUARD_FUZZ_RULES
                                            * NGX_HTTP_AI_GUARD_LIT_ALTS];
    ngx_http_ai_guard_rule_t           rule, seen[NGX_HTTP_AI_GUARD_FUZZ_RULES];
    ngx_http_ai_guard_literals_t      *lt;
    ngx_http_ai_guard_rules_parser_t   ps;
    static ngx_http_ai_guard_literals_t  all[NGX_HTTP_AI_GUARD_FUZZ_RULES];
    static ngx_http_ai_guard_literals_t  sets[NGX_HTTP_AI_GUARD_LIT_SETS];

    ngx_http_ai_guard_rules_init(&ps, data, size);

    norm = malloc(size + 1);
    if (norm == NULL) {
        abort();
    }

    nsize = ngx_http_ai_guard_norm(norm, data, size);

    mc = pcre2_match_context_create(NULL);
    pcre2_set_match_limit(mc, 10000);
    pcre2_set_depth_limit(mc, 1000);

    n = 0;
    nlits = 0;

    for ( ;; ) {
        rc = ngx_http_ai_guard_rules_next(&ps, &rule);

        if (rc == NGX_HTTP_AI_GUARD_RULES_DONE) {
            break;
        }

        if (ps.line > 100000) {
            abort();
        }

        dup = 0;

        if (rc == NGX_HTTP_AI_GUARD_RULES_ERROR) {
            if (strcmp(ps.err, "duplicate rule id") != 0) {
                continue;
            }

            dup = 1;
        }

        if (rule.id < data || rule.id + rule.id_len > data + size
            || rule.id_len == 0 || rule.id_len > NGX_HTTP_AI_GUARD_RULE_ID_MAX
            || rule.regex < rule.id + rule.id_len
            || rule.regex + rule.regex_len > data + size
            || rule.regex_len == 0
            || rule.regex[0] == ' ' || rule.regex[rule.regex_len - 1] == ' '
            || memchr(rule.regex, '\n', rule.regex_len) != NULL)
        {
            abort();
        }

        /* naive duplicate check over the ids returned so far */
        for (i = 0; i < n; i++) {
            if (seen[i].id_len == rule.id_len
                && memcmp(seen[i].id, rule.id, rule.id_len) == 0)
            {
                break;
            }
        }

        if (n < NGX_HTTP_AI_GUARD_FUZZ_RULES && (i < n) != dup) {
            abort();
        }

        if (dup || n == NGX_HTTP_AI_GUARD_FUZZ_RULES) {
            continue;
        }

        seen[n] = rule;
        lt = &all[n];
        n++;

        ngx_http_ai_guard_regex_literals(rule.regex, rule.regex_len, lt);

        for (k = 0; k < lt->n; k++) {
            if (lt->len[k] < NGX_HTTP_AI_GUARD_LIT_MIN
                || lt->len[k] > NGX_HTTP_AI_GUARD_LIT_LEN)
            {
                abort();
            }

            lits[nlits].data = lt->data[k];
            lits[nlits].len = lt->len[k];
            lits[nlits].group = (uint32_t) nlits;
            nlits++;
        }

        re = pcre2_compile(rule.regex, rule.regex_len, 0, &errcode, &erroff,
                           NULL);
        if (re == NULL) {
            continue;
        }

        md = pcre2_match_data_create_from_pattern(re, NULL);

        nsets = ngx_http_ai_guard_regex_requires(rule.regex, rule.regex_len,
                                                 sets,
                                                 NGX_HTTP_AI_GUARD_LIT_SETS);

        if (nsets > NGX_HTTP_AI_GUARD_LIT_SETS
            || (nsets == 0) != (lt->n == 0)
            || (nsets && sets[0].n != lt->n))
        {
            abort();
        }

        for (k = 0; nsets && k < lt->n; k++) {
            if (sets[0].len[k] != lt->len[k]
                || memcmp(sets[0].data[k], lt->data[k], lt->len[k]) != 0)
            {
                abort();
            }
        }

        ngx_http_ai_guard_fuzz_sound(re, md, mc, data, size, sets, nsets);

        /*
         * As the glue runs it: code points (UTF, UCP) over the normal
         * form, where U+212A and U+017F, caseless K and s, are folded.
         * Invalid UTF-8 makes pcre2_match fail: the parser refuses it.
         */

        reu = pcre2_compile(rule.regex, rule.regex_len,
                            PCRE2_UTF|PCRE2_UCP, &errcode, &erroff, NULL);
        if (reu != NULL) {
            mdu = pcre2_match_data_create_from_pattern(reu, NULL);
            ngx_http_ai_guard_fuzz_sound(reu, mdu, mc, norm, nsize, sets,
                                         nsets);
            pcre2_match_data_free(mdu);
            pcre2_code_free(reu);
        }

        if (lt->n && pcre2_match(re, data, size, 0, 0, md, mc) >= 0) {
            ov = pcre2_get_ovector_pointer(md);

            if (ov[0] <= ov[1]) {
                for (k = 0; k < lt->n; k++) {
                    if (ngx_http_ai_guard_fuzz_has(data, ov[1],
                                                   lt->data[k], lt->len[k]))
                    {
                        break;
                    }
                }

                if (k == lt->n) {
                    abort();
                }
            }
        }

        pcre2_match_data_free(md);
        pcre2_code_free(re);
    }

    pcre2_match_context_free(mc);
    free(norm);

    acsize = ngx_http_ai_guard_ac_size(lits, nlits);
    acbuf = malloc(acsize);
    ac = ngx_http_ai_guard_ac_build(acbuf, acsize, lits, nlits);

    if (ac == NULL) {
        abort();
    }

    n = ngx_http_ai_guard_ac_scan(ac, data, size, found);
    k = 0;

    for (i = 0; i < nlits; i++) {
        if (found[i] != ngx_http_ai_guard_fuzz_has(data, size, lits[i].data,
                                                   lits[i].len))
        {
            abort();
        }

        k += found[i];
    }

    if (k != n) {
        abort();
    }

    free(acbuf);

    return 0;
}
