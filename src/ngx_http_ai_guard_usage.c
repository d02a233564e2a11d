
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include "ngx_http_ai_guard_json.h"
#include "ngx_http_ai_guard_usage.h"


/* containers whose members matter: the "in" of a stack level */
#define NGX_HTTP_AI_GUARD_IN_NONE           0
#define NGX_HTTP_AI_GUARD_IN_ROOT           1
#define NGX_HTTP_AI_GUARD_IN_USAGE          2
#define NGX_HTTP_AI_GUARD_IN_DETAILS        3
#define NGX_HTTP_AI_GUARD_IN_RESPONSE       4
#define NGX_HTTP_AI_GUARD_IN_MESSAGE        5
#define NGX_HTTP_AI_GUARD_IN_CHOICES        6
#define NGX_HTTP_AI_GUARD_IN_CHOICE         7
#define NGX_HTTP_AI_GUARD_IN_CHOICE_MSG     8
#define NGX_HTTP_AI_GUARD_IN_TOOL_CALLS     9
#define NGX_HTTP_AI_GUARD_IN_TOOL_CALL      10
#define NGX_HTTP_AI_GUARD_IN_FUNCTION       11
#define NGX_HTTP_AI_GUARD_IN_DELTA          12
#define NGX_HTTP_AI_GUARD_IN_OUTPUT         13
#define NGX_HTTP_AI_GUARD_IN_OUTPUT_ITEM    14
#define NGX_HTTP_AI_GUARD_IN_OUTPUT_PARTS   15
#define NGX_HTTP_AI_GUARD_IN_OUTPUT_PART    16
#define NGX_HTTP_AI_GUARD_IN_CONTENT        17
#define NGX_HTTP_AI_GUARD_IN_CONTENT_BLOCK  18
#define NGX_HTTP_AI_GUARD_IN_OUT_DETAILS    19
#define NGX_HTTP_AI_GUARD_IN_ROOTS          20
#define NGX_HTTP_AI_GUARD_IN_GEM_USAGE      21
#define NGX_HTTP_AI_GUARD_IN_CANDIDATES     22
#define NGX_HTTP_AI_GUARD_IN_CANDIDATE      23
#define NGX_HTTP_AI_GUARD_IN_GEM_CONTENT    24
#define NGX_HTTP_AI_GUARD_IN_N              25

/* what the value about to be read means: the "at" of a member */
#define NGX_HTTP_AI_GUARD_AT_NONE           0
#define NGX_HTTP_AI_GUARD_AT_ROOT           1
#define NGX_HTTP_AI_GUARD_AT_MODEL          2
#define NGX_HTTP_AI_GUARD_AT_TYPE           3
#define NGX_HTTP_AI_GUARD_AT_OBJECT         4
#define NGX_HTTP_AI_GUARD_AT_USAGE          5
#define NGX_HTTP_AI_GUARD_AT_DETAILS        6
#define NGX_HTTP_AI_GUARD_AT_RESPONSE       7
#define NGX_HTTP_AI_GUARD_AT_MESSAGE        8
#define NGX_HTTP_AI_GUARD_AT_CHOICES        9
#define NGX_HTTP_AI_GUARD_AT_CHOICE         10
#define NGX_HTTP_AI_GUARD_AT_CHOICE_MSG     11
#define NGX_HTTP_AI_GUARD_AT_TOOL_CALLS     12
#define NGX_HTTP_AI_GUARD_AT_TOOL_CALL      13
#define NGX_HTTP_AI_GUARD_AT_FUNCTION       14
#define NGX_HTTP_AI_GUARD_AT_TEXT           15
#define NGX_HTTP_AI_GUARD_AT_DELTA          16
#define NGX_HTTP_AI_GUARD_AT_OUTPUT         17
#define NGX_HTTP_AI_GUARD_AT_OUTPUT_ITEM    18
#define NGX_HTTP_AI_GUARD_AT_OUTPUT_PARTS   19
#define NGX_HTTP_AI_GUARD_AT_OUTPUT_PART    20
#define NGX_HTTP_AI_GUARD_AT_CONTENT        21
#define NGX_HTTP_AI_GUARD_AT_CONTENT_BLOCK  22
#define NGX_HTTP_AI_GUARD_AT_PROMPT         23
#define NGX_HTTP_AI_GUARD_AT_COMPLETION     24
#define NGX_HTTP_AI_GUARD_AT_INPUT          25
#define NGX_HTTP_AI_GUARD_AT_OUTPUT_TOKENS  26
#define NGX_HTTP_AI_GUARD_AT_CACHED         27
#define NGX_HTTP_AI_GUARD_AT_CACHE_READ     28
#define NGX_HTTP_AI_GUARD_AT_CACHE_WRITE    29
#define NGX_HTTP_AI_GUARD_AT_OUT_DETAILS    30
#define NGX_HTTP_AI_GUARD_AT_REASONING      31
#define NGX_HTTP_AI_GUARD_AT_GEM_USAGE      32
#define NGX_HTTP_AI_GUARD_AT_CANDIDATES     33
#define NGX_HTTP_AI_GUARD_AT_CANDIDATE      34
#define NGX_HTTP_AI_GUARD_AT_GEM_CONTENT    35
#define NGX_HTTP_AI_GUARD_AT_G_PROMPT       36
#define NGX_HTTP_AI_GUARD_AT_G_CANDIDATES   37
#define NGX_HTTP_AI_GUARD_AT_G_CACHED       38
#define NGX_HTTP_AI_GUARD_AT_G_THOUGHTS     39
#define NGX_HTTP_AI_GUARD_AT_G_TOOL_PROMPT  40
#define NGX_HTTP_AI_GUARD_AT_CHUNK          41
#define NGX_HTTP_AI_GUARD_AT_N              42

/* where the bytes of a string go */
#define NGX_HTTP_AI_GUARD_TO_NONE       0
#define NGX_HTTP_AI_GUARD_TO_COUNT      1
#define NGX_HTTP_AI_GUARD_TO_KEY        2
#define NGX_HTTP_AI_GUARD_TO_MODEL      3
#define NGX_HTTP_AI_GUARD_TO_TYPE       4
#define NGX_HTTP_AI_GUARD_TO_OBJECT     5

