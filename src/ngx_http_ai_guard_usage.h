
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_USAGE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_USAGE_H_INCLUDED_


/*
 * The token usage an upstream reports in its response body, read as the
 * body passes through the body filter, buffer by buffer.  Pure code: no
 * nginx runtime, no allocation; one fixed-size parser per response, the
 * same memory whatever the size of the body, and no care where the
 * buffers split (an SSE line, a JSON token, a \u escape, a number).
 *
 * The JSON is scanned, not grepped: only members at the documented paths
 * count, so text inside a string value that looks like a usage object is
 * content.  Paths read (a "[]" is any element of an array):
 *
 *   usage.prompt_tokens, usage.completion_tokens,
 *   usage.prompt_tokens_details.cached_tokens    OpenAI chat, completions,
 *                                                embeddings
 *   usage.input_tokens, usage.output_tokens,
 *   usage.input_tokens_details.cached_tokens     OpenAI Responses
 *   usage.cache_read_input_tokens,
 *   usage.cache_creation_input_tokens            Anthropic
 *   usage.completion_tokens_details.reasoning_tokens,
 *   usage.output_tokens_details.reasoning_tokens OpenAI reasoning
 *   response.usage.*                             Responses stream events
 *   message.usage.*                              Anthropic message_start
 *   usageMetadata.promptTokenCount, .candidatesTokenCount,
 *   .cachedContentTokenCount, .thoughtsTokenCount,
 *   .toolUsePromptTokenCount                     Google Gemini
 *   model, response.model, message.model,
 *   modelVersion                                 the model
 *
 * A body whose root is an array is read as a sequence of roots: Gemini's
 * streamGenerateContent without alt=sse answers a JSON array of chunks.
 *
 * Each count keeps the last value seen, so Anthropic's cumulative
 * message_delta output_tokens is taken, never added.  A count is stored
 * once its number is complete (a delimiter follows it); a count that is
 * negative or has an exponent is ignored, a fraction is truncated, and a
 * count above NGX_HTTP_AI_GUARD_USAGE_MAX_TOKENS is clamped to it.
 *
 * content_bytes adds up the raw length, escapes as written, of the string
 * values that are generated text: choices[].message.content,
 * choices[].delta.content (also refusal, reasoning_content),
 * choices[].text, tool call and function_call arguments, the "delta"
 * string of Responses stream events, output[].content[].text and
 * output[].arguments (Responses JSON), content[].text and
 * content[].thinking (Anthropic JSON), delta.text, delta.partial_json and
 * delta.thinking (Anthropic stream), candidates[].content.parts[].text
 * (Gemini).  It feeds the estimate when a
 * response carries no usage.
 *
 * Syntax errors stop the JSON scanning: for a JSON body until the end, for
 * a stream until the next event; what was stored before stays.  Structure
 * nested deeper than NGX_HTTP_AI_GUARD_USAGE_DEPTH is skipped unchecked.
 *
 * SSE framing follows the WHATWG rules: LF, CRLF or CR line ends (a CRLF
 * split between buffers is one line end), "field:value" with one optional
 * space, "data" lines joined with a newline, other fields and ":" comments
 * ignored, a blank line dispatches the event, a leading BOM is skipped.
 * The data is streamed into the JSON scanner; "data: [DONE]" is simply
 * not JSON.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>

#include "ngx_http_ai_guard_json.h"


#define NGX_HTTP_AI_GUARD_USAGE_UNKNOWN     0
#define NGX_HTTP_AI_GUARD_USAGE_OPENAI      1
#define NGX_HTTP_AI_GUARD_USAGE_ANTHROPIC   2
#define NGX_HTTP_AI_GUARD_USAGE_GEMINI      3

#define NGX_HTTP_AI_GUARD_USAGE_MODEL_LEN   128
#define NGX_HTTP_AI_GUARD_USAGE_DEPTH       32
#define NGX_HTTP_AI_GUARD_USAGE_FIELDS      14

/* 10^15: three counts added still fit an int64_t with room to spare */
#define NGX_HTTP_AI_GUARD_USAGE_MAX_TOKENS  1000000000000000LL


