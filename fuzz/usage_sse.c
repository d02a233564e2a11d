
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The usage parser on a text/event-stream: the same property as
 * usage_json.c, through the SSE framing.
 */

#define NGX_HTTP_AI_GUARD_FUZZ_SSE  1

#include "usage_json.c"
