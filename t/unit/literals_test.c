
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * Required literals of a regex: what the walk proves of sequences,
 * groups, alternations, classes and quantifiers, where it gives up, and
 * the ranking of several requirements.
 */

#include <stdio.h>
#include <tap.h>
#include <ngx_http_ai_guard_literals.h>


#define S(s)  (const u_char *) (s), strlen(s)


static void
test_literals(void)
{
    size_t                        i, len;
    char                          got[512];
    ngx_http_ai_guard_literals_t  lits;

#define LIT(re, want)                                                        \
    ngx_http_ai_guard_regex_literals(S(re), &lits);                          \
    len = 0;                                                                 \
    for (i = 0; i < lits.n; i++) {                                           \
        len += sprintf(got + len, "%s%.*s", i ? "|" : "", (int) lits.len[i], \
                       lits.data[i]);                                        \
    }                                                                        \
    is_str(got, len, want, "literal of /%s/", re)

    LIT("(?i)ignore previous", "ignore previous");
    LIT("(?i)Ignore\\s+Previous", "previous");
    LIT("abc", "abc");
    LIT("ab", "");
    LIT("", "");
    LIT("abcd?ef", "abc");
    LIT("abcde?fg", "abcd");
    LIT("abcd+efg", "abcd");
    LIT("ab(?:cd)?efgh", "efgh");
    LIT("xyzw*", "xyz");
    LIT("xyz{0,3}w", "");
    LIT("wxyz{0,3}", "wxy");
    LIT("wxyz{1,3}", "wxyz");
    LIT("abcd|efgh", "abcd|efgh");
    LIT("abcd|ef", "");
    LIT("(?:ignore|disregard)\\s+x", "ignore|disregard");
    LIT("(?:ignore|disregard)\\s+previously", "previously");
    LIT("(?:ignore|disregard)?\\s+prev", "prev");
    LIT("(?:ab|cd)\\s+efg", "efg");
    LIT("a[xyz]bcd", "bcd");
    LIT("[]abc]defg", "defg");
    LIT("[^\\]abc]defg", "defg");
    LIT("[[:alpha:]]hij", "hij");
    LIT("abc\\.def", "abc.def");
    LIT("a\\dbcd", "bcd");
    LIT("\\bword\\b", "word");
    LIT("foo.bar", "foo");
    LIT("fo.barr", "barr");
    LIT("(?-i:DAN)\\b", "dan");
    LIT("(?i)<\\|\\s*im_start", "im_start");
    LIT("(?=abcdef)x", "");
    LIT("(?!abcdef)xyz", "xyz");
    LIT("(?<name>abcd)", "abcd");
    LIT("(?P<n>abcd)+", "abcd");
    LIT("(abcd)*", "");
    LIT("(?x)a b c d", "");
    LIT("(?i:abc)d", "abc");
    LIT("(*UTF)abcd", "");
    LIT("\\Qabcd\\E", "");
    LIT("\\x41bcd", "");
    LIT("abc(", "");
    LIT("abc)", "");
    LIT("abc[", "");
    LIT("a{", "");
    LIT("*abc", "");
    LIT("caf\xc3\xa9s", "caf");
    LIT("(?:a|b|c|d|e|f|g|h|i)xyz", "xyz");
    LIT("(?:abc|abc)", "abc");
    LIT("(?:a1b|a2b|a3b|a4b|a5b|a6b|a7b|a8b|a9b)",
        "a1b|a2b|a3b|a4b|a5b|a6b|a7b|a8b|a9b");
    LIT("(?:a1b|a2b|a3b|a4b|a5b|a6b|a7b|a8b|a9b|b1c|b2c|b3c|b4c|b5c|b6c"
        "|b7c|b8c)", "");
    LIT("0123456789012345678901234567890123456789", "01234567890123456789"
        "012345678901");
    LIT("(?:foo(?:bar|baz)|qux)", "foo|qux");
    LIT("(((((((((((((((((((((((((((((((((abcd)))))))))))))))))))))))))))))"
        "))))", "");
    LIT("((((((((((((((((((((((((((((((((abcd))))))))))))))))))))))))))))))))",
        "abcd");

#undef LIT
}


static void
test_requires(void)
{
    size_t                        i, k, n, len;
    char                          got[1024];
    ngx_http_ai_guard_literals_t  sets[NGX_HTTP_AI_GUARD_LIT_SETS];

#define REQ(re, max, want)                                                   \
    n = ngx_http_ai_guard_regex_requires(S(re), sets, max);                  \
    len = 0;                                                                 \
    for (k = 0; k < n; k++) {                                                \
        len += sprintf(got + len, "%s", k ? " & " : "");                     \
        for (i = 0; i < sets[k].n; i++) {                                    \
            len += sprintf(got + len, "%s%.*s", i ? "|" : "",                \
                           (int) sets[k].len[i], sets[k].data[i]);           \
        }                                                                    \
    }                                                                        \
    is_str(got, len, want, "requirements of /%s/", re)

    REQ("(?i)ignore (all )?previous instructions", 8,
        "previous instructions & ignore ");
    REQ("(?i)\\bignore\\s+(?:all\\s+)?previous\\s+instructions\\b", 8,
        "instructions & previous & ignore");
    REQ("(?:ignore|disregard)\\s+(?:prior|previous)\\s+rules", 8,
        "ignore|disregard & rules & prior|previous");
    REQ("abcd\\s+abcd\\s+efg", 8, "abcd & efg");
    REQ("you\\s+are\\s+evil", 8, "evil & you & are");
    REQ("abcd|efgh\\s+ijkl", 8, "abcd|efgh");
    REQ("(?:abcd\\s+efgh|ijkl)\\s+mnop", 8, "mnop & abcd|ijkl");
    REQ("abcd?\\s+(?:efg)?\\s+hijk", 8, "hijk & abc");
    REQ("abcd\\s+efgh\\s+ijkl", 2, "abcd & efgh");
    REQ("abcd\\s+efgh", 0, "");
    REQ("ab\\s+cd", 8, "");
    REQ("(?x)abcd efgh", 8, "");
    REQ("(?=abcd)efgh\\s+ijkl", 8, "efgh & ijkl");

    /*
     * found by fuzz/rules_file: "[:f" that no ":]" closes is characters
     * of the class to PCRE2, whose "]" ends it, so "|" is an alternation;
     * the walk skipped to a later "]" and required "x]abc" of a regex
     * that matches "a[" alone: now such a regex has no requirement
     */
    REQ("a[[:f.{0*:bar|baq\\b.{5,40^]|b]x]abcd?e+", 8, "");
    REQ("(?i)abcd[[:alpha:]]+efgh", 8, "abcd & efgh");

    /* the first set is what the one-set extraction picks */

    n = ngx_http_ai_guard_regex_requires(S("(?i)\\bdo\\s+not\\s+tell\\s+"
                                           "(?:the\\s+)?user\\b"), sets, 8);
    is_int(n, 3, "three sets");
    ok(sets[0].n == 1 && sets[0].len[0] == 4
       && memcmp(sets[0].data[0], "tell", 4) == 0, "\"tell\" first");

#undef REQ
}


int
main(void)
{
    test_literals();
    test_requires();

    return done_testing();
}
