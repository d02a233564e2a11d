
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The request-body rewriter: decode and escape round trips, edits
 * applied in order and refused out of order, a member set in every
 * shape the body can have it, the request parser's text spans (whole
 * and fed byte by byte), and PII findings' ends.
 */

#include <stdlib.h>
#include <tap.h>
#include <ngx_http_ai_guard_rewrite.h>
#include <ngx_http_ai_guard_request.h>
#include <ngx_http_ai_guard_pii.h>


#define S(s)  (const u_char *) (s), strlen(s)


static void
test_escape(void)
{
    u_char         out[64], back[64];
    size_t         n;
    ssize_t        d;
    const u_char   text[] = "a\"b\\c\n\t\x01\x1f" "\xc3\xa9/";

    n = ngx_http_ai_guard_rewrite_escape_len(text, sizeof(text) - 1);
    is_int(ngx_http_ai_guard_rewrite_escape(out, text, sizeof(text) - 1)
           - out, n, "escape writes what escape_len says");
    is_str(out, n, "\"a\\\"b\\\\c\\n\\t\\u0001\\u001f\xc3\xa9/\"",
           "quote, backslash and controls escaped, UTF-8 as it is");

    d = ngx_http_ai_guard_rewrite_decode(out, n, back);
    ok(d == (ssize_t) sizeof(text) - 1
       && memcmp(back, text, sizeof(text) - 1) == 0,
       "decode(escape(x)) is x");

    d = ngx_http_ai_guard_rewrite_decode(S("\"\\u00e9\\ud83d\\ude00\\/\""),
                                         back);
    is_str(back, d, "\xc3\xa9\xf0\x9f\x98\x80/",
           "\\u escapes and a surrogate pair decode to UTF-8");

    is_int(ngx_http_ai_guard_rewrite_decode(S("\"\\ud83d\""), back), -1,
           "a lone surrogate is not decoded");
    is_int(ngx_http_ai_guard_rewrite_decode(S("\"a\nb\""), back), -1,
           "a raw control character is not a string");
    is_int(ngx_http_ai_guard_rewrite_decode(S("\"a\\x\""), back), -1,
           "an unknown escape is not a string");
    is_int(ngx_http_ai_guard_rewrite_decode(S("abc"), back), -1,
           "no quotes, no string");
}


static void
test_apply(void)
{
    u_char                            out[64];
    const char                       *body = "{\"a\":\"xy\",\"b\":1}";
    ngx_http_ai_guard_rewrite_edit_t  e[2];

    e[0].start = 5;
    e[0].end = 9;
    e[0].data = (const u_char *) "\"[EMAIL_1]\"";
    e[0].len = 11;
    e[1].start = 14;
    e[1].end = 15;
    e[1].data = (const u_char *) "22";
    e[1].len = 2;

    is_int(ngx_http_ai_guard_rewrite_len(strlen(body), e, 2),
           strlen(body) + 7 + 1, "the length after two edits");
    is_int(ngx_http_ai_guard_rewrite_apply(S(body), e, 2, out), 0,
           "two edits in order apply");
    is_str(out, ngx_http_ai_guard_rewrite_len(strlen(body), e, 2),
           "{\"a\":\"[EMAIL_1]\",\"b\":22}", "both replaced, the rest kept");

    e[1].start = 6;
    is_int(ngx_http_ai_guard_rewrite_apply(S(body), e, 2, out), -1,
           "overlapping edits are refused");

    e[1].start = 15;
    e[1].end = 17;
    is_int(ngx_http_ai_guard_rewrite_apply(S(body), e, 2, out), -1,
           "an edit past the body is refused");
}


static void
member(const char *body, int rc, const char *want, const char *what)
{
    u_char                            buf[128], out[256];
    int                               got;
    ngx_http_ai_guard_rewrite_edit_t  e;

    got = ngx_http_ai_guard_rewrite_member(S(body), "stream_options",
                                           "include_usage", "true", buf, &e);
    is_int(got, rc, "%s: rc", what);

    if (got != 0 || want == NULL) {
        return;
    }

    (void) ngx_http_ai_guard_rewrite_apply(S(body), &e, 1, out);
    is_str(out, ngx_http_ai_guard_rewrite_len(strlen(body), &e, 1), want,
           "%s", what);
}


