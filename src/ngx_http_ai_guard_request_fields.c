
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include "ngx_http_ai_guard_request.h"
#include "ngx_http_ai_guard_request_fields.h"


typedef struct {
    size_t                          len;
    const char                     *name;
    unsigned                        role;
} ngx_http_ai_guard_field_t;


#define ngx_http_ai_guard_key(name, role, type)                              \
    { sizeof(name) - 1, name, NGX_HTTP_AI_GUARD_ROLE_##role,                 \
      "duplicate key \"" name "\" in request body", type }

#define ngx_http_ai_guard_field(name, role)                                  \
    { sizeof(name) - 1, name, NGX_HTTP_AI_GUARD_ROLE_##role }

#define NGX_HTTP_AI_GUARD_ERR_UINT  "\" must be a non-negative integer"


static unsigned ngx_http_ai_guard_field_find(
    const ngx_http_ai_guard_field_t *f, const u_char *s, size_t len);


/*
 * The top-level keys read; a duplicate of any of them is an error.  The
 * texts of OpenAI's chat, completions, embeddings, Responses and
 * Assistants APIs, of Anthropic's messages and of Gemini's
 * generateContent: the request header lists them.
 */
const ngx_http_ai_guard_key_t  ngx_http_ai_guard_request_keys[] = {
    ngx_http_ai_guard_key("model", MODEL, "\"model\" must be a string"),
    ngx_http_ai_guard_key("messages", MESSAGES, NULL),
    ngx_http_ai_guard_key("stream", STREAM, "\"stream\" must be a boolean"),
    ngx_http_ai_guard_key("max_tokens", MAX_TOKENS,
                          "\"max_tokens" NGX_HTTP_AI_GUARD_ERR_UINT),
    ngx_http_ai_guard_key("max_completion_tokens", MAX_TOKENS,
                          "\"max_completion_tokens"
                          NGX_HTTP_AI_GUARD_ERR_UINT),
    ngx_http_ai_guard_key("max_output_tokens", MAX_TOKENS,
                          "\"max_output_tokens" NGX_HTTP_AI_GUARD_ERR_UINT),
    ngx_http_ai_guard_key("n", N, "\"n" NGX_HTTP_AI_GUARD_ERR_UINT),
    ngx_http_ai_guard_key("temperature", TEMPERATURE, NULL),
    ngx_http_ai_guard_key("stream_options", STREAM_OPTIONS, NULL),
    ngx_http_ai_guard_key("system", CONTENT, NULL),
    ngx_http_ai_guard_key("instructions", CONTENT, NULL),
    ngx_http_ai_guard_key("prompt", PROMPT, NULL),
    ngx_http_ai_guard_key("input", INPUT, NULL),
    ngx_http_ai_guard_key("suffix", TEXT, NULL),
    ngx_http_ai_guard_key("content", CONTENT, NULL),
    ngx_http_ai_guard_key("additional_instructions", CONTENT, NULL),
    ngx_http_ai_guard_key("additional_messages", MESSAGES, NULL),
    ngx_http_ai_guard_key("thread", THREAD, NULL),
    ngx_http_ai_guard_key("tools", TOOLS, NULL),
    ngx_http_ai_guard_key("functions", TOOLS, NULL),
    ngx_http_ai_guard_key("tool_choice", ALL, NULL),
    ngx_http_ai_guard_key("response_format", ALL, NULL),
    ngx_http_ai_guard_key("text", ALL, NULL),
    ngx_http_ai_guard_key("contents", MESSAGES, NULL),
    ngx_http_ai_guard_key("systemInstruction", MESSAGE, NULL),
    ngx_http_ai_guard_key("generationConfig", GEN_CONFIG,
                          "\"generationConfig.maxOutputTokens\" and "
                          "\"generationConfig.candidateCount\" must be "
                          "non-negative integers"),
    { 0, NULL, 0, NULL, NULL }
};

const ngx_http_ai_guard_key_t  ngx_http_ai_guard_request_include_usage =
    ngx_http_ai_guard_key("include_usage", INCLUDE_USAGE,
                          "\"stream_options.include_usage\" must be "
                          "a boolean");


/*
 * A message: OpenAI's chat message, a Responses input item (message,
 * function call and its output, reasoning), an Assistants message, a
 * Gemini Content (its "parts").
 */
static const ngx_http_ai_guard_field_t  ngx_http_ai_guard_message_fields[] = {
    ngx_http_ai_guard_field("content", CONTENT),
    ngx_http_ai_guard_field("tool_calls", TOOL_CALLS),
    ngx_http_ai_guard_field("function_call", FUNCTION),
    ngx_http_ai_guard_field("arguments", TEXT),
    ngx_http_ai_guard_field("output", CONTENT),
    ngx_http_ai_guard_field("summary", CONTENT),
    ngx_http_ai_guard_field("name", EXTRA),
    ngx_http_ai_guard_field("refusal", EXTRA),
    ngx_http_ai_guard_field("input", ALL),
    ngx_http_ai_guard_field("parts", CONTENT),
    { 0, NULL, 0 }
};

/*
 * A content part or block; an image's source is not a text, nor is a
 * Gemini part's inlineData or fileData.
 */
static const ngx_http_ai_guard_field_t  ngx_http_ai_guard_part_fields[] = {
    ngx_http_ai_guard_field("text", TEXT),
    ngx_http_ai_guard_field("content", CONTENT),
    ngx_http_ai_guard_field("source", SOURCE),
    ngx_http_ai_guard_field("type", TYPE),
    ngx_http_ai_guard_field("input", ALL),
    ngx_http_ai_guard_field("title", EXTRA),
    ngx_http_ai_guard_field("context", EXTRA),
    ngx_http_ai_guard_field("name", EXTRA),
    ngx_http_ai_guard_field("refusal", EXTRA),
    ngx_http_ai_guard_field("thinking", EXTRA),
    ngx_http_ai_guard_field("functionCall", ALL),
    ngx_http_ai_guard_field("functionResponse", ALL),
    { 0, NULL, 0 }
};

static const ngx_http_ai_guard_field_t  ngx_http_ai_guard_image_fields[] = {
    ngx_http_ai_guard_field("text", TEXT),
    ngx_http_ai_guard_field("content", CONTENT),
    ngx_http_ai_guard_field("title", EXTRA),
    ngx_http_ai_guard_field("context", EXTRA),
    { 0, NULL, 0 }
};

/* an Anthropic document's source: plain text, or blocks */
static const ngx_http_ai_guard_field_t  ngx_http_ai_guard_source_fields[] = {
    ngx_http_ai_guard_field("data", TEXT),
    ngx_http_ai_guard_field("content", CONTENT),
    ngx_http_ai_guard_field("type", TYPE),
    { 0, NULL, 0 }
};

static const ngx_http_ai_guard_field_t  ngx_http_ai_guard_binary_fields[] = {
    ngx_http_ai_guard_field("content", CONTENT),
    { 0, NULL, 0 }
};

static const ngx_http_ai_guard_field_t  ngx_http_ai_guard_tool_call_fields[] = {
    ngx_http_ai_guard_field("function", FUNCTION),
    { 0, NULL, 0 }
};

static const ngx_http_ai_guard_field_t  ngx_http_ai_guard_function_fields[] = {
    ngx_http_ai_guard_field("arguments", TEXT),
    ngx_http_ai_guard_field("name", EXTRA),
    { 0, NULL, 0 }
};

/*
 * A tool or function definition: OpenAI's nested "function", the flat
 * Responses and Anthropic forms.  Only its name, description and schema:
 * other tools' settings (an MCP server's headers) are not for the model.
 */
static const ngx_http_ai_guard_field_t  ngx_http_ai_guard_tool_fields[] = {
    ngx_http_ai_guard_field("function", TOOL),
    ngx_http_ai_guard_field("name", EXTRA),
    ngx_http_ai_guard_field("description", EXTRA),
    ngx_http_ai_guard_field("parameters", ALL),
    ngx_http_ai_guard_field("input_schema", ALL),
    ngx_http_ai_guard_field("functionDeclarations", TOOLS),
    { 0, NULL, 0 }
};

/* Gemini's generationConfig: the limits' maxOutputTokens and n */
static const ngx_http_ai_guard_field_t  ngx_http_ai_guard_gen_config_fields[] =
{
    ngx_http_ai_guard_field("maxOutputTokens", MAX_TOKENS),
    ngx_http_ai_guard_field("candidateCount", N),
    ngx_http_ai_guard_field("temperature", TEMPERATURE),
    { 0, NULL, 0 }
};

static const ngx_http_ai_guard_field_t  ngx_http_ai_guard_thread_fields[] = {
    ngx_http_ai_guard_field("messages", MESSAGES),
    { 0, NULL, 0 }
};


/* the role of an array's elements, by context; objects use their keys */
const uint8_t  ngx_http_ai_guard_request_elements[] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    NGX_HTTP_AI_GUARD_ROLE_NONE,            /* IGNORE_ARRAY */
    NGX_HTTP_AI_GUARD_ROLE_MESSAGE,         /* MESSAGES */
    NGX_HTTP_AI_GUARD_ROLE_CONTENT,         /* PARTS */
    NGX_HTTP_AI_GUARD_ROLE_TEXT,            /* PROMPT */
    NGX_HTTP_AI_GUARD_ROLE_INPUT_ITEM,      /* INPUT */
    NGX_HTTP_AI_GUARD_ROLE_TOOL_CALL,       /* TOOL_CALLS */
    NGX_HTTP_AI_GUARD_ROLE_TOOL,            /* TOOLS */
    NGX_HTTP_AI_GUARD_ROLE_ALL              /* ALL_ARRAY */
};


