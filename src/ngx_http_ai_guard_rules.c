
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <string.h>
#include <ngx_http_ai_guard_rules.h>


#define NGX_HTTP_AI_GUARD_AC_NONE     0xffffffff

/* groups nested deeper than this in a regex: no literal, it always runs */
#define NGX_HTTP_AI_GUARD_LIT_DEPTH   32

#define NGX_HTTP_AI_GUARD_EMAIL_LOCAL   64
#define NGX_HTTP_AI_GUARD_EMAIL_DOMAIN  253

#define ngx_http_ai_guard_digit(c)  ((c) >= '0' && (c) <= '9')
#define ngx_http_ai_guard_upper(c)  ((c) >= 'A' && (c) <= 'Z')
#define ngx_http_ai_guard_lower(c)  ((c) >= 'a' && (c) <= 'z')
#define ngx_http_ai_guard_alpha(c)                                          \
    (ngx_http_ai_guard_upper(c) || ngx_http_ai_guard_lower(c))
#define ngx_http_ai_guard_alnum(c)                                          \
    (ngx_http_ai_guard_alpha(c) || ngx_http_ai_guard_digit(c))
#define ngx_http_ai_guard_tolower(c)                                        \
    (u_char) (ngx_http_ai_guard_upper(c) ? (c) | 0x20 : (c))
#define ngx_http_ai_guard_space(c)                                          \
    ((c) == ' ' || (c) == '\t' || (c) == '\r' || (c) == '\v' || (c) == '\f')


/* character sets of the secret scanners */
#define NGX_HTTP_AI_GUARD_SET_ALNUM   0x01
#define NGX_HTTP_AI_GUARD_SET_UNDER   0x02
#define NGX_HTTP_AI_GUARD_SET_DASH    0x04
#define NGX_HTTP_AI_GUARD_SET_TOKEN                                         \
    (NGX_HTTP_AI_GUARD_SET_ALNUM|NGX_HTTP_AI_GUARD_SET_UNDER                \
     |NGX_HTTP_AI_GUARD_SET_DASH)


typedef struct {
    const u_char                       *p;
    const u_char                       *end;
    int                                 bail;
    int                                 depth;
    size_t                              nsets;
    size_t                              max;
    ngx_http_ai_guard_literals_t       *sets;
} ngx_http_ai_guard_lit_ctx_t;


static int ngx_http_ai_guard_in_set(u_char c, unsigned set);
static size_t ngx_http_ai_guard_span(const u_char *p, const u_char *end,
    unsigned set, unsigned *digits, unsigned *letters);
static int ngx_http_ai_guard_email(const u_char *p, size_t len, size_t at,
    size_t *start);
static int ngx_http_ai_guard_card(const u_char *p, size_t len, size_t i);
static int ngx_http_ai_guard_ssn(const u_char *p, size_t len, size_t i);
static int ngx_http_ai_guard_ipv4(const u_char *p, size_t len, size_t i);
static int ngx_http_ai_guard_e164(const u_char *p, size_t len, size_t i);
static int ngx_http_ai_guard_nanp(const u_char *p, size_t len, size_t i);
static int ngx_http_ai_guard_secret(const u_char *p, size_t len, size_t i);
static int ngx_http_ai_guard_prefix(const u_char *p, const u_char *end,
    const char *s);

static int ngx_http_ai_guard_rules_line(const u_char *p, const u_char *end,
    ngx_http_ai_guard_rule_t *rule, const char **err);
static uint32_t ngx_http_ai_guard_rules_hash(const u_char *p, size_t len);

static void ngx_http_ai_guard_lit_alt(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *best);
static void ngx_http_ai_guard_lit_seq(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *best);
static int ngx_http_ai_guard_lit_group(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *g);
static void ngx_http_ai_guard_lit_class(ngx_http_ai_guard_lit_ctx_t *ctx);
static size_t ngx_http_ai_guard_ac_emit(const ngx_http_ai_guard_ac_t *ac,
    uint32_t t, u_char *found);
static void ngx_http_ai_guard_lit_keep(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *best,
    const ngx_http_ai_guard_literals_t *cand);
static void ngx_http_ai_guard_lit_better(ngx_http_ai_guard_literals_t *best,
    const ngx_http_ai_guard_literals_t *cand);
/*
 * Words too frequent in prompts to be worth a prefilter hit: a literal
 * from this list ranks below any other, whatever its length.
 */
static const char  *ngx_http_ai_guard_lit_common[] = {
    "the", "and", "you", "your", "are", "for", "with", "this", "that",
    "from", "not", "all", "any", "but", "have", "was", "were", "will",
    "can", "don", "what", "when", "how", "who", "its", "our", "out",
    "about", "then", "than", "there", "their", "they", "them", "more",
    "some", "also", "into", "only", "just", "like", "please", "now", NULL
};


