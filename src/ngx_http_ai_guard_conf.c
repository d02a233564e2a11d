
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include "ngx_http_ai_guard_common.h"
#include "ngx_http_ai_guard_conf.h"


/* note where the directive being read is, for a check that comes later */

void
ngx_http_ai_guard_where(ngx_conf_t *cf, ngx_http_ai_guard_where_t *w)
{
    if (cf->conf_file == NULL
        || cf->conf_file->file.fd == NGX_INVALID_FILE)
    {
        /* "nginx -g": no line */
        ngx_str_null(&w->file);
        w->line = 0;
        return;
    }

    /* the name lives as long as the cycle, as nginx's upstreams keep it */
    w->file = cf->conf_file->file.name;
    w->line = cf->conf_file->line;
}


/*
 * ngx_conf_log_error() at a noted place: the same "in file:line" as a
 * message at parse time, from checks that run when the http block is
 * complete (where nginx would print the line of its closing brace).
 */

void ngx_cdecl
ngx_http_ai_guard_conf_error(ngx_conf_t *cf, ngx_http_ai_guard_where_t *w,
    ngx_err_t err, const char *fmt, ...)
{
    u_char   errstr[NGX_MAX_CONF_ERRSTR], *p, *last;
    va_list  args;

    last = errstr + NGX_MAX_CONF_ERRSTR;

    va_start(args, fmt);
    p = ngx_vslprintf(errstr, last, fmt, args);
    va_end(args);

    if (err) {
        p = ngx_log_errno(p, last, err);
    }

    if (w && w->line) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "%*s in %V:%ui",
                      p - errstr, errstr, &w->file, w->line);
        return;
    }

    /* nothing noted: where the reading is now */

    if (cf->conf_file && cf->conf_file->file.fd != NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "%*s in %V:%ui",
                      p - errstr, errstr, &cf->conf_file->file.name,
                      cf->conf_file->line);
        return;
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, 0, "%*s in command line",
                  p - errstr, errstr);
}


/*
 * "a", "b" or "c": the names of a table whose entries start with an
 * ngx_str_t and are "size" bytes apart, n of them (0: up to one with an
 * empty name); each in "quote"s, or followed by "=" when quote is "=".
 */

u_char *
ngx_http_ai_guard_conf_list(ngx_conf_t *cf, void *names, ngx_uint_t n,
    size_t size, char *quote)
{
    u_char      *list, *p;
    size_t       len;
    ngx_str_t   *name;
    ngx_uint_t   i;
    char        *open, *close;

    if (quote[0] == '=') {
        open = "";
        close = "=";

    } else {
        open = quote;
        close = quote;
    }

    len = 1;
    name = names;

    for (i = 0; n ? i < n : name->len != 0; i++) {
        len += name->len + 2 * ngx_strlen(open) + sizeof(" or ");
        name = (ngx_str_t *) ((u_char *) name + size);
    }

    n = i;

    list = ngx_pnalloc(cf->pool, len);
    if (list == NULL) {
        return (u_char *) "";
    }

    p = list;
    name = names;

    for (i = 0; i < n; i++) {
        if (i) {
            p = (i == n - 1) ? ngx_cpymem(p, " or ", 4)
                             : ngx_cpymem(p, ", ", 2);
        }

        p = ngx_sprintf(p, "%s%V%s", open, name, close);
        name = (ngx_str_t *) ((u_char *) name + size);
    }

    *p = '\0';

    return list;
}


/* the declared tiers as a message lists them, or how to declare one */

u_char *
ngx_http_ai_guard_conf_tiers(ngx_conf_t *cf,
    ngx_http_ai_guard_main_conf_t *amcf)
{
    if (amcf->tiers.nelts == 0) {
        return (u_char *) "a tier declared with \"ai_guard_tier <name> ...;\"";
    }

    return ngx_http_ai_guard_conf_list(cf, amcf->tiers.elts,
                                       amcf->tiers.nelts,
                                       sizeof(ngx_http_ai_guard_tier_t),
                                       "\"");
}


/* ngx_conf_set_enum_slot(), with a message that lists the values */

