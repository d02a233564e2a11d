
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_conf.h"
#include "ngx_http_ai_guard_error.h"
#include "ngx_http_ai_guard_redact.h"
#include "ngx_http_ai_guard_rules_module.h"


/*
 * Bounds on one regex run over one text.  A pattern that backtracks
 * catastrophically stops at the limit instead of holding the worker; the
 * text then counts as a hit of that rule (failing closed), and the error
 * log says so.
 */

#define NGX_HTTP_AI_GUARD_MATCH_LIMIT    1000000
#define NGX_HTTP_AI_GUARD_DEPTH_LIMIT    10000
#define NGX_HTTP_AI_GUARD_JIT_STACK_MIN  (32 * 1024)
#define NGX_HTTP_AI_GUARD_JIT_STACK_MAX  (1024 * 1024)

/*
 * Rules read code points, not bytes: \s, \w, \b and (?i) as Unicode
 * has them (the texts are valid UTF-8, normalised).  The prefilter's
 * ASCII case folding stays sound: the two code points that match an
 * ASCII letter caselessly, U+212A and U+017F, are folded to K and s by
 * the normaliser.
 */
#if (NGX_PCRE2)
#define NGX_HTTP_AI_GUARD_RULE_VERBS   "(*UTF)(*UCP)"
#else
#define NGX_HTTP_AI_GUARD_RULE_VERBS   "(*UTF8)(*UCP)"
#endif


static void ngx_http_ai_guard_prompt_one(ngx_http_ai_guard_loc_conf_t *alcf,
    ngx_http_ai_guard_ctx_t *ctx, ngx_str_t *text);
static ngx_http_ai_guard_prompt_rule_t *ngx_http_ai_guard_prompt_run(
    ngx_http_ai_guard_ctx_t *ctx, ngx_http_ai_guard_ruleset_t *set,
    const u_char *p, size_t len);
static ngx_int_t ngx_http_ai_guard_prompt_blocked(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v, ngx_str_t *reason);
static ngx_int_t ngx_http_ai_guard_prompt_match(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_prompt_rule_t *rule, const u_char *p, size_t len);
static ngx_int_t ngx_http_ai_guard_prompt_add(ngx_conf_t *cf,
    ngx_http_ai_guard_ruleset_t **set, ngx_str_t *id, ngx_str_t *regex);
static ngx_int_t ngx_http_ai_guard_prompt_prefilter(ngx_conf_t *cf,
    ngx_http_ai_guard_ruleset_t *set);
#if (NGX_PCRE2)
static pcre2_code *ngx_http_ai_guard_prompt_jit(ngx_conf_t *cf,
    ngx_str_t *pattern);
static void ngx_http_ai_guard_prompt_free(void *data);
#endif


#if (NGX_PCRE2)
static pcre2_match_data     *ngx_http_ai_guard_match_data;
static pcre2_match_context  *ngx_http_ai_guard_match_context;
static pcre2_jit_stack      *ngx_http_ai_guard_jit_stack;
#endif


ngx_int_t
ngx_http_ai_guard_prompt_init(ngx_cycle_t *cycle)
{
#if (NGX_PCRE2)

    if (ngx_http_ai_guard_match_data != NULL) {
        return NGX_OK;
    }

    ngx_http_ai_guard_match_data = pcre2_match_data_create(1, NULL);
    ngx_http_ai_guard_match_context = pcre2_match_context_create(NULL);

    if (ngx_http_ai_guard_match_data == NULL
        || ngx_http_ai_guard_match_context == NULL)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "ai_guard: pcre2 match data allocation failed");
        return NGX_ERROR;
    }

    pcre2_set_match_limit(ngx_http_ai_guard_match_context,
                          NGX_HTTP_AI_GUARD_MATCH_LIMIT);
    pcre2_set_depth_limit(ngx_http_ai_guard_match_context,
                          NGX_HTTP_AI_GUARD_DEPTH_LIMIT);

    /*
     * JIT code backtracks on a stack of its own, 32 KB on the machine
     * stack unless given one: a rule deep in backtracking on a long text
     * would stop there (counted as a hit) where the interpreter's heap
     * frames go on to the limits above.  One of up to 1 MB a worker,
     * taken as it is needed.
     */

    ngx_http_ai_guard_jit_stack = pcre2_jit_stack_create(
                                      NGX_HTTP_AI_GUARD_JIT_STACK_MIN,
                                      NGX_HTTP_AI_GUARD_JIT_STACK_MAX, NULL);

    if (ngx_http_ai_guard_jit_stack != NULL) {
        pcre2_jit_stack_assign(ngx_http_ai_guard_match_context, NULL,
                               ngx_http_ai_guard_jit_stack);
    }

