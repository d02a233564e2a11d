
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <ngx_http_ai_guard_json.h>
#include <ngx_http_ai_guard_usage.h>
#include "tap.h"


#define MAX_FIXTURE  (1024 * 1024)


typedef struct {
    const char  *name;
    int          sse;
    int64_t      input;
    int64_t      output;
    int64_t      cached;
    int64_t      cache_write;
    const char  *model;
    uint64_t     content;
    int          found;
    int          vendor;
    int64_t      reasoning;
} fixture_t;


/* expected values computed from the fixtures' decoded JSON */
static const fixture_t  fixtures[] = {
    { "openai_chat.json", 0, 1234, 56, 1024, 0, "gpt-4o-2024-08-06",
      199, 1, 1, 0 },
    { "openai_chat.sse", 1, 19, 42, 0, 0, "gpt-4o-mini-2024-07-18",
      246, 1, 1, 0 },
    { "openai_responses.sse", 1, 37, 11, 0, 0, "gpt-4.1-2025-04-14",
      64, 1, 1, 0 },
    { "openai_embeddings.json", 0, 8, 0, 0, 0, "text-embedding-3-small",
      0, 1, 1, 0 },
    { "anthropic.json", 0, 13595, 503, 10000, 1500,
      "claude-sonnet-4-20250514", 173, 1, 2, 0 },
    { "anthropic.sse", 1, 2520, 89, 2048, 0, "claude-3-5-sonnet-20241022",
      105, 1, 2, 0 },
    { "openai_responses.json", 0, 328, 52, 256, 0, "gpt-4o-2024-08-06",
      69, 1, 1, 0 },
    { "openai_completions.json", 0, 5, 7, 0, 0, "gpt-3.5-turbo-instruct",
      25, 1, 1, 0 },

    /*
     * Gemini: the shapes of Google's API reference, GenerateContentResponse
     * (https://ai.google.dev/api/generate-content) and its UsageMetadata as
     * the Google Gen AI SDK documents it (https://googleapis.github.io/
     * js-genai/, types.GenerateContentResponseUsageMetadata:
     * totalTokenCount "is the sum of prompt_token_count,
     * candidates_token_count, tool_use_prompt_token_count, and
     * thoughts_token_count"; promptTokenCount includes the cached
     * content).  gemini.json: a thinking model with a cached prompt;
     * gemini.sse: streamGenerateContent?alt=sse, usage in every chunk, the
     * last one whole; gemini_array.json: streamGenerateContent without
     * alt=sse, a JSON array of the same chunks.
     */
    { "gemini.json", 0, 1210, 480, 1024, 0, "gemini-2.5-flash",
      161, 1, 3, 466 },
    { "gemini.sse", 1, 9, 21, 0, 0, "gemini-2.0-flash",
      98, 1, 3, 0 },
    { "gemini_array.json", 0, 8, 1047, 0, 0, "gemini-2.5-pro",
      47, 1, 3, 1035 },
};


static u_char    buf[MAX_FIXTURE];
static u_char    alt[MAX_FIXTURE * 2];
static uint32_t  rnd_state = 12345;


static uint32_t
rnd(void)
{
    rnd_state = rnd_state * 1103515245 + 12345;
    return (rnd_state >> 8) & 0xffffff;
}


static size_t
load(const char *name, u_char *dst, size_t size)
{
    char         path[1024];
    FILE        *f;
    size_t       n;
    const char  *dir, *slash;

    dir = getenv("USAGE_TEST_DATA");

    if (dir) {
        snprintf(path, sizeof(path), "%s/%s", dir, name);

    } else {
        slash = strrchr(__FILE__, '/');
        snprintf(path, sizeof(path), "%.*sdata/usage/%s",
                 slash ? (int) (slash - __FILE__ + 1) : 0, __FILE__, name);
    }

    f = fopen(path, "rb");
    if (f == NULL) {
        printf("# cannot open %s\n", path);
        return 0;
    }

    n = fread(dst, 1, size, f);
    fclose(f);

    return n;
}


static void
parse_whole(const u_char *d, size_t len, int sse,
    ngx_http_ai_guard_usage_t *u)
{
    ngx_http_ai_guard_usage_parser_t  p;

    ngx_http_ai_guard_usage_init(&p, sse);
    ngx_http_ai_guard_usage_feed(&p, d, len);
    ngx_http_ai_guard_usage_finish(&p, u);
}


static void
parse_str(const char *s, int sse, ngx_http_ai_guard_usage_t *u)
{
    parse_whole((const u_char *) s, strlen(s), sse, u);
}