static const char  *ngx_http_ai_guard_pii_names[] = {
    "email", "card", "ssn", "phone", "ipv4", "secret", NULL
};


/* PII detectors */

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


/*
 * One pass over the text; each detector starts only where its shape can
 * start (a digit after a non-digit, an "@", a token boundary) and looks
 * at a bounded window or at one token, so the scan stays linear.
 */

unsigned
ngx_http_ai_guard_pii_scan(const u_char *p, size_t len, unsigned mask,
    size_t *off)
{
    u_char  c;
    size_t  i, start;

    for (i = 0; i < len; i++) {
        c = p[i];

        if (ngx_http_ai_guard_digit(c)) {
            if (i > 0 && ngx_http_ai_guard_digit(p[i - 1])) {
                continue;
            }

            if ((mask & NGX_HTTP_AI_GUARD_PII_SSN)
                && ngx_http_ai_guard_ssn(p, len, i))
            {
                *off = i;
                return NGX_HTTP_AI_GUARD_PII_SSN;
            }

            if ((mask & NGX_HTTP_AI_GUARD_PII_CARD)
                && ngx_http_ai_guard_card(p, len, i))
            {
                *off = i;
                return NGX_HTTP_AI_GUARD_PII_CARD;
            }

            if ((mask & NGX_HTTP_AI_GUARD_PII_PHONE)
                && ngx_http_ai_guard_nanp(p, len, i))
            {
                *off = i;
                return NGX_HTTP_AI_GUARD_PII_PHONE;
            }

            if ((mask & NGX_HTTP_AI_GUARD_PII_IPV4)
                && ngx_http_ai_guard_ipv4(p, len, i))
            {
                *off = i;
                return NGX_HTTP_AI_GUARD_PII_IPV4;
            }

            continue;
        }

        if (c == '@') {
            if ((mask & NGX_HTTP_AI_GUARD_PII_EMAIL)
                && ngx_http_ai_guard_email(p, len, i, &start))
            {
                *off = start;
                return NGX_HTTP_AI_GUARD_PII_EMAIL;
            }

            continue;
        }

        if (c == '+' || c == '(') {
            if ((mask & NGX_HTTP_AI_GUARD_PII_PHONE)
                && (c == '+' ? ngx_http_ai_guard_e164(p, len, i)
                             : ngx_http_ai_guard_nanp(p, len, i)))
            {
                *off = i;
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
            && ngx_http_ai_guard_secret(p, len, i))
        {
            *off = i;
            return NGX_HTTP_AI_GUARD_PII_SECRET;
        }
    }

    return 0;
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

static int
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

    return 1;
}


/*
 * 13 to 19 digits, single spaces or dashes allowed between them, not
 * glued to letters or more digits, passing the Luhn check.  The chain
 * may start at any group (so "order 12 4111 1111 1111 1111" is seen),
 * but a chain of more than 19 digits from its start is not a card.
 */

static int
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

    return sum % 10 == 0;
}


/* NNN-NN-NNNN without the ranges the SSA never issues */

static int
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

    return area != 0 && area != 666 && area < 900 && group != 0
           && serial != 0;
}


/*
 * A dotted quad, octets 0-255 without leading zeros, not preceded by a
 * letter, digit or dot and not followed by a letter, digit or ".digit":
 * "1.2.3.4.5" is a version string, not an address.
 */

static int
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

    return 1;
}


/*
 * E.164: "+", a digit 1-9, 8 to 15 digits in all, single spaces or
 * dashes allowed between digit groups ("+44 20 7946 0958").
 */

static int
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

    return n >= 8 && !(j < len && ngx_http_ai_guard_alpha(p[j]));
}


/*
 * NANP: "(NXX) XXX-XXXX", "(NXX)XXX-XXXX", "NXX-XXX-XXXX" and
 * "NXX.XXX.XXXX" (N is 2-9); the exchange is not checked, so the
 * fictional 555-123-4567 of examples is caught too.
 */

static int
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

    return 1;
}


/* credential shapes at a token boundary */

static int
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
            return n >= 20 && digits > 0 && letters > 0;
        }

        /* fall through */

    case 'r':
        if (ngx_http_ai_guard_prefix(s + 1, end, "k_live_")) {
            /* Stripe secret and restricted keys */
            n = ngx_http_ai_guard_span(s + 8, end,
                                       NGX_HTTP_AI_GUARD_SET_ALNUM,
                                       &digits, &letters);
            return n >= 20;
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

            return t == end || !ngx_http_ai_guard_alnum(*t);
        }

        if (ngx_http_ai_guard_prefix(s, end, "AIza")) {
            n = ngx_http_ai_guard_span(s + 4, end,
                                       NGX_HTTP_AI_GUARD_SET_TOKEN,
                                       &digits, &letters);
            return n == 35;
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
            return n >= 36;
        }

        if (ngx_http_ai_guard_prefix(s, end, "github_pat_")) {
            n = ngx_http_ai_guard_span(s + 11, end,
                                       NGX_HTTP_AI_GUARD_SET_ALNUM
                                       |NGX_HTTP_AI_GUARD_SET_UNDER,
                                       &digits, &letters);
            return n >= 40;
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
            return n >= 10 && digits > 0;
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

        return n >= 13 && t < end && *t == '.';

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

        return t - s >= 11 + 11
               && memcmp(t - 11, "PRIVATE KEY", 11) == 0
               && ngx_http_ai_guard_prefix(t, end, "-----");
    }

    return 0;
}