char *
ngx_http_ai_guard_set_enum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t        *value;
    ngx_uint_t       *np, i;
    ngx_conf_enum_t  *e;

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    e = cmd->post;

    for (i = 0; e[i].name.len != 0; i++) {
        if (e[i].name.len == value[1].len
            && ngx_strcasecmp(e[i].name.data, value[1].data) == 0)
        {
            *np = e[i].value;
            return NGX_CONF_OK;
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "%V: invalid value \"%V\", it must be %s",
                       &cmd->name, &value[1],
                       ngx_http_ai_guard_conf_list(cf, e, 0,
                                                   sizeof(ngx_conf_enum_t),
                                                   "\""));

    return NGX_CONF_ERROR;
}


/* ngx_conf_set_size_slot(), naming the value; a size of 0 is refused */

char *
ngx_http_ai_guard_set_size(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    size_t     *sp;
    ngx_str_t  *value;

    sp = (size_t *) (p + cmd->offset);

    if (*sp != NGX_CONF_UNSET_SIZE) {
        return "is duplicate";
    }

    value = cf->args->elts;

    *sp = ngx_parse_size(&value[1]);

    if (*sp == (size_t) NGX_ERROR || *sp == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%V: invalid size \"%V\", it must be a size "
                           "above 0 such as 512k or 1m", &cmd->name,
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* ngx_conf_set_num_slot() within the bounds of cmd->post, named */

char *
ngx_http_ai_guard_set_num(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_int_t                        n;
    ngx_str_t                       *value;
    ngx_uint_t                      *np;
    ngx_http_ai_guard_num_bounds_t  *b;

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    b = cmd->post;

    n = ngx_atoi(value[1].data, value[1].len);

    if (n == NGX_ERROR || n < b->min || n > b->max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%V: invalid number \"%V\", it must be a whole "
                           "number from %i to %i", &cmd->name, &value[1],
                           b->min, b->max);
        return NGX_CONF_ERROR;
    }

    *np = n;

    return NGX_CONF_OK;
}


/*
 * A request header name as nginx reads one: a header with another byte
 * in its name never arrives, so such a key header would never match.
 */

char *
ngx_http_ai_guard_set_header_name(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    char  *p = conf;

    u_char      c;
    ngx_str_t  *field, *value;
    ngx_uint_t  i;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    for (i = 0; i < value[1].len; i++) {
        c = value[1].data[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
            || (c >= '0' && c <= '9') || c == '-' || c == '_')
        {
            continue;
        }

        break;
    }

    if (value[1].len == 0 || i < value[1].len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%V: invalid header name \"%V\", it must be "
                           "letters, digits, \"-\" and \"_\", such as "
                           "X-Api-Key", &cmd->name, &value[1]);
        return NGX_CONF_ERROR;
    }

    *field = value[1];

    return NGX_CONF_OK;
}


/*
 * A file a directive names failed to open.  Paths resolve as nginx's own
 * file directives' do (ssl_certificate, auth_basic_user_file: through
 * ngx_conf_full_name() against the conf prefix), so a relative one is
 * relative to the directory of the main configuration file: say so, with
 * the directory, since an include elsewhere does not change it.
 */

void
ngx_http_ai_guard_open_error(ngx_conf_t *cf, ngx_http_ai_guard_where_t *w,
    char *directive, ngx_str_t *value, ngx_str_t *name, ngx_err_t err)
{
    u_char  errstr[NGX_MAX_ERROR_STR], *p;

    p = ngx_log_errno(errstr, errstr + sizeof(errstr), err);

    if (name->data == value->data) {
        ngx_http_ai_guard_conf_error(cf, w, 0,
                                     "%s \"%V\": " ngx_open_file_n " \"%V\" "
                                     "failed%*s", directive, value, name,
                                     p - errstr, errstr);
        return;
    }

    ngx_http_ai_guard_conf_error(cf, w, 0,
                                 "%s \"%V\": " ngx_open_file_n " \"%V\" "
                                 "failed%*s; a relative path is relative "
                                 "to \"%V\", the directory of the main "
                                 "configuration file", directive, value,
                                 name, p - errstr, errstr,
                                 &cf->cycle->conf_prefix);
}