/* feeds each piece from a copy of its own so ASan sees any overread */
static void
feed_copy(ngx_http_ai_guard_usage_parser_t *p, const u_char *d, size_t n)
{
    u_char  *c;

    c = malloc(n ? n : 1);
    memcpy(c, d, n);
    ngx_http_ai_guard_usage_feed(p, c, n);
    free(c);
}


static int
same(const ngx_http_ai_guard_usage_t *a, const ngx_http_ai_guard_usage_t *b)
{
    return a->input_tokens == b->input_tokens
           && a->output_tokens == b->output_tokens
           && a->cached_tokens == b->cached_tokens
           && a->cache_write_tokens == b->cache_write_tokens
           && a->reasoning_tokens == b->reasoning_tokens
           && a->content_bytes == b->content_bytes
           && a->found == b->found
           && a->vendor == b->vendor
           && a->model_len == b->model_len
           && memcmp(a->model, b->model, a->model_len) == 0;
}


/* whole, every split in two, byte by byte, random pieces: one result */
static void
check_splits(const char *name, const u_char *d, size_t len, int sse,
    const ngx_http_ai_guard_usage_t *whole)
{
    int                                bad, i;
    size_t                             cut, pos, n;
    ngx_http_ai_guard_usage_t          u;
    ngx_http_ai_guard_usage_parser_t   p;

    bad = 0;

    for (cut = 0; cut <= len; cut++) {
        ngx_http_ai_guard_usage_init(&p, sse);
        feed_copy(&p, d, cut);
        feed_copy(&p, d + cut, len - cut);
        ngx_http_ai_guard_usage_finish(&p, &u);
        bad += !same(&u, whole);
    }

    ok(bad == 0, "%s: every split in two (%d differ)", name, bad);

    ngx_http_ai_guard_usage_init(&p, sse);

    for (pos = 0; pos < len; pos++) {
        feed_copy(&p, d + pos, 1);
    }

    ngx_http_ai_guard_usage_finish(&p, &u);
    ok(same(&u, whole), "%s: one byte a feed", name);

    bad = 0;

    for (i = 0; i < 50; i++) {
        ngx_http_ai_guard_usage_init(&p, sse);

        for (pos = 0; pos < len; pos += n) {
            n = rnd() % (i < 25 ? 8 : 200);

            if (n > len - pos) {
                n = len - pos;
            }

            feed_copy(&p, d + pos, n);
        }

        ngx_http_ai_guard_usage_finish(&p, &u);
        bad += !same(&u, whole);
    }

    ok(bad == 0, "%s: random pieces (%d differ)", name, bad);
}


static void
check_expected(const char *name, const ngx_http_ai_guard_usage_t *u,
    const fixture_t *f)
{
    is_int(u->input_tokens, f->input, "%s: input_tokens", name);
    is_int(u->output_tokens, f->output, "%s: output_tokens", name);
    is_int(u->cached_tokens, f->cached, "%s: cached_tokens", name);
    is_int(u->cache_write_tokens, f->cache_write, "%s: cache_write", name);
    is_str(u->model, u->model_len, f->model, "%s: model", name);
    is_int(u->content_bytes, f->content, "%s: content_bytes", name);
    is_int(u->found, f->found, "%s: found", name);
    is_int(u->vendor, f->vendor, "%s: vendor", name);
    is_int(u->reasoning_tokens, f->reasoning, "%s: reasoning", name);
}


/* rewrites the LF line ends of an SSE fixture: "\r\n", "\r" */
static size_t
relines(const u_char *d, size_t len, u_char *out, const char *eol)
{
    size_t  i, n, el;

    el = strlen(eol);

    for (i = 0, n = 0; i < len; i++) {
        if (d[i] == '\n') {
            memcpy(out + n, eol, el);
            n += el;

        } else {
            out[n++] = d[i];
        }
    }

    return n;
}


/* "data: " becomes "data:" */
static size_t
nospace(const u_char *d, size_t len, u_char *out)
{
    size_t  i, n;

    for (i = 0, n = 0; i < len; i++) {
        out[n++] = d[i];

        if (i >= 4 && memcmp(d + i - 4, "data:", 5) == 0
            && i + 1 < len && d[i + 1] == ' ')
        {
            i++;
        }
    }

    return n;
}