#endif

    return NGX_OK;
}


/*
 * The request parser hands over each decoded text the model will read.
 * They are kept, not matched yet: the rules run after the limits, so that
 * a client over its limits costs no regex time (docs/rules.md).
 */

int
ngx_http_ai_guard_prompt_text(void *data, const ngx_http_ai_guard_text_t *t)
{
    ngx_http_ai_guard_ctx_t *ctx = data;

    ngx_http_ai_guard_loc_conf_t     *alcf;
    ngx_http_ai_guard_prompt_text_t  *text;

    alcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_ai_guard_module);

    if (alcf->deny == NULL && alcf->allow == NULL && alcf->pii == 0) {
        return 0;
    }

    if (ctx->texts == NULL) {
        ctx->texts = ngx_array_create(ctx->request->pool, 4,
                                      sizeof(ngx_http_ai_guard_prompt_text_t));
        if (ctx->texts == NULL) {
            return 1;
        }
    }

    text = ngx_array_push(ctx->texts);
    if (text == NULL) {
        return 1;
    }

    text->text.data = ngx_pnalloc(ctx->request->pool, t->len);
    if (text->text.data == NULL) {
        return 1;
    }

    /* what the rules read: ASCII is its own normal form */

    if (t->ascii) {
        ngx_memcpy(text->text.data, t->data, t->len);
        text->text.len = t->len;

    } else {
        text->text.len = ngx_http_ai_guard_norm(text->text.data, t->data,
                                                t->len);
    }

    text->group = t->group;
    text->start = t->start;
    text->end = t->end;

    return 0;
}


/*
 * The deny and allow rules and the PII detectors over the kept texts, in
 * the order of the error contract.  NGX_DECLINED with v->status set: a
 * rule refuses; NGX_DECLINED with it zero: the prompt passes (a PII hit
 * with "ai_guard_pii_action log" only logs).
 */

