/* fb_token.c — token generation (getrandom) and hashing (OpenSSL SHA-256). */
#include "fb_token.h"
#include "fb_common.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

static void to_hex(const unsigned char *in, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[in[i] >> 4];
        out[2 * i + 1] = hex[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int fb_token_generate(char *out, size_t outlen) {
    unsigned char rnd[20];
    if (outlen < FB_TOKEN_LEN + 1)
        return FB_EINVAL;
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
        return FB_EIO;
    memcpy(out, "fb_", 3);
    to_hex(rnd, sizeof rnd, out + 3);
    return 0;
}

int fb_sha256_hex(const void *data, size_t len, char out[FB_TOKEN_HASH_HEX]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return FB_EIO;
    to_hex(md, n, out);
    return 0;
}

int fb_token_hash_hex(const char *token, char *out) {
    return fb_sha256_hex(token, strlen(token), out);
}

const char *fb_token_from_header(const char *authorization) {
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return NULL;
    const char *t = authorization + 7;
    while (*t == ' ')
        t++;
    return *t ? t : NULL;
}