static void
test_fixtures(void)
{
    char                        name[128];
    size_t                      i, len, n;
    const fixture_t            *f;
    ngx_http_ai_guard_usage_t   u, v;

    for (i = 0; i < sizeof(fixtures) / sizeof(fixtures[0]); i++) {
        f = &fixtures[i];

        len = load(f->name, buf, sizeof(buf));
        ok(len > 0, "%s: loaded", f->name);

        if (len == 0) {
            continue;
        }

        parse_whole(buf, len, f->sse, &u);
        check_expected(f->name, &u, f);
        check_splits(f->name, buf, len, f->sse, &u);

        if (!f->sse) {
            continue;
        }

        n = relines(buf, len, alt, "\r\n");
        snprintf(name, sizeof(name), "%s CRLF", f->name);
        parse_whole(alt, n, 1, &v);
        check_expected(name, &v, f);
        check_splits(name, alt, n, 1, &v);

        n = relines(buf, len, alt, "\r");
        snprintf(name, sizeof(name), "%s CR", f->name);
        parse_whole(alt, n, 1, &v);
        check_expected(name, &v, f);
        check_splits(name, alt, n, 1, &v);

        n = nospace(buf, len, alt);
        snprintf(name, sizeof(name), "%s data:nospace", f->name);
        parse_whole(alt, n, 1, &v);
        check_expected(name, &v, f);
    }
}


static void
test_decoys(void)
{
    ngx_http_ai_guard_usage_t  u;

    parse_str("{\"model\":\"m\",\"choices\":[{\"message\":{\"content\":"
              "\"x \\\"usage\\\": {\\\"prompt_tokens\\\": 99999} \\\\\"}}],"
              "\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3}}",
              0, &u);
    is_int(u.input_tokens, 7, "decoy in content: real prompt_tokens");
    is_int(u.output_tokens, 3, "decoy in content: real completion_tokens");

    parse_str("{\"choices\":[{\"usage\":{\"prompt_tokens\":5}}],"
              "\"data\":{\"usage\":{\"prompt_tokens\":6}},"
              "\"x\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":9}\"}", 0, &u);
    ok(!u.found, "usage objects off the paths are ignored");
    is_int(u.input_tokens, 0, "nested usage does not count");

    parse_str("{\"usage\":{\"x\":{\"prompt_tokens\":5},"
              "\"prompt_tokens\":[1],\"completion_tokens\":\"9\"}}", 0, &u);
    ok(!u.found, "counts that are not numbers at the path are ignored");

    parse_str("{\"usag\\u0065\":{\"prompt\\u005ftokens\":3}}", 0, &u);
    is_int(u.input_tokens, 3, "escaped key names are decoded");

    parse_str("data: {\"choices\":[{\"delta\":{\"content\":"
              "\"data: {\\\"usage\\\":{\\\"prompt_tokens\\\":1}}\\n\\n\"}}],"
              "\"usage\":null}\n\n"
              "data: {\"usage\":{\"prompt_tokens\":4,"
              "\"completion_tokens\":2}}\n\n", 1, &u);
    is_int(u.input_tokens, 4, "sse: decoy event text in a delta");
    is_int(u.output_tokens, 2, "sse: usage chunk read");
}


/*
 * One event of many data lines, with every line end SSE allows: the lines
 * are one JSON text however they end, so a CR LF whose LF were read as a
 * second line end (a blank line: the event's end) would cut the JSON and
 * lose the usage.  Whole, split at every byte (so between a CR and its
 * LF), one byte a feed and in random pieces.
 */

static void
test_sse_multiline(void)
{
    char                        name[64];
    size_t                      i, len;
    u_char                      d[512], *q;
    const char                 *eol;
    ngx_http_ai_guard_usage_t   u;

    static const char  *lines[] = {
        "data: {\"id\":\"c1\",\"model\":\"gpt-4o-mini\",",
        "data: \"usage\":",
        "data: {\"prompt_tokens\":21,",
        "data",
        "data: \"completion_tokens\":9,\"prompt_tokens_details\":",
        "data: {\"cached_tokens\":4}}}",
        "",
        "data: [DONE]",
        "",
        NULL
    };

    static const char  *eols[] = { "\r\n", "\r", "\n", NULL };

    for (i = 0; eols[i]; i++) {
        eol = eols[i];

        q = d;

        for (len = 0; lines[len]; len++) {
            q = (u_char *) stpcpy((char *) q, lines[len]);
            q = (u_char *) stpcpy((char *) q, eol);
        }

        len = q - d;

        snprintf(name, sizeof(name), "sse: a multi-line event, %s",
                 i == 0 ? "CR LF" : i == 1 ? "CR" : "LF");

        parse_whole(d, len, 1, &u);
        ok(u.found && u.input_tokens == 21 && u.output_tokens == 9
           && u.cached_tokens == 4,
           "%s: 21 in, 9 out, 4 cached (got %lld, %lld, %lld)", name,
           (long long) u.input_tokens, (long long) u.output_tokens,
           (long long) u.cached_tokens);
        is_str(u.model, u.model_len, "gpt-4o-mini", "%s: its model", name);
        check_splits(name, d, len, 1, &u);
    }
}


