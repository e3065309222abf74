/* fb_token.h — API bearer tokens. A token is shown once when created; only
 * its SHA-256 is stored (api_tokens.token_hash). */
#ifndef FB_TOKEN_H
#define FB_TOKEN_H

#include <stddef.h>

#define FB_TOKEN_LEN      43 /* "fb_" + 40 hex digits */
#define FB_TOKEN_HASH_HEX 65 /* 64 hex digits + NUL */

/* Makes a new random token into out (at least FB_TOKEN_LEN + 1 bytes). */
int fb_token_generate(char *out, size_t outlen);
/* Hex SHA-256 (lower case) of len bytes into out; 0 or FB_EIO. Tokens,
 * photos and raw mail are named by it. */
int fb_sha256_hex(const void *data, size_t len, char out[FB_TOKEN_HASH_HEX]);
/* Hex SHA-256 of token into out (FB_TOKEN_HASH_HEX bytes). */
int fb_token_hash_hex(const char *token, char *out);

/* Returns the bearer token of an "Authorization: Bearer …" value, or NULL. */
const char *fb_token_from_header(const char *authorization);

#endif