/* the raw counts, indexes of p->count[] */
#define NGX_HTTP_AI_GUARD_F_NONE        0
#define NGX_HTTP_AI_GUARD_F_PROMPT      1
#define NGX_HTTP_AI_GUARD_F_COMPLETION  2
#define NGX_HTTP_AI_GUARD_F_INPUT       3
#define NGX_HTTP_AI_GUARD_F_OUTPUT      4
#define NGX_HTTP_AI_GUARD_F_CACHED      5
#define NGX_HTTP_AI_GUARD_F_CACHE_READ  6
#define NGX_HTTP_AI_GUARD_F_CACHE_WRITE 7
#define NGX_HTTP_AI_GUARD_F_REASONING   8
#define NGX_HTTP_AI_GUARD_F_G_PROMPT    9
#define NGX_HTTP_AI_GUARD_F_G_CANDIDATES 10
#define NGX_HTTP_AI_GUARD_F_G_CACHED    11
#define NGX_HTTP_AI_GUARD_F_G_THOUGHTS  12
#define NGX_HTTP_AI_GUARD_F_G_TOOL_PROMPT 13

#define NGX_HTTP_AI_GUARD_HINT_OPENAI     1
#define NGX_HTTP_AI_GUARD_HINT_ANTHROPIC  2
#define NGX_HTTP_AI_GUARD_HINT_GEMINI     4

/* a count that is negative or has an exponent is ignored */
#define NGX_HTTP_AI_GUARD_NOT_COUNT                                          \
    (NGX_HTTP_AI_GUARD_JSON_NEGATIVE|NGX_HTTP_AI_GUARD_JSON_EXPONENT)

/* keys longer than this match nothing */
#define NGX_HTTP_AI_GUARD_KEY_MAX       32


typedef struct {
    u_char          obj;    /* "in" of an object found here */
    u_char          arr;    /* "in" of an array found here */
    u_char          sink;   /* where a string found here goes */
    u_char          field;  /* where a number found here goes */
} ngx_http_ai_guard_usage_at_t;


typedef struct {
    size_t          len;
    const char     *name;
    u_char          at;
} ngx_http_ai_guard_usage_key_t;


static void ngx_http_ai_guard_usage_scan(ngx_http_ai_guard_usage_parser_t *p,
    const u_char *pos, const u_char *end);
static void ngx_http_ai_guard_usage_json_reset(
    ngx_http_ai_guard_usage_parser_t *p);
static u_char ngx_http_ai_guard_usage_resolve(
    ngx_http_ai_guard_usage_parser_t *p, const u_char *s, size_t len);
static void ngx_http_ai_guard_usage_capture(
    ngx_http_ai_guard_usage_parser_t *p, const u_char *s, size_t n);
static void ngx_http_ai_guard_usage_capture_code(
    ngx_http_ai_guard_usage_parser_t *p, uint32_t code);
static void ngx_http_ai_guard_usage_string_end(
    ngx_http_ai_guard_usage_parser_t *p);
static void ngx_http_ai_guard_usage_number_end(
    ngx_http_ai_guard_usage_parser_t *p);
static const u_char *ngx_http_ai_guard_usage_eol(const u_char *pos,
    const u_char *end, const u_char **cr);


/* bytes that end a run of plain string characters */
static const u_char  ngx_http_ai_guard_usage_stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,     /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,     /* '\\' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
};


/* indexed by NGX_HTTP_AI_GUARD_AT_* */
static const ngx_http_ai_guard_usage_at_t  ngx_http_ai_guard_usage_at[] = {
    { 0, 0, 0, 0 },                                            /* NONE */
    { NGX_HTTP_AI_GUARD_IN_ROOT, NGX_HTTP_AI_GUARD_IN_ROOTS, 0, 0 },
                                                               /* ROOT */
    { 0, 0, NGX_HTTP_AI_GUARD_TO_MODEL, 0 },                   /* MODEL */
    { 0, 0, NGX_HTTP_AI_GUARD_TO_TYPE, 0 },                    /* TYPE */
    { 0, 0, NGX_HTTP_AI_GUARD_TO_OBJECT, 0 },                  /* OBJECT */
    { NGX_HTTP_AI_GUARD_IN_USAGE, 0, 0, 0 },                   /* USAGE */
    { NGX_HTTP_AI_GUARD_IN_DETAILS, 0, 0, 0 },                 /* DETAILS */
    { NGX_HTTP_AI_GUARD_IN_RESPONSE, 0, 0, 0 },                /* RESPONSE */
    { NGX_HTTP_AI_GUARD_IN_MESSAGE, 0, 0, 0 },                 /* MESSAGE */
    { 0, NGX_HTTP_AI_GUARD_IN_CHOICES, 0, 0 },                 /* CHOICES */
    { NGX_HTTP_AI_GUARD_IN_CHOICE, 0, 0, 0 },                  /* CHOICE */
    { NGX_HTTP_AI_GUARD_IN_CHOICE_MSG, 0, 0, 0 },              /* CHOICE_MSG */
    { 0, NGX_HTTP_AI_GUARD_IN_TOOL_CALLS, 0, 0 },              /* TOOL_CALLS */
    { NGX_HTTP_AI_GUARD_IN_TOOL_CALL, 0, 0, 0 },               /* TOOL_CALL */
    { NGX_HTTP_AI_GUARD_IN_FUNCTION, 0, 0, 0 },                /* FUNCTION */
    { 0, 0, NGX_HTTP_AI_GUARD_TO_COUNT, 0 },                   /* TEXT */
    { NGX_HTTP_AI_GUARD_IN_DELTA, 0, NGX_HTTP_AI_GUARD_TO_COUNT, 0 },
                                                               /* DELTA */
    { 0, NGX_HTTP_AI_GUARD_IN_OUTPUT, 0, 0 },                  /* OUTPUT */
    { NGX_HTTP_AI_GUARD_IN_OUTPUT_ITEM, 0, 0, 0 },             /* OUTPUT_ITEM */
    { 0, NGX_HTTP_AI_GUARD_IN_OUTPUT_PARTS, 0, 0 },          /* OUTPUT_PARTS */
    { NGX_HTTP_AI_GUARD_IN_OUTPUT_PART, 0, 0, 0 },             /* OUTPUT_PART */
    { 0, NGX_HTTP_AI_GUARD_IN_CONTENT, 0, 0 },                 /* CONTENT */
    { NGX_HTTP_AI_GUARD_IN_CONTENT_BLOCK, 0, 0, 0 },         /* CONTENT_BLOCK */
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_PROMPT },
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_COMPLETION },
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_INPUT },
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_OUTPUT },
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_CACHED },
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_CACHE_READ },
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_CACHE_WRITE },
    { NGX_HTTP_AI_GUARD_IN_OUT_DETAILS, 0, 0, 0 },             /* OUT_DETAILS */
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_REASONING },
    { NGX_HTTP_AI_GUARD_IN_GEM_USAGE, 0, 0, 0 },               /* GEM_USAGE */
    { 0, NGX_HTTP_AI_GUARD_IN_CANDIDATES, 0, 0 },              /* CANDIDATES */
    { NGX_HTTP_AI_GUARD_IN_CANDIDATE, 0, 0, 0 },               /* CANDIDATE */
    { NGX_HTTP_AI_GUARD_IN_GEM_CONTENT, 0, 0, 0 },             /* GEM_CONTENT */
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_G_PROMPT },
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_G_CANDIDATES },
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_G_CACHED },
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_G_THOUGHTS },
    { 0, 0, 0, NGX_HTTP_AI_GUARD_F_G_TOOL_PROMPT },
    { NGX_HTTP_AI_GUARD_IN_ROOT, 0, 0, 0 }                     /* CHUNK */
};


