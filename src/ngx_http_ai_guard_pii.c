
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>

#include "ngx_http_ai_guard_str.h"
#include "ngx_http_ai_guard_pii.h"


#define NGX_HTTP_AI_GUARD_EMAIL_LOCAL   64
#define NGX_HTTP_AI_GUARD_EMAIL_DOMAIN  253

/* character sets of the secret scanners */
#define NGX_HTTP_AI_GUARD_SET_ALNUM   0x01
#define NGX_HTTP_AI_GUARD_SET_UNDER   0x02
#define NGX_HTTP_AI_GUARD_SET_DASH    0x04
#define NGX_HTTP_AI_GUARD_SET_TOKEN                                         \
    (NGX_HTTP_AI_GUARD_SET_ALNUM|NGX_HTTP_AI_GUARD_SET_UNDER                \
     |NGX_HTTP_AI_GUARD_SET_DASH)


static int ngx_http_ai_guard_in_set(u_char c, unsigned set);
static size_t ngx_http_ai_guard_span(const u_char *p, const u_char *end,
    unsigned set, unsigned *digits, unsigned *letters);
static size_t ngx_http_ai_guard_email(const u_char *p, size_t len, size_t at,
    size_t *start);
static size_t ngx_http_ai_guard_card(const u_char *p, size_t len, size_t i);
static size_t ngx_http_ai_guard_ssn(const u_char *p, size_t len, size_t i);
static size_t ngx_http_ai_guard_ipv4(const u_char *p, size_t len, size_t i);
static size_t ngx_http_ai_guard_e164(const u_char *p, size_t len, size_t i);
static size_t ngx_http_ai_guard_nanp(const u_char *p, size_t len, size_t i);
static size_t ngx_http_ai_guard_secret(const u_char *p, size_t len, size_t i);
static int ngx_http_ai_guard_prefix(const u_char *p, const u_char *end,
    const char *s);


static const char  *ngx_http_ai_guard_pii_names[] = {
    "email", "card", "ssn", "phone", "ipv4", "secret", NULL
};


unsigned
ngx_http_ai_guard_pii_bit(const u_char *name, size_t len)
{
    unsigned  i;

    if (len == 3 && memcmp(name, "all", 3) == 0) {
        return NGX_HTTP_AI_GUARD_PII_ALL;
    }

    for (i = 0; ngx_http_ai_guard_pii_names[i]; i++) {
        if (strlen(ngx_http_ai_guard_pii_names[i]) == len
            && memcmp(ngx_http_ai_guard_pii_names[i], name, len) == 0)
        {
            return 1u << i;
        }
    }

    return 0;
}


const char *
ngx_http_ai_guard_pii_name(unsigned bit)
{
    unsigned  i;

    for (i = 0; ngx_http_ai_guard_pii_names[i]; i++) {
        if (bit == (1u << i)) {
            return ngx_http_ai_guard_pii_names[i];
        }
    }

    return NULL;
}


unsigned
ngx_http_ai_guard_pii_index(unsigned bit)
{
    unsigned  i;

    for (i = 0; i < NGX_HTTP_AI_GUARD_PII_DETECTORS - 1; i++) {
        if (bit & (1u << i)) {
            break;
        }
    }

    return i;
}


/*
 * One pass over the text; each detector starts only where its shape can
 * start (a digit after a non-digit, an "@", a token boundary) and looks
 * at a bounded window or at one token, so the scan stays linear.
 */

