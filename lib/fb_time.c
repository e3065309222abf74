/* fb_time.c — RFC 3339 parsing and formatting without locale surprises. */
#include "fb_time.h"
#include "fb_common.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static int digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int expect(const char **p, const char *chars) {
    if (**p && strchr(chars, **p)) {
        (*p)++;
        return 0;
    }
    return -1;
}

int fb_time_parse(const char *s, int64_t *us) {
    int y, mo, d, h, mi, se;
    const char *p = s;
    if (digits(&p, 4, &y) || expect(&p, "-") || digits(&p, 2, &mo) || expect(&p, "-") ||
        digits(&p, 2, &d) || expect(&p, "Tt ") || digits(&p, 2, &h) || expect(&p, ":") ||
        digits(&p, 2, &mi) || expect(&p, ":") || digits(&p, 2, &se))
        return FB_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60)
        return FB_EINVAL;
    int64_t frac = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        int64_t scale = 100000;
        while (isdigit((unsigned char)*p)) {
            if (n < 6)
                frac += (*p - '0') * scale;
            scale /= 10;
            n++;
            p++;
        }
        if (n == 0)
            return FB_EINVAL;
    }
    int offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh, om;
        p++;
        if (digits(&p, 2, &oh) || expect(&p, ":") || digits(&p, 2, &om) || oh > 23 || om > 59)
            return FB_EINVAL;
        offset = sign * (oh * 3600 + om * 60);
    } else {
        return FB_EINVAL;
    }
    if (*p)
        return FB_EINVAL;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = se};
    time_t t = timegm(&tm);
    /* timegm normalises 31 February into March: refuse such dates. */
    if (tm.tm_mday != d)
        return FB_EINVAL;
    *us = ((int64_t)t - offset) * 1000000 + frac;
    return 0;
}

char *fb_time_format(int64_t us, char *out, size_t outlen) {
    time_t t = (time_t)(us / 1000000);
    long frac = (long)(us % 1000000);
    if (frac < 0) {
        frac += 1000000;
        t--;
    }
    struct tm tm;
    localtime_r(&t, &tm);
    char base[32], tz[8];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(tz, sizeof tz, "%z", &tm);
    snprintf(out, outlen, "%s.%06ld%.3s:%s", base, frac, tz, tz + 3);
    return out;
}

int fb_time_local_minutes(int64_t us) {
    time_t t = (time_t)(us / 1000000);
    struct tm tm;
    localtime_r(&t, &tm);
    return tm.tm_hour * 60 + tm.tm_min;
}