/* the "at" of an element of an array, indexed by NGX_HTTP_AI_GUARD_IN_* */
static const u_char  ngx_http_ai_guard_usage_elem[] = {
    NGX_HTTP_AI_GUARD_AT_NONE,              /* NONE */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* ROOT */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* USAGE */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* DETAILS */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* RESPONSE */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* MESSAGE */
    NGX_HTTP_AI_GUARD_AT_CHOICE,            /* CHOICES */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* CHOICE */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* CHOICE_MSG */
    NGX_HTTP_AI_GUARD_AT_TOOL_CALL,         /* TOOL_CALLS */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* TOOL_CALL */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* FUNCTION */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* DELTA */
    NGX_HTTP_AI_GUARD_AT_OUTPUT_ITEM,       /* OUTPUT */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* OUTPUT_ITEM */
    NGX_HTTP_AI_GUARD_AT_OUTPUT_PART,       /* OUTPUT_PARTS */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* OUTPUT_PART */
    NGX_HTTP_AI_GUARD_AT_CONTENT_BLOCK,     /* CONTENT */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* CONTENT_BLOCK */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* OUT_DETAILS */
    NGX_HTTP_AI_GUARD_AT_CHUNK,             /* ROOTS: Gemini's array stream */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* GEM_USAGE */
    NGX_HTTP_AI_GUARD_AT_CANDIDATE,         /* CANDIDATES */
    NGX_HTTP_AI_GUARD_AT_NONE,              /* CANDIDATE */
    NGX_HTTP_AI_GUARD_AT_NONE               /* GEM_CONTENT */
};


#define ngx_http_ai_guard_usage_key(s, at)  { sizeof(s) - 1, s, at }
#define ngx_http_ai_guard_usage_key_end     { 0, NULL, 0 }


static const ngx_http_ai_guard_usage_key_t  ngx_http_ai_guard_usage_in_root[] =
{
    ngx_http_ai_guard_usage_key("model", NGX_HTTP_AI_GUARD_AT_MODEL),
    ngx_http_ai_guard_usage_key("type", NGX_HTTP_AI_GUARD_AT_TYPE),
    ngx_http_ai_guard_usage_key("object", NGX_HTTP_AI_GUARD_AT_OBJECT),
    ngx_http_ai_guard_usage_key("usage", NGX_HTTP_AI_GUARD_AT_USAGE),
    ngx_http_ai_guard_usage_key("response", NGX_HTTP_AI_GUARD_AT_RESPONSE),
    ngx_http_ai_guard_usage_key("message", NGX_HTTP_AI_GUARD_AT_MESSAGE),
    ngx_http_ai_guard_usage_key("choices", NGX_HTTP_AI_GUARD_AT_CHOICES),
    ngx_http_ai_guard_usage_key("delta", NGX_HTTP_AI_GUARD_AT_DELTA),
    ngx_http_ai_guard_usage_key("output", NGX_HTTP_AI_GUARD_AT_OUTPUT),
    ngx_http_ai_guard_usage_key("content", NGX_HTTP_AI_GUARD_AT_CONTENT),
    ngx_http_ai_guard_usage_key("usageMetadata",
                                NGX_HTTP_AI_GUARD_AT_GEM_USAGE),
    ngx_http_ai_guard_usage_key("modelVersion", NGX_HTTP_AI_GUARD_AT_MODEL),
    ngx_http_ai_guard_usage_key("candidates", NGX_HTTP_AI_GUARD_AT_CANDIDATES),
    ngx_http_ai_guard_usage_key_end
};


static const ngx_http_ai_guard_usage_key_t  ngx_http_ai_guard_usage_in_usage[] =
{
    ngx_http_ai_guard_usage_key("prompt_tokens",
                                NGX_HTTP_AI_GUARD_AT_PROMPT),
    ngx_http_ai_guard_usage_key("completion_tokens",
                                NGX_HTTP_AI_GUARD_AT_COMPLETION),
    ngx_http_ai_guard_usage_key("input_tokens",
                                NGX_HTTP_AI_GUARD_AT_INPUT),
    ngx_http_ai_guard_usage_key("output_tokens",
                                NGX_HTTP_AI_GUARD_AT_OUTPUT_TOKENS),
    ngx_http_ai_guard_usage_key("cache_read_input_tokens",
                                NGX_HTTP_AI_GUARD_AT_CACHE_READ),
    ngx_http_ai_guard_usage_key("cache_creation_input_tokens",
                                NGX_HTTP_AI_GUARD_AT_CACHE_WRITE),
    ngx_http_ai_guard_usage_key("prompt_tokens_details",
                                NGX_HTTP_AI_GUARD_AT_DETAILS),
    ngx_http_ai_guard_usage_key("input_tokens_details",
                                NGX_HTTP_AI_GUARD_AT_DETAILS),
    ngx_http_ai_guard_usage_key("completion_tokens_details",
                                NGX_HTTP_AI_GUARD_AT_OUT_DETAILS),
    ngx_http_ai_guard_usage_key("output_tokens_details",
                                NGX_HTTP_AI_GUARD_AT_OUT_DETAILS),
    ngx_http_ai_guard_usage_key_end
};