static void
test_sse_framing(void)
{
    ngx_http_ai_guard_usage_t  u;

    parse_str(": comment\n"
              "id: 1\n"
              "retry: 100\n"
              "event: x\n"
              "data:{\"usage\":{\"prompt_tokens\":3}}\n\n"
              ":keepalive\n\n"
              "data: [DONE]\n\n", 1, &u);
    is_int(u.input_tokens, 3, "sse: comments, id, retry, [DONE]");

    parse_str("data: {\"usage\":\n"
              "data: {\"prompt_tokens\":\n"
              "data\n"
              "data: 11}}\n\n", 1, &u);
    is_int(u.input_tokens, 11, "sse: data lines joined with newlines");

    parse_str("datadata: {\"usage\":{\"prompt_tokens\":3}}\n\n"
              "data : {\"usage\":{\"prompt_tokens\":4}}\n\n"
              "averyveryverylongfieldname: {\"usage\":{\"prompt_tokens\":5}}\n"
              "\n", 1, &u);
    ok(!u.found, "sse: other field names are not data");

    parse_str("data:  {\"usage\":{\"prompt_tokens\":6}}\n\n", 1, &u);
    is_int(u.input_tokens, 6, "sse: only one space is stripped, JSON "
           "ignores the rest");

    parse_str("\xef\xbb\xbf" "data: {\"usage\":{\"prompt_tokens\":8}}\n\n",
              1, &u);
    is_int(u.input_tokens, 8, "sse: BOM skipped");

    parse_str("\xef\xbb" "data: {\"usage\":{\"prompt_tokens\":8}}\n\n"
              "data: {\"usage\":{\"completion_tokens\":2}}\n\n", 1, &u);
    ok(u.input_tokens == 0 && u.output_tokens == 2,
       "sse: a broken BOM spoils the first line only");

    parse_str("data: {\"usage\":{\"prompt_tokens\":5}}\n"
              "data: {\"usage\":{\"prompt_tokens\":6}}\n\n"
              "data: {\"usage\":{\"completion_tokens\":7}}\n\n", 1, &u);
    ok(u.input_tokens == 5 && u.output_tokens == 7,
       "sse: two JSON values in one event: the second is an error");

    parse_str("data: {\"usage\":{\"prompt_tokens\":5,}}\n\n"
              "data: {\"usage\":{\"completion_tokens\":7}}\n\n", 1, &u);
    ok(u.input_tokens == 5 && u.output_tokens == 7,
       "sse: a syntax error stops at the next event");

    parse_str("data: garbage{{{\"\n\n"
              "data: {\"usage\":{\"prompt_tokens\":2}}\n\n", 1, &u);
    is_int(u.input_tokens, 2, "sse: garbage event, then a good one");

    parse_str("data: {\"usage\":{\"prompt_tokens\":5}}\r\n\r\n"
              "data: {\"usage\":{\"completion_tokens\":7}}\r\r"
              "data: {\"usage\":{\"prompt_tokens_details\":"
              "{\"cached_tokens\":3}}}\n\r\n", 1, &u);
    ok(u.input_tokens == 5 && u.output_tokens == 7 && u.cached_tokens == 3,
       "sse: mixed line ends");

    test_sse_multiline();

    parse_str("data: {\"usage\": null, \"choices\": []}\n\n", 1, &u);
    ok(!u.found, "sse: usage null is not usage");

    parse_str("data: {\"usage\":{\"prompt_tokens\":5}}", 1, &u);
    is_int(u.input_tokens, 5, "sse: last event without line end");

    parse_str("data: {\"usage\":{\"prompt_tokens\":5", 1, &u);
    ok(!u.found, "sse: a number cut by the end of stream is not read");

    parse_str("data: {\"usage\":{\"prompt_tokens\":5\n\n", 1, &u);
    is_int(u.input_tokens, 5, "sse: a number ended by the line end is read");

    parse_str("data: {\"usage\":{\"prompt_tokens\":\"5\n6\"}}\n\n"
              "data: {\"usage\":{\"completion_tokens\":1}}\n\n", 1, &u);
    ok(!u.found || u.input_tokens == 0, "sse: a string across lines is an "
       "error");
    is_int(u.output_tokens, 1, "sse: ... the next event is read");
}


