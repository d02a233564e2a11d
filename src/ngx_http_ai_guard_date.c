
/*
 * Copyright (C) ngx_ai_guard developers
 */


#include <ngx_http_ai_guard_date.h>


int64_t
ngx_http_ai_guard_days_from_civil(int64_t y, int64_t m, int64_t d)
{
    int64_t  era, yoe, doy, doe;

    y -= (m <= 2);
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

    return era * 146097 + doe - 719468;
}


void
ngx_http_ai_guard_civil_from_days(int64_t days, int64_t *y, int64_t *m,
    int64_t *d)
{
    int64_t  z, era, doe, yoe, doy, mp;

    z = days + 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = (mp < 10) ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}


u_char *
ngx_http_ai_guard_date_format(u_char *p, uint32_t day)
{
    int64_t  y, m, d;

    if (day > NGX_HTTP_AI_GUARD_DAY_MAX) {
        day = NGX_HTTP_AI_GUARD_DAY_MAX;
    }

    ngx_http_ai_guard_civil_from_days(day, &y, &m, &d);

    p[0] = (u_char) ('0' + y / 1000);
    p[1] = (u_char) ('0' + y / 100 % 10);
    p[2] = (u_char) ('0' + y / 10 % 10);
    p[3] = (u_char) ('0' + y % 10);
    p[4] = '-';
    p[5] = (u_char) ('0' + m / 10);
    p[6] = (u_char) ('0' + m % 10);
    p[7] = '-';
    p[8] = (u_char) ('0' + d / 10);
    p[9] = (u_char) ('0' + d % 10);

    return p + NGX_HTTP_AI_GUARD_DATE_LEN;
}


int
ngx_http_ai_guard_date_parse(const u_char *p, size_t len, uint32_t *day)
{
    size_t   i;
    int64_t  y, m, d, days, cy, cm, cd;

    if (len != NGX_HTTP_AI_GUARD_DATE_LEN || p[4] != '-' || p[7] != '-') {
        return -1;
    }

    for (i = 0; i < NGX_HTTP_AI_GUARD_DATE_LEN; i++) {
        if (i != 4 && i != 7 && (p[i] < '0' || p[i] > '9')) {
            return -1;
        }
    }

    y = (p[0] - '0') * 1000 + (p[1] - '0') * 100 + (p[2] - '0') * 10
        + (p[3] - '0');
    m = (p[5] - '0') * 10 + (p[6] - '0');
    d = (p[8] - '0') * 10 + (p[9] - '0');

    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31) {
        return -1;
    }

    days = ngx_http_ai_guard_days_from_civil(y, m, d);

    /* February 30th comes back as March 2nd */

    ngx_http_ai_guard_civil_from_days(days, &cy, &cm, &cd);

    if (cy != y || cm != m || cd != d) {
        return -1;
    }

    *day = (uint32_t) days;

    return 0;
}