static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_details[] =
{
    ngx_http_ai_guard_usage_key("cached_tokens", NGX_HTTP_AI_GUARD_AT_CACHED),
    ngx_http_ai_guard_usage_key_end
};


/* completion_tokens_details (chat), output_tokens_details (Responses) */
static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_out_details[] =
{
    ngx_http_ai_guard_usage_key("reasoning_tokens",
                                NGX_HTTP_AI_GUARD_AT_REASONING),
    ngx_http_ai_guard_usage_key_end
};


/* Gemini's usageMetadata; totalTokenCount is their sum, not read */
static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_gem_usage[] =
{
    ngx_http_ai_guard_usage_key("promptTokenCount",
                                NGX_HTTP_AI_GUARD_AT_G_PROMPT),
    ngx_http_ai_guard_usage_key("candidatesTokenCount",
                                NGX_HTTP_AI_GUARD_AT_G_CANDIDATES),
    ngx_http_ai_guard_usage_key("cachedContentTokenCount",
                                NGX_HTTP_AI_GUARD_AT_G_CACHED),
    ngx_http_ai_guard_usage_key("thoughtsTokenCount",
                                NGX_HTTP_AI_GUARD_AT_G_THOUGHTS),
    ngx_http_ai_guard_usage_key("toolUsePromptTokenCount",
                                NGX_HTTP_AI_GUARD_AT_G_TOOL_PROMPT),
    ngx_http_ai_guard_usage_key_end
};


/* a Gemini candidate, and its content: parts[].text is generated text */
static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_candidate[] =
{
    ngx_http_ai_guard_usage_key("content", NGX_HTTP_AI_GUARD_AT_GEM_CONTENT),
    ngx_http_ai_guard_usage_key_end
};


static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_gem_content[] =
{
    ngx_http_ai_guard_usage_key("parts", NGX_HTTP_AI_GUARD_AT_OUTPUT_PARTS),
    ngx_http_ai_guard_usage_key_end
};


/* response (Responses stream) and message (Anthropic message_start) */
static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_envelope[] =
{
    ngx_http_ai_guard_usage_key("model", NGX_HTTP_AI_GUARD_AT_MODEL),
    ngx_http_ai_guard_usage_key("usage", NGX_HTTP_AI_GUARD_AT_USAGE),
    ngx_http_ai_guard_usage_key_end
};


static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_choice[] =
{
    ngx_http_ai_guard_usage_key("delta", NGX_HTTP_AI_GUARD_AT_CHOICE_MSG),
    ngx_http_ai_guard_usage_key("message", NGX_HTTP_AI_GUARD_AT_CHOICE_MSG),
    ngx_http_ai_guard_usage_key("text", NGX_HTTP_AI_GUARD_AT_TEXT),
    ngx_http_ai_guard_usage_key_end
};


static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_choice_msg[] =
{
    ngx_http_ai_guard_usage_key("content", NGX_HTTP_AI_GUARD_AT_TEXT),
    ngx_http_ai_guard_usage_key("tool_calls", NGX_HTTP_AI_GUARD_AT_TOOL_CALLS),
    ngx_http_ai_guard_usage_key("refusal", NGX_HTTP_AI_GUARD_AT_TEXT),
    ngx_http_ai_guard_usage_key("reasoning_content",
                                NGX_HTTP_AI_GUARD_AT_TEXT),
    ngx_http_ai_guard_usage_key("function_call",
                                NGX_HTTP_AI_GUARD_AT_FUNCTION),
    ngx_http_ai_guard_usage_key_end
};


static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_tool_call[] =
{
    ngx_http_ai_guard_usage_key("function", NGX_HTTP_AI_GUARD_AT_FUNCTION),
    ngx_http_ai_guard_usage_key_end
};


static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_function[] =
{
    ngx_http_ai_guard_usage_key("arguments", NGX_HTTP_AI_GUARD_AT_TEXT),
    ngx_http_ai_guard_usage_key_end
};


/* Anthropic's content_block_delta delta and content blocks */
static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_delta[] =
{
    ngx_http_ai_guard_usage_key("text", NGX_HTTP_AI_GUARD_AT_TEXT),
    ngx_http_ai_guard_usage_key("partial_json", NGX_HTTP_AI_GUARD_AT_TEXT),
    ngx_http_ai_guard_usage_key("thinking", NGX_HTTP_AI_GUARD_AT_TEXT),
    ngx_http_ai_guard_usage_key_end
};


static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_output_item[] =
{
    ngx_http_ai_guard_usage_key("content",
                                NGX_HTTP_AI_GUARD_AT_OUTPUT_PARTS),
    ngx_http_ai_guard_usage_key("arguments", NGX_HTTP_AI_GUARD_AT_TEXT),
    ngx_http_ai_guard_usage_key_end
};


static const ngx_http_ai_guard_usage_key_t
    ngx_http_ai_guard_usage_in_output_part[] =
{
    ngx_http_ai_guard_usage_key("text", NGX_HTTP_AI_GUARD_AT_TEXT),
    ngx_http_ai_guard_usage_key_end
};


