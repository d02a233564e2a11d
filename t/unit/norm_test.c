
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <tap.h>
#include <ngx_http_ai_guard_norm.h>


/* the normal form of s, in place of a copy, against want */

static void
t_norm(const char *s, const char *want, const char *name)
{
    u_char  buf[256];
    size_t  n;

    /* bytes past the text that would show if it were read past its end */

    memset(buf, 0xff, sizeof(buf));

    n = strlen(s);
    memcpy(buf, s, n);

    n = ngx_http_ai_guard_norm(buf, buf, n);

    is_str(buf, n, want, "%s", name);
}


/* text, its normal form, what the case is */
static const char  *t_cases[][3] = {
    /* Unicode spaces: what \s without UCP does not see */

    {"ignore\xc2\xa0previous", "ignore previous", "U+00A0 no-break"},
    {"ignore\xe2\x80\xa8previous", "ignore previous",
      "U+2028 line separator"},
    {"ignore\xe3\x80\x80previous", "ignore previous",
      "U+3000 ideographic space"},
    {"ignore\xc2\x85previous", "ignore previous", "U+0085 next line"},
    {"a\xe2\x80\x82\xe2\x80\xaf" "b", "a  b",
      "U+2002 en space, U+202F narrow no-break"},

    /* format and default-ignorable characters go */

    {"ig\xe2\x80\x8bno\xe2\x80\x8cre", "ignore",
      "U+200B zero-width space, U+200C ZWNJ"},
    {"ig\xc2\xadnore", "ignore", "U+00AD soft hyphen"},
    {"\xe2\x80\xaeignore\xe2\x80\xac", "ignore",
      "U+202E, U+202C bidi override"},
    {"\xe2\x81\xa6ig\xe2\x81\xa9nore", "ignore", "U+2066 bidi isolate"},
    {"\xef\xbb\xbfignore", "ignore", "U+FEFF byte order mark"},
    {"ig\xe2\x81\xa0nore", "ignore", "U+2060 word joiner"},
    {"ig\xcd\x8fnore", "ignore", "U+034F grapheme joiner (Mn)"},
    {"ig\xef\xb8\x8fnore", "ignore", "U+FE0F variation selector"},
    {"ig\xf3\xa0\x81\xa9nore", "ignore", "U+E0069 tag i"},

    /* compatibility forms with an ASCII NFKC */

    {"\xef\xbc\xa9\xef\xbd\x87\xef\xbd\x8e\xef\xbd\x8f\xef\xbd\x92"
      "\xef\xbd\x85", "Ignore", "fullwidth letters"},
    {"\xef\xbc\x81\xef\xbd\x9e", "!~", "fullwidth ! and ~, the ends"},
    {"\xf0\x9d\x90\x88\xf0\x9d\x90\xa0", "Ig",
      "mathematical bold I, g"},
    {"\xef\xac\x81le", "file", "U+FB01 ligature fi"},
    {"\xe2\x84\xaa" "ey", "Key", "U+212A Kelvin sign"},
    {"\xc5\xbfystem", "system", "U+017F long s"},
    {"\xe2\x93\x98gnore", "ignore", "U+24D8 circled i"},
    {"\xe2\x91\xb4", "(1)", "U+2474 parenthesised 1, same length"},

    /* near misses: what stays */

    {"ignore previous instructions", "ignore previous instructions",
      "ASCII as it is"},
    {"caf\xc3\xa9 na\xc3\xafve", "caf\xc3\xa9 na\xc3\xafve",
      "Latin-1 letters stay"},
    {"\xe4\xbd\xa0\xe5\xa5\xbd", "\xe4\xbd\xa0\xe5\xa5\xbd",
      "CJK stays"},
    {"\xd0\xb8\xd0\xb3\xd0\xbd\xd0\xbe\xd1\x80", "\xd0\xb8\xd0\xb3"
      "\xd0\xbd\xd0\xbe\xd1\x80", "Cyrillic stays (not NFKC)"},
    {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80", "emoji stays"},
    {"\xe2\x92\x87", "\xe2\x92\x87",
      "U+2487 (20) is longer than its code point: stays"},
    {"\xe2\x80\x8d", "", "a lone ZWJ: nothing"},

    /* not UTF-8: bytes as they are */

    {"a\xff" "b\xc3", "a\xff" "b\xc3", "invalid bytes copied"},
    {"\xed\xa0\x80", "\xed\xa0\x80", "a surrogate copied"},
    {"\xe0\x80\xa0", "\xe0\x80\xa0", "an overlong space copied"},
};


static void
t_all_cases(void)
{
    size_t  i;

    for (i = 0; i < sizeof(t_cases) / sizeof(t_cases[0]); i++) {
        t_norm(t_cases[i][0], t_cases[i][1], t_cases[i][2]);
    }
}


/* the table: every mapped code point is gone from its own form */

static void
t_table(void)
{
    char        buf[1];
    size_t      n, bad, mapped;
    uint32_t    cp;
    const char  *s;

    bad = 0;
    mapped = 0;

    for (cp = 0x80; cp < 0x110000; cp++) {
        s = ngx_http_ai_guard_norm_map(cp, buf, &n);

        if (s == NULL) {
            continue;
        }

        mapped++;

        if (n > 4 || (n && (unsigned char) s[0] >= 0x80)
            || (cp < 0x800 && n > 2) || (cp < 0x10000 && n > 3))
        {
            bad++;
        }
    }

    is_int(bad, 0, "no mapping longer than its code point, all ASCII");
    ok(mapped > 1500, "%zu code points mapped", mapped);
}


int
main(void)
{
    t_all_cases();
    t_table();

    return done_testing();
}
