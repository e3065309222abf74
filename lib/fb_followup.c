/* fb_followup.c — follow-up codes: HMAC-SHA256 of the tracking number under
 * the intakes' shared key, rendered for reading aloud (fb_followup.h). */
#include "fb_followup.h"

#include "fb_common.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* 32 symbols, 5 bits each: digits and capitals without 0, 1, I and O, which
 * are misread for each other on paper and over the phone. */
static const char s_alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ";

static int hexval(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static int parse_key(const char *text, size_t n, fb_followup_key_t *key) {
    while (n && (text[n - 1] == '\n' || text[n - 1] == '\r' || text[n - 1] == ' ' ||
                 text[n - 1] == '\t'))
        n--;
    while (n && (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')) {
        text++;
        n--;
    }
    if (n != 2 * FB_FOLLOWUP_KEY_BYTES)
        return FB_EINVAL;
    for (size_t i = 0; i < FB_FOLLOWUP_KEY_BYTES; i++) {
        int hi = hexval((unsigned char)text[2 * i]), lo = hexval((unsigned char)text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return FB_EINVAL;
        key->bytes[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* Makes the key file unless it exists (O_EXCL: two intakes starting at once
 * end with one key, the first one's). */
static int create_key(const char *path) {
    unsigned char raw[FB_FOLLOWUP_KEY_BYTES];
    char hex[2 * FB_FOLLOWUP_KEY_BYTES + 2];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return FB_EIO;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(hex + 2 * i, 3, "%02x", raw[i]);
    hex[2 * FB_FOLLOWUP_KEY_BYTES] = '\n';
    OPENSSL_cleanse(raw, sizeof raw);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == EEXIST ? 0 : FB_EIO;
    size_t len = 2 * FB_FOLLOWUP_KEY_BYTES + 1;
    bool ok = write(fd, hex, len) == (ssize_t)len && fsync(fd) == 0;
    OPENSSL_cleanse(hex, sizeof hex);
    if (close(fd) != 0 || !ok) {
        unlink(path);
        return FB_EIO;
    }
    return 0;
}

int fb_followup_key_load(const char *path, bool create, fb_followup_key_t *key) {
    char buf[256];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        int rc = create_key(path);
        if (rc != 0)
            return rc;
        fd = open(path, O_RDONLY | O_CLOEXEC);
    }
    if (fd < 0)
        return errno == ENOENT ? FB_ENOTFOUND : FB_EIO;
    ssize_t n = read(fd, buf, sizeof buf);
    int saved = errno;
    close(fd);
    if (n < 0) {
        errno = saved;
        return FB_EIO;
    }
    int rc = parse_key(buf, (size_t)n, key);
    OPENSSL_cleanse(buf, sizeof buf);
    return rc;
}

void fb_followup_code(const fb_followup_key_t *key, const char *tracking_no,
                      char out[FB_FOLLOWUP_CODE_LEN + 1]) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), key->bytes, (int)sizeof key->bytes, (const unsigned char *)tracking_no,
         strlen(tracking_no), mac, &maclen);
    /* The first 50 bits, 5 at a time, most significant first. */
    uint64_t bits = 0;
    for (int i = 0; i < 7; i++)
        bits = bits << 8 | mac[i];
    bits >>= 6; /* 56 → 50 bits */
    for (int i = FB_FOLLOWUP_CODE_LEN - 1; i >= 0; i--) {
        out[i] = s_alphabet[bits & 31];
        bits >>= 5;
    }
    out[FB_FOLLOWUP_CODE_LEN] = '\0';
}

bool fb_followup_check(const fb_followup_key_t *key, const char *tracking_no, const char *proof) {
    char want[FB_FOLLOWUP_CODE_LEN + 1], got[FB_FOLLOWUP_CODE_LEN + 1];
    size_t n = 0;
    if (!proof)
        return false;
    for (const char *s = proof; *s; s++) {
        char ch = *s;
        if (ch == ' ' || ch == '-')
            continue;
        if (n == FB_FOLLOWUP_CODE_LEN)
            return false;
        got[n++] = (ch >= 'a' && ch <= 'z') ? (char)(ch - 'a' + 'A') : ch;
    }
    if (n != FB_FOLLOWUP_CODE_LEN)
        return false;
    fb_followup_code(key, tracking_no, want);
    return CRYPTO_memcmp(want, got, FB_FOLLOWUP_CODE_LEN) == 0;
}