unsigned
ngx_http_ai_guard_pii_find(const u_char *p, size_t len, unsigned mask,
    size_t *off, size_t *end)
{
    u_char  c;
    size_t  i, e, start;

    for (i = 0; i < len; i++) {
        c = p[i];

        if (ngx_http_ai_guard_digit(c)) {
            if (i > 0 && ngx_http_ai_guard_digit(p[i - 1])) {
                continue;
            }

            if ((mask & NGX_HTTP_AI_GUARD_PII_SSN)
                && (e = ngx_http_ai_guard_ssn(p, len, i)))
            {
                *off = i;
                *end = e;
                return NGX_HTTP_AI_GUARD_PII_SSN;
            }

            if ((mask & NGX_HTTP_AI_GUARD_PII_CARD)
                && (e = ngx_http_ai_guard_card(p, len, i)))
            {
                *off = i;
                *end = e;
                return NGX_HTTP_AI_GUARD_PII_CARD;
            }

            if ((mask & NGX_HTTP_AI_GUARD_PII_PHONE)
                && (e = ngx_http_ai_guard_nanp(p, len, i)))
            {
                *off = i;
                *end = e;
                return NGX_HTTP_AI_GUARD_PII_PHONE;
            }

            if ((mask & NGX_HTTP_AI_GUARD_PII_IPV4)
                && (e = ngx_http_ai_guard_ipv4(p, len, i)))
            {
                *off = i;
                *end = e;
                return NGX_HTTP_AI_GUARD_PII_IPV4;
            }

            continue;
        }

        if (c == '@') {
            if ((mask & NGX_HTTP_AI_GUARD_PII_EMAIL)
                && (e = ngx_http_ai_guard_email(p, len, i, &start)))
            {
                *off = start;
                *end = e;
                return NGX_HTTP_AI_GUARD_PII_EMAIL;
            }

            continue;
        }

        if (c == '+' || c == '(') {
            if ((mask & NGX_HTTP_AI_GUARD_PII_PHONE)
                && (e = (c == '+' ? ngx_http_ai_guard_e164(p, len, i)
                                  : ngx_http_ai_guard_nanp(p, len, i))))
            {
                *off = i;
                *end = e;
                return NGX_HTTP_AI_GUARD_PII_PHONE;
            }

            continue;
        }

        if ((mask & NGX_HTTP_AI_GUARD_PII_SECRET)
            && (c == 's' || c == 'r' || c == 'A' || c == 'g' || c == 'x'
                || c == 'e' || c == '-')
            && (i == 0
                || !ngx_http_ai_guard_in_set(p[i - 1],
                                             NGX_HTTP_AI_GUARD_SET_TOKEN))
            && (e = ngx_http_ai_guard_secret(p, len, i)))
        {
            *off = i;
            *end = e;
            return NGX_HTTP_AI_GUARD_PII_SECRET;
        }
    }

    return 0;
}


unsigned
ngx_http_ai_guard_pii_scan(const u_char *p, size_t len, unsigned mask,
    size_t *off)
{
    size_t  end;

    return ngx_http_ai_guard_pii_find(p, len, mask, off, &end);
}


static int
ngx_http_ai_guard_in_set(u_char c, unsigned set)
{
    if (ngx_http_ai_guard_alnum(c)) {
        return (set & NGX_HTTP_AI_GUARD_SET_ALNUM) != 0;
    }

    if (c == '_') {
        return (set & NGX_HTTP_AI_GUARD_SET_UNDER) != 0;
    }

    if (c == '-') {
        return (set & NGX_HTTP_AI_GUARD_SET_DASH) != 0;
    }

    return 0;
}


/* the length of the run of "set" characters at p, counting its kinds */

static size_t
ngx_http_ai_guard_span(const u_char *p, const u_char *end, unsigned set,
    unsigned *digits, unsigned *letters)
{
    const u_char  *s;

    *digits = 0;
    *letters = 0;

    for (s = p; s < end && ngx_http_ai_guard_in_set(*s, set); s++) {
        if (ngx_http_ai_guard_digit(*s)) {
            (*digits)++;

        } else if (ngx_http_ai_guard_alpha(*s)) {
            (*letters)++;
        }
    }

    return s - p;
}


static int
ngx_http_ai_guard_prefix(const u_char *p, const u_char *end, const char *s)
{
    size_t  n;

    n = strlen(s);

    return (size_t) (end - p) >= n && memcmp(p, s, n) == 0;
}


/*
 * local@domain.tld: a local part of [A-Za-z0-9._%+-] (its last 64 bytes
 * at most), two or more non-empty labels of [A-Za-z0-9-], the last one
 * (the TLD) two letters or more.  Dots and dashes that end the domain are
 * punctuation of the sentence, not of the address.
 */

static size_t
ngx_http_ai_guard_email(const u_char *p, size_t len, size_t at,
    size_t *start)
{
    u_char  c;
    size_t  i, j, end, label, labels, tld_alpha;

    i = at;

    while (i > 0 && at - i < NGX_HTTP_AI_GUARD_EMAIL_LOCAL) {
        c = p[i - 1];

        if (!(ngx_http_ai_guard_alnum(c) || c == '.' || c == '_' || c == '%'
              || c == '+' || c == '-'))
        {
            break;
        }

        i--;
    }

    if (i == at) {
        return 0;
    }

    end = at + 1;

    while (end < len && end - at <= NGX_HTTP_AI_GUARD_EMAIL_DOMAIN) {
        c = p[end];

        if (!(ngx_http_ai_guard_alnum(c) || c == '.' || c == '-')) {
            break;
        }

        end++;
    }

    while (end > at + 1 && (p[end - 1] == '.' || p[end - 1] == '-')) {
        end--;
    }

    label = 0;
    labels = 0;
    tld_alpha = 1;

    for (j = at + 1; j < end; j++) {
        if (p[j] == '.') {
            if (label == 0) {
                return 0;
            }

            labels++;
            label = 0;
            tld_alpha = 1;
            continue;
        }

        if (!ngx_http_ai_guard_alpha(p[j])) {
            tld_alpha = 0;
        }

        label++;
    }

    if (labels == 0 || label < 2 || !tld_alpha) {
        return 0;
    }

    *start = i;

    return end;
}