/* the context an object opens in, by role */
const uint8_t  ngx_http_ai_guard_request_maps[] = {
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* NONE */
    0, 0, 0, 0, 0,                          /* scalars: type errors */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* TEMPERATURE */
    NGX_HTTP_AI_GUARD_CTX_STREAM_OPTIONS,   /* STREAM_OPTIONS */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* MESSAGES */
    NGX_HTTP_AI_GUARD_CTX_MESSAGE,          /* MESSAGE */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* TOOLS */
    NGX_HTTP_AI_GUARD_CTX_TOOL,             /* TOOL */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* TOOL_CALLS */
    NGX_HTTP_AI_GUARD_CTX_TOOL_CALL,        /* TOOL_CALL */
    NGX_HTTP_AI_GUARD_CTX_FUNCTION,         /* FUNCTION */
    NGX_HTTP_AI_GUARD_CTX_THREAD,           /* THREAD */
    NGX_HTTP_AI_GUARD_CTX_SOURCE,           /* SOURCE */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* TYPE */
    NGX_HTTP_AI_GUARD_CTX_GEN_CONFIG,       /* GEN_CONFIG */
    NGX_HTTP_AI_GUARD_CTX_PART,             /* CONTENT */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* TEXT */
    NGX_HTTP_AI_GUARD_CTX_ALL_MAP,          /* PROMPT: Responses' template */
    NGX_HTTP_AI_GUARD_CTX_MESSAGE,          /* INPUT */
    NGX_HTTP_AI_GUARD_CTX_MESSAGE,          /* INPUT_ITEM */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_MAP,       /* EXTRA */
    NGX_HTTP_AI_GUARD_CTX_ALL_MAP           /* ALL */
};