/*
 * The usage of one response with one meaning for every vendor:
 * input_tokens counts every prompt token, cached and cache writes
 * included; cached_tokens is the part of it read from the prompt cache
 * (never more than input_tokens); cache_write_tokens the part written to
 * it (Anthropic's cache_creation_input_tokens, 0 for OpenAI and Gemini).
 * output_tokens counts every generated token, reasoning included;
 * reasoning_tokens is the part of it the model spent thinking (OpenAI's
 * reasoning_tokens, Gemini's thoughtsTokenCount, which Gemini counts
 * apart from candidatesTokenCount; never more than output_tokens).
 */

typedef struct {
    int64_t     input_tokens;
    int64_t     output_tokens;
    int64_t     cached_tokens;
    int64_t     cache_write_tokens;
    int64_t     reasoning_tokens;
    uint64_t    content_bytes;
    size_t      model_len;
    u_char      model[NGX_HTTP_AI_GUARD_USAGE_MODEL_LEN];

    /* a usage object with at least one count was seen */
    unsigned    found:1;

    /* NGX_HTTP_AI_GUARD_USAGE_UNKNOWN, _OPENAI, _ANTHROPIC or _GEMINI */
    unsigned    vendor:2;
} ngx_http_ai_guard_usage_t;


/*
 * The parser state.  Its fields are private to ngx_http_ai_guard_usage.c;
 * the caller only allocates it (448 bytes on x86_64) and passes it along.
 */

typedef struct {
    int64_t                          count[NGX_HTTP_AI_GUARD_USAGE_FIELDS];
    uint64_t                         content_bytes;
    uint64_t                         skip;
    size_t                           clen;
    size_t                           model_len;
    uint32_t                         seen;
    uint32_t                         arrays;

    ngx_http_ai_guard_json_number_t  num;
    ngx_http_ai_guard_json_escape_t  esc;

    u_char                           state;
    u_char                           depth;
    u_char                           slot;
    u_char                           sink;
    u_char                           key;
    u_char                           nfield;
    u_char                           lit;
    u_char                           aux;
    u_char                           hints;
    u_char                           found;
    u_char                           sse;
    u_char                           sse_state;
    u_char                           flen;

    u_char                           fname[8];
    u_char                           stack[NGX_HTTP_AI_GUARD_USAGE_DEPTH];
    u_char                           cbuf[NGX_HTTP_AI_GUARD_USAGE_MODEL_LEN];
    u_char                           model[NGX_HTTP_AI_GUARD_USAGE_MODEL_LEN];
} ngx_http_ai_guard_usage_parser_t;


/* sse: 0 for a JSON body, 1 for text/event-stream */
void ngx_http_ai_guard_usage_init(ngx_http_ai_guard_usage_parser_t *p,
    int sse);

/* any number of calls, buffers of any size, len 0 included */
void ngx_http_ai_guard_usage_feed(ngx_http_ai_guard_usage_parser_t *p,
    const u_char *data, size_t len);

/*
 * The bytes of generated text fed so far (content_bytes): 0 until the
 * first content of the response, so a stream's first token is the
 * buffer after which it is not 0.
 */
uint64_t ngx_http_ai_guard_usage_content(
    const ngx_http_ai_guard_usage_parser_t *p);

/*
 * The normalized usage of what was fed so far; does not change the
 * parser, so it may be called more than once (feeding may go on).
 */
void ngx_http_ai_guard_usage_finish(
    const ngx_http_ai_guard_usage_parser_t *p, ngx_http_ai_guard_usage_t *u);


#endif /* _NGX_HTTP_AI_GUARD_USAGE_H_INCLUDED_ */
