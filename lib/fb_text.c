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

/* ---- personal data in free text ------------------------------------------
 * Five passes, in the order and with the very patterns of fenbo_mask_text()
 * (schema/0014_mask_text.sql), so that C and SQL mask alike. Each pass scans
 * left to right like regexp_replace(…, 'g'): at each position it tries its
 * pattern; a match is replaced and skipped, else one byte is copied. Bytes of
 * multi-byte UTF-8 characters are never ASCII, so scanning bytes is safe. */

typedef struct {
    char *buf;
    size_t len;
} s_out_t;

static bool isdig(char c) {
    return c >= '0' && c <= '9';
}

static bool is_alnum_ascii(char c) {
    return isdig(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static size_t digit_run(const char *s) {
    size_t n = 0;
    while (isdig(s[n]))
        n++;
    return n;
}

static void put(s_out_t *o, const char *s, size_t n) {
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

/* first three + "****" + last four of the n bytes at s */
static void put_3_4(s_out_t *o, const char *s, size_t n) {
    put(o, s, 3);
    put(o, "****", 4);
    put(o, s + n - 4, 4);
}

/* A pass: at s + i, returns the bytes matched (0: none) after writing the
 * replacement to o. */
typedef size_t (*s_pass_fn)(const char *s, size_t i, s_out_t *o);

/* ([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+) → \1***@\2 */
static bool email_local(char c) {
    return is_alnum_ascii(c) || (c && strchr("._%+-", c));
}
static bool email_label(char c) {
    return is_alnum_ascii(c) || c == '-';
}

static size_t pass_email(const char *s, size_t i, s_out_t *o) {
    const char *p = s + i;
    if (!is_alnum_ascii(p[0]))
        return 0;
    size_t j = 1;
    while (email_local(p[j]))
        j++;
    if (p[j] != '@')
        return 0;
    size_t d = j + 1, k = d, labels = 0;
    while (email_label(p[k]))
        k++;
    if (k == d)
        return 0;
    while (p[k] == '.' && email_label(p[k + 1])) {
        k++;
        while (email_label(p[k]))
            k++;
        labels++;
    }
    if (!labels)
        return 0;
    put(o, p, 1);
    put(o, "***@", 4);
    put(o, p + d, k - d);
    return k;
}

/* (?<![0-9])([0-9]{3})[0-9]{11}([0-9]{3}[0-9Xx])(?![0-9]) → \1****\2 */
static size_t pass_id(const char *s, size_t i, s_out_t *o) {
    const char *p = s + i;
    if ((i && isdig(s[i - 1])) || digit_run(p) < 17)
        return 0;
    if (!(isdig(p[17]) || p[17] == 'X' || p[17] == 'x') || isdig(p[18]))
        return 0;
    put_3_4(o, p, 18);
    return 18;
}

/* (?<![0-9])([0-9]{3})[0-9]{5,}([0-9]{4})(?![0-9]) → \1****\2 */
static size_t pass_long(const char *s, size_t i, s_out_t *o) {
    const char *p = s + i;
    size_t n = digit_run(p);
    if ((i && isdig(s[i - 1])) || n < 12)
        return 0;
    put_3_4(o, p, n);
    return n;
}

static bool is_sep(char c) {
    return c == '-' || c == ' ';
}

/* (?<![0-9])(?:\+?86[- ]?)?(1[3-9][0-9])[- ]?[0-9]{4}[- ]?([0-9]{4})(?![0-9]) → \1****\2 */
static size_t mobile_core(const char *p, char first3[3], char last4[4]) {
    if (p[0] != '1' || p[1] < '3' || p[1] > '9' || !isdig(p[2]))
        return 0;
    memcpy(first3, p, 3);
    size_t j = 3;
    if (is_sep(p[j]))
        j++;
    if (digit_run(p + j) < 4)
        return 0;
    j += 4;
    if (is_sep(p[j]))
        j++;
    if (digit_run(p + j) != 4)
        return 0;
    memcpy(last4, p + j, 4);
    return j + 4;
}

static size_t pass_mobile(const char *s, size_t i, s_out_t *o) {
    const char *p = s + i;
    if (i && isdig(s[i - 1]))
        return 0;
    char f[3], l[4];
    size_t pre = 0, n = 0;
    if (p[0] == '+')
        pre = 1;
    if (p[pre] == '8' && p[pre + 1] == '6') {
        pre += 2;
        if (is_sep(p[pre]))
            pre++;
        n = mobile_core(p + pre, f, l);
    } else if (!pre) {
        n = mobile_core(p, f, l);
    }
    if (!n)
        return 0;
    put(o, f, 3);
    put(o, "****", 4);
    put(o, l, 4);
    return pre + n;
}

/* (?<![0-9])\(?(0[0-9]{2})[0-9]?\)?[- ]?[0-9]{3,4}([0-9]{4})(?![0-9]) → \1****\2 */
static size_t pass_landline(const char *s, size_t i, s_out_t *o) {
    const char *p = s + i;
    if (i && isdig(s[i - 1]))
        return 0;
    size_t a = p[0] == '(' ? 1 : 0;
    if (p[a] != '0' || !isdig(p[a + 1]) || !isdig(p[a + 2]))
        return 0;
    /* Every way the optional parts can be taken ends at the end of the same
     * digit run, so any that fits gives the same replacement. */
    for (int four = 1; four >= 0; four--) {
        size_t j = a + 3;
        if (four && !isdig(p[j]))
            continue;
        j += (size_t)four;
        for (int paren = 1; paren >= 0; paren--) {
            if (paren && p[j] != ')')
                continue;
            size_t k = j + (size_t)paren;
            for (int sep = 1; sep >= 0; sep--) {
                if (sep && !is_sep(p[k]))
                    continue;
                size_t m = k + (size_t)sep, run = digit_run(p + m);
                if (run == 7 || run == 8) {
                    put(o, p + a, 3);
                    put(o, "****", 4);
                    put(o, p + m + run - 4, 4);
                    return m + run;
                }
            }
        }
    }
    return 0;
}

/* (?<![0-9]|[0-9]-)[0-9]{3,4}([0-9]{4})(?![0-9]|-[0-9]) → ****\1 */
static size_t pass_local(const char *s, size_t i, s_out_t *o) {
    const char *p = s + i;
    if (i && (isdig(s[i - 1]) || (i >= 2 && s[i - 1] == '-' && isdig(s[i - 2]))))
        return 0;
    size_t n = digit_run(p);
    if ((n != 7 && n != 8) || (p[n] == '-' && isdig(p[n + 1])))
        return 0;
    put(o, "****", 4);
    put(o, p + n - 4, 4);
    return n;
}

int fb_text_mask_personal(const char *in, char **out) {
    static const s_pass_fn passes[] = {pass_email,  pass_id,       pass_long,
                                       pass_mobile, pass_landline, pass_local};
    size_t n = strlen(in);
    /* No pass makes text more than 1.5 times longer (a@b.cd → a***@b.cd). */
    size_t cap = 2 * n + 16;
    char *cur = malloc(cap), *next = malloc(cap);
    if (!cur || !next) {
        free(cur);
        free(next);
        return FB_ENOMEM;
    }
    memcpy(cur, in, n + 1);
    for (size_t k = 0; k < FB_ARRAY_LEN(passes); k++) {
        s_out_t o = {next, 0};
        size_t len = strlen(cur);
        for (size_t i = 0; i < len;) {
            size_t m = passes[k](cur, i, &o);
            if (m) {
                i += m;
            } else {
                o.buf[o.len++] = cur[i];
                i++;
            }
        }
        o.buf[o.len] = '\0';
        char *t = cur;
        cur = next;
        next = t;
    }
    free(next);
    *out = cur;
    return 0;
}
