/* fb_time.h — RFC 3339 timestamps, as petitions carry them. */
#ifndef FB_TIME_H
#define FB_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Parses "2026-11-22T09:30:00+08:00", "…Z", with optional fraction, into
 * microseconds since the epoch. Returns FB_EINVAL when s is not RFC 3339. */
int fb_time_parse(const char *s, int64_t *us);
/* Formats us in the process's local zone (TZ) with its offset, e.g.
 * "2026-11-22T09:30:00.123456+08:00". out needs 40 bytes. */
char *fb_time_format(int64_t us, char *out, size_t outlen);

/* Minutes after local midnight (TZ) of us, for rules' time windows. */
int fb_time_local_minutes(int64_t us);

#endif
