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

/* Masks personal data typed into free text (a petition's content or
 * address), in the style of fb_mask_phone: e-mail addresses keep their first
 * character and domain (z***@example.com); 18-character ID card numbers,
 * other runs of 12 or more digits (bank cards), mainland mobiles (with an
 * optional +86 and single spaces or dashes between the groups) and
 * landlines with an area code keep their first three and last four digits
 * (138****5678, 057****4321); local numbers of 7 or 8 digits keep their last
 * four (****4321). A run of digits joined by dashes to other digits (a
 * tracking number, a date) is no local number. Digits are ASCII only.
 * schema/0014_mask_text.sql's fenbo_mask_text() is the same function in SQL.
 * *out is the caller's (free()). Returns 0 or FB_ENOMEM. */
int fb_text_mask_personal(const char *in, char **out);

#endif
