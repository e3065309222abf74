/* fb_log.h — one line per event on stderr, in key=value form.
 *
 *   ts=2026-11-22T10:00:00.123+08:00 level=info prog=fenbo-intake event=accepted tracking_no=…
 *
 * The level is checked before anything is formatted. Personal data goes
 * through fb_mask_phone()/fb_mask_name() before it reaches a log line. */
#ifndef FB_LOG_H
#define FB_LOG_H

#include <stddef.h>

typedef enum { FB_LOG_DEBUG = 0, FB_LOG_INFO, FB_LOG_WARN, FB_LOG_ERROR } fb_log_level_t;

void fb_log_init(const char *prog, fb_log_level_t level);
void fb_log_set_level(fb_log_level_t level);
/* The program's name given to fb_log_init (borrowed). */
const char *fb_log_prog(void);
/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int fb_log_level_parse(const char *s);
int fb_log_enabled(fb_log_level_t level);

#define fb_log(level, ...)                                                                         \
    do {                                                                                           \
        if (fb_log_enabled(level))                                                                 \
            fb_log_write(level, __VA_ARGS__);                                                      \
    } while (0)

void fb_log_write(fb_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "13812345678" → "138****5678" into out (at least 16 bytes); anything that is
 * not a plausible phone number is masked entirely. Returns out. */
char *fb_mask_phone(const char *phone, char *out, size_t outlen);

#endif
