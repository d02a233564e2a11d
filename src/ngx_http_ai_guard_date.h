
/*
 * Copyright (C) ngx_ai_guard developers
 */


#ifndef _NGX_HTTP_AI_GUARD_DATE_H_INCLUDED_
#define _NGX_HTTP_AI_GUARD_DATE_H_INCLUDED_


/*
 * The proleptic Gregorian calendar in integers only (Howard Hinnant's
 * algorithms): no gmtime(), no time zone, no locale.  Day numbers count
 * from 1970-01-01.  Pure code, the one calendar of the module: quotas'
 * windows, the keys file's expiry dates and the reports' days.
 */

#include <sys/types.h>
#include <stddef.h>
#include <stdint.h>


/* "YYYY-MM-DD" */
#define NGX_HTTP_AI_GUARD_DATE_LEN     10

/* the day number of 9999-12-31, the last a date has four digits for */
#define NGX_HTTP_AI_GUARD_DAY_MAX      2932896


/* the day number of y-m-d, m 1-12, any year (before 1970: negative) */
int64_t ngx_http_ai_guard_days_from_civil(int64_t y, int64_t m, int64_t d);

/* the date of a day number */
void ngx_http_ai_guard_civil_from_days(int64_t days, int64_t *y,
    int64_t *m, int64_t *d);

/* "YYYY-MM-DD" of a day, at most 9999-12-31; returns the end */
u_char *ngx_http_ai_guard_date_format(u_char *p, uint32_t day);

/* a "YYYY-MM-DD" from 1970 on into its day number: 0, or -1 */
int ngx_http_ai_guard_date_parse(const u_char *p, size_t len,
    uint32_t *day);


#endif /* _NGX_HTTP_AI_GUARD_DATE_H_INCLUDED_ */