static void
test_truncated(void)
{
    size_t                     len, cut;
    const u_char              *q;
    ngx_http_ai_guard_usage_t  u;

    len = load("anthropic.sse", buf, sizeof(buf));
    if (len == 0) {
        ok(0, "anthropic.sse loaded");
        return;
    }

    /* cut inside the second message_delta's output_tokens number */
    q = (const u_char *) strstr((const char *) buf, "\"output_tokens\": 89");
    ok(q != NULL, "truncated: fixture has the last delta");

    if (q == NULL) {
        return;
    }

    cut = (q - buf) + strlen("\"output_tokens\": 8");

    parse_whole(buf, cut, 1, &u);
    is_int(u.output_tokens, 30, "truncated: last complete output_tokens");
    is_int(u.input_tokens, 2520, "truncated: input from message_start");
    is_int(u.cached_tokens, 2048, "truncated: cached from message_start");
    ok(u.found, "truncated: found");

    q = (const u_char *) strstr((const char *) buf, "event: content_block");
    parse_whole(buf, q - buf, 1, &u);
    is_int(u.output_tokens, 1, "truncated after message_start");
    is_int(u.input_tokens, 2520, "truncated after message_start: input");

    len = load("openai_chat.json", buf, sizeof(buf));
    parse_whole(buf, len / 2, 0, &u);
    ok(!u.found, "truncated JSON body before usage: not found");
    is_int(u.content_bytes > 0, 1, "truncated JSON body: content counted");
}


static void
test_numbers(void)
{
    ngx_http_ai_guard_usage_t  u;

    parse_str("{\"usage\":{\"prompt_tokens\":"
              "99999999999999999999999999999999999999,"
              "\"completion_tokens\":9223372036854775808}}", 0, &u);
    is_int(u.input_tokens, NGX_HTTP_AI_GUARD_USAGE_MAX_TOKENS,
           "huge count clamped");
    is_int(u.output_tokens, NGX_HTTP_AI_GUARD_USAGE_MAX_TOKENS,
           "int64 overflow clamped");

    parse_str("{\"type\":\"message\",\"usage\":{\"input_tokens\":"
              "99999999999999999999999,\"cache_read_input_tokens\":"
              "99999999999999999999999,\"cache_creation_input_tokens\":"
              "99999999999999999999999}}", 0, &u);
    is_int(u.input_tokens, 3 * NGX_HTTP_AI_GUARD_USAGE_MAX_TOKENS,
           "anthropic sum of clamped counts does not overflow");

    parse_str("{\"usage\":{\"prompt_tokens\":-5,\"completion_tokens\":1e3,"
              "\"prompt_tokens_details\":{\"cached_tokens\":2.9}}}", 0, &u);
    is_int(u.input_tokens, 0, "negative count ignored");
    is_int(u.output_tokens, 0, "count with exponent ignored");
    is_int(u.cached_tokens, 0, "cached clamped to input");

    parse_str("{\"usage\":{\"prompt_tokens\":12.0,\"completion_tokens\":0,"
              "\"prompt_tokens_details\":{\"cached_tokens\":2.9}}}", 0, &u);
    is_int(u.input_tokens, 12, "fraction truncated");
    is_int(u.cached_tokens, 2, "fraction truncated in details");
    ok(u.found, "zero is a count");

    parse_str("{\"usage\":{\"prompt_tokens\":012}}", 0, &u);
    ok(!u.found, "leading zero is a syntax error");

    parse_str("{\"usage\":{\"prompt_tokens\":5x}}", 0, &u);
    ok(!u.found, "number glued to garbage is not read");

    parse_str("{\"usage\":{\"prompt_tokens\":1.}}", 0, &u);
    ok(!u.found, "bad fraction is an error");
}


