
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include "ngx_http_ai_guard_str.h"
#include "ngx_http_ai_guard_literals.h"


/* groups nested deeper than this in a regex: no literal, it always runs */
#define NGX_HTTP_AI_GUARD_LIT_DEPTH   32


typedef struct {
    const u_char                       *p;
    const u_char                       *end;
    int                                 bail;
    int                                 depth;
    size_t                              nsets;
    size_t                              max;
    ngx_http_ai_guard_literals_t       *sets;
} ngx_http_ai_guard_lit_ctx_t;


static void ngx_http_ai_guard_lit_alt(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *best);
static void ngx_http_ai_guard_lit_seq(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *best);
static int ngx_http_ai_guard_lit_group(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *g);
static void ngx_http_ai_guard_lit_class(ngx_http_ai_guard_lit_ctx_t *ctx);
static void ngx_http_ai_guard_lit_keep(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *best,
    const ngx_http_ai_guard_literals_t *cand);
static void ngx_http_ai_guard_lit_better(ngx_http_ai_guard_literals_t *best,
    const ngx_http_ai_guard_literals_t *cand);


/*
 * Words too frequent in prompts to be worth a prefilter hit: a literal
 * from this list ranks below any other, whatever its length.
 */
static const char  *ngx_http_ai_guard_lit_common[] = {
    "the", "and", "you", "your", "are", "for", "with", "this", "that",
    "from", "not", "all", "any", "but", "have", "was", "were", "will",
    "can", "don", "what", "when", "how", "who", "its", "our", "out",
    "about", "then", "than", "there", "their", "they", "them", "more",
    "some", "also", "into", "only", "just", "like", "please", "now", NULL
};


/*
 * Required literals of a regex.  A conservative walk of the pattern: a
 * sequence keeps its best requirement among runs of plain characters
 * (quantified "?", "*" or "{0,}" characters end a run and do not count)
 * and its mandatory groups; an alternation requires one of its branches'
 * requirements, so "(?:ignore|disregard)" gives {ignore, disregard}.
 * Anything unusual (\Q, \x, (?x), verbs, conditionals, callouts) gives up:
 * no literal, the regex always runs.  Literals are lowercased; the scan
 * is case-insensitive, a superset of both (?i) and case-sensitive
 * patterns.  Sound only without PCRE2_UTF and PCRE2_EXTENDED, which
 * nginx does not set unless the pattern does (and then we give up).
 */

int
ngx_http_ai_guard_regex_literals(const u_char *re, size_t len,
    ngx_http_ai_guard_literals_t *lits)
{
    ngx_http_ai_guard_lit_ctx_t  ctx;

    ctx.p = re;
    ctx.end = re + len;
    ctx.bail = 0;
    ctx.depth = 0;
    ctx.nsets = 0;
    ctx.max = 0;
    ctx.sets = NULL;

    lits->n = 0;

    ngx_http_ai_guard_lit_alt(&ctx, lits);

    if (ctx.bail || ctx.p != ctx.end) {
        lits->n = 0;
    }

    return (int) lits->n;
}


/*
 * All the requirements of a regex, each a set of alternatives, a match
 * containing one literal of every set: "(?i)ignore (all )?previous
 * instructions" requires {ignore} and {previous instructions}.  Only a
 * regex without a top-level "|" has more than one; sets[0] is what
 * ngx_http_ai_guard_regex_literals() gives, the others follow best first.
 * Returns the number of sets, 0 when nothing could be proven.
 */

size_t
ngx_http_ai_guard_regex_requires(const u_char *re, size_t len,
    ngx_http_ai_guard_literals_t *sets, size_t max)
{
    size_t                        i, k, sk, sb;
    ngx_http_ai_guard_literals_t  best, t;
    ngx_http_ai_guard_lit_ctx_t   ctx;

    if (max == 0) {
        return 0;
    }

    ctx.p = re;
    ctx.end = re + len;
    ctx.bail = 0;
    ctx.depth = 0;
    ctx.nsets = 0;
    ctx.max = max;
    ctx.sets = sets;

    ngx_http_ai_guard_lit_alt(&ctx, &best);

    if (ctx.bail || ctx.p != ctx.end || best.n == 0) {
        return 0;
    }

    if (ctx.nsets == 0) {
        /* a top-level alternation: one set, of its branches */
        sets[0] = best;
        return 1;
    }

    /* best first, as ngx_http_ai_guard_lit_better() ranks them */

    for (i = 1; i < ctx.nsets; i++) {
        t = sets[i];
        sk = ngx_http_ai_guard_lit_rank(&t);

        for (k = i; k > 0; k--) {
            sb = ngx_http_ai_guard_lit_rank(&sets[k - 1]);

            if (sk < sb || (sk == sb && t.n >= sets[k - 1].n)) {
                break;
            }

            sets[k] = sets[k - 1];
        }

        sets[k] = t;
    }

    return ctx.nsets;
}


