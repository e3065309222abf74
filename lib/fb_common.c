/* fb_common.c — clocks and tiny string and buffer helpers. */
#include "fb_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t fb_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

uint64_t fb_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

char *fb_strdup0(const char *s) {
    return s ? strdup(s) : NULL;
}

int fb_bytes_append(char **data, size_t *len, size_t *cap, const void *src, size_t n) {
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 4096;
        while (c < *len + n + 1)
            c *= 2;
        char *grown = realloc(*data, c);
        if (!grown)
            return FB_ENOMEM;
        *data = grown;
        *cap = c;
    }
    if (n)
        memcpy(*data + *len, src, n);
    *len += n;
    (*data)[*len] = '\0';
    return 0;
}

int fb_refuse(fb_refusal_t *r, unsigned status, const char *code, const char *field,
              const char *fmt, ...) {
    r->status = status;
    r->code = code;
    r->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->message, sizeof r->message, fmt, ap);
    va_end(ap);
    return FB_EINVAL;
}