/* indexed by NGX_HTTP_AI_GUARD_IN_*; NULL: no member matters */
static const ngx_http_ai_guard_usage_key_t
    *const ngx_http_ai_guard_usage_in[] =
{
    NULL,                                           /* NONE */
    ngx_http_ai_guard_usage_in_root,                /* ROOT */
    ngx_http_ai_guard_usage_in_usage,               /* USAGE */
    ngx_http_ai_guard_usage_in_details,             /* DETAILS */
    ngx_http_ai_guard_usage_in_envelope,            /* RESPONSE */
    ngx_http_ai_guard_usage_in_envelope,            /* MESSAGE */
    NULL,                                           /* CHOICES */
    ngx_http_ai_guard_usage_in_choice,              /* CHOICE */
    ngx_http_ai_guard_usage_in_choice_msg,          /* CHOICE_MSG */
    NULL,                                           /* TOOL_CALLS */
    ngx_http_ai_guard_usage_in_tool_call,           /* TOOL_CALL */
    ngx_http_ai_guard_usage_in_function,            /* FUNCTION */
    ngx_http_ai_guard_usage_in_delta,               /* DELTA */
    NULL,                                           /* OUTPUT */
    ngx_http_ai_guard_usage_in_output_item,         /* OUTPUT_ITEM */
    NULL,                                           /* OUTPUT_PARTS */
    ngx_http_ai_guard_usage_in_output_part,         /* OUTPUT_PART */
    NULL,                                           /* CONTENT */
    ngx_http_ai_guard_usage_in_delta,               /* CONTENT_BLOCK */
    ngx_http_ai_guard_usage_in_out_details,         /* OUT_DETAILS */
    NULL,                                           /* ROOTS */
    ngx_http_ai_guard_usage_in_gem_usage,           /* GEM_USAGE */
    NULL,                                           /* CANDIDATES */
    ngx_http_ai_guard_usage_in_candidate,           /* CANDIDATE */
    ngx_http_ai_guard_usage_in_gem_content          /* GEM_CONTENT */
};


/* which vendor a count names, indexed by NGX_HTTP_AI_GUARD_F_* */
static const u_char  ngx_http_ai_guard_usage_field_hint[] = {
    0,
    NGX_HTTP_AI_GUARD_HINT_OPENAI,          /* prompt_tokens */
    NGX_HTTP_AI_GUARD_HINT_OPENAI,          /* completion_tokens */
    0,                                      /* input_tokens */
    0,                                      /* output_tokens */
    NGX_HTTP_AI_GUARD_HINT_OPENAI,          /* cached_tokens */
    NGX_HTTP_AI_GUARD_HINT_ANTHROPIC,       /* cache_read_input_tokens */
    NGX_HTTP_AI_GUARD_HINT_ANTHROPIC,       /* cache_creation_input_tokens */
    NGX_HTTP_AI_GUARD_HINT_OPENAI,          /* reasoning_tokens */
    NGX_HTTP_AI_GUARD_HINT_GEMINI,          /* promptTokenCount */
    NGX_HTTP_AI_GUARD_HINT_GEMINI,          /* candidatesTokenCount */
    NGX_HTTP_AI_GUARD_HINT_GEMINI,          /* cachedContentTokenCount */
    NGX_HTTP_AI_GUARD_HINT_GEMINI,          /* thoughtsTokenCount */
    NGX_HTTP_AI_GUARD_HINT_GEMINI           /* toolUsePromptTokenCount */
};


static const char  *ngx_http_ai_guard_usage_lit[] = {
    "true", "false", "null"
};


void
ngx_http_ai_guard_usage_init(ngx_http_ai_guard_usage_parser_t *p, int sse)
{
    memset(p, 0, sizeof(ngx_http_ai_guard_usage_parser_t));

    /* p->sse_state: sw_bom of ngx_http_ai_guard_usage_feed() */

    p->sse = sse ? 1 : 0;

    ngx_http_ai_guard_usage_json_reset(p);
}


void
ngx_http_ai_guard_usage_feed(ngx_http_ai_guard_usage_parser_t *p,
    const u_char *data, size_t len)
{
    u_char         c;
    const u_char  *pos, *end, *q, *cr;
    enum {
        sw_bom = 0,
        sw_line,
        sw_field,
        sw_space,
        sw_data,
        sw_ignore,
        sw_cr
    } state;

    static const u_char  lf = '\n';
    static const u_char  bom[] = { 0xef, 0xbb, 0xbf };

    if (len == 0) {
        return;
    }

    if (!p->sse) {
        ngx_http_ai_guard_usage_scan(p, data, data + len);
        return;
    }

    pos = data;
    end = data + len;
    cr = NULL;
    state = p->sse_state;

    while (pos < end) {
        c = *pos;

        switch (state) {

        case sw_bom:

            if (c == bom[p->flen]) {
                pos++;

                if (++p->flen == sizeof(bom)) {
                    state = sw_line;
                }

                continue;
            }

            /* a partial BOM makes a first line no field name can match */

            state = p->flen ? sw_ignore : sw_line;
            continue;

        case sw_cr:

            /* a LF right after a CR, maybe in the next buffer, is ignored */

            if (c == '\n') {
                pos++;
            }

            state = sw_line;
            continue;

        case sw_line:

            if (c == '\n' || c == '\r') {
                /* a blank line dispatches the event */
                ngx_http_ai_guard_usage_json_reset(p);

                pos++;
                state = (c == '\r') ? sw_cr : sw_line;
                continue;
            }

            if (c == ':') {
                pos++;
                state = sw_ignore;
                continue;
            }

            p->flen = 0;
            state = sw_field;
            continue;

        case sw_field:

            while (pos < end) {
                c = *pos;

                if (c == ':' || c == '\n' || c == '\r') {
                    break;
                }

                /* a longer name is kept cut, it cannot match "data" */
                if (p->flen < sizeof(p->fname)) {
                    p->fname[p->flen++] = c;
                }

                pos++;
            }

            if (pos == end) {
                continue;
            }

            pos++;

            if (p->flen == 4 && memcmp(p->fname, "data", 4) == 0) {

                if (c == ':') {
                    state = sw_space;
                    continue;
                }

                /* "data" alone: an empty data line */
                ngx_http_ai_guard_usage_scan(p, &lf, &lf + 1);

            } else if (c == ':') {
                state = sw_ignore;
                continue;
            }

            state = (c == '\r') ? sw_cr : sw_line;
            continue;

        case sw_space:

            if (c == ' ') {
                pos++;
            }

            state = sw_data;
            continue;

        case sw_data:

            q = ngx_http_ai_guard_usage_eol(pos, end, &cr);

            if (q != pos) {
                ngx_http_ai_guard_usage_scan(p, pos, q);
                pos = q;

                if (pos == end) {
                    continue;
                }
            }

            /* data lines are joined with a newline, whitespace to JSON */
            ngx_http_ai_guard_usage_scan(p, &lf, &lf + 1);

            state = (*pos++ == '\r') ? sw_cr : sw_line;
            continue;

        case sw_ignore:

            pos = ngx_http_ai_guard_usage_eol(pos, end, &cr);

            if (pos == end) {
                continue;
            }

            state = (*pos++ == '\r') ? sw_cr : sw_line;
            continue;
        }
    }

    p->sse_state = state;
}