static void
test_structure(void)
{
    int                        i;
    char                      *s, *q;
    ngx_http_ai_guard_usage_t  u;

    s = malloc(8192);

    /* 200 levels, strings with brackets inside, then the real usage */
    q = s;
    q += sprintf(q, "{\"model\":\"deep\",\"x\":");

    for (i = 0; i < 200; i++) {
        q += sprintf(q, i % 2 ? "[\"]}\\\"\"," : "{\"k\\\"]\":");
    }

    q += sprintf(q, "{\"usage\":{\"prompt_tokens\":99999}}");

    for (i = 199; i >= 0; i--) {
        q += sprintf(q, i % 2 ? "]" : "}");
    }

    sprintf(q, ",\"usage\":{\"prompt_tokens\":21,\"completion_tokens\":4}}");

    parse_str(s, 0, &u);
    is_int(u.input_tokens, 21, "deep nesting skipped, usage after it read");
    is_int(u.output_tokens, 4, "deep nesting: completion_tokens");
    check_splits("deep nesting", (u_char *) s, strlen(s), 0, &u);

    /* the usage path itself at the maximum depth still counts */
    q = s;

    for (i = 0; i < NGX_HTTP_AI_GUARD_USAGE_DEPTH - 1; i++) {
        *q++ = '[';
    }

    q += sprintf(q, "{\"a\":[{\"usage\":{\"prompt_tokens\":1}}]}");

    for (i = 0; i < NGX_HTTP_AI_GUARD_USAGE_DEPTH - 1; i++) {
        *q++ = ']';
    }

    *q = '\0';
    parse_str(s, 0, &u);
    ok(!u.found, "usage at depth is not at the root path");

    parse_str("{\"usage\":{\"prompt_tokens\":3}]", 0, &u);
    is_int(u.input_tokens, 3, "mismatched closer: what came before stays");

    parse_str("{\"usage\":{\"prompt_tokens\":3}} trailing "
              "{\"usage\":{\"prompt_tokens\":9}}", 0, &u);
    is_int(u.input_tokens, 3, "trailing garbage after the body ignored");

    parse_str("{\"a\":tru,\"usage\":{\"prompt_tokens\":3}}", 0, &u);
    ok(!u.found, "bad literal is an error");

    parse_str("{\"a\":true,\"b\":false,\"c\":null,\"d\":[],\"e\":{},"
              "\"usage\":{\"prompt_tokens\":3}}", 0, &u);
    is_int(u.input_tokens, 3, "literals and empty containers");

    parse_str("{\"usage\":{\"prompt_tokens\":1},"
              "\"usage\":{\"prompt_tokens\":2}}", 0, &u);
    is_int(u.input_tokens, 2, "duplicate member: the last wins");

    parse_str("", 0, &u);
    ok(!u.found && u.model_len == 0 && u.content_bytes == 0, "empty body");

    /* a root array is a sequence of roots (Gemini's array stream) */
    parse_str("[1,2,{\"usage\":{\"prompt_tokens\":3}}]", 0, &u);
    is_int(u.input_tokens, 3, "root array: its objects are roots");

    parse_str("[[{\"usage\":{\"prompt_tokens\":3}}]]", 0, &u);
    ok(!u.found, "root array: one level only");

    parse_str("{\"content\":\"a\\u0000\",\"x\":\"\x01\","
              "\"usage\":{\"prompt_tokens\":3}}", 0, &u);
    ok(!u.found, "raw control character in a string is an error");

    free(s);
}


static void
test_strings(void)
{
    int                        i;
    char                       s[512], *q;
    ngx_http_ai_guard_usage_t  u;

    parse_str("{\"choices\":[{\"message\":{\"content\":\"a\\nb\\u00e9\"}}]}",
              0, &u);
    is_int(u.content_bytes, 10, "content bytes count escapes as written");

    parse_str("{\"model\":\"gpt-\\u00e9\\/x\\u0001\\ud83d\"}", 0, &u);
    is_str(u.model, u.model_len, "gpt-\xc3\xa9/x??", "model escapes decoded");

    q = s + sprintf(s, "{\"model\":\"");

    for (i = 0; i < 200; i++) {
        *q++ = 'a' + i % 26;
    }

    sprintf(q, "\"}");
    parse_str(s, 0, &u);
    is_int(u.model_len, NGX_HTTP_AI_GUARD_USAGE_MODEL_LEN,
           "long model truncated");
    ok(memcmp(u.model, s + 10, NGX_HTTP_AI_GUARD_USAGE_MODEL_LEN) == 0,
       "truncated model keeps its head");

    parse_str("{\"model\":\"abc", 0, &u);
    is_int(u.model_len, 0, "unterminated model not taken");

    parse_str("{\"response\":{\"model\":\"r\"}}", 0, &u);
    is_str(u.model, u.model_len, "r", "response.model");

    parse_str("{\"message\":{\"model\":\"m\"}}", 0, &u);
    is_str(u.model, u.model_len, "m", "message.model");

    parse_str("{\"x\":{\"model\":\"no\"}}", 0, &u);
    is_int(u.model_len, 0, "model off the paths ignored");

    parse_str("{\"type\":\"content_block_delta\",\"delta\":{\"type\":"
              "\"thinking_delta\",\"thinking\":\"abc\"}}", 0, &u);
    is_int(u.content_bytes, 3, "anthropic thinking delta counted");
    is_int(u.vendor, NGX_HTTP_AI_GUARD_USAGE_ANTHROPIC,
           "anthropic detected by type");

    parse_str("{\"type\":\"response.function_call_arguments.delta\","
              "\"delta\":\"{\\\"a\\\"\"}", 0, &u);
    is_int(u.content_bytes, 6, "responses arguments delta counted");
    is_int(u.vendor, NGX_HTTP_AI_GUARD_USAGE_OPENAI,
           "openai detected by type");

    parse_str("{\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,"
              "\"function\":{\"arguments\":\"{\\\"q\\\":1}\"}}]}}]}", 0, &u);
    is_int(u.content_bytes, 9, "tool call arguments counted");

    parse_str("{\"usage\":{\"input_tokens\":5,\"output_tokens\":6}}", 0, &u);
    ok(u.found && u.input_tokens == 5 && u.output_tokens == 6
       && u.vendor == NGX_HTTP_AI_GUARD_USAGE_UNKNOWN,
       "bare input/output tokens, vendor unknown");
}


