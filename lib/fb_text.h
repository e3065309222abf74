/* fb_text.h — text normalisation for matching: valid UTF-8, full-width →
 * half-width, traditional → simplified (OpenCC), whitespace collapsed. The
 * original text is always kept beside the normalised one. */
#ifndef FB_TEXT_H
#define FB_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or NULs). */
bool fb_utf8_valid(const char *s, size_t n);

/* The length of the longest well-formed UTF-8 prefix of s[0..n). */
size_t fb_utf8_valid_prefix(const char *s, size_t n);

/* Opens the OpenCC traditional→simplified converter once per process.
 * Returns FB_EIO when OpenCC's data files are missing. */
int fb_text_init(void);
void fb_text_shutdown(void);

/* Normalises the NUL-terminated in; *out is the caller's (free()).
 * Returns FB_EUTF8 for invalid UTF-8, FB_ENOMEM. Without fb_text_init()
 * traditional characters are left as they are. */
int fb_text_normalize(const char *in, char **out);

#endif