/*
 * The first CR or LF at or after pos, or end.  The next CR of the buffer
 * is remembered in *cr, so lines ending in LF alone cost one memchr()
 * each however many there are.
 */

static const u_char *
ngx_http_ai_guard_usage_eol(const u_char *pos, const u_char *end,
    const u_char **cr)
{
    const u_char  *lf;

    if (*cr == NULL || *cr < pos) {
        *cr = memchr(pos, '\r', end - pos);

        if (*cr == NULL) {
            *cr = end;
        }
    }

    lf = memchr(pos, '\n', *cr - pos);

    return lf ? lf : *cr;
}


uint64_t
ngx_http_ai_guard_usage_content(const ngx_http_ai_guard_usage_parser_t *p)
{
    return p->content_bytes;
}


void
ngx_http_ai_guard_usage_finish(const ngx_http_ai_guard_usage_parser_t *p,
    ngx_http_ai_guard_usage_t *u)
{
    const int64_t  *n;

    memset(u, 0, sizeof(ngx_http_ai_guard_usage_t));

    n = p->count;

    if (p->hints & NGX_HTTP_AI_GUARD_HINT_ANTHROPIC) {
        u->vendor = NGX_HTTP_AI_GUARD_USAGE_ANTHROPIC;

        /* Anthropic counts cache reads and writes apart from input_tokens */
        u->input_tokens = n[NGX_HTTP_AI_GUARD_F_INPUT]
                          + n[NGX_HTTP_AI_GUARD_F_CACHE_READ]
                          + n[NGX_HTTP_AI_GUARD_F_CACHE_WRITE];
        u->output_tokens = n[NGX_HTTP_AI_GUARD_F_OUTPUT];
        u->cached_tokens = n[NGX_HTTP_AI_GUARD_F_CACHE_READ];
        u->cache_write_tokens = n[NGX_HTTP_AI_GUARD_F_CACHE_WRITE];

    } else if (p->hints & NGX_HTTP_AI_GUARD_HINT_GEMINI) {
        u->vendor = NGX_HTTP_AI_GUARD_USAGE_GEMINI;

        /*
         * promptTokenCount includes the cached content; thoughts are
         * counted apart from the candidates and billed as output
         */
        u->input_tokens = n[NGX_HTTP_AI_GUARD_F_G_PROMPT]
                          + n[NGX_HTTP_AI_GUARD_F_G_TOOL_PROMPT];
        u->output_tokens = n[NGX_HTTP_AI_GUARD_F_G_CANDIDATES]
                           + n[NGX_HTTP_AI_GUARD_F_G_THOUGHTS];
        u->cached_tokens = n[NGX_HTTP_AI_GUARD_F_G_CACHED];
        u->reasoning_tokens = n[NGX_HTTP_AI_GUARD_F_G_THOUGHTS];

    } else {
        if (p->hints & NGX_HTTP_AI_GUARD_HINT_OPENAI) {
            u->vendor = NGX_HTTP_AI_GUARD_USAGE_OPENAI;
        }

        u->input_tokens = (p->seen & (1u << NGX_HTTP_AI_GUARD_F_PROMPT))
                          ? n[NGX_HTTP_AI_GUARD_F_PROMPT]
                          : n[NGX_HTTP_AI_GUARD_F_INPUT];
        u->output_tokens =
                          (p->seen & (1u << NGX_HTTP_AI_GUARD_F_COMPLETION))
                          ? n[NGX_HTTP_AI_GUARD_F_COMPLETION]
                          : n[NGX_HTTP_AI_GUARD_F_OUTPUT];
        u->cached_tokens = n[NGX_HTTP_AI_GUARD_F_CACHED];

        /* OpenAI's reasoning tokens are a part of its output tokens */
        u->reasoning_tokens = n[NGX_HTTP_AI_GUARD_F_REASONING];
    }

    if (u->cached_tokens > u->input_tokens) {
        u->cached_tokens = u->input_tokens;
    }

    if (u->reasoning_tokens > u->output_tokens) {
        u->reasoning_tokens = u->output_tokens;
    }

    u->found = p->found ? 1 : 0;
    u->content_bytes = p->content_bytes;
    u->model_len = p->model_len;
    memcpy(u->model, p->model, p->model_len);
}


static void
ngx_http_ai_guard_usage_json_reset(ngx_http_ai_guard_usage_parser_t *p)
{
    p->state = 0;   /* sw_value of ngx_http_ai_guard_usage_scan() */
    p->depth = 0;
    p->slot = NGX_HTTP_AI_GUARD_AT_ROOT;
    p->skip = 0;
}


/*
 * The JSON scanner: one byte at a time through a switch, except runs of
 * plain string characters, which an inner loop eats whole, and escapes
 * and numbers, which the decoders of ngx_http_ai_guard_json.c read.
 * Lenient where a model name or a count is not at stake: it checks no
 * UTF-8 and takes a surrogate escape alone.  Every case either consumes
 * what it looked at and continues, jumps to a label below, or breaks out
 * of the switch on a '}' or ']' to close a container.
 */