/*
 * 13 to 19 digits, single spaces or dashes allowed between them, not
 * glued to letters or more digits, passing the Luhn check.  The chain
 * may start at any group (so "order 12 4111 1111 1111 1111" is seen),
 * but a chain of more than 19 digits from its start is not a card.
 */

static size_t
ngx_http_ai_guard_card(const u_char *p, size_t len, size_t i)
{
    u_char    d[19];
    size_t    j, n, k;
    unsigned  sum, v;

    if (i > 0 && ngx_http_ai_guard_alpha(p[i - 1])) {
        return 0;
    }

    n = 0;
    j = i;

    for ( ;; ) {
        while (j < len && ngx_http_ai_guard_digit(p[j])) {
            if (n == 19) {
                return 0;
            }

            d[n++] = p[j++] - '0';
        }

        if (j + 1 < len && (p[j] == ' ' || p[j] == '-')
            && ngx_http_ai_guard_digit(p[j + 1]))
        {
            j++;
            continue;
        }

        break;
    }

    if (n < 13 || (j < len && ngx_http_ai_guard_alpha(p[j]))) {
        return 0;
    }

    sum = 0;

    for (k = 0; k < n; k++) {
        v = d[n - 1 - k];

        if (k & 1) {
            v *= 2;

            if (v > 9) {
                v -= 9;
            }
        }

        sum += v;
    }

    return (sum % 10 == 0) ? j : 0;
}


/* NNN-NN-NNNN without the ranges the SSA never issues */

static size_t
ngx_http_ai_guard_ssn(const u_char *p, size_t len, size_t i)
{
    size_t         k;
    unsigned       area, group, serial;
    const u_char  *s;

    if (i > 0
        && (ngx_http_ai_guard_alnum(p[i - 1])
            || (p[i - 1] == '-' && i > 1
                && ngx_http_ai_guard_digit(p[i - 2]))))
    {
        return 0;
    }

    if (len - i < 11) {
        return 0;
    }

    s = p + i;

    for (k = 0; k < 11; k++) {
        if (k == 3 || k == 6) {
            if (s[k] != '-') {
                return 0;
            }

        } else if (!ngx_http_ai_guard_digit(s[k])) {
            return 0;
        }
    }

    if (len - i > 11
        && (ngx_http_ai_guard_alnum(s[11])
            || (s[11] == '-' && len - i > 12
                && ngx_http_ai_guard_digit(s[12]))))
    {
        return 0;
    }

    area = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    group = (s[4] - '0') * 10 + (s[5] - '0');
    serial = (s[7] - '0') * 1000 + (s[8] - '0') * 100 + (s[9] - '0') * 10
             + (s[10] - '0');

    return (area != 0 && area != 666 && area < 900 && group != 0
            && serial != 0) ? i + 11 : 0;
}


/*
 * A dotted quad, octets 0-255 without leading zeros, not preceded by a
 * letter, digit or dot and not followed by a letter, digit or ".digit":
 * "1.2.3.4.5" is a version string, not an address.
 */

static size_t
ngx_http_ai_guard_ipv4(const u_char *p, size_t len, size_t i)
{
    size_t    j, nd;
    unsigned  octet, k;

    if (i > 0 && (ngx_http_ai_guard_alnum(p[i - 1]) || p[i - 1] == '.')) {
        return 0;
    }

    j = i;

    for (k = 0; k < 4; k++) {
        if (k > 0) {
            if (j >= len || p[j] != '.') {
                return 0;
            }

            j++;
        }

        octet = 0;
        nd = 0;

        while (j < len && ngx_http_ai_guard_digit(p[j]) && nd < 3) {
            octet = octet * 10 + (p[j++] - '0');
            nd++;
        }

        if (nd == 0 || octet > 255 || (nd > 1 && p[j - nd] == '0')) {
            return 0;
        }
    }

    if (j < len
        && (ngx_http_ai_guard_alnum(p[j])
            || (p[j] == '.' && j + 1 < len
                && ngx_http_ai_guard_digit(p[j + 1]))))
    {
        return 0;
    }

    return j;
}