/* the rules file */

void
ngx_http_ai_guard_rules_init(ngx_http_ai_guard_rules_parser_t *ps,
    const u_char *buf, size_t len)
{
    memset(ps, 0, sizeof(ngx_http_ai_guard_rules_parser_t));

    ps->start = buf;
    ps->pos = buf;
    ps->end = buf + len;
}


/*
 * The next rule: NGX_HTTP_AI_GUARD_RULES_OK with "rule" set,
 * NGX_HTTP_AI_GUARD_RULES_DONE at the end of the buffer, or
 * NGX_HTTP_AI_GUARD_RULES_ERROR with ps->line and ps->err set; a caller
 * may go on after an error to report the next one.  Duplicate ids are
 * found with a bloom filter of the ids seen and, when it says "maybe",
 * a rescan of the lines before: no allocation, and linear in practice.
 */

int
ngx_http_ai_guard_rules_next(ngx_http_ai_guard_rules_parser_t *ps,
    ngx_http_ai_guard_rule_t *rule)
{
    int                        rc;
    uint32_t                   h, b1, b2;
    const char                *err;
    const u_char              *line, *eol, *p;
    ngx_http_ai_guard_rule_t   prev;

    while (ps->pos < ps->end) {
        line = ps->pos;
        eol = memchr(line, '\n', ps->end - line);

        if (eol == NULL) {
            eol = ps->end;
            ps->pos = ps->end;

        } else {
            ps->pos = eol + 1;
        }

        ps->line++;

        rc = ngx_http_ai_guard_rules_line(line, eol, rule, &ps->err);

        if (rc == 0) {
            continue;
        }

        if (rc < 0) {
            return NGX_HTTP_AI_GUARD_RULES_ERROR;
        }

        rule->line = ps->line;

        h = ngx_http_ai_guard_rules_hash(rule->id, rule->id_len);
        b1 = h % NGX_HTTP_AI_GUARD_RULES_BLOOM;
        b2 = (h >> 16) % NGX_HTTP_AI_GUARD_RULES_BLOOM;

        if ((ps->bloom[b1 / 32] & (1u << (b1 % 32)))
            && (ps->bloom[b2 / 32] & (1u << (b2 % 32))))
        {
            for (p = ps->start; p < line; p = eol + 1) {
                eol = memchr(p, '\n', line - p);

                if (eol == NULL) {
                    eol = line;
                }

                if (ngx_http_ai_guard_rules_line(p, eol, &prev, &err) == 1
                    && prev.id_len == rule->id_len
                    && memcmp(prev.id, rule->id, rule->id_len) == 0)
                {
                    ps->err = "duplicate rule id";
                    return NGX_HTTP_AI_GUARD_RULES_ERROR;
                }
            }
        }

        ps->bloom[b1 / 32] |= 1u << (b1 % 32);
        ps->bloom[b2 / 32] |= 1u << (b2 % 32);

        return NGX_HTTP_AI_GUARD_RULES_OK;
    }

    return NGX_HTTP_AI_GUARD_RULES_DONE;
}


/* one line without its "\n": 1 a rule, 0 blank or comment, -1 an error */

static int
ngx_http_ai_guard_rules_line(const u_char *p, const u_char *end,
    ngx_http_ai_guard_rule_t *rule, const char **err)
{
    u_char  c;

    while (p < end && ngx_http_ai_guard_space(*p)) {
        p++;
    }

    while (end > p && ngx_http_ai_guard_space(end[-1])) {
        end--;
    }

    if (p == end || *p == '#') {
        return 0;
    }

    rule->id = p;

    while (p < end && !ngx_http_ai_guard_space(*p)) {
        c = *p;

        if (!(ngx_http_ai_guard_alnum(c) || c == '_' || c == '.' || c == ':'
              || c == '-'))
        {
            *err = "invalid character in rule id";
            return -1;
        }

        p++;
    }

    rule->id_len = p - rule->id;

    if (rule->id_len > NGX_HTTP_AI_GUARD_RULE_ID_MAX) {
        *err = "rule id is longer than 64 characters";
        return -1;
    }

    while (p < end && ngx_http_ai_guard_space(*p)) {
        p++;
    }

    if (p == end) {
        *err = "missing regex after rule id";
        return -1;
    }

    if (memchr(p, '\0', end - p) != NULL) {
        *err = "NUL byte in regex";
        return -1;
    }

    rule->regex = p;
    rule->regex_len = end - p;

    return 1;
}


