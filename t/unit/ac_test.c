
/*
 * Copyright (C) ngx_ai_guard developers
 */


/*
 * The Aho-Corasick scan: overlapping literals, case folding, groups,
 * an empty literal, a short buffer.
 */

#include <stdlib.h>
#include <tap.h>
#include <ngx_http_ai_guard_ac.h>


#define S(s)  (const u_char *) (s), strlen(s)


static void
test_ac(void)
{
    u_char                  *buf, found[8];
    size_t                   size, n;
    ngx_http_ai_guard_ac_t  *ac;
    ngx_http_ai_guard_lit_t  lits[] = {
        { (u_char *) "he", 2, 0 },
        { (u_char *) "she", 3, 1 },
        { (u_char *) "his", 3, 2 },
        { (u_char *) "hers", 4, 3 },
        { (u_char *) "SHE", 3, 4 },
        { (u_char *) "", 0, 5 },
        { (u_char *) "xyz", 3, 6 },
    };

    size = ngx_http_ai_guard_ac_size(lits, 7);
    buf = malloc(size);

    ok(ngx_http_ai_guard_ac_build(buf, size - 1, lits, 7) == NULL,
       "a short buffer is refused");

    ac = ngx_http_ai_guard_ac_build(buf, size, lits, 7);
    ok(ac != NULL, "automaton built in %zu bytes", size);

    n = ngx_http_ai_guard_ac_scan(ac, S("uSHErs"), found);
    is_int(n, 4, "four literals in \"uSHErs\"");
    ok(found[0] && found[1] && !found[2] && found[3] && found[4]
       && !found[5] && !found[6], "he, she, hers, SHE found");

    n = ngx_http_ai_guard_ac_scan(ac, S("this is XYZ"), found);
    is_int(n, 2, "his and xyz");
    ok(found[2] && found[6], "case-insensitive");

    n = ngx_http_ai_guard_ac_scan(ac, S(""), found);
    is_int(n, 0, "nothing in nothing");

    /* the unrolled loop's tail, and a literal at the very end */

    n = ngx_http_ai_guard_ac_scan(ac, S("abcdexyz"), found);
    is_int(n, 1, "xyz at the end of 8 bytes");
    n = ngx_http_ai_guard_ac_scan(ac, S("abcdefxyz"), found);
    is_int(n, 1, "xyz at the end of 9 bytes");

    free(buf);

    /* literals of one group count once */

    lits[1].group = 0;
    lits[3].group = 0;
    lits[4].group = 0;
    lits[2].group = 1;
    lits[5].group = 1;
    lits[6].group = 1;

    size = ngx_http_ai_guard_ac_size(lits, 7);
    buf = malloc(size);
    ac = ngx_http_ai_guard_ac_build(buf, size, lits, 7);

    n = ngx_http_ai_guard_ac_scan(ac, S("uSHErs"), found);
    is_int(n, 1, "one group in \"uSHErs\"");
    ok(found[0] && !found[1], "group 0 found, group 1 not");

    n = ngx_http_ai_guard_ac_scan(ac, S("XYZ, his and hers"), found);
    is_int(n, 2, "both groups");

    free(buf);

    ok(ngx_http_ai_guard_ac_size(NULL, 0) > 0, "an empty set has a size");
}


int
main(void)
{
    test_ac();

    return done_testing();
}