/*
 * E.164: "+", a digit 1-9, 8 to 15 digits in all, single spaces or
 * dashes allowed between digit groups ("+44 20 7946 0958").
 */

static size_t
ngx_http_ai_guard_e164(const u_char *p, size_t len, size_t i)
{
    size_t  j, n;

    if (i > 0 && ngx_http_ai_guard_alnum(p[i - 1])) {
        return 0;
    }

    j = i + 1;

    if (j >= len || p[j] < '1' || p[j] > '9') {
        return 0;
    }

    n = 0;

    for ( ;; ) {
        while (j < len && ngx_http_ai_guard_digit(p[j])) {
            if (n == 15) {
                return 0;
            }

            n++;
            j++;
        }

        if (j + 1 < len && (p[j] == ' ' || p[j] == '-')
            && ngx_http_ai_guard_digit(p[j + 1]))
        {
            j++;
            continue;
        }

        break;
    }

    return (n >= 8 && !(j < len && ngx_http_ai_guard_alpha(p[j]))) ? j : 0;
}


/*
 * NANP: "(NXX) XXX-XXXX", "(NXX)XXX-XXXX", "NXX-XXX-XXXX" and
 * "NXX.XXX.XXXX" (N is 2-9); the exchange is not checked, so the
 * fictional 555-123-4567 of examples is caught too.
 */

static size_t
ngx_http_ai_guard_nanp(const u_char *p, size_t len, size_t i)
{
    u_char         sep;
    size_t         j, k;
    const u_char  *s;

    if (i > 0
        && (ngx_http_ai_guard_alnum(p[i - 1])
            || ((p[i - 1] == '-' || p[i - 1] == '.') && i > 1
                && ngx_http_ai_guard_digit(p[i - 2]))))
    {
        return 0;
    }

    j = i;

    if (p[j] == '(') {
        if (len - j < 13) {
            return 0;
        }

        s = p + j;

        if (s[4] != ')' || s[1] < '2' || s[1] > '9'
            || !ngx_http_ai_guard_digit(s[2])
            || !ngx_http_ai_guard_digit(s[3]))
        {
            return 0;
        }

        j += 5;

        if (p[j] == ' ') {
            j++;
        }

        sep = '-';

    } else {
        if (len - j < 12 || p[j] < '2') {
            return 0;
        }

        s = p + j;

        if (!ngx_http_ai_guard_digit(s[1]) || !ngx_http_ai_guard_digit(s[2])
            || (s[3] != '-' && s[3] != '.'))
        {
            return 0;
        }

        sep = s[3];
        j += 4;
    }

    if (len - j < 8) {
        return 0;
    }

    s = p + j;

    for (k = 0; k < 8; k++) {
        if (k == 3) {
            if (s[k] != sep && !(sep == '-' && s[k] == '.' && p[i] == '(')) {
                return 0;
            }

        } else if (!ngx_http_ai_guard_digit(s[k])) {
            return 0;
        }
    }

    j += 8;

    if (j < len
        && (ngx_http_ai_guard_alnum(p[j])
            || ((p[j] == '-' || p[j] == '.') && j + 1 < len
                && ngx_http_ai_guard_digit(p[j + 1]))))
    {
        return 0;
    }

    return j;
}


/* credential shapes at a token boundary */