static void
test_member(void)
{
    member("{\"stream\":true}", 0,
           "{\"stream_options\":{\"include_usage\":true},\"stream\":true}",
           "absent: the object is added first");
    member(" { } ", 0, " {\"stream_options\":{\"include_usage\":true} } ",
           "an empty body object");
    member("{\"stream_options\":null,\"stream\":true}", 0,
           "{\"stream_options\":{\"include_usage\":true},\"stream\":true}",
           "null: replaced by the object");
    member("{\"stream_options\":{},\"s\":1}", 0,
           "{\"stream_options\":{\"include_usage\":true},\"s\":1}",
           "an empty object: the member added");
    member("{\"stream_options\" : { \"x\" : [1,{\"]\":\"}\"}] } }", 0,
           "{\"stream_options\" : {\"include_usage\":true, \"x\" : "
           "[1,{\"]\":\"}\"}] } }",
           "another member: added before it, brackets in strings skipped");
    member("{\"stream_options\":{\"include_usage\":false}}", 0,
           "{\"stream_options\":{\"include_usage\":true}}",
           "false: replaced");
    member("{\"stream_options\":{\"include_usage\":true}}", 1, NULL,
           "already true: no edit");
    member("{\"a\":\"\\\"stream_options\\\"\",\"stream_\\u006fptions\":"
           "{\"include\\u005fusage\":null}}", 0,
           "{\"a\":\"\\\"stream_options\\\"\",\"stream_\\u006fptions\":"
           "{\"include\\u005fusage\":true}}",
           "names compared decoded, not inside strings");
    member("{\"\\u0073\\u0074\\u0072\\u0065\\u0061\\u006d\\u005f\\u006f"
           "\\u0070\\u0074\\u0069\\u006f\\u006e\\u0073\":{\"\\u0069\\u006e"
           "\\u0063\\u006c\\u0075\\u0064\\u0065\\u005f\\u0075\\u0073\\u0061"
           "\\u0067\\u0065\":false}}", 0,
           "{\"\\u0073\\u0074\\u0072\\u0065\\u0061\\u006d\\u005f\\u006f"
           "\\u0070\\u0074\\u0069\\u006f\\u006e\\u0073\":{\"\\u0069\\u006e"
           "\\u0063\\u006c\\u0075\\u0064\\u0065\\u005f\\u0075\\u0073\\u0061"
           "\\u0067\\u0065\":true}}",
           "names all escapes, longer than 64 bytes: found, no second one");
    member("{\"stream_options\":\"x\"}", -1, NULL,
           "a string where the object goes: refused");
    member("[1]", -1, NULL, "not an object: refused");
    member("{\"a\":", -1, NULL, "truncated: refused");
    member("{\"a\" 1}", -1, NULL, "no colon: refused");
}


typedef struct {
    const char  *body;
    int          n;
    int          bad;
} spans_t;


static int
span_text(void *data, const ngx_http_ai_guard_text_t *t)
{
    u_char    out[256];
    ssize_t   d;
    spans_t  *sp = data;

    d = -1;

    if (t->end <= strlen(sp->body) && t->end > t->start
        && t->end - t->start <= sizeof(out))
    {
        d = ngx_http_ai_guard_rewrite_decode((const u_char *) sp->body
                                             + t->start,
                                             t->end - t->start, out);
    }

    if (d != (ssize_t) t->len || memcmp(out, t->data, t->len) != 0) {
        sp->bad++;
    }

    sp->n++;

    return 0;
}


static void
test_spans(void)
{
    size_t                               i, len, step;
    spans_t                              sp;
    ngx_http_ai_guard_request_t          req;
    ngx_http_ai_guard_request_parser_t  *rp;

    sp.body = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
              "[{\"type\":\"text\",\"text\":\"a\\u00e9 \\\"q\\\"\"},"
              "{\"type\":\"text\",\"text\":\"b@example.com\"}]}],"
              "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
              "\"f\",\"parameters\":{\"k\\n\":\"v\"}}}]}";

    for (step = 1; step <= strlen(sp.body); step += strlen(sp.body) - 1) {
        sp.n = 0;
        sp.bad = 0;

        rp = ngx_http_ai_guard_request_create(1, span_text, &sp);

        len = strlen(sp.body);

        for (i = 0; i < len; i += step) {
            (void) ngx_http_ai_guard_request_feed(rp,
                        (const u_char *) sp.body + i,
                        step < len - i ? step : len - i);
        }

        is_int(ngx_http_ai_guard_request_finish(rp, &req),
               NGX_HTTP_AI_GUARD_REQ_OK, "span body parses, step %zu",
               step);
        ok(sp.n >= 5 && sp.bad == 0,
           "every text's span decodes to the text, step %zu (%d texts)",
           step, sp.n);

        ngx_http_ai_guard_request_free(rp);
    }
}


static void
pii_span(const char *t, const char *want, const char *what)
{
    size_t  off, end;

    off = 0;
    end = 0;

    (void) ngx_http_ai_guard_pii_find(S(t), NGX_HTTP_AI_GUARD_PII_ALL, &off,
                                      &end);
    is_str(t + off, end - off, want, "%s", what);
}


