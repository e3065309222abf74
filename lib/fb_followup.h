/* fb_followup.h — a petition's follow-up code: the secret only its resident
 * receives (in the 202 answer), which proves them on the progress page and
 * for the rating.
 *
 * The code is derived, not stored: HMAC-SHA256 of the tracking number under
 * a key every intake instance shares (a key file), its first 50 bits written
 * as 10 characters of an alphabet without 0/O and 1/I. Retries, restarts and
 * several intakes agree with no storage, and nothing secret is in the
 * database. Guessing one code takes 2^50 tries on average; the tries are
 * limited by intake (followup.c). */
#ifndef FB_FOLLOWUP_H
#define FB_FOLLOWUP_H

#include <stdbool.h>
#include <stddef.h>

#define FB_FOLLOWUP_KEY_BYTES 32
#define FB_FOLLOWUP_CODE_LEN  10

typedef struct {
    unsigned char bytes[FB_FOLLOWUP_KEY_BYTES];
} fb_followup_key_t;

/* Reads the key from path: 64 hex digits (whitespace around them ignored).
 * With create, a missing file is made first (32 random bytes, mode 0600,
 * never overwriting one that appeared meanwhile). Returns 0, FB_ENOTFOUND
 * (no file and not create), FB_EINVAL (not 64 hex digits), FB_EIO. */
int fb_followup_key_load(const char *path, bool create, fb_followup_key_t *key);

/* Writes the code of tracking_no into out (FB_FOLLOWUP_CODE_LEN + 1 bytes,
 * NUL-terminated). */
void fb_followup_code(const fb_followup_key_t *key, const char *tracking_no,
                      char out[FB_FOLLOWUP_CODE_LEN + 1]);

/* Whether proof is tracking_no's code. Case, spaces and dashes in proof do
 * not matter (a code read out over the phone); the comparison takes the same
 * time whichever character differs. */
bool fb_followup_check(const fb_followup_key_t *key, const char *tracking_no, const char *proof);

#endif