/* FNV-1a */

static uint32_t
ngx_http_ai_guard_rules_hash(const u_char *p, size_t len)
{
    size_t    i;
    uint32_t  h;

    h = 2166136261u;

    for (i = 0; i < len; i++) {
        h = (h ^ p[i]) * 16777619u;
    }

    return h;
}


/*
 * Required literals of a regex.  A conservative walk of the pattern: a
 * sequence keeps its best requirement among runs of plain characters
 * (quantified "?", "*" or "{0,}" characters end a run and do not count)
 * and its mandatory groups; an alternation requires one of its branches'
 * requirements, so "(?:ignore|disregard)" gives {ignore, disregard}.
 * Anything unusual (\Q, \x, (?x), verbs, conditionals, callouts) gives up:
 * no literal, the regex always runs.  Literals are lowercased; the scan
 * is case-insensitive, a superset of both (?i) and case-sensitive
 * patterns.  Sound only without PCRE2_UTF and PCRE2_EXTENDED, which
 * nginx does not set unless the pattern does (and then we give up).
 */

int
ngx_http_ai_guard_regex_literals(const u_char *re, size_t len,
    ngx_http_ai_guard_literals_t *lits)
{
    ngx_http_ai_guard_lit_ctx_t  ctx;

    ctx.p = re;
    ctx.end = re + len;
    ctx.bail = 0;
    ctx.depth = 0;
    ctx.nsets = 0;
    ctx.max = 0;
    ctx.sets = NULL;

    lits->n = 0;

    ngx_http_ai_guard_lit_alt(&ctx, lits);

    if (ctx.bail || ctx.p != ctx.end) {
        lits->n = 0;
    }

    return (int) lits->n;
}


/*
 * All the requirements of a regex, each a set of alternatives, a match
 * containing one literal of every set: "(?i)ignore (all )?previous
 * instructions" requires {ignore} and {previous instructions}.  Only a
 * regex without a top-level "|" has more than one; sets[0] is what
 * ngx_http_ai_guard_regex_literals() gives, the others follow best first.
 * Returns the number of sets, 0 when nothing could be proven.
 */

size_t
ngx_http_ai_guard_regex_requires(const u_char *re, size_t len,
    ngx_http_ai_guard_literals_t *sets, size_t max)
{
    size_t                        i, k, sk, sb;
    ngx_http_ai_guard_literals_t  best, t;
    ngx_http_ai_guard_lit_ctx_t   ctx;

    if (max == 0) {
        return 0;
    }

    ctx.p = re;
    ctx.end = re + len;
    ctx.bail = 0;
    ctx.depth = 0;
    ctx.nsets = 0;
    ctx.max = max;
    ctx.sets = sets;

    ngx_http_ai_guard_lit_alt(&ctx, &best);

    if (ctx.bail || ctx.p != ctx.end || best.n == 0) {
        return 0;
    }

    if (ctx.nsets == 0) {
        /* a top-level alternation: one set, of its branches */
        sets[0] = best;
        return 1;
    }

    /* best first, as ngx_http_ai_guard_lit_better() ranks them */

    for (i = 1; i < ctx.nsets; i++) {
        t = sets[i];
        sk = ngx_http_ai_guard_lit_rank(&t);

        for (k = i; k > 0; k--) {
            sb = ngx_http_ai_guard_lit_rank(&sets[k - 1]);

            if (sk < sb || (sk == sb && t.n >= sets[k - 1].n)) {
                break;
            }

            sets[k] = sets[k - 1];
        }

        sets[k] = t;
    }

    return ctx.nsets;
}


static void
ngx_http_ai_guard_lit_alt(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *best)
{
    int                           none;
    size_t                        i, k;
    ngx_http_ai_guard_literals_t  branch;

    none = 0;
    best->n = 0;

    for ( ;; ) {
        ngx_http_ai_guard_lit_seq(ctx, &branch);

        if (ctx->bail) {
            best->n = 0;
            return;
        }

        if (branch.n == 0) {
            none = 1;
        }

        for (i = 0; !none && i < branch.n; i++) {
            for (k = 0; k < best->n; k++) {
                if (best->len[k] == branch.len[i]
                    && memcmp(best->data[k], branch.data[i], branch.len[i])
                       == 0)
                {
                    break;
                }
            }

            if (k < best->n) {
                continue;
            }

            if (best->n == NGX_HTTP_AI_GUARD_LIT_ALTS) {
                none = 1;
                break;
            }

            best->len[best->n] = branch.len[i];
            memcpy(best->data[best->n], branch.data[i], branch.len[i]);
            best->n++;
        }

        if (ctx->p < ctx->end && *ctx->p == '|') {
            ctx->p++;

            if (ctx->depth == 0) {
                /* either branch may match: no set of one is required */
                ctx->max = 0;
                ctx->nsets = 0;
            }

            continue;
        }

        break;
    }

    if (none) {
        best->n = 0;
    }
}


