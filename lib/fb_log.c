/* fb_log.c — the key=value logger every daemon writes to stderr. */
#include "fb_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

static const char *s_prog = "fenbo";
static fb_log_level_t s_level = FB_LOG_INFO;
static const char *const s_names[] = {"debug", "info", "warn", "error"};

const char *fb_log_prog(void) {
    return s_prog;
}

void fb_log_init(const char *prog, fb_log_level_t level) {
    s_prog = prog;
    s_level = level;
}

void fb_log_set_level(fb_log_level_t level) {
    s_level = level;
}

int fb_log_level_parse(const char *s) {
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, s_names[i]) == 0)
            return i;
    return -1;
}

int fb_log_enabled(fb_log_level_t level) {
    return level >= s_level;
}

void fb_log_write(fb_log_level_t level, const char *fmt, ...) {
    char line[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    char ts[40], tz[8];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(tz, sizeof tz, "%z", &tm);
    int n = snprintf(line, sizeof line, "ts=%s.%03ld%.3s:%s level=%s prog=%s ", ts,
                     (long)(tv.tv_usec / 1000), tz, tz + 3, s_names[level], s_prog);
    if (n < 0 || (size_t)n >= sizeof line)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    /* One write per line, so lines of concurrent processes do not interleave. */
    fwrite(line, 1, len, stderr);
    fflush(stderr);
}

char *fb_mask_phone(const char *phone, char *out, size_t outlen) {
    size_t n = phone ? strlen(phone) : 0;
    if (outlen < 16) {
        if (outlen)
            out[0] = '\0';
        return out;
    }
    if (n >= 7 && n <= 15) {
        snprintf(out, outlen, "%.3s****%s", phone, phone + n - 4);
    } else {
        snprintf(out, outlen, "****");
    }
    return out;
}