static void
ngx_http_ai_guard_lit_alt(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *best)
{
    int                           none;
    size_t                        i, k;
    ngx_http_ai_guard_literals_t  branch;

    none = 0;
    best->n = 0;

    for ( ;; ) {
        ngx_http_ai_guard_lit_seq(ctx, &branch);

        if (ctx->bail) {
            best->n = 0;
            return;
        }

        if (branch.n == 0) {
            none = 1;
        }

        for (i = 0; !none && i < branch.n; i++) {
            for (k = 0; k < best->n; k++) {
                if (best->len[k] == branch.len[i]
                    && memcmp(best->data[k], branch.data[i], branch.len[i])
                       == 0)
                {
                    break;
                }
            }

            if (k < best->n) {
                continue;
            }

            if (best->n == NGX_HTTP_AI_GUARD_LIT_ALTS) {
                none = 1;
                break;
            }

            best->len[best->n] = branch.len[i];
            memcpy(best->data[best->n], branch.data[i], branch.len[i]);
            best->n++;
        }

        if (ctx->p < ctx->end && *ctx->p == '|') {
            ctx->p++;

            if (ctx->depth == 0) {
                /* either branch may match: no set of one is required */
                ctx->max = 0;
                ctx->nsets = 0;
            }

            continue;
        }

        break;
    }

    if (none) {
        best->n = 0;
    }
}


static void
ngx_http_ai_guard_lit_seq(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *best)
{
    int                           kind, opt, usable;
    u_char                        c, run[NGX_HTTP_AI_GUARD_LIT_LEN];
    size_t                        rlen, min, rlen0;
    const u_char                 *q;
    ngx_http_ai_guard_literals_t  g, cand;

    enum { LIT, GROUP, OTHER, NOOP };

    best->n = 0;
    rlen = 0;

    while (ctx->p < ctx->end && *ctx->p != '|' && *ctx->p != ')') {
        c = *ctx->p++;
        kind = OTHER;
        usable = 0;

        switch (c) {

        case '\\':
            if (ctx->p == ctx->end) {
                ctx->bail = 1;
                return;
            }

            c = *ctx->p++;

            if (ngx_http_ai_guard_alnum(c)) {
                if (strchr("dDsSwWbBhHvVRXAzZGK", c) == NULL) {
                    ctx->bail = 1;
                    return;
                }

            } else if (c >= 0x20 && c < 0x7f) {
                kind = LIT;
            }

            break;

        case '[':
            ngx_http_ai_guard_lit_class(ctx);
            break;

        case '(':
            usable = ngx_http_ai_guard_lit_group(ctx, &g);
            kind = (usable == 2) ? NOOP : GROUP;
            break;

        case '.':
        case '^':
        case '$':
            break;

        case '*':
        case '+':
        case '?':
        case '{':
            ctx->bail = 1;
            return;

        default:
            if (c >= 0x20 && c < 0x7f) {
                kind = LIT;
            }
        }

        if (ctx->bail) {
            return;
        }

        if (kind == NOOP) {
            continue;
        }

        /* the quantifier, if any */

        opt = -1;

        if (ctx->p < ctx->end) {
            switch (*ctx->p) {

            case '?':
            case '*':
                opt = 1;
                ctx->p++;
                break;

            case '+':
                opt = 0;
                ctx->p++;
                break;

            case '{':
                q = ctx->p + 1;
                min = 0;
                rlen0 = 0;

                while (q < ctx->end && ngx_http_ai_guard_digit(*q)) {
                    min = (min > 100000) ? min : min * 10 + (*q - '0');
                    q++;
                    rlen0++;
                }

                if (rlen0 == 0) {
                    ctx->bail = 1;
                    return;
                }

                if (q < ctx->end && *q == ',') {
                    q++;

                    while (q < ctx->end && ngx_http_ai_guard_digit(*q)) {
                        q++;
                    }
                }

                if (q == ctx->end || *q != '}') {
                    ctx->bail = 1;
                    return;
                }

                ctx->p = q + 1;
                opt = (min == 0);
                break;
            }

            if (opt != -1 && ctx->p < ctx->end
                && (*ctx->p == '?' || *ctx->p == '+'))
            {
                ctx->p++;
            }
        }

        if (kind == LIT && opt != 1) {
            if (rlen < NGX_HTTP_AI_GUARD_LIT_LEN) {
                run[rlen++] = ngx_http_ai_guard_tolower(c);
            }

            if (opt == -1) {
                continue;
            }
        }

        /* the run ends here */

        if (rlen >= NGX_HTTP_AI_GUARD_LIT_MIN) {
            cand.n = 1;
            cand.len[0] = rlen;
            memcpy(cand.data[0], run, rlen);
            ngx_http_ai_guard_lit_keep(ctx, best, &cand);
        }

        rlen = 0;

        if (kind == GROUP && usable && opt != 1 && g.n > 0) {
            ngx_http_ai_guard_lit_keep(ctx, best, &g);
        }
    }

    if (rlen >= NGX_HTTP_AI_GUARD_LIT_MIN) {
        cand.n = 1;
        cand.len[0] = rlen;
        memcpy(cand.data[0], run, rlen);
        ngx_http_ai_guard_lit_keep(ctx, best, &cand);
    }
}