static void
ngx_http_ai_guard_lit_seq(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *best)
{
    int                           kind, opt, usable;
    u_char                        c, run[NGX_HTTP_AI_GUARD_LIT_LEN];
    size_t                        rlen, min, rlen0;
    const u_char                 *q;
    ngx_http_ai_guard_literals_t  g, cand;

    enum { LIT, GROUP, OTHER, NOOP };

    best->n = 0;
    rlen = 0;

    while (ctx->p < ctx->end && *ctx->p != '|' && *ctx->p != ')') {
        c = *ctx->p++;
        kind = OTHER;
        usable = 0;

        switch (c) {

        case '\\':
            if (ctx->p == ctx->end) {
                ctx->bail = 1;
                return;
            }

            c = *ctx->p++;

            if (ngx_http_ai_guard_alnum(c)) {
                if (strchr("dDsSwWbBhHvVRXAzZGK", c) == NULL) {
                    ctx->bail = 1;
                    return;
                }

            } else if (c >= 0x20 && c < 0x7f) {
                kind = LIT;
            }

            break;

        case '[':
            ngx_http_ai_guard_lit_class(ctx);
            break;

        case '(':
            usable = ngx_http_ai_guard_lit_group(ctx, &g);
            kind = (usable == 2) ? NOOP : GROUP;
            break;

        case '.':
        case '^':
        case '$':
            break;

        case '*':
        case '+':
        case '?':
        case '{':
            ctx->bail = 1;
            return;

        default:
            if (c >= 0x20 && c < 0x7f) {
                kind = LIT;
            }
        }

        if (ctx->bail) {
            return;
        }

        if (kind == NOOP) {
            continue;
        }

        /* the quantifier, if any */

        opt = -1;

        if (ctx->p < ctx->end) {
            switch (*ctx->p) {

            case '?':
            case '*':
                opt = 1;
                ctx->p++;
                break;

            case '+':
                opt = 0;
                ctx->p++;
                break;

            case '{':
                q = ctx->p + 1;
                min = 0;
                rlen0 = 0;

                while (q < ctx->end && ngx_http_ai_guard_digit(*q)) {
                    min = (min > 100000) ? min : min * 10 + (*q - '0');
                    q++;
                    rlen0++;
                }

                if (rlen0 == 0) {
                    ctx->bail = 1;
                    return;
                }

                if (q < ctx->end && *q == ',') {
                    q++;

                    while (q < ctx->end && ngx_http_ai_guard_digit(*q)) {
                        q++;
                    }
                }

                if (q == ctx->end || *q != '}') {
                    ctx->bail = 1;
                    return;
                }

                ctx->p = q + 1;
                opt = (min == 0);
                break;
            }

            if (opt != -1 && ctx->p < ctx->end
                && (*ctx->p == '?' || *ctx->p == '+'))
            {
                ctx->p++;
            }
        }

        if (kind == LIT && opt != 1) {
            if (rlen < NGX_HTTP_AI_GUARD_LIT_LEN) {
                run[rlen++] = ngx_http_ai_guard_tolower(c);
            }

            if (opt == -1) {
                continue;
            }
        }

        /* the run ends here */

        if (rlen >= NGX_HTTP_AI_GUARD_LIT_MIN) {
            cand.n = 1;
            cand.len[0] = rlen;
            memcpy(cand.data[0], run, rlen);
            ngx_http_ai_guard_lit_keep(ctx, best, &cand);
        }

        rlen = 0;

        if (kind == GROUP && usable && opt != 1 && g.n > 0) {
            ngx_http_ai_guard_lit_keep(ctx, best, &g);
        }
    }

    if (rlen >= NGX_HTTP_AI_GUARD_LIT_MIN) {
        cand.n = 1;
        cand.len[0] = rlen;
        memcpy(cand.data[0], run, rlen);
        ngx_http_ai_guard_lit_keep(ctx, best, &cand);
    }
}


/*
 * After "(": 1 a group whose requirement is in "g", 0 a group that
 * requires nothing we can use (a lookaround), 2 an option setting such
 * as "(?i)".  Leaves ctx->p after the ")".
 */