/* the context an array opens in, by role */
const uint8_t  ngx_http_ai_guard_request_arrays[] = {
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* NONE */
    0, 0, 0, 0, 0,                          /* scalars: type errors */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* TEMPERATURE */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* STREAM_OPTIONS */
    NGX_HTTP_AI_GUARD_CTX_MESSAGES,         /* MESSAGES */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* MESSAGE */
    NGX_HTTP_AI_GUARD_CTX_TOOLS,            /* TOOLS */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* TOOL */
    NGX_HTTP_AI_GUARD_CTX_TOOL_CALLS,       /* TOOL_CALLS */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* TOOL_CALL */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* FUNCTION */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* THREAD */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* SOURCE */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* TYPE */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* GEN_CONFIG */
    NGX_HTTP_AI_GUARD_CTX_PARTS,            /* CONTENT */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* TEXT */
    NGX_HTTP_AI_GUARD_CTX_PROMPT,           /* PROMPT */
    NGX_HTTP_AI_GUARD_CTX_INPUT,            /* INPUT */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* INPUT_ITEM */
    NGX_HTTP_AI_GUARD_CTX_IGNORE_ARRAY,     /* EXTRA */
    NGX_HTTP_AI_GUARD_CTX_ALL_ARRAY         /* ALL */
};