/*
 * After "(": 1 a group whose requirement is in "g", 0 a group that
 * requires nothing we can use (a lookaround), 2 an option setting such
 * as "(?i)".  Leaves ctx->p after the ")".
 */

static int
ngx_http_ai_guard_lit_group(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *g)
{
    int            usable;
    u_char         c, close;
    const u_char  *p;

    usable = 1;
    p = ctx->p;

    if (p < ctx->end && *p == '*') {
        ctx->bail = 1;
        return 0;
    }

    if (p < ctx->end && *p == '?') {
        p++;

        if (p == ctx->end) {
            ctx->bail = 1;
            return 0;
        }

        c = *p;

        if (c == ':' || c == '|' || c == '>') {
            p++;

        } else if (c == '=' || c == '!') {
            p++;
            usable = 0;

        } else if (c == '<' && p + 1 < ctx->end
                   && (p[1] == '=' || p[1] == '!'))
        {
            p += 2;
            usable = 0;

        } else if (c == '<' || c == '\'' || (c == 'P' && p + 1 < ctx->end
                                             && p[1] == '<'))
        {
            /* a named group */
            close = (c == '\'') ? '\'' : '>';
            p += (c == 'P') ? 2 : 1;

            while (p < ctx->end && *p != close) {
                if (!ngx_http_ai_guard_alnum(*p) && *p != '_') {
                    ctx->bail = 1;
                    return 0;
                }

                p++;
            }

            if (p == ctx->end) {
                ctx->bail = 1;
                return 0;
            }

            p++;

        } else {
            /* option letters: (?i) (?-i) (?i:...); (?x) changes syntax */
            while (p < ctx->end
                   && (ngx_http_ai_guard_alpha(*p) || *p == '-' || *p == '^'))
            {
                if (*p == 'x') {
                    ctx->bail = 1;
                    return 0;
                }

                p++;
            }

            if (p == ctx->end || p == ctx->p + 1) {
                ctx->bail = 1;
                return 0;
            }

            if (*p == ')') {
                ctx->p = p + 1;
                return 2;
            }

            if (*p != ':') {
                ctx->bail = 1;
                return 0;
            }

            p++;
        }
    }

    if (ctx->depth == NGX_HTTP_AI_GUARD_LIT_DEPTH) {
        /* deeper nesting is not worth a prefilter, nor the stack */
        ctx->bail = 1;
        return 0;
    }

    ctx->p = p;
    ctx->depth++;

    ngx_http_ai_guard_lit_alt(ctx, g);

    ctx->depth--;

    if (ctx->bail || ctx->p == ctx->end || *ctx->p != ')') {
        ctx->bail = 1;
        return 0;
    }

    ctx->p++;

    return usable;
}


/* skips a character class after its "[" */