static int
ngx_http_ai_guard_lit_group(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *g)
{
    int            usable;
    u_char         c, close;
    const u_char  *p;

    usable = 1;
    p = ctx->p;

    if (p < ctx->end && *p == '*') {
        ctx->bail = 1;
        return 0;
    }

    if (p < ctx->end && *p == '?') {
        p++;

        if (p == ctx->end) {
            ctx->bail = 1;
            return 0;
        }

        c = *p;

        if (c == ':' || c == '|' || c == '>') {
            p++;

        } else if (c == '=' || c == '!') {
            p++;
            usable = 0;

        } else if (c == '<' && p + 1 < ctx->end
                   && (p[1] == '=' || p[1] == '!'))
        {
            p += 2;
            usable = 0;

        } else if (c == '<' || c == '\'' || (c == 'P' && p + 1 < ctx->end
                                             && p[1] == '<'))
        {
            /* a named group */
            close = (c == '\'') ? '\'' : '>';
            p += (c == 'P') ? 2 : 1;

            while (p < ctx->end && *p != close) {
                if (!ngx_http_ai_guard_alnum(*p) && *p != '_') {
                    ctx->bail = 1;
                    return 0;
                }

                p++;
            }

            if (p == ctx->end) {
                ctx->bail = 1;
                return 0;
            }

            p++;

        } else {
            /* option letters: (?i) (?-i) (?i:...); (?x) changes syntax */
            while (p < ctx->end
                   && (ngx_http_ai_guard_alpha(*p) || *p == '-' || *p == '^'))
            {
                if (*p == 'x') {
                    ctx->bail = 1;
                    return 0;
                }

                p++;
            }

            if (p == ctx->end || p == ctx->p + 1) {
                ctx->bail = 1;
                return 0;
            }

            if (*p == ')') {
                ctx->p = p + 1;
                return 2;
            }

            if (*p != ':') {
                ctx->bail = 1;
                return 0;
            }

            p++;
        }
    }

    if (ctx->depth == NGX_HTTP_AI_GUARD_LIT_DEPTH) {
        /* deeper nesting is not worth a prefilter, nor the stack */
        ctx->bail = 1;
        return 0;
    }

    ctx->p = p;
    ctx->depth++;

    ngx_http_ai_guard_lit_alt(ctx, g);

    ctx->depth--;

    if (ctx->bail || ctx->p == ctx->end || *ctx->p != ')') {
        ctx->bail = 1;
        return 0;
    }

    ctx->p++;

    return usable;
}


/* skips a character class after its "[" */

static void
ngx_http_ai_guard_lit_class(ngx_http_ai_guard_lit_ctx_t *ctx)
{
    const u_char  *p;

    p = ctx->p;

    if (p < ctx->end && *p == '^') {
        p++;
    }

    if (p < ctx->end && *p == ']') {
        p++;
    }

    while (p < ctx->end && *p != ']') {
        if (*p == '\\') {
            if (p + 1 < ctx->end
                && ngx_http_ai_guard_alnum(p[1])
                && strchr("dDsSwWhHvVnrtfae", p[1]) == NULL)
            {
                ctx->bail = 1;
                return;
            }

            p += 2;
            continue;
        }

        if (*p == '[' && p + 1 < ctx->end
            && (p[1] == ':' || p[1] == '.' || p[1] == '='))
        {
            /*
             * "[:alpha:]" is a POSIX class; anything else after "[:"
             * PCRE2 reads in ways not worth copying ("[:f]" is four
             * characters of the class): such a regex always runs
             */

            p += 2;

            while (p < ctx->end && *p >= 'a' && *p <= 'z') {
                p++;
            }

            if (p[-1] == ':' || p + 1 >= ctx->end || p[0] != ':'
                || p[1] != ']')
            {
                ctx->bail = 1;
                return;
            }

            p += 2;
            continue;
        }

        p++;
    }

    if (p >= ctx->end) {
        ctx->bail = 1;
        return;
    }

    ctx->p = p + 1;
}


/*
 * A requirement of the top-level sequence is also one of the regex's
 * conjunction; the same set twice is kept once.
 */

static void
ngx_http_ai_guard_lit_keep(ngx_http_ai_guard_lit_ctx_t *ctx,
    ngx_http_ai_guard_literals_t *best,
    const ngx_http_ai_guard_literals_t *cand)
{
    size_t  i, k, worst, r, wr;

    ngx_http_ai_guard_lit_better(best, cand);

    if (ctx->depth != 0 || ctx->max == 0) {
        return;
    }

    for (i = 0; i < ctx->nsets; i++) {
        if (ctx->sets[i].n != cand->n) {
            continue;
        }

        for (k = 0; k < cand->n; k++) {
            if (ctx->sets[i].len[k] != cand->len[k]
                || memcmp(ctx->sets[i].data[k], cand->data[k], cand->len[k])
                   != 0)
            {
                break;
            }
        }

        if (k == cand->n) {
            return;
        }
    }

    if (ctx->nsets < ctx->max) {
        ctx->sets[ctx->nsets++] = *cand;
        return;
    }

    /*
     * Full: the candidate replaces the weakest set it beats, the others
     * keeping the order they were seen in, as ties go to the first seen.
     */

    worst = 0;
    wr = ngx_http_ai_guard_lit_rank(&ctx->sets[0]);

    for (i = 1; i < ctx->nsets; i++) {
        r = ngx_http_ai_guard_lit_rank(&ctx->sets[i]);

        if (r < wr || (r == wr && ctx->sets[i].n >= ctx->sets[worst].n)) {
            worst = i;
            wr = r;
        }
    }

    r = ngx_http_ai_guard_lit_rank(cand);

    if (r > wr || (r == wr && cand->n < ctx->sets[worst].n)) {
        memmove(&ctx->sets[worst], &ctx->sets[worst + 1],
                (ctx->nsets - worst - 1)
                * sizeof(ngx_http_ai_guard_literals_t));
        ctx->sets[ctx->nsets - 1] = *cand;
    }
}


