
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include "ngx_http_ai_guard_str.h"
#include "ngx_http_ai_guard_rules_file.h"


static int ngx_http_ai_guard_rules_line(const u_char *p, const u_char *end,
    ngx_http_ai_guard_rule_t *rule, const char **err);
static uint32_t ngx_http_ai_guard_rules_hash(const u_char *p, size_t len);


void
ngx_http_ai_guard_rules_init(ngx_http_ai_guard_rules_parser_t *ps,
    const u_char *buf, size_t len)
{
    memset(ps, 0, sizeof(ngx_http_ai_guard_rules_parser_t));

    ps->start = buf;
    ps->pos = buf;
    ps->end = buf + len;
}


/*
 * The next rule: NGX_HTTP_AI_GUARD_RULES_OK with "rule" set,
 * NGX_HTTP_AI_GUARD_RULES_DONE at the end of the buffer, or
 * NGX_HTTP_AI_GUARD_RULES_ERROR with ps->line and ps->err set; a caller
 * may go on after an error to report the next one.  Duplicate ids are
 * found with a bloom filter of the ids seen and, when it says "maybe",
 * a rescan of the lines before: no allocation, and linear in practice.
 */

int
ngx_http_ai_guard_rules_next(ngx_http_ai_guard_rules_parser_t *ps,
    ngx_http_ai_guard_rule_t *rule)
{
    int                        rc;
    uint32_t                   h, b1, b2;
    const char                *err;
    const u_char              *line, *eol, *p;
    ngx_http_ai_guard_rule_t   prev;

    while (ps->pos < ps->end) {
        line = ps->pos;
        eol = memchr(line, '\n', ps->end - line);

        if (eol == NULL) {
            eol = ps->end;
            ps->pos = ps->end;

        } else {
            ps->pos = eol + 1;
        }

        ps->line++;

        rc = ngx_http_ai_guard_rules_line(line, eol, rule, &ps->err);

        if (rc == 0) {
            continue;
        }

        if (rc < 0) {
            return NGX_HTTP_AI_GUARD_RULES_ERROR;
        }

        rule->line = ps->line;

        h = ngx_http_ai_guard_rules_hash(rule->id, rule->id_len);
        b1 = h % NGX_HTTP_AI_GUARD_RULES_BLOOM;
        b2 = (h >> 16) % NGX_HTTP_AI_GUARD_RULES_BLOOM;

        if ((ps->bloom[b1 / 32] & (1u << (b1 % 32)))
            && (ps->bloom[b2 / 32] & (1u << (b2 % 32))))
        {
            for (p = ps->start; p < line; p = eol + 1) {
                eol = memchr(p, '\n', line - p);

                if (eol == NULL) {
                    eol = line;
                }

                if (ngx_http_ai_guard_rules_line(p, eol, &prev, &err) == 1
                    && prev.id_len == rule->id_len
                    && memcmp(prev.id, rule->id, rule->id_len) == 0)
                {
                    ps->err = "duplicate rule id";
                    return NGX_HTTP_AI_GUARD_RULES_ERROR;
                }
            }
        }

        ps->bloom[b1 / 32] |= 1u << (b1 % 32);
        ps->bloom[b2 / 32] |= 1u << (b2 % 32);

        return NGX_HTTP_AI_GUARD_RULES_OK;
    }

    return NGX_HTTP_AI_GUARD_RULES_DONE;
}


/* one line without its "\n": 1 a rule, 0 blank or comment, -1 an error */

static int
ngx_http_ai_guard_rules_line(const u_char *p, const u_char *end,
    ngx_http_ai_guard_rule_t *rule, const char **err)
{
    u_char  c;

    while (p < end && ngx_http_ai_guard_space(*p)) {
        p++;
    }

    while (end > p && ngx_http_ai_guard_space(end[-1])) {
        end--;
    }

    if (p == end || *p == '#') {
        return 0;
    }

    rule->id = p;

    while (p < end && !ngx_http_ai_guard_space(*p)) {
        c = *p;

        if (!(ngx_http_ai_guard_alnum(c) || c == '_' || c == '.' || c == ':'
              || c == '-'))
        {
            *err = "invalid character in rule id";
            return -1;
        }

        p++;
    }

    rule->id_len = p - rule->id;

    if (rule->id_len > NGX_HTTP_AI_GUARD_RULE_ID_MAX) {
        *err = "rule id is longer than 64 characters";
        return -1;
    }

    while (p < end && ngx_http_ai_guard_space(*p)) {
        p++;
    }

    if (p == end) {
        *err = "missing regex after rule id";
        return -1;
    }

    if (memchr(p, '\0', end - p) != NULL) {
        *err = "NUL byte in regex";
        return -1;
    }

    rule->regex = p;
    rule->regex_len = end - p;

    return 1;
}


/* FNV-1a */

static uint32_t
ngx_http_ai_guard_rules_hash(const u_char *p, size_t len)
{
    size_t    i;
    uint32_t  h;

    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h = (h ^ p[i]) * 16777619u;
    }

    return h;
}
