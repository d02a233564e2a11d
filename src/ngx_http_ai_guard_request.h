
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_REQUEST_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_REQUEST_H_INCLUDED_


/*
 * Pure, incremental parser of an LLM API request body: OpenAI
 * chat/completions, completions, embeddings, Responses and Assistants
 * APIs, and Anthropic messages.  No nginx runtime: the glue feeds it the body
 * buffer by buffer, reads the result and frees it from a pool cleanup.
 *
 *     parser = ngx_http_ai_guard_request_create(canonical, text, data);
 *     for each body buffer:
 *         rc = ngx_http_ai_guard_request_feed(parser, p, len);
 *     rc = ngx_http_ai_guard_request_finish(parser, &req);
 *     ...
 *     ngx_http_ai_guard_request_free(parser);
 *
 * A buffer may end anywhere, inside a token or a UTF-8 sequence; the raw
 * body is never copied whole (the parser keeps at most the current
 * string or number, decoded, and only when it is one it reads).  Strict
 * RFC 8259: whitespace is space, tab, CR and LF; nothing but whitespace
 * after the object.  Errors are sticky: once a call fails, every later
 * call returns the same code and _error() keeps its message.
 *
 * Texts: every string the model reads is handed, decoded (escapes
 * resolved, UTF-8 validated), to the text callback, whole, once.  The
 * estimate counts these ("counted"):
 *
 *     messages[].content                       string or parts
 *     messages[].content[].text                parts, blocks
 *     messages[].content[].content             tool results, nested
 *     messages[].content[].source.data         Anthropic document, text
 *     messages[].content[].source.content      Anthropic document, blocks
 *     messages[].tool_calls[].function.arguments
 *     messages[].function_call.arguments
 *     messages[].output, .summary[].text       Responses items
 *     system, instructions                     string or blocks
 *     additional_instructions                  Assistants runs
 *     additional_messages[], thread.messages[] as messages above
 *     content                                  Assistants message
 *     prompt                                   string or array
 *     suffix                                   completions
 *     input                                    string, strings, items
 *                                              as messages above
 *     input[].arguments, input[].output        Responses tool items
 *
 * and these are handed too, for the rules, without counting:
 *
 *     messages[].name, .refusal, .tool_calls[].function.name
 *     messages[].content[].name, .title, .context, .refusal, .thinking
 *     messages[].content[].input, input[].input   tool_use input: every
 *                                              string and key in it
 *     tools[], functions[]: .name, .description, .function.name,
 *         .function.description, every string and key of .parameters,
 *         .function.parameters, .input_schema
 *     tool_choice, response_format, text       every string and key
 *     prompt                                   object (Responses'
 *                                              template): every string
 *
 * An image block's source and a base64 source's data (when its "type"
 * comes before them) are not texts; strings anywhere else (user,
 * metadata, other tools' settings) are not.  The text parts of one
 * content array share a group number, so that the rules can read them
 * joined.  "\u0000" is a NUL byte inside a text; a lone or mismatched
 * UTF-16 surrogate escape, overlong or out-of-range UTF-8 are errors.
 *
 * Nullable fields ("stream": null, "max_tokens": null, ...) count as
 * absent, as the OpenAI API reads them.
 */


#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


#define NGX_HTTP_AI_GUARD_REQ_OK          0
/* the body is not acceptable: answer 400 invalid_json with _error() */
#define NGX_HTTP_AI_GUARD_REQ_INVALID    -1
/* out of memory: answer 500 */
#define NGX_HTTP_AI_GUARD_REQ_NOMEM      -2
/* the text callback returned non-zero: parsing stopped at its request */
#define NGX_HTTP_AI_GUARD_REQ_ABORTED    -3

#define NGX_HTTP_AI_GUARD_REQ_MAX_DEPTH   64
#define NGX_HTTP_AI_GUARD_REQ_MODEL_LEN   255
/* tokens the estimate adds for each text: role and message framing */
#define NGX_HTTP_AI_GUARD_REQ_TEXT_TOKENS 4


/*
 * A complete decoded text: data is valid only during the call and may
 * contain NUL bytes.  group: the texts of one content array (a message's
 * parts, blocks) share a number, others have 0.
 */
