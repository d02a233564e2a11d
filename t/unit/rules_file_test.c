
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The rules file parser: ids, regexes, comments and blank lines, every
 * error with its line, and duplicates among 5,000 ids.
 */

#include <stdio.h>
#include <stdlib.h>
#include <tap.h>
#include <ngx_http_ai_guard_rules_file.h>


#define S(s)  (const u_char *) (s), strlen(s)


static void
test_rules_parser(void)
{
    int                               rc;
    const char                       *text;
    ngx_http_ai_guard_rule_t          rule;
    ngx_http_ai_guard_rules_parser_t  ps;

    text = "# comment\n"
           "\n"
           "a.b:c-d_1  (?i)foo  bar  \r\n"
           "   # indented comment\r\n"
           "\t\r\n"
           "x\t\tbaz#not a comment\n"
           "  lead  qux";

    ngx_http_ai_guard_rules_init(&ps, S(text));

    rc = ngx_http_ai_guard_rules_next(&ps, &rule);
    is_int(rc, NGX_HTTP_AI_GUARD_RULES_OK, "first rule");
    is_int(rule.line, 3, "on line 3");
    is_str(rule.id, rule.id_len, "a.b:c-d_1", "its id");
    is_str(rule.regex, rule.regex_len, "(?i)foo  bar", "its regex, trimmed");

    rc = ngx_http_ai_guard_rules_next(&ps, &rule);
    is_int(rc, NGX_HTTP_AI_GUARD_RULES_OK, "second rule");
    is_int(rule.line, 6, "on line 6");
    is_str(rule.id, rule.id_len, "x", "its id");
    is_str(rule.regex, rule.regex_len, "baz#not a comment",
           "a # inside a regex is the regex's");

    rc = ngx_http_ai_guard_rules_next(&ps, &rule);
    is_int(rc, NGX_HTTP_AI_GUARD_RULES_OK, "third rule, no final newline");
    is_int(rule.line, 7, "on line 7");
    is_str(rule.id, rule.id_len, "lead", "leading blanks skipped");
    is_str(rule.regex, rule.regex_len, "qux", "its regex");

    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_DONE, "done");
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_DONE, "still done");

    ngx_http_ai_guard_rules_init(&ps, S(""));
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_DONE, "empty file");

    ngx_http_ai_guard_rules_init(&ps, S("\n\n# only\n"));
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_DONE, "only comments");

#define ERR(text, want_line, want_err)                                       \
    ngx_http_ai_guard_rules_init(&ps, S(text));                              \
    do {                                                                     \
        rc = ngx_http_ai_guard_rules_next(&ps, &rule);                       \
    } while (rc == NGX_HTTP_AI_GUARD_RULES_OK);                              \
    is_int(rc, NGX_HTTP_AI_GUARD_RULES_ERROR, "error: %s", want_err);        \
    is_int(ps.line, want_line, "on line %d", want_line);                     \
    is_str(ps.err, ps.err ? strlen(ps.err) : 0, want_err, "reason")

    ERR("ok a\nbad/id b\n", 2, "invalid character in rule id");
    ERR("ok a\r\n\r\nlonely\r\n", 3, "missing regex after rule id");
    ERR("lonely", 1, "missing regex after rule id");
    ERR("a x\nb y\n# c\na z\n", 4, "duplicate rule id");
    ERR("é x", 1, "invalid character in rule id");
    ERR("1234567890123456789012345678901234567890123456789012345678901234"
        "5 x", 1, "rule id is longer than 64 characters");
    ERR("a x\nb\xc0 y\n", 2, "invalid character in rule id");
    ERR("a x\n\n\n\n  -- \n", 5, "missing regex after rule id");

#undef ERR

    /* a 64-byte id is fine, a NUL in a regex is not */
    text = "1234567890123456789012345678901234567890123456789012345678901234"
           " x";
    ngx_http_ai_guard_rules_init(&ps, S(text));
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_OK, "64-byte id");

    ngx_http_ai_guard_rules_init(&ps, (const u_char *) "a b\0c", 5);
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_ERROR, "NUL in a regex");
    is_str(ps.err, strlen(ps.err), "NUL byte in regex", "reason");

    /* the caller may go on after an error */
    ngx_http_ai_guard_rules_init(&ps, S("a x\nbad! y\nc z\na w\n"));
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_OK, "rule before an error");
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_ERROR, "the error");
    is_int(ps.line, 2, "on line 2");
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_OK, "the rule after it");
    is_int(rule.line, 3, "on line 3");
    is_int(ngx_http_ai_guard_rules_next(&ps, &rule),
           NGX_HTTP_AI_GUARD_RULES_ERROR, "a duplicate after an error");
    is_int(ps.line, 4, "on line 4");
}


/* many rules: the bloom filter says "maybe" for some, none is a duplicate */

static void
test_rules_many(void)
{
    int                               rc;
    char                             *buf, *p;
    size_t                            i, n;
    ngx_http_ai_guard_rule_t          rule;
    ngx_http_ai_guard_rules_parser_t  ps;

    buf = malloc(5000 * 16);
    p = buf;

    for (i = 0; i < 5000; i++) {
        p += sprintf(p, "r%zu x\n", i);
    }

    ngx_http_ai_guard_rules_init(&ps, (u_char *) buf, p - buf);
    n = 0;

    while ((rc = ngx_http_ai_guard_rules_next(&ps, &rule))
           == NGX_HTTP_AI_GUARD_RULES_OK)
    {
        n++;
    }

    is_int(rc, NGX_HTTP_AI_GUARD_RULES_DONE, "5000 distinct ids");
    is_int(n, 5000, "all read");

    p += sprintf(p, "r4321 y\n");
    ngx_http_ai_guard_rules_init(&ps, (u_char *) buf, p - buf);

    while ((rc = ngx_http_ai_guard_rules_next(&ps, &rule))
           == NGX_HTTP_AI_GUARD_RULES_OK)
    {
        /* void */
    }

    is_int(rc, NGX_HTTP_AI_GUARD_RULES_ERROR, "a late duplicate");
    is_int(ps.line, 5001, "on its line");

    free(buf);
}


int
main(void)
{
    test_rules_parser();
    test_rules_many();

    return done_testing();
}