static void
ngx_http_ai_guard_lit_class(ngx_http_ai_guard_lit_ctx_t *ctx)
{
    const u_char  *p;

    p = ctx->p;

    if (p < ctx->end && *p == '^') {
        p++;
    }

    if (p < ctx->end && *p == ']') {
        p++;
    }

    while (p < ctx->end && *p != ']') {
        if (*p == '\\') {
            if (p + 1 < ctx->end
                && ngx_http_ai_guard_alnum(p[1])
                && strchr("dDsSwWhHvVnrtfae", p[1]) == NULL)
            {
                ctx->bail = 1;
                return;
            }

            p += 2;
            continue;
        }

        if (*p == '[' && p + 1 < ctx->end
            && (p[1] == ':' || p[1] == '.' || p[1] == '='))
        {
            /*
             * "[:alpha:]" is a POSIX class; anything else after "[:"
             * PCRE2 reads in ways not worth copying ("[:f]" is four
             * characters of the class): such a regex always runs
             */

            p += 2;

            while (p < ctx->end && *p >= 'a' && *p <= 'z') {
                p++;
            }

            if (p[-1] == ':' || p + 1 >= ctx->end || p[0] != ':'
                || p[1] != ']')
            {
                ctx->bail = 1;
                return;
            }

            p += 2;
            continue;
        }

        p++;
    }

    if (p >= ctx->end) {
        ctx->bail = 1;
        return;
    }

    ctx->p = p + 1;
}


/*
 * A requirement of the top-level sequence is also one of the regex's
 * conjunction; the same set twice is kept once.
 */

static void
ngx_http_ai_guard_lit_keep(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *best,
    const ngx_http_ai_guard_literals_t *cand)
{
    size_t  i, k, worst, r, wr;

    ngx_http_ai_guard_lit_better(best, cand);

    if (ctx->depth != 0 || ctx->max == 0) {
        return;
    }

    for (i = 0; i < ctx->nsets; i++) {
        if (ctx->sets[i].n != cand->n) {
            continue;
        }

        for (k = 0; k < cand->n; k++) {
            if (ctx->sets[i].len[k] != cand->len[k]
                || memcmp(ctx->sets[i].data[k], cand->data[k], cand->len[k])
                   != 0)
            {
                break;
            }
        }

        if (k == cand->n) {
            return;
        }
    }

    if (ctx->nsets < ctx->max) {
        ctx->sets[ctx->nsets++] = *cand;
        return;
    }

    /*
     * Full: the candidate replaces the weakest set it beats, the others
     * keeping the order they were seen in, as ties go to the first seen.
     */

    worst = 0;
    wr = ngx_http_ai_guard_lit_rank(&ctx->sets[0]);

    for (i = 1; i < ctx->nsets; i++) {
        r = ngx_http_ai_guard_lit_rank(&ctx->sets[i]);

        if (r < wr || (r == wr && ctx->sets[i].n >= ctx->sets[worst].n)) {
            worst = i;
            wr = r;
        }
    }

    r = ngx_http_ai_guard_lit_rank(cand);

    if (r > wr || (r == wr && cand->n < ctx->sets[worst].n)) {
        memmove(&ctx->sets[worst], &ctx->sets[worst + 1],
                (ctx->nsets - worst - 1)
                * sizeof(ngx_http_ai_guard_literals_t));
        ctx->sets[ctx->nsets - 1] = *cand;
    }
}


/*
 * The longer shortest literal wins, then the fewer alternatives; a common
 * word counts as length 0.
 */

static void
ngx_http_ai_guard_lit_better(ngx_http_ai_guard_literals_t *best,
    const ngx_http_ai_guard_literals_t *cand)
{
    size_t  bs, cs;

    if (best->n == 0) {
        *best = *cand;
        return;
    }

    bs = ngx_http_ai_guard_lit_rank(best);
    cs = ngx_http_ai_guard_lit_rank(cand);

    if (cs > bs || (cs == bs && cand->n < best->n)) {
        *best = *cand;
    }
}


size_t
ngx_http_ai_guard_lit_rank(const ngx_http_ai_guard_literals_t *lits)
{
    size_t  i, k, len, min;

    min = (size_t) -1;

    for (i = 0; i < lits->n; i++) {
        len = lits->len[i];

        for (k = 0; ngx_http_ai_guard_lit_common[k]; k++) {
            if (strlen(ngx_http_ai_guard_lit_common[k]) == len
                && memcmp(ngx_http_ai_guard_lit_common[k], lits->data[i], len)
                   == 0)
            {
                len = 0;
                break;
            }
        }

        min = (len < min) ? len : min;
    }

    return min;
}