/*
 * The longer shortest literal wins, then the fewer alternatives; a common
 * word counts as length 0.
 */

static void
ngx_http_ai_guard_lit_better(ngx_http_ai_guard_literals_t *best,
    const ngx_http_ai_guard_literals_t *cand)
{
    size_t  bs, cs;

    if (best->n == 0) {
        *best = *cand;
        return;
    }

    bs = ngx_http_ai_guard_lit_rank(best);
    cs = ngx_http_ai_guard_lit_rank(cand);

    if (cs > bs || (cs == bs && cand->n < best->n)) {
        *best = *cand;
    }
}


size_t
ngx_http_ai_guard_lit_rank(const ngx_http_ai_guard_literals_t *lits)
{
    size_t  i, k, len, min;

    min = (size_t) -1;

    for (i = 0; i < lits->n; i++) {
        len = lits->len[i];

        for (k = 0; ngx_http_ai_guard_lit_common[k]; k++) {
            if (strlen(ngx_http_ai_guard_lit_common[k]) == len
                && memcmp(ngx_http_ai_guard_lit_common[k], lits->data[i], len)
                   == 0)
            {
                len = 0;
                break;
            }
        }

        min = (len < min) ? len : min;
    }

    return min;
}


/*
 * Aho-Corasick over ASCII-case-folded bytes.  The alphabet is folded to
 * the bytes the literals use plus one "other" class, so the full
 * transition table stays small: states x (classes + 1) x 4 bytes; the
 * construction's own tables (the trie before renumbering, failure links,
 * the queue, the new numbers) take the rest of the buffer.
 */

size_t
ngx_http_ai_guard_ac_size(const ngx_http_ai_guard_lit_t *lits, size_t n)
{
    size_t  i, j, states, classes;
    u_char  seen[256];

    memset(seen, 0, sizeof(seen));

    states = 1;
    classes = 1;

    for (i = 0; i < n; i++) {
        states += lits[i].len;

        for (j = 0; j < lits[i].len; j++) {
            if (!seen[ngx_http_ai_guard_tolower(lits[i].data[j])]) {
                seen[ngx_http_ai_guard_tolower(lits[i].data[j])] = 1;
                classes++;
            }
        }
    }

    return sizeof(ngx_http_ai_guard_ac_t) + 8
           + (2 * states * (classes + 1) + states * 6 + n * 2)
             * sizeof(uint32_t);
}


