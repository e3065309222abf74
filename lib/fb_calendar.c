/* fb_calendar.c — working days and deadlines. */
#include "fb_calendar.h"
#include "fb_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int32_t day; /* days since 1970-01-01 (civil) */
    bool workday;
} s_exception_t;

struct fb_calendar {
    s_exception_t *ex;
    size_t n, cap;
};

/* Days since the epoch of a civil date (Howard Hinnant's algorithm). */
static int32_t days_from_civil(int y, int m, int d) {
    y -= m <= 2;
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

fb_calendar_t *fb_calendar_new(void) {
    return calloc(1, sizeof(fb_calendar_t));
}

void fb_calendar_destroy(fb_calendar_t **cal) {
    if (*cal) {
        free((*cal)->ex);
        free(*cal);
        *cal = NULL;
    }
}

static int cmp_ex(const void *a, const void *b) {
    const s_exception_t *x = a, *y = b;
    return (x->day > y->day) - (x->day < y->day);
}

int fb_calendar_set(fb_calendar_t *cal, const char *day, bool workday) {
    int y, m, d;
    char tail;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (sscanf(day, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || m < 1 || m > 12 || d < 1 ||
        d > mdays[m - 1])
        return FB_EINVAL;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap)
        return FB_EINVAL;
    int32_t key = days_from_civil(y, m, d);
    for (size_t i = 0; i < cal->n; i++) {
        if (cal->ex[i].day == key) {
            cal->ex[i].workday = workday;
            return 0;
        }
    }
    if (cal->n == cal->cap) {
        size_t cap = cal->cap ? cal->cap * 2 : 64;
        s_exception_t *n = realloc(cal->ex, cap * sizeof *n);
        if (!n)
            return FB_ENOMEM;
        cal->ex = n;
        cal->cap = cap;
    }
    cal->ex[cal->n++] = (s_exception_t){key, workday};
    qsort(cal->ex, cal->n, sizeof *cal->ex, cmp_ex);
    return 0;
}

int fb_calendar_load_json(fb_calendar_t *cal, const json_t *days) {
    size_t i;
    const json_t *d;
    if (!json_is_array(days))
        return FB_EINVAL;
    json_array_foreach(days, i, d) {
        const char *day = json_string_value(json_object_get(d, "day"));
        const char *kind = json_string_value(json_object_get(d, "kind"));
        if (!day || !kind || (strcmp(kind, "holiday") != 0 && strcmp(kind, "workday") != 0))
            return FB_EINVAL;
        int rc = fb_calendar_set(cal, day, strcmp(kind, "workday") == 0);
        if (rc)
            return rc;
    }
    return 0;
}

bool fb_calendar_is_workday(const fb_calendar_t *cal, int year, int month, int mday) {
    s_exception_t key = {days_from_civil(year, month, mday), false};
    const s_exception_t *e =
        cal && cal->n ? bsearch(&key, cal->ex, cal->n, sizeof key, cmp_ex) : NULL;
    if (e)
        return e->workday;
    int dow = (int)((key.day % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday (4) */
    return dow != 0 && dow != 6;
}

static bool tm_workday(const fb_calendar_t *cal, const struct tm *tm) {
    return fb_calendar_is_workday(cal, tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday);
}

static void next_day(struct tm *tm) {
    tm->tm_mday++;
    tm->tm_isdst = -1;
    time_t t = mktime(tm);
    localtime_r(&t, tm);
}

int64_t fb_calendar_add_workdays(const fb_calendar_t *cal, int64_t start_us, int n) {
    time_t t = (time_t)(start_us / 1000000);
    int64_t frac = start_us % 1000000;
    struct tm tm;
    localtime_r(&t, &tm);
    if (!tm_workday(cal, &tm)) {
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        frac = 0;
        do
            next_day(&tm);
        while (!tm_workday(cal, &tm));
    }
    for (int i = 0; i < n; i++) {
        do
            next_day(&tm);
        while (!tm_workday(cal, &tm));
    }
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * 1000000 + frac;
}

int64_t fb_calendar_add_work_hours(const fb_calendar_t *cal, int64_t start_us, int hours) {
    const int64_t hour = INT64_C(3600000000);
    int64_t t = start_us;
    for (int done = 0; done < hours; t += hour) {
        time_t s = (time_t)(t / 1000000);
        struct tm tm;
        localtime_r(&s, &tm);
        if (tm_workday(cal, &tm))
            done++;
    }
    return t;
}

void fb_deadlines(const fb_calendar_t *cal, int64_t start_us, const char *urgency, const char *kind,
                  int accept_hours, int reply_workdays, int64_t *accept_due, int64_t *reply_due) {
    const int64_t hour = INT64_C(3600000000);
    bool urgent = urgency && strcmp(urgency, "normal") != 0;
    bool emergency = urgency && strcmp(urgency, "emergency") == 0;
    if (accept_hours > 0)
        *accept_due = start_us + accept_hours * hour;
    else if (urgent)
        *accept_due = start_us + 2 * hour;
    else
        *accept_due = fb_calendar_add_workdays(cal, start_us, 1);

    if (reply_workdays > 0) {
        *reply_due = fb_calendar_add_workdays(cal, start_us, reply_workdays);
    } else if (emergency) {
        *reply_due = start_us + 24 * hour;
    } else {
        bool long_kind = kind && (strcmp(kind, "complaint") == 0 || strcmp(kind, "report") == 0 ||
                                  strcmp(kind, "suggestion") == 0);
        *reply_due = fb_calendar_add_workdays(cal, start_us, long_kind ? 13 : 3);
    }
    if (*reply_due < *accept_due)
        *reply_due = *accept_due;
}