typedef struct {
    const u_char               *data;
    size_t                      len;
    uint32_t                    group;
    size_t                      start;      /* the string in the body: */
    size_t                      end;        /* its quotes' offsets, the
                                               end one past the last */
    unsigned                    ascii:1;    /* no byte past 0x7f */
    unsigned                    counted:1;  /* in texts and the estimate */
} ngx_http_ai_guard_text_t;


/*
 * Called once per text; return 0 to go on, anything else stops the
 * parse with NGX_HTTP_AI_GUARD_REQ_ABORTED (the glue ran out of memory).
 */
typedef int (*ngx_http_ai_guard_text_pt)(void *data,
    const ngx_http_ai_guard_text_t *text);


typedef struct {
    u_char      model[NGX_HTTP_AI_GUARD_REQ_MODEL_LEN + 1];
    size_t      model_len;          /* 0: absent; model[] NUL-terminated */
    int         stream;             /* -1 absent or null, 0, 1 */
    int         include_usage;      /* stream_options.include_usage */
    int64_t     max_tokens;         /* max of max_tokens,
                                       max_completion_tokens,
                                       max_output_tokens; -1 absent */
    int64_t     n;                  /* -1 absent */
    unsigned    deterministic:1;    /* temperature present and == 0 */
    size_t      text_bytes;         /* decoded bytes of counted texts */
    size_t      text_chars;         /* code points of counted texts */
    size_t      texts;              /* number of counted texts */
    uint64_t    estimate;           /* prompt tokens, docs/estimate.md */
} ngx_http_ai_guard_request_t;


typedef struct ngx_http_ai_guard_request_parser_s
    ngx_http_ai_guard_request_parser_t;


/*
 * want_canonical: also build the canonical form (keys sorted bytewise,
 * recursively; no insignificant whitespace; strings re-escaped minimally;
 * numbers as written) for the cache key.  It costs memory proportional to
 * the body; without it the parser allocates nothing per key or value.
 * text may be NULL: then nothing of a text is kept, only counted.
 * Returns NULL when out of memory.
 */
ngx_http_ai_guard_request_parser_t *ngx_http_ai_guard_request_create(
    int want_canonical, ngx_http_ai_guard_text_pt text, void *data);

int ngx_http_ai_guard_request_feed(ngx_http_ai_guard_request_parser_t *rp,
    const u_char *p, size_t len);

/* end of body: checks completeness and fills *out (also on error) */
int ngx_http_ai_guard_request_finish(ngx_http_ai_guard_request_parser_t *rp,
    ngx_http_ai_guard_request_t *out);

/*
 * A static message for the client (never body bytes), and the name of
 * the offending field for the error's "param" (NULL when none).
 */
const char *ngx_http_ai_guard_request_error(
    ngx_http_ai_guard_request_parser_t *rp);
const char *ngx_http_ai_guard_request_error_param(
    ngx_http_ai_guard_request_parser_t *rp);

/* after a successful finish with want_canonical; valid until free */
int ngx_http_ai_guard_request_canonical(
    ngx_http_ai_guard_request_parser_t *rp, u_char **p, size_t *len);

/* frees everything the parser allocated; NULL is allowed */
void ngx_http_ai_guard_request_free(ngx_http_ai_guard_request_parser_t *rp);

/*
 * The estimate of one text alone, without the per-text framing; invalid
 * UTF-8 counts a token a byte.
 */
uint64_t ngx_http_ai_guard_request_estimate(const u_char *p, size_t len);


/*
 * Gemini names the model in the path, not the body (the function is in
 * ngx_http_ai_guard_request_fields.c, with the tables of its fields):
 * ".../models/{model}:generateContent" and ":streamGenerateContent"
 * (Google AI's /v1beta/models/..., Vertex AI's .../publishers/google/
 * models/...).  The model is what follows the last "/models/" up to the
 * ':' of the method, at most max bytes, no '/' and no control byte in it.
 * Returns 0 when the path is not such a call, 1 for generateContent, 2
 * for streamGenerateContent, with *model and *len set.
 */
int ngx_http_ai_guard_request_path_model(const u_char *path, size_t n,
    size_t max, const u_char **model, size_t *len);


#endif /* _NGX_HTTP_AI_GUARD_REQUEST_H_INCLUDED_ */