ngx_int_t
ngx_http_ai_guard_prompt_check(ngx_http_request_t *r,
    ngx_http_ai_guard_loc_conf_t *alcf, ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_verdict_t *v)
{
    u_char                           *p;
    size_t                            len;
    ngx_int_t                         rc;
    ngx_str_t                         reason, joined;
    ngx_uint_t                        i, j, n;
    ngx_http_ai_guard_prompt_rule_t  *rule;
    ngx_http_ai_guard_prompt_text_t  *text;

    text = ctx->texts ? ctx->texts->elts : NULL;
    n = ctx->texts ? ctx->texts->nelts : 0;

    for (i = 0; i < n; i = j) {

        /* a run of parts of one content array: each, then joined */

        ngx_http_ai_guard_prompt_one(alcf, ctx, &text[i].text);
        len = text[i].text.len;

        for (j = i + 1;
             j < n && text[i].group != 0 && text[j].group == text[i].group;
             j++)
        {
            ngx_http_ai_guard_prompt_one(alcf, ctx, &text[j].text);
            len += text[j].text.len;
        }

        if (j - i < 2) {
            continue;
        }

        /*
         * A phrase split across parts ("Ignore all prev", "ious
         * instructions") is one text to the model: the rules read the
         * parts joined, with nothing between them.
         */

        joined.data = ngx_pnalloc(r->pool, len);
        if (joined.data == NULL) {
            return NGX_ERROR;
        }

        p = joined.data;

        for ( /* void */ ; i < j; i++) {
            p = ngx_cpymem(p, text[i].text.data, text[i].text.len);
        }

        joined.len = len;

        ngx_http_ai_guard_prompt_one(alcf, ctx, &joined);
    }

    rule = ctx->deny_hit;

    ngx_log_debug5(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "ai_guard rules: %ui texts, deny:\"%*s\" allow:%ui pii:%s",
                   ctx->texts ? ctx->texts->nelts : 0,
                   rule ? rule->id.len : 1,
                   rule ? rule->id.data : (u_char *) "-",
                   (ngx_uint_t) ctx->allow_hit,
                   ctx->pii_hit ? ctx->pii_hit : "-");

    if (rule) {
        return ngx_http_ai_guard_prompt_blocked(r, v, &rule->id);
    }

    if (alcf->allow && !ctx->allow_hit) {
        ngx_str_set(&reason, "allow");
        return ngx_http_ai_guard_prompt_blocked(r, v, &reason);
    }

    if (alcf->pii && alcf->pii_action == NGX_HTTP_AI_GUARD_PII_REDACT) {
        rc = ngx_http_ai_guard_redact(r, alcf, ctx);

        if (rc != NGX_DECLINED) {
            return (rc == NGX_OK) ? NGX_DECLINED : NGX_ERROR;
        }

        /* a finding only the normal form shows: refused as with block */
    }

    if (ctx->pii_hit == NULL) {
        return NGX_DECLINED;
    }

    reason.len = ngx_strlen(ctx->pii_hit) + sizeof("pii:") - 1;
    reason.data = ngx_pnalloc(r->pool, reason.len);
    if (reason.data == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(reason.data, "pii:%s", ctx->pii_hit);

    if (alcf->pii_action == NGX_HTTP_AI_GUARD_PII_LOG) {
        /* which detector, never the text it found */
        ngx_log_error(alcf->log_level, r->connection->log, 0,
                      "ai_guard: %V in the prompt, passed on", &reason);

        return NGX_DECLINED;
    }

    return ngx_http_ai_guard_prompt_blocked(r, v, &reason);
}


/* the checks not decided yet, over one text */

static void
ngx_http_ai_guard_prompt_one(ngx_http_ai_guard_loc_conf_t *alcf,
    ngx_http_ai_guard_ctx_t *ctx, ngx_str_t *text)
{
    size_t    off;
    unsigned  bit;

    if (alcf->deny && ctx->deny_hit == NULL) {
        ctx->deny_hit = ngx_http_ai_guard_prompt_run(ctx, alcf->deny,
                                                     text->data, text->len);
    }

    if (alcf->allow && !ctx->allow_hit
        && ngx_http_ai_guard_prompt_run(ctx, alcf->allow, text->data,
                                        text->len))
    {
        ctx->allow_hit = 1;
    }

    /* redact scans each text as it places the placeholders */

    if (alcf->pii && ctx->pii_hit == NULL
        && alcf->pii_action != NGX_HTTP_AI_GUARD_PII_REDACT)
    {
        bit = ngx_http_ai_guard_pii_scan(text->data, text->len, alcf->pii,
                                         &off);

        if (bit) {
            ctx->pii_hit = ngx_http_ai_guard_pii_name(bit);
        }
    }
}


/* the rule id or detector goes to the client; the matched text never */

static ngx_int_t
ngx_http_ai_guard_prompt_blocked(ngx_http_request_t *r,
    ngx_http_ai_guard_verdict_t *v, ngx_str_t *reason)
{
    char  *what;

    ngx_http_ai_guard_set_verdict(v, NGX_HTTP_BAD_REQUEST, "prompt_blocked",
                                  NULL);

    v->reason = *reason;

    if (reason->len > 4 && ngx_strncmp(reason->data, "pii:", 4) == 0) {
        what = "it holds personal data or a secret: remove it";

    } else if (reason->len == 5 && ngx_strncmp(reason->data, "allow", 5) == 0)
    {
        what = "it is not about what this API allows: keep to its "
               "purpose";

    } else {
        what = "change the prompt";
    }

    return ngx_http_ai_guard_verdict_message(r, v,
                                "The prompt was blocked by the rule \"%V\": "
                                "%s and retry.", reason, what) == NGX_OK
           ? NGX_DECLINED : NGX_ERROR;
}


/* the first rule of the set that matches, the prefilter permitting */

static ngx_http_ai_guard_prompt_rule_t *
ngx_http_ai_guard_prompt_run(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_ruleset_t *set, const u_char *p, size_t len)
{
    ngx_uint_t                        i, j;
    ngx_http_ai_guard_prompt_rule_t  *rule;

    if (set->ac) {
        if (ctx->found_size < set->nlits) {
            ctx->found = ngx_palloc(ctx->request->pool, set->nlits);
            if (ctx->found == NULL) {
                ctx->found_size = 0;
                return NULL;
            }

            ctx->found_size = set->nlits;
        }

        if (set->vscan) {
            ngx_http_ai_guard_vscan_scan(set->vscan, p, len, ctx->found);

        } else {
            ngx_http_ai_guard_ac_scan(set->ac, p, len, ctx->found);
        }
    }

    rule = set->rules.elts;

    for (i = 0; i < set->rules.nelts; i++) {

        for (j = 0; j < rule[i].nlits; j++) {
            if (!ctx->found[rule[i].lit_first + j]) {
                break;
            }
        }

        if (j < rule[i].nlits) {
            /* a requirement of the rule's regex is absent */
            continue;
        }

        if (ngx_http_ai_guard_prompt_match(ctx, &rule[i], p, len)) {
            return &rule[i];
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_ai_guard_prompt_match(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_prompt_rule_t *rule, const u_char *p, size_t len)
{
    int  rc;

#if (NGX_PCRE2)

    /* the parser has validated the UTF-8, and the normaliser keeps it */

    rc = pcre2_match(rule->regex, p, len, 0, PCRE2_NO_UTF_CHECK,
                     ngx_http_ai_guard_match_data,
                     ngx_http_ai_guard_match_context);

#else

    ngx_str_t  s;

    s.data = (u_char *) p;
    s.len = len;

    rc = ngx_regex_exec(rule->regex, &s, NULL, 0);

#endif

    if (rc >= 0) {
        return 1;
    }

    if (rc == NGX_REGEX_NO_MATCHED) {
        return 0;
    }

    ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                  "ai_guard: rule \"%V\" stopped at its match limit (%d) "
                  "on a %uz-byte text: counted as a hit", &rule->id, rc,
                  len);

    ctx->rule_error = 1;

    return 1;
}


char *
ngx_http_ai_guard_prompt_rule(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_guard_loc_conf_t *alcf = conf;

    ngx_str_t                     *value, id;
    ngx_http_ai_guard_ruleset_t  **set;

    value = cf->args->elts;

    set = (value[0].data[sizeof("ai_guard_prompt_") - 1] == 'd')
          ? &alcf->deny : &alcf->allow;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "id=", 3) != 0 || value[2].len == 3) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%V: invalid parameter \"%V\", it must be "
                               "id=<name>, such as id=override", &value[0],
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        id.data = value[2].data + 3;
        id.len = value[2].len - 3;

    } else {
        /* rules without a name are numbered in the order they come */
        id.data = ngx_pnalloc(cf->pool, sizeof("allow-") - 1 + NGX_INT_T_LEN);
        if (id.data == NULL) {
            return NGX_CONF_ERROR;
        }

        id.len = ngx_sprintf(id.data, "%s-%ui",
                             set == &alcf->deny ? "deny" : "allow",
                             (*set ? (*set)->rules.nelts : 0) + 1)
                 - id.data;
    }

    if (ngx_http_ai_guard_prompt_add(cf, set, &id, &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "<id> <regex>" a line, deny rules; the file's grammar is in rules.c */

char *
ngx_http_ai_guard_prompt_rules_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_guard_loc_conf_t *alcf = conf;

    int                                rc;
    u_char                            *buf;
    ssize_t                            n;
    ngx_str_t                         *value, name, id, regex;
    ngx_file_t                         file;
    ngx_file_info_t                    fi;
    ngx_http_ai_guard_rule_t           rule;
    ngx_http_ai_guard_rules_parser_t  *ps;

    value = cf->args->elts;
    name = value[1];

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = name;
    file.log = cf->log;

    file.fd = ngx_open_file(name.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_http_ai_guard_open_error(cf, NULL, "ai_guard_prompt_rules",
                                     &value[1], &name, ngx_errno);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", &name);
        goto failed;
    }

    buf = ngx_pnalloc(cf->temp_pool, ngx_file_size(&fi) + 1);
    ps = ngx_palloc(cf->temp_pool, sizeof(ngx_http_ai_guard_rules_parser_t));
    if (buf == NULL || ps == NULL) {
        goto failed;
    }

    n = ngx_read_file(&file, buf, ngx_file_size(&fi), 0);
    if (n == NGX_ERROR) {
        goto failed;
    }

    ngx_http_ai_guard_rules_init(ps, buf, n);

    for ( ;; ) {
        rc = ngx_http_ai_guard_rules_next(ps, &rule);

        if (rc == NGX_HTTP_AI_GUARD_RULES_DONE) {
            break;
        }

        if (rc == NGX_HTTP_AI_GUARD_RULES_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_prompt_rules \"%V\", line %uz: %s",
                               &name, ps->line, ps->err);
            goto failed;
        }

        id.data = (u_char *) rule.id;
        id.len = rule.id_len;
        regex.data = (u_char *) rule.regex;
        regex.len = rule.regex_len;

        if (ngx_http_ai_guard_prompt_add(cf, &alcf->deny, &id, &regex)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_prompt_rules \"%V\", line %uz: "
                               "rule \"%V\" is invalid", &name, rule.line,
                               &id);
            goto failed;
        }
    }

    ngx_close_file(file.fd);

    return NGX_CONF_OK;

failed:

    ngx_close_file(file.fd);

    return NGX_CONF_ERROR;
}


