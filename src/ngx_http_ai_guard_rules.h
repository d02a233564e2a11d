
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_RULES_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_RULES_H_INCLUDED_


/*
 * The pure layer of prompt rules and PII detection, as prompt.c uses it:
 *
 *   ngx_http_ai_guard_rules_file.h   the rules file parser
 *   ngx_http_ai_guard_literals.h     required literals of a regex
 *   ngx_http_ai_guard_ac.h           the multi-literal (Aho-Corasick) scan
 *   ngx_http_ai_guard_vscan.h        the same scan, SIMD (SSSE3/AVX2)
 *   ngx_http_ai_guard_pii.h          the PII detectors
 *   ngx_http_ai_guard_norm.h         the normal form they all read
 *
 * All six are pure: no nginx runtime, no allocation; buffers come from
 * the caller.
 */

#include "ngx_http_ai_guard_rules_file.h"
#include "ngx_http_ai_guard_literals.h"
#include "ngx_http_ai_guard_ac.h"
#include "ngx_http_ai_guard_vscan.h"
#include "ngx_http_ai_guard_pii.h"
#include "ngx_http_ai_guard_norm.h"


#endif /* _NGX_HTTP_AI_GUARD_RULES_H_INCLUDED_ */