ngx_http_ai_guard_ac_t *
ngx_http_ai_guard_ac_build(void *buf, size_t size,
    const ngx_http_ai_guard_lit_t *lits, size_t n)
{
    u_char                   b, map[256];
    size_t                   i, j, states;
    uint32_t                 s, t, f, c, nc, w, na, nb, *fail, *queue, qh,
                             qt, *mem, *trie, *emit, *num;
    ngx_http_ai_guard_ac_t  *ac;

    if (size < ngx_http_ai_guard_ac_size(lits, n) || n >= 0xffffffff) {
        return NULL;
    }

    ac = buf;
    memset(ac, 0, sizeof(ngx_http_ai_guard_ac_t));
    memset(map, 0, sizeof(map));

    states = 1;
    nc = 1;

    for (i = 0; i < n; i++) {
        states += lits[i].len;

        for (j = 0; j < lits[i].len; j++) {
            b = ngx_http_ai_guard_tolower(lits[i].data[j]);

            if (map[b] == 0 && nc < 256) {
                map[b] = (u_char) nc++;
            }
        }

        if (lits[i].group >= ac->ngroups) {
            ac->ngroups = lits[i].group + 1;
        }
    }

    for (i = 0; i < 256; i++) {
        ac->cls[i] = map[ngx_http_ai_guard_tolower(i)];
    }

    w = nc + 1;

    ac->width = w;
    ac->nlits = (uint32_t) n;

    mem = (uint32_t *) (((uintptr_t) (ac + 1) + 7) & ~(uintptr_t) 7);

    ac->next = mem;
    mem += states * w;
    ac->dict = mem;
    mem += states;
    ac->out = mem;
    mem += states;
    ac->same = mem;
    mem += n;
    ac->group = mem;
    mem += n;
    trie = mem;
    mem += states * w;
    emit = mem;
    mem += states;
    fail = mem;
    mem += states;
    queue = mem;
    mem += states;
    num = mem;

    memset(trie, 0xff, states * w * sizeof(uint32_t));
    memset(ac->out, 0xff, states * sizeof(uint32_t));
    memset(ac->dict, 0xff, states * sizeof(uint32_t));

    ac->nstates = 1;

    for (i = 0; i < n; i++) {
        s = 0;
        ac->group[i] = lits[i].group;

        for (j = 0; j < lits[i].len; j++) {
            c = ac->cls[lits[i].data[j]];

            if (trie[s * w + c] == NGX_HTTP_AI_GUARD_AC_NONE) {
                trie[s * w + c] = ac->nstates++;
            }

            s = trie[s * w + c];
        }

        if (s == 0) {
            /* an empty literal occurs in every text; left out */
            ac->same[i] = NGX_HTTP_AI_GUARD_AC_NONE;
            continue;
        }

        ac->same[i] = ac->out[s];
        ac->out[s] = (uint32_t) i;
    }

    qh = 0;
    qt = 0;

    for (c = 0; c < nc; c++) {
        t = trie[c];

        if (t == NGX_HTTP_AI_GUARD_AC_NONE) {
            trie[c] = 0;

        } else {
            fail[t] = 0;
            queue[qt++] = t;
        }
    }

    while (qh < qt) {
        s = queue[qh++];

        for (c = 0; c < nc; c++) {
            t = trie[s * w + c];
            f = trie[fail[s] * w + c];

            if (t == NGX_HTTP_AI_GUARD_AC_NONE) {
                trie[s * w + c] = f;
                continue;
            }

            fail[t] = f;
            ac->dict[t] = (ac->out[f] != NGX_HTTP_AI_GUARD_AC_NONE)
                          ? f : ac->dict[f];
            queue[qt++] = t;
        }
    }

    /* states without an output first, the root keeping 0 */

    na = 0;

    for (s = 0; s < ac->nstates; s++) {
        emit[s] = (ac->out[s] != NGX_HTTP_AI_GUARD_AC_NONE)
                  ? s : ac->dict[s];

        if (emit[s] == NGX_HTTP_AI_GUARD_AC_NONE) {
            num[s] = na++;
        }
    }

    nb = na;

    for (s = 0; s < ac->nstates; s++) {
        if (emit[s] != NGX_HTTP_AI_GUARD_AC_NONE) {
            num[s] = nb++;
        }
    }

    ac->limit = na * w;

    for (s = 0; s < ac->nstates; s++) {
        for (c = 0; c < nc; c++) {
            ac->next[num[s] * w + c] = num[trie[s * w + c]] * w;
        }

        ac->next[num[s] * w + nc] = emit[s];
    }

    return ac;
}


/*
 * Marks found[g] = 1 for every group g one of whose literals occurs in
 * the text (found has ngroups bytes) and returns how many groups do.
 * The loop is unrolled: a state with an output is rare in prose, so a
 * byte costs a class load, a table load and a compare.
 */

size_t
ngx_http_ai_guard_ac_scan(const ngx_http_ai_guard_ac_t *ac, const u_char *p,
    size_t len, u_char *found)
{
    size_t           s, w, limit, count;
    const u_char    *end, *cls;
    const uint32_t  *next;

    memset(found, 0, ac->ngroups);

    count = 0;
    s = 0;
    w = ac->width;
    limit = ac->limit;
    next = ac->next;
    cls = ac->cls;
    end = p + len;

#define ngx_http_ai_guard_ac_step(c)                                        \
    s = next[s + cls[c]];                                                   \
    if (s >= limit) {                                                       \
        count += ngx_http_ai_guard_ac_emit(ac, next[s + w - 1], found);     \
    }

    while (end - p >= 4) {
        ngx_http_ai_guard_ac_step(p[0]);
        ngx_http_ai_guard_ac_step(p[1]);
        ngx_http_ai_guard_ac_step(p[2]);
        ngx_http_ai_guard_ac_step(p[3]);
        p += 4;
    }

    while (p < end) {
        ngx_http_ai_guard_ac_step(*p);
        p++;
    }

#undef ngx_http_ai_guard_ac_step

    return count;
}


static size_t
ngx_http_ai_guard_ac_emit(const ngx_http_ai_guard_ac_t *ac, uint32_t t,
    u_char *found)
{
    size_t    count;
    uint32_t  l;

    count = 0;

    for ( /* void */ ; t != NGX_HTTP_AI_GUARD_AC_NONE; t = ac->dict[t]) {
        for (l = ac->out[t]; l != NGX_HTTP_AI_GUARD_AC_NONE; l = ac->same[l])
        {
            if (!found[ac->group[l]]) {
                found[ac->group[l]] = 1;
                count++;
            }
        }
    }

    return count;
}