/* ai_guard_pii email | card | ssn | phone | ipv4 | secret | all | off */

char *
ngx_http_ai_guard_pii(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_ai_guard_loc_conf_t *alcf = conf;

    unsigned     bit;
    ngx_str_t   *value;
    ngx_uint_t   i;

    if (alcf->pii != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    alcf->pii = 0;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        bit = ngx_http_ai_guard_pii_bit(value[i].data, value[i].len);

        if (bit == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_pii: invalid detector \"%V\", it "
                               "must be email, card, ssn, phone, ipv4, "
                               "secret, all, or off alone", &value[i]);
            return NGX_CONF_ERROR;
        }

        alcf->pii |= bit;
    }

    return NGX_CONF_OK;
}


/*
 * Rule sets are inherited whole, as nginx arrays are; each set gets its
 * prefilter once, when the configuration is complete.
 */

char *
ngx_http_ai_guard_prompt_merge(ngx_conf_t *cf,
    ngx_http_ai_guard_loc_conf_t *prev, ngx_http_ai_guard_loc_conf_t *conf)
{
    if (conf->deny == NULL) {
        conf->deny = prev->deny;
    }

    if (conf->allow == NULL) {
        conf->allow = prev->allow;
    }

    if (ngx_http_ai_guard_prompt_prefilter(cf, conf->deny) != NGX_OK
        || ngx_http_ai_guard_prompt_prefilter(cf, conf->allow) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_ai_guard_prompt_add(ngx_conf_t *cf,
    ngx_http_ai_guard_ruleset_t **set, ngx_str_t *id, ngx_str_t *regex)
{
    u_char                           *p, errstr[NGX_MAX_CONF_ERRSTR];
    size_t                            n;
    ngx_regex_compile_t               rc;
    ngx_http_ai_guard_prompt_rule_t  *rule;

    if (*set == NULL) {
        *set = ngx_pcalloc(cf->pool, sizeof(ngx_http_ai_guard_ruleset_t));
        if (*set == NULL) {
            return NGX_ERROR;
        }

        if (ngx_array_init(&(*set)->rules, cf->pool, 8,
                           sizeof(ngx_http_ai_guard_prompt_rule_t))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern.len = sizeof(NGX_HTTP_AI_GUARD_RULE_VERBS) - 1 + regex->len;
    rc.pattern.data = ngx_pnalloc(cf->pool, rc.pattern.len);
    if (rc.pattern.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ngx_cpymem(rc.pattern.data, NGX_HTTP_AI_GUARD_RULE_VERBS,
                          sizeof(NGX_HTTP_AI_GUARD_RULE_VERBS) - 1),
               regex->data, regex->len);

    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    /* compiled once here */

    if (ngx_regex_compile(&rc) != NGX_OK) {

        /* nginx quotes the pattern it compiled: the operator's is quoted */

        p = ngx_strnstr(rc.err.data, "\"" NGX_HTTP_AI_GUARD_RULE_VERBS,
                        rc.err.len);

        if (p != NULL) {
            p++;
            n = sizeof(NGX_HTTP_AI_GUARD_RULE_VERBS) - 1;
            ngx_memmove(p, p + n, rc.err.data + rc.err.len - (p + n));
            rc.err.len -= n;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%V: rule \"%V\": %V; it must be a PCRE2 "
                           "regular expression", &((ngx_str_t *)
                           cf->args->elts)[0], id, &rc.err);
        return NGX_ERROR;
    }

#if (NGX_PCRE2)

    /*
     * JIT whether or not "pcre_jit" is on: a rule that runs costs 4 to 5
     * times more without it (docs/rules.md).  nginx's regex allocates
     * from a pool it sets only inside ngx_regex_compile(), so JIT memory
     * asked for afterwards is refused (PCRE2_ERROR_NOMEMORY) and the
     * interpreter ran: the pattern, checked above with nginx's messages,
     * is compiled again with libc's allocator, JIT-compiled, and freed
     * with the configuration.  Without JIT support in PCRE2 the
     * interpreter runs.
     */

    rc.regex = ngx_http_ai_guard_prompt_jit(cf, &rc.pattern);
    if (rc.regex == NULL) {
        return NGX_ERROR;
    }

#endif

    rule = ngx_array_push(&(*set)->rules);
    if (rule == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_ai_guard_prompt_rule_t));

    rule->id.data = ngx_pstrdup(cf->pool, id);
    rule->pattern.data = ngx_pstrdup(cf->pool, regex);
    if (rule->id.data == NULL || rule->pattern.data == NULL) {
        return NGX_ERROR;
    }

    rule->id.len = id->len;
    rule->pattern.len = regex->len;
    rule->regex = rc.regex;

    return NGX_OK;
}


#if (NGX_PCRE2)

static pcre2_code *
ngx_http_ai_guard_prompt_jit(ngx_conf_t *cf, ngx_str_t *pattern)
{
    int                  err;
    PCRE2_SIZE           off;
    pcre2_code          *re;
    ngx_pool_cleanup_t  *cln;

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    re = pcre2_compile(pattern->data, pattern->len, 0, &err, &off, NULL);
    if (re == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "pcre2_compile() failed: %d at %uz", err,
                           (size_t) off);
        return NULL;
    }

    cln->handler = ngx_http_ai_guard_prompt_free;
    cln->data = re;

    (void) pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);

    return re;
}


static void
ngx_http_ai_guard_prompt_free(void *data)
{
    pcre2_code_free(data);
}

#endif


static ngx_int_t
ngx_http_ai_guard_prompt_prefilter(ngx_conf_t *cf,
    ngx_http_ai_guard_ruleset_t *set)
{
    int                               impl;
    u_char                           *p;
    size_t                            size, nsets, k;
    ngx_uint_t                        i, j, group;
    ngx_array_t                       lits;
    ngx_http_ai_guard_lit_t          *lit;
    ngx_http_ai_guard_literals_t     *sets;
    ngx_http_ai_guard_prompt_rule_t  *rule;

    if (set == NULL || set->ac != NULL || set->nlits != 0) {
        return NGX_OK;
    }

    sets = ngx_palloc(cf->temp_pool, NGX_HTTP_AI_GUARD_LIT_SETS
                                     * sizeof(ngx_http_ai_guard_literals_t));
    if (sets == NULL) {
        return NGX_ERROR;
    }

    if (ngx_array_init(&lits, cf->temp_pool, 16,
                       sizeof(ngx_http_ai_guard_lit_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    group = 0;
    rule = set->rules.elts;

    for (i = 0; i < set->rules.nelts; i++) {

        nsets = ngx_http_ai_guard_regex_requires(rule[i].pattern.data,
                                                 rule[i].pattern.len, sets,
                                                 NGX_HTTP_AI_GUARD_LIT_SETS);

        /*
         * A rule runs only when every one of its groups has a hit; a
         * group of common words ("you", "the") would pass nearly every
         * text and only cost the scan, so it is left out.
         */

        rule[i].lit_first = group;
        rule[i].nlits = 0;

        for (k = 0; k < nsets; k++) {
            if (k > 0 && ngx_http_ai_guard_lit_rank(&sets[k]) == 0) {
                break;
            }

            for (j = 0; j < sets[k].n; j++) {
                p = ngx_pnalloc(cf->pool, sets[k].len[j]);
                lit = ngx_array_push(&lits);
                if (p == NULL || lit == NULL) {
                    return NGX_ERROR;
                }

                lit->data = ngx_cpymem(p, sets[k].data[j], sets[k].len[j])
                            - sets[k].len[j];
                lit->len = sets[k].len[j];
                lit->group = group;
            }

            group++;
            rule[i].nlits++;
        }
    }

    set->nlits = group;

    if (lits.nelts == 0) {
        return NGX_OK;
    }

    size = ngx_http_ai_guard_ac_size(lits.elts, lits.nelts);

    p = ngx_palloc(cf->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    set->ac = ngx_http_ai_guard_ac_build(p, size, lits.elts, lits.nelts);
    if (set->ac == NULL) {
        return NGX_ERROR;
    }

    /*
     * The vector scan where the CPU has AVX2 and every literal is three
     * bytes or more, ASCII in its first four (the prefilter's are); the
     * DFA stays for the rest.
     */

    impl = ngx_http_ai_guard_vscan_cpu();
    size = ngx_http_ai_guard_vscan_size(lits.elts, lits.nelts);

    if (impl == NGX_HTTP_AI_GUARD_VSCAN_NONE || size == 0) {
        return NGX_OK;
    }

    p = ngx_palloc(cf->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    set->vscan = ngx_http_ai_guard_vscan_build(p, size, lits.elts,
                                               lits.nelts, impl);
    if (set->vscan == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}
