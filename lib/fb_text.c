/* fb_text.c — UTF-8 checks and the normaliser used on every petition text
 * before rules look at it. */
#include "fb_text.h"
#include "fb_common.h"

#include <opencc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static opencc_t s_t2s = (opencc_t)-1;

/* Decodes one code point at s (n bytes left); returns its length or 0 when
 * the sequence is malformed. */
static size_t decode(const unsigned char *s, size_t n, uint32_t *cp) {
    if (s[0] < 0x80) {
        *cp = s[0];
        return s[0] ? 1 : 0;
    }
    size_t len;
    uint32_t min;
    if ((s[0] & 0xE0) == 0xC0) {
        len = 2, min = 0x80, *cp = s[0] & 0x1F;
    } else if ((s[0] & 0xF0) == 0xE0) {
        len = 3, min = 0x800, *cp = s[0] & 0x0F;
    } else if ((s[0] & 0xF8) == 0xF0) {
        len = 4, min = 0x10000, *cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    if (*cp < min || *cp > 0x10FFFF || (*cp >= 0xD800 && *cp <= 0xDFFF))
        return 0;
    return len;
}

static size_t encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t fb_utf8_valid_prefix(const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    size_t left = n;
    while (left) {
        uint32_t cp;
        size_t len = decode(p, left, &cp);
        if (!len)
            break;
        p += len;
        left -= len;
    }
    return n - left;
}

bool fb_utf8_valid(const char *s, size_t n) {
    return fb_utf8_valid_prefix(s, n) == n;
}

int fb_text_init(void) {
    if (s_t2s != (opencc_t)-1)
        return 0;
    s_t2s = opencc_open(OPENCC_DEFAULT_CONFIG_TRAD_TO_SIMP);
    return s_t2s == (opencc_t)-1 ? FB_EIO : 0;
}

void fb_text_shutdown(void) {
    if (s_t2s != (opencc_t)-1)
        opencc_close(s_t2s);
    s_t2s = (opencc_t)-1;
}

static bool is_space(uint32_t cp) {
    return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0x3000 || cp == 0xA0 ||
           (cp >= 0x2000 && cp <= 0x200B) || cp == 0x202F || cp == 0x205F || cp == 0xFEFF;
}

int fb_text_normalize(const char *in, char **out) {
    size_t n = strlen(in);
    *out = NULL;
    /* Half-width forms are never longer than their full-width originals. */
    char *half = malloc(n + 1);
    if (!half)
        return FB_ENOMEM;
    const unsigned char *p = (const unsigned char *)in;
    size_t left = n, o = 0;
    bool pending_space = false;
    while (left) {
        uint32_t cp;
        size_t len = decode(p, left, &cp);
        if (!len) {
            free(half);
            return FB_EUTF8;
        }
        p += len;
        left -= len;
        if (is_space(cp)) {
            pending_space = o > 0;
            continue;
        }
        if (cp >= 0xFF01 && cp <= 0xFF5E) /* full-width ASCII block */
            cp -= 0xFEE0;
        if (pending_space)
            half[o++] = ' ';
        pending_space = false;
        o += encode(cp, half + o);
    }
    half[o] = '\0';
    if (s_t2s == (opencc_t)-1) {
        *out = half;
        return 0;
    }
    char *simp = opencc_convert_utf8(s_t2s, half, o);
    free(half);
    if (!simp)
        return FB_ENOMEM;
    *out = strdup(simp);
    opencc_convert_utf8_free(simp);
    return *out ? 0 : FB_ENOMEM;
}