static void
ngx_http_ai_guard_usage_scan(ngx_http_ai_guard_usage_parser_t *p,
    const u_char *pos, const u_char *end)
{
    u_char         c, in;
    unsigned       top;
    const u_char  *start;
    enum {
        sw_value = 0,
        sw_array_first,     /* after '[' */
        sw_object_first,    /* after '{' */
        sw_key,             /* after ',' in an object */
        sw_colon,
        sw_after,           /* after a value: ',' or its container's end */
        sw_string,
        sw_escape,          /* after '\\' */
        sw_number,
        sw_literal,         /* in true, false or null */
        sw_skip,            /* in structure past the maximum depth */
        sw_skip_string,
        sw_skip_escape,
        sw_done,            /* after the root */
        sw_error
    } state;

    state = p->state;

    if (state == sw_error) {
        return;
    }

    while (pos < end) {
        c = *pos;

        switch (state) {

        case sw_array_first:

            if (c == ']') {
                pos++;
                break;
            }

            /* fall through */

        case sw_value:

            switch (c) {

            case ' ': case '\t': case '\n': case '\r':
                pos++;
                continue;

            case '{':
                pos++;

                if (p->depth == NGX_HTTP_AI_GUARD_USAGE_DEPTH) {
                    p->skip = 1;
                    state = sw_skip;
                    continue;
                }

                p->stack[p->depth] = ngx_http_ai_guard_usage_at[p->slot].obj;
                p->arrays &= ~(1u << p->depth);
                p->depth++;
                state = sw_object_first;
                continue;

            case '[':
                pos++;

                if (p->depth == NGX_HTTP_AI_GUARD_USAGE_DEPTH) {
                    p->skip = 1;
                    state = sw_skip;
                    continue;
                }

                in = ngx_http_ai_guard_usage_at[p->slot].arr;
                p->stack[p->depth] = in;
                p->arrays |= 1u << p->depth;
                p->depth++;
                p->slot = ngx_http_ai_guard_usage_elem[in];
                state = sw_array_first;
                continue;

            case '"':
                pos++;
                p->sink = ngx_http_ai_guard_usage_at[p->slot].sink;
                p->key = 0;
                p->clen = 0;
                state = sw_string;
                continue;

            case '-':
            case '0': case '1': case '2': case '3': case '4':
            case '5': case '6': case '7': case '8': case '9':
                ngx_http_ai_guard_json_number_init(&p->num);
                p->nfield = ngx_http_ai_guard_usage_at[p->slot].field;
                state = sw_number;
                pos = ngx_http_ai_guard_json_number(&p->num, pos, end);
                goto number;

            case 't':
                p->lit = 0;
                goto literal;

            case 'f':
                p->lit = 1;
                goto literal;

            case 'n':
                p->lit = 2;
                goto literal;

            default:
                goto failed;
            }

        case sw_object_first:

            if (c == '}') {
                pos++;
                break;
            }

            /* fall through */

        case sw_key:

            switch (c) {

            case ' ': case '\t': case '\n': case '\r':
                pos++;
                continue;

            case '"':
                pos++;

                /* only keys of containers that matter are kept */
                p->sink = p->stack[p->depth - 1] ? NGX_HTTP_AI_GUARD_TO_KEY
                                                 : NGX_HTTP_AI_GUARD_TO_NONE;
                p->key = 1;
                p->clen = 0;
                state = sw_string;
                continue;

            default:
                goto failed;
            }

        case sw_colon:

            switch (c) {

            case ' ': case '\t': case '\n': case '\r':
                pos++;
                continue;

            case ':':
                pos++;
                state = sw_value;
                continue;

            default:
                goto failed;
            }

        case sw_after:

            switch (c) {

            case ' ': case '\t': case '\n': case '\r':
                pos++;
                continue;

            case ',':
                pos++;
                top = p->depth - 1;

                if (p->arrays & (1u << top)) {
                    p->slot = ngx_http_ai_guard_usage_elem[p->stack[top]];
                    state = sw_value;

                } else {
                    state = sw_key;
                }

                continue;

            case '}': case ']':
                pos++;
                break;

            default:
                goto failed;
            }

            break;

        case sw_string:

            start = pos;

            /*
             * Plain ASCII a block at a time; a byte past ASCII stops the
             * skip, and the loop goes on with it and what follows.
             */

            pos = ngx_http_ai_guard_json_skip(pos, end);

            while (pos < end && !ngx_http_ai_guard_usage_stop[*pos]) {
                pos++;
            }

            /* a key whole in this buffer is looked up where it lies */

            if (p->key && p->clen == 0 && pos < end && *pos == '"') {
                p->slot = (p->sink == NGX_HTTP_AI_GUARD_TO_KEY)
                          ? ngx_http_ai_guard_usage_resolve(p, start,
                                                            pos - start)
                          : NGX_HTTP_AI_GUARD_AT_NONE;
                pos++;
                state = sw_colon;
                continue;
            }

            if (pos != start) {
                if (p->sink == NGX_HTTP_AI_GUARD_TO_COUNT) {
                    p->content_bytes += pos - start;

                } else if (p->sink != NGX_HTTP_AI_GUARD_TO_NONE) {
                    ngx_http_ai_guard_usage_capture(p, start, pos - start);
                }

                if (pos == end) {
                    continue;
                }
            }

            c = *pos++;

            if (c == '"') {
                if (p->key) {
                    p->slot = (p->sink == NGX_HTTP_AI_GUARD_TO_KEY)
                              ? ngx_http_ai_guard_usage_resolve(p, p->cbuf,
                                                                p->clen)
                              : NGX_HTTP_AI_GUARD_AT_NONE;
                    state = sw_colon;
                    continue;
                }

                if (p->sink > NGX_HTTP_AI_GUARD_TO_KEY) {
                    ngx_http_ai_guard_usage_string_end(p);
                }

                goto value;
            }

            if (c == '\\') {
                ngx_http_ai_guard_json_escape_init(&p->esc, 0);
                state = sw_escape;
                continue;
            }

            /* a raw control character */
            goto failed;

        case sw_escape:

            /* a \uXXXX is a code point alone: a model name has no pairs */

            pos = ngx_http_ai_guard_json_escape(&p->esc, pos, end);

            if (p->esc.rc == NGX_HTTP_AI_GUARD_JSON_AGAIN) {
                continue;
            }

            if (p->esc.rc != NGX_HTTP_AI_GUARD_JSON_DONE) {
                goto failed;
            }

            if (p->sink == NGX_HTTP_AI_GUARD_TO_COUNT) {
                p->content_bytes += p->esc.len;

            } else if (p->sink != NGX_HTTP_AI_GUARD_TO_NONE) {
                ngx_http_ai_guard_usage_capture_code(p, p->esc.cp);
            }

            state = sw_string;
            continue;

        case sw_number:

            pos = ngx_http_ai_guard_json_number(&p->num, pos, end);
            goto number;

        case sw_literal:

            if (c != (u_char) ngx_http_ai_guard_usage_lit[p->lit][p->aux]) {
                goto failed;
            }

            pos++;

            if (ngx_http_ai_guard_usage_lit[p->lit][++p->aux] == '\0') {
                goto value;
            }

            continue;

        case sw_skip:

            pos++;

            switch (c) {
            case '{': case '[':
                p->skip++;
                break;
            case '}': case ']':
                if (--p->skip == 0) {
                    /* the skipped container was at the maximum depth */
                    state = sw_after;
                }
                break;
            case '"':
                state = sw_skip_string;
                break;
            }

            continue;

        case sw_skip_string:

            while (pos < end && *pos != '"' && *pos != '\\') {
                pos++;
            }

            if (pos == end) {
                continue;
            }

            state = (*pos++ == '"') ? sw_skip : sw_skip_escape;
            continue;

        case sw_skip_escape:

            pos++;
            state = sw_skip_string;
            continue;

        case sw_done:

            switch (c) {
            case ' ': case '\t': case '\n': case '\r':
                pos++;
                continue;
            default:
                goto failed;
            }

        case sw_error:
            goto failed;
        }

        /* a '}' or ']' closes the innermost container */

        top = p->depth - 1;

        if (((p->arrays >> top) & 1) != (c == ']')) {
            goto failed;
        }

        p->depth = top;

    value:

        state = p->depth ? sw_after : sw_done;
        continue;

    number:

        if (p->num.rc == NGX_HTTP_AI_GUARD_JSON_AGAIN) {
            continue;
        }

        if (p->num.rc != NGX_HTTP_AI_GUARD_JSON_DONE) {
            goto failed;
        }

        /* a number ends at a delimiter, which is left for the next state */

        c = *pos;

        switch (c) {
        case ' ': case '\t': case '\n': case '\r':
        case ',': case '}': case ']':
            break;
        default:
            goto failed;
        }

        if (p->nfield) {
            ngx_http_ai_guard_usage_number_end(p);
        }

        goto value;

    literal:

        pos++;
        p->aux = 1;
        state = sw_literal;
        continue;
    }

    p->state = state;
    return;

failed:

    p->state = sw_error;
}