static void
test_anthropic_cumulative(void)
{
    ngx_http_ai_guard_usage_t  u;

    parse_str("event: message_start\n"
              "data: {\"type\":\"message_start\",\"message\":{\"usage\":"
              "{\"input_tokens\":10,\"output_tokens\":1}}}\n\n"
              "event: message_delta\n"
              "data: {\"type\":\"message_delta\",\"usage\":"
              "{\"output_tokens\":5}}\n\n"
              "event: message_delta\n"
              "data: {\"type\":\"message_delta\",\"usage\":"
              "{\"input_tokens\":12,\"cache_read_input_tokens\":3,"
              "\"output_tokens\":9}}\n\n", 1, &u);
    is_int(u.output_tokens, 9, "anthropic: the last output_tokens");
    is_int(u.input_tokens, 15, "anthropic: cumulative input in a delta");
    is_int(u.cached_tokens, 3, "anthropic: cache read is cached");
    is_int(u.vendor, NGX_HTTP_AI_GUARD_USAGE_ANTHROPIC, "anthropic vendor");
}


static void
test_garbage(void)
{
    int                                i, j, bad;
    size_t                             n;
    const char                        *s1, *s2;
    ngx_http_ai_guard_usage_t          u, v;
    ngx_http_ai_guard_usage_parser_t   p;

    s1 = "data: {\"usage\":{\"prompt_tokens\":4}}\n\n";
    s2 = "data: {\"usage\":{\"completion_tokens\":4}}\n\n";
    bad = 0;

    for (i = 0; i < 200; i++) {
        n = rnd() % 4096;

        for (j = 0; j < (int) n; j++) {
            /* biased towards JSON and SSE syntax */
            buf[j] = (i & 1) ? (u_char) rnd()
                             : (u_char) "{}[]\":,\\u0123 \n\rdata:event"
                                        "usage_tokens-1e."[rnd() % 43];
        }

        parse_whole(buf, n, i & 2 ? 1 : 0, &u);

        ngx_http_ai_guard_usage_init(&p, i & 2 ? 1 : 0);

        for (j = 0; j < (int) n; j += 7) {
            feed_copy(&p, buf + j, n - j < 7 ? n - j : 7);
        }

        ngx_http_ai_guard_usage_finish(&p, &v);
        bad += !same(&u, &v);
    }

    ok(bad == 0, "garbage: no crash, split-independent (%d differ)", bad);

    ngx_http_ai_guard_usage_init(&p, 1);
    feed_copy(&p, (const u_char *) s1, strlen(s1));
    ngx_http_ai_guard_usage_finish(&p, &u);
    feed_copy(&p, (const u_char *) s2, strlen(s2));
    ngx_http_ai_guard_usage_finish(&p, &v);
    ok(u.input_tokens == 4 && u.output_tokens == 0
       && v.input_tokens == 4 && v.output_tokens == 4,
       "finish does not disturb the parser");
}


/*
 * ngx_http_ai_guard_usage_content(): 0 until the first generated text,
 * so the glue times a stream's first token by it; a role-only first
 * chunk and an empty content are not content.
 */

