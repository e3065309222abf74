/* fb_common.h — error codes and small helpers shared by every part of fenbo. */
#ifndef FB_COMMON_H
#define FB_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Functions that can fail return 0 or one of these (negative). */
enum {
    FB_OK = 0,
    FB_EINVAL = -1, /* bad input: the caller's data is wrong */
    FB_ENOMEM = -2, /* out of memory */
    FB_EIO = -3,    /* file system or network error; errno tells more */
    FB_EDB = -4,    /* PostgreSQL error */
    FB_ENOTFOUND = -5,
    FB_EUTF8 = -6,    /* text is not valid UTF-8 */
    FB_ECORRUPT = -7, /* a stored record failed its checksum */
    FB_EAGAIN = -8,   /* try again later (full queue, peer away) */
};

#define FB_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Microseconds since the Unix epoch, wall clock. */
int64_t fb_now_us(void);
/* Milliseconds from a monotonic clock, for timeouts. */
uint64_t fb_mono_ms(void);

/* strdup that treats NULL as NULL. Returned string is the caller's. */
char *fb_strdup0(const char *s);

/* Appends n bytes to the buffer *data of *len bytes and *cap allocated,
 * growing it by doubling, and keeps it NUL-terminated after *len. */
int fb_bytes_append(char **data, size_t *len, size_t *cap, const void *src, size_t n);

/* A request refused: what the client is answered. */
typedef struct fb_refusal {
    unsigned status;   /* HTTP status (400, 422, …); 0: nothing refused */
    const char *code;  /* machine-readable, e.g. "invalid_field" */
    const char *field; /* the offending field, or NULL; borrowed */
    char message[256];
} fb_refusal_t;

/* Fills r (status, code, field, message) and returns FB_EINVAL. */
int fb_refuse(fb_refusal_t *r, unsigned status, const char *code, const char *field,
              const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