static void
test_pii_end(void)
{
    size_t  off, end;

    is_int(ngx_http_ai_guard_pii_find(S("mail a.b@example.com. ok"),
                                      NGX_HTTP_AI_GUARD_PII_ALL, &off, &end),
           NGX_HTTP_AI_GUARD_PII_EMAIL, "email found");

    pii_span("mail a.b@example.com. ok", "a.b@example.com", "email span");
    pii_span("card 4111-1111-1111-1111 now", "4111-1111-1111-1111",
             "card span");
    pii_span("ssn 123-45-6789.", "123-45-6789", "ssn span");
    pii_span("call (415) 555-0132 or", "(415) 555-0132", "NANP span");
    pii_span("or +44 20 7946 0958!", "+44 20 7946 0958", "E.164 span");
    pii_span("host 10.0.0.1, ok", "10.0.0.1", "IPv4 span");
    pii_span("key sk-proj-abc123def456ghi789jkl0 end",
             "sk-proj-abc123def456ghi789jkl0", "API key span");
    pii_span("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl x",
             "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
             "a JWT's span includes its signature");
    pii_span("k -----BEGIN RSA PRIVATE KEY-----\nMIIE\n"
             "-----END RSA PRIVATE KEY----- after",
             "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n"
             "-----END RSA PRIVATE KEY-----",
             "a private key's span runs to its END line");
    pii_span("-----BEGIN PRIVATE KEY-----\nMIIE",
             "-----BEGIN PRIVATE KEY-----\nMIIE",
             "a key without END runs to the text's end");
}


/* the events of a stream, fed split at every byte: the same cuts */

static void
test_sse_cut(void)
{
    int                           ended;
    size_t                        i, k, n, pos, nev;
    size_t                        ends[8], got[8];
    const char                   *s;
    ngx_http_ai_guard_sse_cut_t   c;

    s = "data: {\"a\":1}\n\n: c\r\ndata: x\r\n\r\ndata: y\r\rdata: z\n\n";

    ends[0] = 15;
    ends[1] = 31;
    ends[2] = 40;
    ends[3] = 49;
    nev = 4;

    for (k = 0; k <= strlen(s); k++) {
        ngx_http_ai_guard_sse_cut_init(&c);
        n = 0;

        for (pos = 0, i = 0; i < 2; i++) {
            size_t  from = i ? k : 0, to = i ? strlen(s) : k;

            pos = from;

            while (pos < to) {
                pos += ngx_http_ai_guard_sse_cut(&c, (const u_char *) s + pos,
                                                 to - pos, &ended);
                if (ended && n < 8) {
                    got[n++] = pos;
                }
            }
        }

        ok(n == nev && memcmp(got, ends, sizeof(size_t) * nev) == 0,
           "events end where they end, split at %zu (%zu events)", k, n);
    }
}


static void
test_usage_event(void)
{
    is_int(ngx_http_ai_guard_sse_usage_event(S("data: {\"id\":\"c\","
               "\"choices\":[ ],\"usage\":{\"prompt_tokens\":3}}\n\n")),
           1, "OpenAI's usage chunk");
    is_int(ngx_http_ai_guard_sse_usage_event(S("data:{\"choices\":[],"
               "\"usage\":{}}\r\n\r\n")), 1, "no space, CRLF");
    is_int(ngx_http_ai_guard_sse_usage_event(S("data: {\"choices\":[{\"index\""
               ":0}],\"usage\":{\"p\":1}}\n\n")), 0,
           "a content chunk with usage: kept");
    is_int(ngx_http_ai_guard_sse_usage_event(S("data: {\"choices\":[],"
               "\"usage\":null}\n\n")), 0, "usage null: kept");
    is_int(ngx_http_ai_guard_sse_usage_event(S("data: [DONE]\n\n")), 0,
           "[DONE]: kept");
    is_int(ngx_http_ai_guard_sse_usage_event(S("data: {\"choices\":[],\n"
               "data: \"usage\":{}}\n\n")), 0, "two data lines: kept");
    is_int(ngx_http_ai_guard_sse_usage_event(S("data: {\"x\":\"\\\"choices"
               "\\\":[]\",\"usage\":{}}\n\n")), 0,
           "the names inside a string do not count");
    is_int(ngx_http_ai_guard_sse_usage_event(S("data: {\"choices\":[\n\n")),
           0, "truncated: kept");
}


int
main(void)
{
    test_escape();
    test_apply();
    test_member();
    test_spans();
    test_pii_end();
    test_sse_cut();
    test_usage_event();

    return done_testing();
}
