
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_TAP_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_TAP_H_INCLUDED_


/*
 * A minimal TAP producer for the unit tests of the pure parts of the
 * module; t/000-unit.t runs each test binary and relays its lines.
 */

#include <stdio.h>
#include <string.h>


static int  tap_n;
static int  tap_failed;


#define ok(cond, ...)                                                        \
    do {                                                                     \
        tap_n++;                                                             \
        if (cond) {                                                          \
            printf("ok %d - ", tap_n);                                       \
        } else {                                                             \
            tap_failed++;                                                    \
            printf("not ok %d - ", tap_n);                                   \
        }                                                                    \
        printf(__VA_ARGS__);                                                 \
        printf("\n");                                                        \
        if (!(cond)) {                                                       \
            printf("#   failed at %s line %d\n", __FILE__, __LINE__);        \
        }                                                                    \
    } while (0)

#define is_int(got, want, ...)                                               \
    do {                                                                     \
        long long  g_ = (long long) (got), w_ = (long long) (want);          \
        ok(g_ == w_, __VA_ARGS__);                                           \
        if (g_ != w_) {                                                      \
            printf("#   got %lld, want %lld\n", g_, w_);                     \
        }                                                                    \
    } while (0)

#define is_str(got, glen, want, ...)                                         \
    do {                                                                     \
        size_t  wl_ = strlen(want);                                          \
        int     eq_ = ((size_t) (glen) == wl_                                \
                       && memcmp((got), (want), wl_) == 0);                  \
        ok(eq_, __VA_ARGS__);                                                \
        if (!eq_) {                                                          \
            printf("#   got \"%.*s\", want \"%s\"\n",                        \
                   (int) (glen), (const char *) (got), (want));             \
        }                                                                    \
    } while (0)

#define done_testing()                                                       \
    (printf("1..%d\n", tap_n), tap_failed ? 1 : 0)


#endif /* _NGX_HTTP_AI_GUARD_TAP_H_INCLUDED_ */