static size_t
ngx_http_ai_guard_secret(const u_char *p, size_t len, size_t i)
{
    size_t         n;
    unsigned       digits, letters;
    const u_char  *s, *end, *t;

    s = p + i;
    end = p + len;

    switch (*s) {

    case 's':
        if (ngx_http_ai_guard_prefix(s, end, "sk-")) {
            /* OpenAI sk-, sk-proj-, sk-svcacct-; Anthropic sk-ant- */
            n = ngx_http_ai_guard_span(s + 3, end,
                                       NGX_HTTP_AI_GUARD_SET_TOKEN,
                                       &digits, &letters);
            return (n >= 20 && digits > 0 && letters > 0) ? i + 3 + n : 0;
        }

        /* fall through */

    case 'r':
        if (ngx_http_ai_guard_prefix(s + 1, end, "k_live_")) {
            /* Stripe secret and restricted keys */
            n = ngx_http_ai_guard_span(s + 8, end,
                                       NGX_HTTP_AI_GUARD_SET_ALNUM,
                                       &digits, &letters);
            return (n >= 20) ? i + 8 + n : 0;
        }

        return 0;

    case 'A':
        if (ngx_http_ai_guard_prefix(s, end, "AKIA")
            || ngx_http_ai_guard_prefix(s, end, "ASIA"))
        {
            if (end - s < 20) {
                return 0;
            }

            for (t = s + 4; t < s + 20; t++) {
                if (!ngx_http_ai_guard_upper(*t)
                    && !ngx_http_ai_guard_digit(*t))
                {
                    return 0;
                }
            }

            return (t == end || !ngx_http_ai_guard_alnum(*t)) ? i + 20 : 0;
        }

        if (ngx_http_ai_guard_prefix(s, end, "AIza")) {
            n = ngx_http_ai_guard_span(s + 4, end,
                                       NGX_HTTP_AI_GUARD_SET_TOKEN,
                                       &digits, &letters);
            return (n == 35) ? i + 4 + n : 0;
        }

        return 0;

    case 'g':
        if (end - s >= 4 && s[1] == 'h' && s[3] == '_'
            && (s[2] == 'p' || s[2] == 'o' || s[2] == 'u' || s[2] == 's'
                || s[2] == 'r'))
        {
            n = ngx_http_ai_guard_span(s + 4, end,
                                       NGX_HTTP_AI_GUARD_SET_ALNUM,
                                       &digits, &letters);
            return (n >= 36) ? i + 4 + n : 0;
        }

        if (ngx_http_ai_guard_prefix(s, end, "github_pat_")) {
            n = ngx_http_ai_guard_span(s + 11, end,
                                       NGX_HTTP_AI_GUARD_SET_ALNUM
                                       |NGX_HTTP_AI_GUARD_SET_UNDER,
                                       &digits, &letters);
            return (n >= 40) ? i + 11 + n : 0;
        }

        return 0;

    case 'x':
        if (end - s >= 5 && s[1] == 'o' && s[2] == 'x' && s[4] == '-'
            && (s[3] == 'b' || s[3] == 'a' || s[3] == 'p' || s[3] == 'r'
                || s[3] == 's'))
        {
            n = ngx_http_ai_guard_span(s + 5, end,
                                       NGX_HTTP_AI_GUARD_SET_ALNUM
                                       |NGX_HTTP_AI_GUARD_SET_DASH,
                                       &digits, &letters);
            return (n >= 10 && digits > 0) ? i + 5 + n : 0;
        }

        return 0;

    case 'e':
        /* a JWT: header.payload.signature, both JSON parts start "{"" */
        if (!ngx_http_ai_guard_prefix(s, end, "eyJ")) {
            return 0;
        }

        n = ngx_http_ai_guard_span(s, end, NGX_HTTP_AI_GUARD_SET_TOKEN,
                                   &digits, &letters);
        t = s + n;

        if (n < 13 || t == end || *t != '.'
            || !ngx_http_ai_guard_prefix(t + 1, end, "eyJ"))
        {
            return 0;
        }

        n = ngx_http_ai_guard_span(t + 1, end, NGX_HTTP_AI_GUARD_SET_TOKEN,
                                   &digits, &letters);
        t += 1 + n;

        if (n < 13 || t == end || *t != '.') {
            return 0;
        }

        /* the signature is part of the token */

        t++;
        t += ngx_http_ai_guard_span(t, end, NGX_HTTP_AI_GUARD_SET_TOKEN,
                                    &digits, &letters);

        return t - p;

    case '-':
        if (!ngx_http_ai_guard_prefix(s, end, "-----BEGIN ")) {
            return 0;
        }

        for (t = s + 11; t < end && t - s < 11 + 64; t++) {
            if (!ngx_http_ai_guard_upper(*t) && !ngx_http_ai_guard_digit(*t)
                && *t != ' ')
            {
                break;
            }
        }

        if (!(t - s >= 11 + 11
              && memcmp(t - 11, "PRIVATE KEY", 11) == 0
              && ngx_http_ai_guard_prefix(t, end, "-----")))
        {
            return 0;
        }

        /* the key runs to its END line, or to the end of the text */

        for (t += 5; t < end; t++) {
            if (*t == '-' && ngx_http_ai_guard_prefix(t, end, "-----END ")) {
                for (t += 9; t < end; t++) {
                    if (ngx_http_ai_guard_prefix(t, end, "-----")) {
                        return t + 5 - p;
                    }
                }

                break;
            }
        }

        return len;
    }

    return 0;
}
