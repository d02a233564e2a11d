
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <tap.h>
#include <ngx_http_ai_guard_date.h>


#define S(s)  (const u_char *) (s), strlen(s)


static void
test_civil(void)
{
    int64_t  day, y, m, d, ok;

    is_int(ngx_http_ai_guard_days_from_civil(1970, 1, 1), 0, "1970-01-01");
    is_int(ngx_http_ai_guard_days_from_civil(1969, 12, 31), -1,
           "1969-12-31, before the epoch");
    is_int(ngx_http_ai_guard_days_from_civil(2000, 3, 1)
           - ngx_http_ai_guard_days_from_civil(2000, 2, 28), 2,
           "2000 is a leap year");
    is_int(ngx_http_ai_guard_days_from_civil(1900, 3, 1)
           - ngx_http_ai_guard_days_from_civil(1900, 2, 28), 1,
           "1900 is not");
    is_int(ngx_http_ai_guard_days_from_civil(9999, 12, 31),
           NGX_HTTP_AI_GUARD_DAY_MAX, "9999-12-31 is the last day");

    /* every day from 1600 to 2600 goes there and back */

    ok = 1;

    for (day = ngx_http_ai_guard_days_from_civil(1600, 1, 1);
         day < ngx_http_ai_guard_days_from_civil(2600, 1, 1);
         day++)
    {
        ngx_http_ai_guard_civil_from_days(day, &y, &m, &d);

        if (ngx_http_ai_guard_days_from_civil(y, m, d) != day
            || m < 1 || m > 12 || d < 1 || d > 31)
        {
            ok = 0;
            break;
        }
    }

    ok(ok, "a day number and its date agree, 1600 to 2600");
}


static void
test_text(void)
{
    u_char    buf[16], *e;
    uint32_t  day;

    e = ngx_http_ai_guard_date_format(buf, 20421);
    is_str(buf, e - buf, "2025-11-29", "day 20421");

    e = ngx_http_ai_guard_date_format(buf, 0xffffffff);
    is_str(buf, e - buf, "9999-12-31", "past 9999: the last day");

    is_int(ngx_http_ai_guard_date_parse(S("2025-11-29"), &day), 0,
           "parses a date");
    is_int(day, 20421, "to its day");

    is_int(ngx_http_ai_guard_date_parse(S("2024-02-29"), &day), 0,
           "a leap day");
    is_int(ngx_http_ai_guard_date_parse(S("2023-02-29"), &day), -1,
           "not a leap year");
    is_int(ngx_http_ai_guard_date_parse(S("2025-02-30"), &day), -1,
           "February 30th");
    is_int(ngx_http_ai_guard_date_parse(S("1969-12-31"), &day), -1,
           "before 1970");
    is_int(ngx_http_ai_guard_date_parse(S("2025-13-01"), &day), -1,
           "month 13");
    is_int(ngx_http_ai_guard_date_parse(S("2025-1-01"), &day), -1,
           "short");
    is_int(ngx_http_ai_guard_date_parse(S("2025/11/29"), &day), -1,
           "slashes");
    is_int(ngx_http_ai_guard_date_parse(S("2025-11-2x"), &day), -1,
           "a letter");
}


int
main(void)
{
    test_civil();
    test_text();

    return done_testing();
}