static void
test_first_content(void)
{
    static const char  *role =
        "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\","
        "\"content\":\"\"}}]}\n\n";
    static const char  *text =
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n";
    static const char  *claude =
        "event: message_start\ndata: {\"type\":\"message_start\","
        "\"message\":{\"usage\":{\"input_tokens\":3}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":"
        "\"content_block_delta\",\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"Yo\"}}\n\n";

    size_t                             i, half;
    ngx_http_ai_guard_usage_parser_t   p;

    ngx_http_ai_guard_usage_init(&p, 1);

    ok(ngx_http_ai_guard_usage_content(&p) == 0, "content: none at first");

    ngx_http_ai_guard_usage_feed(&p, (const u_char *) role, strlen(role));
    ok(ngx_http_ai_guard_usage_content(&p) == 0,
       "content: a role and an empty content are none");

    ngx_http_ai_guard_usage_feed(&p, (const u_char *) text, strlen(text));
    ok(ngx_http_ai_guard_usage_content(&p) == 2,
       "content: the first text, counted");

    /* Anthropic: message_start has none; split anywhere, the same */

    half = strlen(claude) / 2;

    for (i = 0; i < 2; i++) {
        ngx_http_ai_guard_usage_init(&p, 1);
        ngx_http_ai_guard_usage_feed(&p, (const u_char *) claude,
                                     i ? half : strlen(claude) - 40);
        ok(ngx_http_ai_guard_usage_content(&p) == 0,
           "content: anthropic, none before the delta (%zu)", i);
    }
}


/*
 * Reasoning tokens: OpenAI's are a part of completion_tokens (chat) or
 * output_tokens (Responses), Gemini's thoughts come on top of its
 * candidates; a count that claims more reasoning than output is held to
 * the output.
 */

static void
test_reasoning(void)
{
    ngx_http_ai_guard_usage_t  u;

    parse_str("{\"object\":\"chat.completion\",\"usage\":{"
              "\"prompt_tokens\":10,\"completion_tokens\":300,"
              "\"completion_tokens_details\":{\"reasoning_tokens\":256}}}",
              0, &u);
    is_int(u.output_tokens, 300, "reasoning: chat output keeps its total");
    is_int(u.reasoning_tokens, 256, "reasoning: chat reasoning_tokens");

    parse_str("{\"usage\":{\"input_tokens\":5,\"output_tokens\":40,"
              "\"output_tokens_details\":{\"reasoning_tokens\":32}}}",
              0, &u);
    is_int(u.reasoning_tokens, 32, "reasoning: Responses reasoning_tokens");

    parse_str("{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":7,"
              "\"completion_tokens_details\":{\"reasoning_tokens\":9}}}",
              0, &u);
    is_int(u.reasoning_tokens, 7, "reasoning: never more than the output");

    /* a reasoning_tokens outside its details object is no count */
    parse_str("{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":7,"
              "\"reasoning_tokens\":5}}", 0, &u);
    is_int(u.reasoning_tokens, 0, "reasoning: only in the details object");

    parse_str("{\"usageMetadata\":{\"promptTokenCount\":4,"
              "\"candidatesTokenCount\":6,\"thoughtsTokenCount\":10,"
              "\"toolUsePromptTokenCount\":3,\"totalTokenCount\":23}}",
              0, &u);
    is_int(u.input_tokens, 7, "gemini: tool-use prompt tokens are input");
    is_int(u.output_tokens, 16, "gemini: thoughts are output");
    is_int(u.reasoning_tokens, 10, "gemini: thoughts are reasoning");
    is_int(u.vendor, NGX_HTTP_AI_GUARD_USAGE_GEMINI, "gemini: the vendor");

    /* a count of Gemini's name outside usageMetadata is content */
    parse_str("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":"
              "\"x\",\"promptTokenCount\":99}]}}],\"promptTokenCount\":98}",
              0, &u);
    is_int(u.found, 0, "gemini: counts only inside usageMetadata");
    is_int(u.content_bytes, 1, "gemini: parts[].text is content");
}


int
main(void)
{
    test_first_content();
    test_fixtures();
    test_decoys();
    test_sse_framing();
    test_truncated();
    test_numbers();
    test_structure();
    test_strings();
    test_anthropic_cumulative();
    test_reasoning();
    test_garbage();

    /* again with the strings' plain bytes skipped with AVX2, if it can */

    if (ngx_http_ai_guard_json_simd(1)) {
        test_fixtures();
        test_decoys();
        test_strings();
        (void) ngx_http_ai_guard_json_simd(0);
    }

    return done_testing();
}