/* s: the key, whole in the buffer or kept in cbuf; len: its length */

static u_char
ngx_http_ai_guard_usage_resolve(ngx_http_ai_guard_usage_parser_t *p,
    const u_char *s, size_t len)
{
    const ngx_http_ai_guard_usage_key_t  *k;

    if (len > NGX_HTTP_AI_GUARD_KEY_MAX) {
        return NGX_HTTP_AI_GUARD_AT_NONE;
    }

    k = ngx_http_ai_guard_usage_in[p->stack[p->depth - 1]];

    if (k == NULL) {
        return NGX_HTTP_AI_GUARD_AT_NONE;
    }

    /* keys of a length are few: their first bytes tell most apart */

    for ( /* void */ ; k->len; k++) {
        if (k->len == len && (u_char) k->name[0] == s[0]
            && memcmp(k->name, s, len) == 0)
        {
            return k->at;
        }
    }

    return NGX_HTTP_AI_GUARD_AT_NONE;
}


static void
ngx_http_ai_guard_usage_capture(ngx_http_ai_guard_usage_parser_t *p,
    const u_char *s, size_t n)
{
    size_t  room;

    if (p->clen < sizeof(p->cbuf)) {
        room = sizeof(p->cbuf) - p->clen;
        memcpy(p->cbuf + p->clen, s, n < room ? n : room);
    }

    p->clen += n;
}


/*
 * An escaped character, decoded to UTF-8.  Control characters become '?'
 * and so do surrogates: a model name is ASCII in practice and goes into
 * logs and metric labels.
 */

static void
ngx_http_ai_guard_usage_capture_code(ngx_http_ai_guard_usage_parser_t *p,
    uint32_t code)
{
    size_t  n;
    u_char  buf[4];

    if (code < 0x20 || (code >= 0xd800 && code <= 0xdfff)) {
        buf[0] = '?';
        n = 1;

    } else {
        n = ngx_http_ai_guard_json_utf8_encode(buf, code);
    }

    ngx_http_ai_guard_usage_capture(p, buf, n);
}


static void
ngx_http_ai_guard_usage_string_end(ngx_http_ai_guard_usage_parser_t *p)
{
    size_t         n;
    const u_char  *s;

    n = p->clen < sizeof(p->cbuf) ? p->clen : sizeof(p->cbuf);
    s = p->cbuf;

    switch (p->sink) {

    case NGX_HTTP_AI_GUARD_TO_MODEL:
        memcpy(p->model, s, n);
        p->model_len = n;
        break;

    case NGX_HTTP_AI_GUARD_TO_TYPE:

        /* the event types name the vendor */

        if ((n == 7 && memcmp(s, "message", 7) == 0)
            || (n > 8 && memcmp(s, "message_", 8) == 0)
            || (n > 14 && memcmp(s, "content_block_", 14) == 0))
        {
            p->hints |= NGX_HTTP_AI_GUARD_HINT_ANTHROPIC;

        } else if (n >= 8 && memcmp(s, "response", 8) == 0) {
            p->hints |= NGX_HTTP_AI_GUARD_HINT_OPENAI;
        }

        break;

    default: /* NGX_HTTP_AI_GUARD_TO_OBJECT: "chat.completion" and such */
        p->hints |= NGX_HTTP_AI_GUARD_HINT_OPENAI;
        break;
    }
}


/* a fraction is truncated; a count saturates at the maximum */

static void
ngx_http_ai_guard_usage_number_end(ngx_http_ai_guard_usage_parser_t *p)
{
    if (p->num.flags & NGX_HTTP_AI_GUARD_NOT_COUNT) {
        return;
    }

    p->count[p->nfield] =
        ((p->num.flags & NGX_HTTP_AI_GUARD_JSON_BIG)
         || p->num.value >= (uint64_t) NGX_HTTP_AI_GUARD_USAGE_MAX_TOKENS)
        ? NGX_HTTP_AI_GUARD_USAGE_MAX_TOKENS : (int64_t) p->num.value;
    p->seen |= 1u << p->nfield;
    p->hints |= ngx_http_ai_guard_usage_field_hint[p->nfield];
    p->found = 1;
}
