
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_PII_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_PII_H_INCLUDED_


/*
 * PII detectors over decoded prompt text: hand-written linear scanners
 * for e-mail addresses, card numbers (Luhn), US SSNs, phone numbers
 * (E.164 and NANP), IPv4 addresses and credential shapes (API keys,
 * tokens, private keys).  Pure code: no nginx runtime, no allocation.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


/* PII detectors, as the bits of an "ai_guard_pii" mask */
#define NGX_HTTP_AI_GUARD_PII_EMAIL      0x01
#define NGX_HTTP_AI_GUARD_PII_CARD       0x02
#define NGX_HTTP_AI_GUARD_PII_SSN        0x04
#define NGX_HTTP_AI_GUARD_PII_PHONE      0x08
#define NGX_HTTP_AI_GUARD_PII_IPV4       0x10
#define NGX_HTTP_AI_GUARD_PII_SECRET     0x20
#define NGX_HTTP_AI_GUARD_PII_ALL        0x3f
#define NGX_HTTP_AI_GUARD_PII_DETECTORS  6


/* "email" -> NGX_HTTP_AI_GUARD_PII_EMAIL, "all" -> _ALL; unknown: 0 */
unsigned ngx_http_ai_guard_pii_bit(const u_char *name, size_t len);

/* the name of one detector's bit; NULL for anything else */
const char *ngx_http_ai_guard_pii_name(unsigned bit);

/* one detector's bit as an index, 0 to NGX_HTTP_AI_GUARD_PII_DETECTORS-1 */
unsigned ngx_http_ai_guard_pii_index(unsigned bit);

/*
 * The first finding in p[0..len) of a detector in "mask": its bit, with
 * *off set to where the finding starts; 0 when there is none.  Linear
 * in len whatever the mask.
 */
unsigned ngx_http_ai_guard_pii_scan(const u_char *p, size_t len,
    unsigned mask, size_t *off);

/*
 * The same finding, with *end set past its last byte: what redaction
 * replaces.  A private key runs to its "-----END ...-----" line (or the
 * end of the text), a JWT includes its signature.
 */
unsigned ngx_http_ai_guard_pii_find(const u_char *p, size_t len,
    unsigned mask, size_t *off, size_t *end);


#endif /* _NGX_HTTP_AI_GUARD_PII_H_INCLUDED_ */
