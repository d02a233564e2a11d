
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard.h"


/*
 * Bounds on one regex run over one text.  A pattern that backtracks
 * catastrophically stops at the limit instead of holding the worker; the
 * text then counts as a hit of that rule (failing closed), and the error
 * log says so.
 */

#define NGX_HTTP_AI_GUARD_MATCH_LIMIT  1000000
#define NGX_HTTP_AI_GUARD_DEPTH_LIMIT  10000


static ngx_int_t ngx_http_ai_guard_prompt_match(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_rule_t *rule, const u_char *p, size_t len);
static ngx_int_t ngx_http_ai_guard_prompt_add(ngx_conf_t *cf,
    ngx_array_t **rules, ngx_str_t *id, ngx_str_t *regex);


#if (NGX_PCRE2)
static pcre2_match_data     *ngx_http_ai_guard_match_data;
static pcre2_match_context  *ngx_http_ai_guard_match_context;
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

#endif

    return NGX_OK;
}


/*
 * The request parser hands over each decoded text the model will read;
 * rules run here, while the body is still arriving, and what they find
 * is decided on once the whole body has been parsed.
 */

int
ngx_http_ai_guard_prompt_text(void *data, const u_char *p, size_t len)
{
    ngx_http_ai_guard_ctx_t *ctx = data;

    ngx_uint_t                     i;
    ngx_http_ai_guard_rule_t      *rule;
    ngx_http_ai_guard_loc_conf_t  *alcf;

    alcf = ngx_http_get_module_loc_conf(ctx->request,
                                        ngx_http_ai_guard_module);

    if (alcf->deny && ctx->deny_hit == NULL) {
        rule = alcf->deny->elts;

        for (i = 0; i < alcf->deny->nelts; i++) {
            if (ngx_http_ai_guard_prompt_match(ctx, &rule[i], p, len)) {
                ctx->deny_hit = &rule[i];
                break;
            }
        }
    }

    if (alcf->allow && !ctx->allow_hit) {
        rule = alcf->allow->elts;

        for (i = 0; i < alcf->allow->nelts; i++) {
            if (ngx_http_ai_guard_prompt_match(ctx, &rule[i], p, len)) {
                ctx->allow_hit = 1;
                break;
            }
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_ai_guard_prompt_match(ngx_http_ai_guard_ctx_t *ctx,
    ngx_http_ai_guard_rule_t *rule, const u_char *p, size_t len)
{
    int  rc;

#if (NGX_PCRE2)

    rc = pcre2_match(rule->regex, p, len, 0, 0, ngx_http_ai_guard_match_data,
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

    ngx_str_t     *value, id;
    ngx_array_t  **rules;

    value = cf->args->elts;

    rules = (value[0].data[sizeof("ai_guard_prompt_") - 1] == 'd')
            ? &alcf->deny : &alcf->allow;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "id=", 3) != 0 || value[2].len == 3) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
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
                             rules == &alcf->deny ? "deny" : "allow",
                             (*rules ? (*rules)->nelts : 0) + 1)
                 - id.data;
    }

    if (ngx_http_ai_guard_prompt_add(cf, rules, &id, &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* "<id> <regex>" a line; blank lines and # comments skipped */

char *
ngx_http_ai_guard_prompt_rules_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_ai_guard_loc_conf_t *alcf = conf;

    u_char           *p, *last, *line, *eol;
    ssize_t           n;
    ngx_str_t        *value, name, id, regex;
    ngx_uint_t        lineno;
    ngx_file_t        file;
    ngx_file_info_t   fi;

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
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &name);
        return NGX_CONF_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", &name);
        goto failed;
    }

    p = ngx_pnalloc(cf->temp_pool, ngx_file_size(&fi) + 1);
    if (p == NULL) {
        goto failed;
    }

    n = ngx_read_file(&file, p, ngx_file_size(&fi), 0);
    if (n == NGX_ERROR) {
        goto failed;
    }

    last = p + n;
    lineno = 0;

    for (line = p; line < last; line = eol + 1) {
        lineno++;

        eol = ngx_strlchr(line, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        /* trim, including a CR of CRLF files */

        while (line < eol && (*line == ' ' || *line == '\t')) {
            line++;
        }

        for (p = eol; p > line && (p[-1] == ' ' || p[-1] == '\t'
                                   || p[-1] == '\r'); p--)
        {
            /* void */
        }

        if (line == p || *line == '#') {
            continue;
        }

        id.data = line;

        while (line < p && *line != ' ' && *line != '\t') {
            line++;
        }

        id.len = line - id.data;

        while (line < p && (*line == ' ' || *line == '\t')) {
            line++;
        }

        regex.data = line;
        regex.len = p - line;

        if (regex.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_prompt_rules \"%V\", line %ui: "
                               "rule \"%V\" has no regex", &name, lineno,
                               &id);
            goto failed;
        }

        if (ngx_http_ai_guard_prompt_add(cf, &alcf->deny, &id, &regex)
            != NGX_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "ai_guard_prompt_rules \"%V\", line %ui: "
                               "rule \"%V\" is invalid", &name, lineno, &id);
            goto failed;
        }
    }

    ngx_close_file(file.fd);

    return NGX_CONF_OK;

failed:

    ngx_close_file(file.fd);

    return NGX_CONF_ERROR;
}


static ngx_int_t
ngx_http_ai_guard_prompt_add(ngx_conf_t *cf, ngx_array_t **rules,
    ngx_str_t *id, ngx_str_t *regex)
{
    u_char                    errstr[NGX_MAX_CONF_ERRSTR];
    ngx_regex_compile_t       rc;
    ngx_http_ai_guard_rule_t *rule;

    if (*rules == NULL) {
        *rules = ngx_array_create(cf->pool, 4,
                                  sizeof(ngx_http_ai_guard_rule_t));
        if (*rules == NULL) {
            return NGX_ERROR;
        }
    }

    ngx_memzero(&rc, sizeof(ngx_regex_compile_t));

    rc.pattern = *regex;
    rc.pool = cf->pool;
    rc.err.len = NGX_MAX_CONF_ERRSTR;
    rc.err.data = errstr;

    /* compiled once here, with JIT when "pcre_jit on" */

    if (ngx_regex_compile(&rc) != NGX_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "rule \"%V\": %V", id,
                           &rc.err);
        return NGX_ERROR;
    }

    rule = ngx_array_push(*rules);
    if (rule == NULL) {
        return NGX_ERROR;
    }

    rule->id.data = ngx_pstrdup(cf->pool, id);
    if (rule->id.data == NULL) {
        return NGX_ERROR;
    }

    rule->id.len = id->len;
    rule->regex = rc.regex;

    return NGX_OK;
}