unsigned
ngx_http_ai_guard_request_field(unsigned ctx, const u_char *s, size_t len,
    int *top)
{
    unsigned                          i;
    const ngx_http_ai_guard_key_t    *k;
    const ngx_http_ai_guard_field_t  *f;

    *top = -1;

    switch (ctx) {

    case NGX_HTTP_AI_GUARD_CTX_TOP:
        for (i = 0; ngx_http_ai_guard_request_keys[i].len; i++) {
            k = &ngx_http_ai_guard_request_keys[i];

            if (k->len == len && memcmp(k->name, s, len) == 0) {
                *top = (int) i;
                return k->role;
            }
        }

        return NGX_HTTP_AI_GUARD_ROLE_NONE;

    case NGX_HTTP_AI_GUARD_CTX_MESSAGE:
        f = ngx_http_ai_guard_message_fields;
        break;

    case NGX_HTTP_AI_GUARD_CTX_PART:
        f = ngx_http_ai_guard_part_fields;
        break;

    case NGX_HTTP_AI_GUARD_CTX_PART_IMAGE:
        f = ngx_http_ai_guard_image_fields;
        break;

    case NGX_HTTP_AI_GUARD_CTX_SOURCE:
        f = ngx_http_ai_guard_source_fields;
        break;

    case NGX_HTTP_AI_GUARD_CTX_SOURCE_BINARY:
        f = ngx_http_ai_guard_binary_fields;
        break;

    case NGX_HTTP_AI_GUARD_CTX_TOOL_CALL:
        f = ngx_http_ai_guard_tool_call_fields;
        break;

    case NGX_HTTP_AI_GUARD_CTX_FUNCTION:
        f = ngx_http_ai_guard_function_fields;
        break;

    case NGX_HTTP_AI_GUARD_CTX_TOOL:
        f = ngx_http_ai_guard_tool_fields;
        break;

    case NGX_HTTP_AI_GUARD_CTX_THREAD:
        f = ngx_http_ai_guard_thread_fields;
        break;

    case NGX_HTTP_AI_GUARD_CTX_GEN_CONFIG:
        f = ngx_http_ai_guard_gen_config_fields;
        break;

    case NGX_HTTP_AI_GUARD_CTX_STREAM_OPTIONS:
        k = &ngx_http_ai_guard_request_include_usage;

        return (len == k->len && memcmp(s, k->name, len) == 0)
               ? k->role : NGX_HTTP_AI_GUARD_ROLE_NONE;

    case NGX_HTTP_AI_GUARD_CTX_ALL_MAP:
        return NGX_HTTP_AI_GUARD_ROLE_ALL;

    default:
        return NGX_HTTP_AI_GUARD_ROLE_NONE;
    }

    return ngx_http_ai_guard_field_find(f, s, len);
}


unsigned
ngx_http_ai_guard_request_type(unsigned ctx, const u_char *s, size_t len)
{
    if (ctx == NGX_HTTP_AI_GUARD_CTX_PART
        && len == 5 && memcmp(s, "image", 5) == 0)
    {
        return NGX_HTTP_AI_GUARD_CTX_PART_IMAGE;
    }

    if (ctx == NGX_HTTP_AI_GUARD_CTX_SOURCE
        && len == 6 && memcmp(s, "base64", 6) == 0)
    {
        return NGX_HTTP_AI_GUARD_CTX_SOURCE_BINARY;
    }

    return ctx;
}


static unsigned
ngx_http_ai_guard_field_find(const ngx_http_ai_guard_field_t *f,
    const u_char *s, size_t len)
{
    for ( /* void */ ; f->len; f++) {
        if (f->len == len && memcmp(f->name, s, len) == 0) {
            return f->role;
        }
    }

    return NGX_HTTP_AI_GUARD_ROLE_NONE;
}


int
ngx_http_ai_guard_request_path_model(const u_char *path, size_t n,
    size_t max, const u_char **model, size_t *len)
{
    size_t         i, start, m;
    const u_char  *colon;

    static const char  gen[] = "generateContent";
    static const char  stream[] = "streamGenerateContent";

    /* the last "/models/": a project or location named "models" is before */

    start = 0;

    for (i = 0; i + 8 <= n; i++) {
        if (path[i] == '/' && memcmp(path + i, "/models/", 8) == 0) {
            start = i + 8;
        }
    }

    if (start == 0) {
        return 0;
    }

    colon = memchr(path + start, ':', n - start);

    if (colon == NULL || colon == path + start) {
        return 0;
    }

    m = colon - (path + start);

    if (m > max) {
        return 0;
    }

    for (i = start; i < start + m; i++) {
        if (path[i] == '/' || path[i] < 0x20 || path[i] == 0x7f) {
            return 0;
        }
    }

    *model = path + start;
    *len = m;

    n -= start + m + 1;
    colon++;

    if (n == sizeof(gen) - 1 && memcmp(colon, gen, n) == 0) {
        return 1;
    }

    if (n == sizeof(stream) - 1 && memcmp(colon, stream, n) == 0) {
        return 2;
    }

    return 0;
}
