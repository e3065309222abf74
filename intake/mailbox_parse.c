/* mailbox_parse.c — one e-mail read into what a petition needs.
 *
 * GMime reads the MIME structure, the transfer encodings (base64,
 * quoted-printable), addresses, Date and Message-ID. The text itself —
 * bodies and the encoded-words of Subject and From — is decoded here, with
 * iconv, because GMime's own decoders neither report a lossy conversion
 * (invalid bytes silently shift the rest of a GBK text) nor know the Chinese
 * charset labels mail really carries (an unknown label is read as Latin-1).
 * HTML bodies are reduced to text by a small scanner: GMime has no
 * HTML-to-text, and a petition needs words, not layout. */
#include "mailbox_parse.h"
#include "fb_common.h"
#include "fb_text.h"
#include "fb_time.h"
#include "photo.h"

#include <ctype.h>
#include <errno.h>
#include <gmime/gmime.h>
#include <iconv.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH         32   /* MIME nesting we follow */
#define MAX_PARTS         1000 /* MIME parts (boundary lines) a mail may have */
#define MAX_SUBJECT_BYTES 1000 /* a subject is a line, not a letter */
#define MAX_NAME_BYTES    200
#define MAX_ADDRESS_BYTES 320                /* RFC 3696: 64 + 1 + 255 */
#define MAX_MESSAGE_ID    250                /* the idempotency key must fit intake's key buffer */
#define MIN_DATE_S        INT64_C(946684800) /* 2000-01-01: earlier Date headers are wrong clocks */

/* ---- a growable string ------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} s_buf_t;

static void buf_add(s_buf_t *b, const void *s, size_t n) {
    if (b->oom || n == 0)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t c = b->cap ? b->cap : 64;
        while (c < b->len + n + 1)
            c *= 2;
        char *q = realloc(b->p, c);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = c;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_addc(s_buf_t *b, char c) {
    buf_add(b, &c, 1);
}

static void buf_addcp(s_buf_t *b, uint32_t cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_add(b, u, n);
}

/* Drops what follows len (the buffer keeps its memory). */
static void buf_cut(s_buf_t *b, size_t len) {
    if (b->p && len < b->len) {
        b->len = len;
        b->p[len] = '\0';
    }
}

/* Hands the string over to the caller ("" when nothing was added), or NULL
 * when memory ran out; b is empty afterwards. */
static char *buf_take(s_buf_t *b) {
    char *p = b->oom ? NULL : b->p ? b->p : strdup("");
    if (b->oom)
        free(b->p);
    *b = (s_buf_t){0};
    return p;
}

/* ---- UTF-8 ------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (n bytes available) and its
 * code point, or 0 for an invalid one (overlong, surrogate, beyond U+10FFFF,
 * cut short). */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        v = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        v = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        v = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

static bool utf8_ok(const char *s, size_t n) {
    uint32_t cp;
    for (size_t i = 0, k; i < n; i += k)
        if (!(k = utf8_next((const unsigned char *)s + i, n - i, &cp)))
            return false;
    return true;
}

/* Appends s as clean UTF-8: invalid bytes become U+FFFD (lossy), CR LF and
 * lone CR become LF, NUL and other control characters but tab and LF go. */
static void append_clean(s_buf_t *b, const char *s, size_t n, bool *lossy) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (!k) {
            buf_addcp(b, 0xFFFD);
            *lossy = true;
            i++;
            continue;
        }
        if (cp == '\r') {
            buf_addc(b, '\n');
            i += (i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
            continue;
        }
        if (cp == 0xFFFD)
            *lossy = true; /* the sender's own decoder already gave up */
        if ((cp < 0x20 && cp != '\t' && cp != '\n') || cp == 0x7F) {
            i += k;
            continue;
        }
        buf_add(b, s + i, k);
        i += k;
    }
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. Returns
 * true when something was cut. */
static bool utf8_truncate(char *s, size_t max) {
    size_t n = strlen(s);
    if (n <= max)
        return false;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    s[max] = '\0';
    return true;
}

/* ---- charsets ---------------------------------------------------------- */

typedef enum { CS_UNDECLARED, CS_UTF8, CS_ICONV, CS_UNKNOWN } s_cs_kind_t;

/* Labels read as GB18030, which contains GB2312 and GBK. */
static const char *const s_gb_labels[] = {
    "gb2312",  "gbk",       "gb18030", "cp936",        "ms936",        "windows-936", "euc-cn",
    "euccn",   "x-euc-cn",  "x-gbk",   "gb_2312-80",   "csgb2312",     "x-gb2312",    "gb_2312",
    "chinese", "iso-ir-58", "cn-gb",   "gb18030-2000", "gb18030-2005", NULL};
/* Labels read as Big5-HKSCS, a superset of the Big5 mail uses (with the
 * ETEN extensions). big5_tw is what Python's email package writes. */
static const char *const s_big5_labels[] = {
    "big5",  "big-5",       "big5_tw", "big5-tw",    "cn-big5",   "x-x-big5",   "csbig5", "cp950",
    "ms950", "windows-950", "x-big5",  "big5-hkscs", "big5hkscs", "big5_hkscs", NULL};
static const char *const s_utf8_labels[] = {"utf-8", "utf8", "x-utf-8", "unicode-1-1-utf-8", NULL};
/* ASCII labels promise nothing about 8-bit bytes: read like undeclared text. */
static const char *const s_ascii_labels[] = {
    "us-ascii", "ascii", "ansi_x3.4-1968", "iso646-us", "us", "646", NULL};

static bool in_labels(const char *s, const char *const *labels) {
    for (; *labels; labels++)
        if (strcmp(s, *labels) == 0)
            return true;
    return false;
}

/* Classifies a declared charset; for CS_ICONV, name receives iconv's name. */
static s_cs_kind_t classify_charset(const char *charset, char *name, size_t namelen) {
    char low[64];
    size_t n = 0;
    const char *s = charset ? charset : "";
    while (*s == ' ' || *s == '\t' || *s == '"' || *s == '\'')
        s++;
    for (; *s && n + 1 < sizeof low; s++)
        low[n++] = (char)tolower((unsigned char)*s);
    while (n > 0 &&
           (low[n - 1] == ' ' || low[n - 1] == '\t' || low[n - 1] == '"' || low[n - 1] == '\''))
        n--;
    low[n] = '\0';
    if (n == 0 || in_labels(low, s_ascii_labels))
        return CS_UNDECLARED;
    if (in_labels(low, s_utf8_labels))
        return CS_UTF8;
    const char *iconv_name = in_labels(low, s_gb_labels)     ? "GB18030"
                             : in_labels(low, s_big5_labels) ? "BIG5-HKSCS"
                                                             : g_mime_charset_iconv_name(low);
    if (!iconv_name || strlen(iconv_name) + 1 > namelen)
        return CS_UNKNOWN;
    iconv_t cd = iconv_open("UTF-8", iconv_name);
    if (cd == (iconv_t)-1)
        return CS_UNKNOWN;
    iconv_close(cd);
    strcpy(name, iconv_name);
    return CS_ICONV;
}

/* Converts with iconv; a byte that does not decode becomes U+FFFD and the
 * conversion goes on after it. Returns false when iconv cannot open name. */
static bool iconv_append(s_buf_t *b, const char *name, const char *in, size_t n, bool *lossy) {
    iconv_t cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1)
        return false;
    s_buf_t tmp = {0};
    char chunk[4096];
    char *ip = (char *)in;
    size_t il = n;
    while (il > 0) {
        char *op = chunk;
        size_t ol = sizeof chunk;
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        int err = errno;
        buf_add(&tmp, chunk, sizeof chunk - ol);
        if (r != (size_t)-1)
            break;
        if (err == E2BIG)
            continue;
        /* EILSEQ (bytes that are no character) or EINVAL (a character cut
         * off at the end): mark it and carry on with the next byte. */
        buf_addcp(&tmp, 0xFFFD);
        *lossy = true;
        iconv(cd, NULL, NULL, NULL, NULL);
        ip++;
        il--;
    }
    char *op = chunk;
    size_t ol = sizeof chunk;
    iconv(cd, NULL, NULL, &op, &ol);
    buf_add(&tmp, chunk, sizeof chunk - ol);
    iconv_close(cd);
    if (tmp.oom)
        b->oom = true;
    else if (tmp.len)
        append_clean(b, tmp.p, tmp.len, lossy);
    free(tmp.p);
    return true;
}

static void decode_into(s_buf_t *b, const char *charset, const char *in, size_t n, bool *lossy) {
    char name[64];
    s_cs_kind_t kind = classify_charset(charset, name, sizeof name);
    if (kind == CS_UTF8) {
        append_clean(b, in, n, lossy);
        return;
    }
    if (kind == CS_ICONV && iconv_append(b, name, in, n, lossy))
        return;
    if (kind != CS_UNDECLARED)
        *lossy = true; /* a label nobody can read: whatever we make of it is a guess */
    if (utf8_ok(in, n)) {
        append_clean(b, in, n, lossy);
        return;
    }
    /* 8-bit text of unknown charset: in a Chinese city's mail, GB18030 is
     * the likeliest, and still a guess. */
    *lossy = true;
    if (!iconv_append(b, "GB18030", in, n, lossy))
        append_clean(b, in, n, lossy);
}

char *intake_mail_decode_text(const char *charset, const char *in, size_t n, bool *lossy) {
    bool l = false;
    s_buf_t b = {0};
    intake_mail_init();
    decode_into(&b, charset, in, n, &l);
    if (lossy)
        *lossy = l;
    return buf_take(&b);
}

/* ---- RFC 2047 encoded-words -------------------------------------------- */

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Lenient base64: skips what is not in the alphabet, stops at padding. */
static void b64_decode(const char *s, size_t n, s_buf_t *out) {
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            continue;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf_addc(out, (char)((acc >> bits) & 0xFF));
            acc &= (1u << bits) - 1;
        }
    }
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static void q_decode(const char *s, size_t n, s_buf_t *out) {
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '_') {
            buf_addc(out, ' ');
        } else if (s[i] == '=' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 &&
                   (lo = hex_value(s[i + 2])) >= 0) {
            buf_addc(out, (char)(hi * 16 + lo));
            i += 2;
        } else {
            buf_addc(out, s[i]);
        }
    }
}

/* Reads the encoded-word at p ("=?charset[*lang]?B|Q?text?="): its charset
 * into cs and its bytes appended to bytes. Returns the length read, or 0
 * when p does not start a well-formed word. */
static size_t parse_word(const char *p, char *cs, size_t cslen, s_buf_t *bytes) {
    if (p[0] != '=' || p[1] != '?')
        return 0;
    const char *c = p + 2, *q = strchr(c, '?');
    if (!q || q == c || (size_t)(q - c) >= cslen)
        return 0;
    for (const char *x = c; x < q; x++)
        if ((unsigned char)*x <= ' ' || (unsigned char)*x >= 0x7F)
            return 0;
    char enc = q[1];
    if (!(enc == 'B' || enc == 'b' || enc == 'Q' || enc == 'q') || q[2] != '?')
        return 0;
    const char *t = q + 3, *e = strstr(t, "?=");
    if (!e)
        return 0;
    for (const char *x = t; x < e; x++)
        if (*x == '\r' || *x == '\n')
            return 0;
    memcpy(cs, c, (size_t)(q - c));
    cs[q - c] = '\0';
    char *star = strchr(cs, '*'); /* RFC 2231 language suffix */
    if (star)
        *star = '\0';
    if (enc == 'B' || enc == 'b')
        b64_decode(t, (size_t)(e - t), bytes);
    else
        q_decode(t, (size_t)(e - t), bytes);
    return (size_t)(e + 2 - p);
}

/* Appends decoded header text; in a phrase (an address's display name) it
 * goes in as a quoted string, so that a decoded comma or bracket cannot
 * change how the address list parses. */
static void emit_decoded(s_buf_t *out, const char *s, size_t n, bool phrase, bool in_quotes) {
    if (!phrase) {
        buf_add(out, s, n);
        return;
    }
    if (!in_quotes)
        buf_addc(out, '"');
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\')
            buf_addc(out, '\\');
        buf_addc(out, s[i]);
    }
    if (!in_quotes)
        buf_addc(out, '"');
}

static void flush_word(s_buf_t *out, s_buf_t *pend, const char *cs, bool phrase, bool in_quotes,
                       bool *lossy) {
    s_buf_t dec = {0};
    decode_into(&dec, cs, pend->p ? pend->p : "", pend->len, lossy);
    if (dec.oom)
        out->oom = true;
    else
        emit_decoded(out, dec.p ? dec.p : "", dec.len, phrase, in_quotes);
    free(dec.p);
    buf_cut(pend, 0);
}

static char *decode_header(const char *raw, bool phrase, bool *lossy) {
    s_buf_t out = {0}, pend = {0}, ws = {0};
    char pend_cs[64] = "", cs[64];
    bool have_pend = false, in_quotes = false;
    const char *p = raw ? raw : "";
    while (*p) {
        if (*p == '\r' || *p == '\n') { /* unfolding */
            p++;
            continue;
        }
        if (*p == ' ' || *p == '\t') {
            buf_addc(&ws, *p++);
            continue;
        }
        s_buf_t word = {0};
        size_t used = parse_word(p, cs, sizeof cs, &word);
        if (used) {
            if (have_pend && strcasecmp(cs, pend_cs) != 0) {
                flush_word(&out, &pend, pend_cs, phrase, in_quotes, lossy);
            } else if (!have_pend) {
                buf_add(&out, ws.p, ws.len);
            }
            /* Whitespace between two encoded-words is not text (RFC 2047
             * 6.2); words of one charset are joined as bytes first, since
             * mailers split multi-byte characters between words. */
            buf_cut(&ws, 0);
            snprintf(pend_cs, sizeof pend_cs, "%s", cs);
            have_pend = true;
            buf_add(&pend, word.p, word.len);
            if (word.oom)
                pend.oom = true;
            free(word.p);
            p += used;
            continue;
        }
        free(word.p);
        if (have_pend) {
            flush_word(&out, &pend, pend_cs, phrase, in_quotes, lossy);
            have_pend = false;
        }
        buf_add(&out, ws.p, ws.len);
        buf_cut(&ws, 0);
        const char *s = p;
        do {
            if (*p == '\\' && p[1] && phrase)
                p++;
            else if (*p == '"' && phrase)
                in_quotes = !in_quotes;
            p++;
        } while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' &&
                 !(p[0] == '=' && p[1] == '?'));
        decode_into(&out, NULL, s, (size_t)(p - s), lossy);
    }
    if (have_pend)
        flush_word(&out, &pend, pend_cs, phrase, in_quotes, lossy);
    buf_add(&out, ws.p, ws.len);
    if (pend.oom || ws.oom)
        out.oom = true;
    free(pend.p);
    free(ws.p);
    return buf_take(&out);
}

char *intake_mail_decode_header(const char *raw, bool *lossy) {
    bool l = false;
    intake_mail_init();
    char *s = decode_header(raw, false, &l);
    if (lossy)
        *lossy = l;
    return s;
}

/* ---- HTML to text ------------------------------------------------------ */

static bool ci_prefix(const char *s, size_t n, const char *word) {
    size_t w = strlen(word);
    return n >= w && strncasecmp(s, word, w) == 0;
}

/* Position of needle (lower-case ASCII) in s[0..n), case-insensitive, or n. */
static size_t ci_find(const char *s, size_t n, const char *needle) {
    size_t w = strlen(needle);
    for (size_t i = 0; i + w <= n; i++)
        if (strncasecmp(s + i, needle, w) == 0)
            return i;
    return n;
}

/* Elements whose content is not text of the letter. */
static const char *const s_skipped_elements[] = {"script",   "style",  "head", "title",
                                                 "template", "object", NULL};
/* Elements that end a line. */
static const char *const s_block_elements[] = {
    "br",      "p",      "div",    "li",      "tr",     "h1",   "h2",         "h3", "h4", "h5",
    "h6",      "ul",     "ol",     "table",   "hr",     "pre",  "blockquote", "dt", "dd", "section",
    "article", "header", "footer", "address", "center", "form", "caption",    NULL};

static const struct {
    const char *name;
    uint32_t cp;
} s_entities[] = {
    {"amp", '&'},      {"lt", '<'},        {"gt", '>'},       {"quot", '"'},     {"apos", '\''},
    {"nbsp", ' '},     {"ensp", ' '},      {"emsp", ' '},     {"thinsp", ' '},   {"mdash", 0x2014},
    {"ndash", 0x2013}, {"hellip", 0x2026}, {"ldquo", 0x201C}, {"rdquo", 0x201D}, {"lsquo", 0x2018},
    {"rsquo", 0x2019}, {"middot", 0x00B7}, {"copy", 0x00A9},  {"reg", 0x00AE},   {"yen", 0x00A5},
    {"times", 0x00D7}, {"divide", 0x00F7}, {"deg", 0x00B0},   {"laquo", 0x00AB}, {"raquo", 0x00BB},
    {"bull", 0x2022},  {"trade", 0x2122},  {"rarr", 0x2192},
};

/* Decodes the character reference at s ('&' …); returns its length and the
 * code point, or 0 when it is not one (the '&' is then text). */
static size_t html_entity(const char *s, size_t n, uint32_t *cp) {
    size_t i = 1;
    if (i < n && s[i] == '#') {
        bool hex = i + 1 < n && (s[i + 1] == 'x' || s[i + 1] == 'X');
        i += hex ? 2 : 1;
        uint32_t v = 0;
        size_t digits = 0;
        for (; i < n && digits < 8; i++, digits++) {
            int d = hex ? hex_value(s[i]) : (isdigit((unsigned char)s[i]) ? s[i] - '0' : -1);
            if (d < 0)
                break;
            v = v * (hex ? 16 : 10) + (uint32_t)d;
        }
        if (!digits)
            return 0;
        if (i < n && s[i] == ';')
            i++;
        *cp = (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) ? 0xFFFD
              : v == 0xA0                                              ? ' '
                                                                       : v;
        return i;
    }
    size_t start = i;
    while (i < n && i - start < 10 && isalnum((unsigned char)s[i]))
        i++;
    if (i == start || i >= n || s[i] != ';')
        return 0;
    for (size_t k = 0; k < FB_ARRAY_LEN(s_entities); k++) {
        if (strlen(s_entities[k].name) == i - start &&
            strncmp(s + start, s_entities[k].name, i - start) == 0) {
            *cp = s_entities[k].cp;
            return i + 1;
        }
    }
    return 0;
}

typedef struct {
    s_buf_t out;
    bool space; /* whitespace seen since the last text */
} s_html_t;

static void html_text(s_html_t *h, const char *s, size_t n) {
    if (h->space && h->out.len && h->out.p[h->out.len - 1] != '\n')
        buf_addc(&h->out, ' ');
    h->space = false;
    buf_add(&h->out, s, n);
}

/* Ends the line: a block element only when the line has text, <br> always
 * (two in a row make a blank line, more do not). */
static void html_newline(s_html_t *h, bool always) {
    while (h->out.len && h->out.p[h->out.len - 1] == ' ')
        buf_cut(&h->out, h->out.len - 1);
    size_t n = h->out.len;
    bool line_start = n == 0 || h->out.p[n - 1] == '\n';
    bool blank_line = n >= 2 && h->out.p[n - 1] == '\n' && h->out.p[n - 2] == '\n';
    if (n && (always ? !blank_line : !line_start))
        buf_addc(&h->out, '\n');
    h->space = false;
}

char *intake_mail_html_to_text(const char *s, size_t n) {
    s_html_t h = {{0}, false};
    size_t i = 0;
    while (i < n) {
        char c = s[i];
        if (c == '<') {
            if (ci_prefix(s + i, n - i, "<!--")) {
                size_t e = ci_find(s + i + 4, n - i - 4, "-->");
                i = e < n - i - 4 ? i + 4 + e + 3 : n;
                continue;
            }
            bool closing = i + 1 < n && s[i + 1] == '/';
            size_t ns = i + 1 + (closing ? 1 : 0), ne = ns;
            while (ne < n && isalnum((unsigned char)s[ne]))
                ne++;
            if (ne == ns && !(ns < n && (s[ns] == '!' || s[ns] == '?'))) {
                html_text(&h, "<", 1); /* a lone '<' in text */
                i++;
                continue;
            }
            char name[16] = "";
            if (ne - ns < sizeof name) {
                for (size_t k = 0; k < ne - ns; k++)
                    name[k] = (char)tolower((unsigned char)s[ns + k]);
                name[ne - ns] = '\0';
            }
            /* The tag's end, past quoted attribute values. */
            size_t j = ne;
            char quote = 0;
            for (; j < n; j++) {
                if (quote) {
                    if (s[j] == quote)
                        quote = 0;
                } else if (s[j] == '"' || s[j] == '\'') {
                    quote = s[j];
                } else if (s[j] == '>') {
                    break;
                }
            }
            i = j < n ? j + 1 : n;
            if (!closing && in_labels(name, s_skipped_elements)) {
                char end[24];
                snprintf(end, sizeof end, "</%s", name);
                size_t e = ci_find(s + i, n - i, end);
                if (e == n - i) {
                    i = n;
                } else {
                    size_t gt = ci_find(s + i + e, n - i - e, ">");
                    i = gt == n - i - e ? n : i + e + gt + 1;
                }
                h.space = true;
                continue;
            }
            if (strcmp(name, "br") == 0)
                html_newline(&h, true);
            else if (in_labels(name, s_block_elements))
                html_newline(&h, false);
            else if (strcmp(name, "td") == 0 || strcmp(name, "th") == 0 || strcmp(name, "img") == 0)
                h.space = true;
            continue;
        }
        if (c == '&') {
            uint32_t cp;
            size_t k = html_entity(s + i, n - i, &cp);
            if (k) {
                if (cp == ' ') {
                    h.space = true;
                } else {
                    s_buf_t one = {0};
                    buf_addcp(&one, cp);
                    html_text(&h, one.p ? one.p : "", one.len);
                    free(one.p);
                }
                i += k;
                continue;
            }
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f') {
            h.space = true;
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && s[j] != '<' && s[j] != '&' && s[j] != ' ' && s[j] != '\t' && s[j] != '\n' &&
               s[j] != '\r' && s[j] != '\f')
            j++;
        html_text(&h, s + i, j - i);
        i = j;
    }
    while (h.out.len && (h.out.p[h.out.len - 1] == '\n' || h.out.p[h.out.len - 1] == ' '))
        buf_cut(&h.out, h.out.len - 1);
    return buf_take(&h.out);
}

/* ---- tidying ------------------------------------------------------------- */

/* In place: spaces at line ends removed, at most one blank line in a row,
 * leading and trailing whitespace trimmed. */
static void tidy_text(char *s) {
    size_t w = 0, newlines = 0;
    for (size_t r = 0; s[r]; r++) {
        char c = s[r];
        if (c == '\n') {
            while (w > 0 && (s[w - 1] == ' ' || s[w - 1] == '\t'))
                w--;
            if (w == 0 || ++newlines > 2)
                continue;
        } else if ((c == ' ' || c == '\t') && w == 0) {
            continue;
        } else if (c != ' ' && c != '\t') {
            newlines = 0;
        }
        s[w++] = c;
    }
    while (w > 0 && (s[w - 1] == ' ' || s[w - 1] == '\t' || s[w - 1] == '\n'))
        w--;
    s[w] = '\0';
}

/* In place: every run of whitespace becomes one space; trimmed. */
static void collapse_ws(char *s) {
    size_t w = 0;
    bool space = false;
    for (size_t r = 0; s[r]; r++) {
        char c = s[r];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            space = w > 0;
            continue;
        }
        if (space)
            s[w++] = ' ';
        space = false;
        s[w++] = c;
    }
    s[w] = '\0';
}

/* ---- GMime --------------------------------------------------------------- */

static pthread_once_t s_init_once = PTHREAD_ONCE_INIT;
/* GMime keeps process-wide caches (charset map, iconv cache) and promises
 * little about threads; parses run on libuv's pool, one at a time. */
static pthread_mutex_t s_gmime_lock = PTHREAD_MUTEX_INITIALIZER;

static void init_once(void) {
    g_mime_init();
}

void intake_mail_init(void) {
    pthread_once(&s_init_once, init_once);
}

typedef struct {
    const char *fatal; /* why the message cannot be read, or NULL */
} s_warn_t;

static void on_parser_warning(gint64 offset, GMimeParserWarning code, const gchar *item,
                              gpointer ud) {
    (void)item;
    s_warn_t *w = ud;
    if (w->fatal)
        return;
    switch (code) {
    case GMIME_WARN_TRUNCATED_MESSAGE:
        w->fatal = "truncated MIME message (a multipart ends without its closing boundary)";
        break;
    case GMIME_WARN_MALFORMED_MULTIPART:
        w->fatal = "malformed multipart (no parts found)";
        break;
    case GMIME_CRIT_MULTIPART_WITHOUT_BOUNDARY:
        w->fatal = "malformed multipart (no boundary parameter)";
        break;
    case GMIME_CRIT_NESTING_OVERFLOW:
        w->fatal = "MIME parts nested too deeply";
        break;
    case GMIME_CRIT_PART_WITHOUT_HEADERS_OR_CONTENT:
        w->fatal = "a MIME part has neither headers nor content";
        break;
    case GMIME_CRIT_INVALID_HEADER_NAME:
        if (offset <= 0)
            w->fatal = "not an e-mail message (no header at the start)";
        break;
    default:
        break;
    }
}

/* The decoded content of a leaf part (transfer encoding undone); the
 * caller frees it with g_byte_array_free(…, TRUE). */
static GByteArray *part_bytes(GMimeObject *o) {
    GMimeDataWrapper *w = g_mime_part_get_content(GMIME_PART(o));
    GMimeStream *mem = g_mime_stream_mem_new();
    if (w)
        g_mime_data_wrapper_write_to_stream(w, mem);
    GByteArray *ba = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
    g_mime_stream_mem_set_owner(GMIME_STREAM_MEM(mem), FALSE);
    g_object_unref(mem);
    return ba;
}

static bool is_attachment(GMimeObject *o) {
    GMimeContentDisposition *d = g_mime_object_get_content_disposition(o);
    return d && g_mime_content_disposition_is_attachment(d);
}

static bool is_text(GMimeObject *o, const char *subtype) {
    return GMIME_IS_TEXT_PART(o) &&
           g_mime_content_type_is_type(g_mime_object_get_content_type(o), "text", subtype);
}

static bool only_space(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isspace((unsigned char)s[i]))
            return false;
    return true;
}

/* Appends the text of a text/plain or text/html leaf; false (nothing
 * appended) when it has no words. */
static bool leaf_text(GMimeObject *o, s_buf_t *out, intake_mail_t *m) {
    bool html = is_text(o, "html");
    if (is_attachment(o) || !(html || is_text(o, "plain")))
        return false;
    GByteArray *ba = part_bytes(o);
    const char *charset = g_mime_object_get_content_type_parameter(o, "charset");
    size_t mark = out->len;
    bool lossy = false;
    if (!html) {
        decode_into(out, charset, (const char *)ba->data, ba->len, &lossy);
    } else {
        s_buf_t dec = {0};
        decode_into(&dec, charset, (const char *)ba->data, ba->len, &lossy);
        char *text = dec.oom ? NULL : intake_mail_html_to_text(dec.p ? dec.p : "", dec.len);
        if (text)
            buf_add(out, text, strlen(text));
        else
            out->oom = true;
        free(text);
        free(dec.p);
    }
    g_byte_array_free(ba, TRUE);
    if (out->oom || out->len == mark || only_space(out->p + mark, out->len - mark)) {
        buf_cut(out, mark);
        return false;
    }
    m->charset_lossy |= lossy;
    m->body_html |= html;
    return true;
}

/* The body: text/plain preferred over text/html in an alternative; the
 * inline text parts of a mixed (or any other) multipart in order. */
static bool body_of(GMimeObject *o, s_buf_t *out, intake_mail_t *m, int depth) {
    if (!o || depth > MAX_DEPTH)
        return false;
    if (!GMIME_IS_MULTIPART(o))
        return GMIME_IS_TEXT_PART(o) && leaf_text(o, out, m);
    GMimeMultipart *mp = GMIME_MULTIPART(o);
    int n = g_mime_multipart_get_count(mp);
    if (g_mime_content_type_is_type(g_mime_object_get_content_type(o), "multipart",
                                    "alternative")) {
        for (int i = 0; i < n; i++) {
            GMimeObject *c = g_mime_multipart_get_part(mp, i);
            if (is_text(c, "plain") && leaf_text(c, out, m))
                return true;
        }
        for (int i = 0; i < n; i++) {
            GMimeObject *c = g_mime_multipart_get_part(mp, i);
            if (!is_text(c, "plain") && body_of(c, out, m, depth + 1))
                return true;
        }
        return false;
    }
    bool found = false;
    for (int i = 0; i < n; i++) {
        GMimeObject *c = g_mime_multipart_get_part(mp, i);
        size_t mark = out->len;
        if (found)
            buf_add(out, "\n\n", 2);
        if (body_of(c, out, m, depth + 1))
            found = true;
        else
            buf_cut(out, mark);
    }
    return found;
}

static int sha256_hex(const void *data, size_t len, char hex[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
        return FB_ENOMEM;
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[64] = '\0';
    return 0;
}

static int add_photo(intake_mail_t *m, const intake_mail_limits_t *lim, const GByteArray *ba) {
    const char *type = intake_photo_sniff(ba->data, ba->len);
    if (!type)
        return 0;
    if (m->nphotos >= lim->max_photos || ba->len > lim->max_photo_bytes) {
        m->photos_skipped++;
        return 0;
    }
    char sha[65];
    if (sha256_hex(ba->data, ba->len, sha) != 0)
        return FB_ENOMEM;
    for (size_t i = 0; i < m->nphotos; i++)
        if (strcmp(m->photos[i].sha256, sha) == 0)
            return 0; /* the same picture attached twice */
    intake_mail_photo_t *n = realloc(m->photos, (m->nphotos + 1) * sizeof *n);
    if (!n)
        return FB_ENOMEM;
    m->photos = n;
    intake_mail_photo_t *ph = &m->photos[m->nphotos];
    ph->data = malloc(ba->len);
    if (!ph->data)
        return FB_ENOMEM;
    memcpy(ph->data, ba->data, ba->len);
    ph->len = ba->len;
    ph->content_type = type;
    memcpy(ph->sha256, sha, sizeof sha);
    m->nphotos++;
    return 0;
}

/* Pictures anywhere in the message, forwarded messages included. */
static int walk_photos(GMimeObject *o, intake_mail_t *m, const intake_mail_limits_t *lim,
                       int depth) {
    if (!o || depth > MAX_DEPTH)
        return 0;
    if (GMIME_IS_MULTIPART(o)) {
        GMimeMultipart *mp = GMIME_MULTIPART(o);
        int n = g_mime_multipart_get_count(mp);
        for (int i = 0; i < n; i++) {
            int rc = walk_photos(g_mime_multipart_get_part(mp, i), m, lim, depth + 1);
            if (rc)
                return rc;
        }
        return 0;
    }
    if (GMIME_IS_MESSAGE_PART(o)) {
        GMimeMessage *inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(o));
        return inner ? walk_photos(g_mime_message_get_mime_part(inner), m, lim, depth + 1) : 0;
    }
    if (!GMIME_IS_PART(o) || GMIME_IS_TEXT_PART(o))
        return 0;
    GByteArray *ba = part_bytes(o);
    int rc = ba->len ? add_photo(m, lim, ba) : 0;
    g_byte_array_free(ba, TRUE);
    return rc;
}

static const char *raw_header(GMimeObject *o, const char *name) {
    GMimeHeader *h = g_mime_header_list_get_header(g_mime_object_get_header_list(o), name);
    return h ? g_mime_header_get_raw_value(h) : NULL;
}

static InternetAddressMailbox *first_mailbox(InternetAddressList *list, int depth) {
    int n = list && depth < 4 ? internet_address_list_length(list) : 0;
    for (int i = 0; i < n; i++) {
        InternetAddress *a = internet_address_list_get_address(list, i);
        if (INTERNET_ADDRESS_IS_MAILBOX(a))
            return INTERNET_ADDRESS_MAILBOX(a);
        if (INTERNET_ADDRESS_IS_GROUP(a)) {
            InternetAddressMailbox *mb = first_mailbox(
                internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), depth + 1);
            if (mb)
                return mb;
        }
    }
    return NULL;
}

/* A clean, bounded copy of s (NULL stays NULL, "" becomes NULL). */
static char *clean_copy(const char *s, size_t max, bool *lossy) {
    if (!s || !*s)
        return NULL;
    s_buf_t b = {0};
    append_clean(&b, s, strlen(s), lossy);
    char *c = buf_take(&b);
    if (c) {
        collapse_ws(c);
        utf8_truncate(c, max);
    }
    return c;
}

static bool message_id_usable(const char *id) {
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > MAX_MESSAGE_ID)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] <= ' ' || (unsigned char)id[i] >= 0x7F)
            return false;
    return true;
}

/* End of the header block (the blank line), or len. */
static size_t header_end(const char *s, size_t len) {
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] == '\n' && s[i + 1] == '\n')
            return i;
        if (s[i] == '\n' && s[i + 1] == '\r' && i + 2 < len && s[i + 2] == '\n')
            return i;
    }
    return len;
}

static int fail_reason(char *reason, size_t reasonlen, const char *why) {
    snprintf(reason, reasonlen, "%s", why);
    return FB_EINVAL;
}

static int read_message(GMimeMessage *msg, const intake_mail_limits_t *lim, intake_mail_t *m,
                        char *reason, size_t reasonlen) {
    GMimeObject *mo = GMIME_OBJECT(msg);
    bool lossy = false;

    /* Answers from machines — out-of-office replies (RFC 3834) and bounces
     * (RFC 3464) — are nobody's petition, and counting them would skew the
     * statistics. Auto-Submitted: auto-generated is not refused: a city's web
     * form may well send residents' petitions that way. */
    const char *auto_sub = g_mime_object_get_header(mo, "Auto-Submitted");
    while (auto_sub && (*auto_sub == ' ' || *auto_sub == '\t'))
        auto_sub++;
    if (auto_sub && strncasecmp(auto_sub, "auto-replied", 12) == 0)
        return fail_reason(reason, reasonlen, "an automatic reply (Auto-Submitted: auto-replied)");
    GMimeObject *top = g_mime_message_get_mime_part(msg);
    if (top &&
        g_mime_content_type_is_type(g_mime_object_get_content_type(top), "multipart", "report"))
        return fail_reason(reason, reasonlen, "a delivery status report (multipart/report)");

    /* From, with its display name decoded by us (see the file comment). */
    char *from = decode_header(raw_header(mo, "From"), true, &lossy);
    if (!from)
        return FB_ENOMEM;
    InternetAddressList *list = *from ? internet_address_list_parse(NULL, from) : NULL;
    free(from);
    InternetAddressMailbox *mb = first_mailbox(list, 0);
    const char *addr = mb ? internet_address_mailbox_get_addr(mb) : NULL;
    if (!addr || !strchr(addr, '@') || strlen(addr) > MAX_ADDRESS_BYTES) {
        if (list)
            g_object_unref(list);
        return fail_reason(reason, reasonlen, "no sender address (From)");
    }
    bool ignored = false;
    m->from_address = clean_copy(addr, MAX_ADDRESS_BYTES, &ignored);
    m->from_name =
        clean_copy(internet_address_get_name(INTERNET_ADDRESS(mb)), MAX_NAME_BYTES, &lossy);
    g_object_unref(list);
    if (!m->from_address)
        return FB_ENOMEM;

    m->subject = decode_header(raw_header(mo, "Subject"), false, &lossy);
    if (!m->subject)
        return FB_ENOMEM;
    collapse_ws(m->subject);
    utf8_truncate(m->subject, MAX_SUBJECT_BYTES);

    const char *id = g_mime_message_get_message_id(msg);
    if (message_id_usable(id) && !(m->message_id = strdup(id)))
        return FB_ENOMEM;

    GDateTime *dt = g_mime_message_get_date(msg);
    if (dt) {
        int64_t s = g_date_time_to_unix(dt);
        if (s >= MIN_DATE_S && s <= fb_now_us() / 1000000 + 86400) {
            m->has_date = true;
            m->date_us = s * 1000000 + g_date_time_get_microsecond(dt);
        }
    }

    s_buf_t body = {0};
    body_of(g_mime_message_get_mime_part(msg), &body, m, 0);
    m->body = buf_take(&body);
    if (!m->body)
        return FB_ENOMEM;
    tidy_text(m->body);
    size_t room = lim->max_content_bytes > strlen(m->subject) + 2
                      ? lim->max_content_bytes - strlen(m->subject) - 2
                      : 0;
    m->content_truncated = utf8_truncate(m->body, room);
    m->charset_lossy |= lossy;
    if (!*m->subject && !*m->body)
        return fail_reason(reason, reasonlen, "neither subject nor body text");

    return walk_photos(g_mime_message_get_mime_part(msg), m, lim, 0);
}

/* How many lines look like MIME boundaries ("--" and something not a dash),
 * counting no further than limit + 1: GMime builds an object per part, and
 * a million flat parts cost gigabytes before any limit of ours could look
 * at the tree. */
static size_t boundary_lines(const char *raw, size_t len, size_t limit) {
    size_t n = 0;
    for (const char *p = raw, *end = raw + len; p < end && n <= limit;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (ll > 2 && p[0] == '-' && p[1] == '-' && strspn(p, "- \t\r") < ll)
            n++;
        p += ll + 1;
    }
    return n;
}

int intake_mail_parse(const void *raw, size_t len, const intake_mail_limits_t *limits,
                      intake_mail_t **out, char *reason, size_t reasonlen) {
    *out = NULL;
    snprintf(reason, reasonlen, "%s", "");
    if (len == 0)
        return fail_reason(reason, reasonlen, "empty file");
    if (memchr(raw, '\0', header_end(raw, len)))
        return fail_reason(reason, reasonlen, "binary data (NUL bytes) in the header");
    if (boundary_lines(raw, len, MAX_PARTS) > MAX_PARTS)
        return fail_reason(reason, reasonlen, "more than 1000 MIME parts");
    intake_mail_t *m = calloc(1, sizeof *m);
    if (!m)
        return FB_ENOMEM;
    m->raw_bytes = len;
    int rc = sha256_hex(raw, len, m->raw_sha256);
    if (rc)
        goto fail;

    intake_mail_init();
    pthread_mutex_lock(&s_gmime_lock);
    s_warn_t warn = {NULL};
    GMimeParserOptions *opts = g_mime_parser_options_new();
    g_mime_parser_options_set_warning_callback(opts, on_parser_warning, &warn);
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(raw, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *msg = g_mime_parser_construct_message(parser, opts);
    if (!msg)
        rc =
            fail_reason(reason, reasonlen,
                        warn.fatal ? warn.fatal : "not an e-mail message (MIME parser refused it)");
    else if (warn.fatal)
        rc = fail_reason(reason, reasonlen, warn.fatal);
    else
        rc = read_message(msg, limits, m, reason, reasonlen);
    if (msg)
        g_object_unref(msg);
    g_object_unref(parser);
    g_object_unref(stream);
    g_mime_parser_options_free(opts);
    pthread_mutex_unlock(&s_gmime_lock);
    if (rc)
        goto fail;

    if (m->message_id) {
        m->idem_key = strdup(m->message_id);
    } else if ((m->idem_key = malloc(sizeof "sha256:" + 64))) {
        snprintf(m->idem_key, sizeof "sha256:" + 64, "sha256:%s", m->raw_sha256);
    }
    if (!m->idem_key) {
        rc = FB_ENOMEM;
        goto fail;
    }
    *out = m;
    return 0;
fail:
    intake_mail_destroy(&m);
    return rc;
}

void intake_mail_destroy(intake_mail_t **mp) {
    intake_mail_t *m = *mp;
    if (!m)
        return;
    free(m->idem_key);
    free(m->message_id);
    free(m->from_name);
    free(m->from_address);
    free(m->subject);
    free(m->body);
    for (size_t i = 0; i < m->nphotos; i++)
        free(m->photos[i].data);
    free(m->photos);
    free(m);
    *mp = NULL;
}

/* ---- the petition -------------------------------------------------------- */

void intake_mail_raw_path(const char *sha256_hex_s, char *out, size_t outlen) {
    snprintf(out, outlen, "mail/%s.eml", sha256_hex_s);
}

static json_t *str_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

/* raw: what the resident sent, as far as it is not in the petition's own
 * columns — the sender's address is their proof for follow-up; the message
 * itself is kept byte for byte in data_dir/<raw_message.file>. */
static json_t *raw_json(const intake_mail_t *m) {
    json_t *photos = json_array();
    for (size_t i = 0; photos && i < m->nphotos; i++) {
        const intake_mail_photo_t *ph = &m->photos[i];
        if (json_array_append_new(photos,
                                  json_pack("{s:s,s:s,s:I}", "sha256", ph->sha256, "content_type",
                                            ph->content_type, "bytes", (json_int_t)ph->len)) != 0) {
            json_decref(photos);
            return NULL;
        }
    }
    char file[96], date[40];
    intake_mail_raw_path(m->raw_sha256, file, sizeof file);
    return json_pack(
        "{s:{s:o,s:s},s:s,s:o,s:o,s:b,s:s,s:b,s:o,s:I,s:{s:s,s:I,s:s}}", "from", "name",
        str_or_null(m->from_name), "address", m->from_address, "subject", m->subject, "message_id",
        str_or_null(m->message_id), "date",
        m->has_date ? json_string(fb_time_format(m->date_us, date, sizeof date)) : json_null(),
        "charset_lossy", m->charset_lossy, "body_format", m->body_html ? "html" : "plain",
        "content_truncated", m->content_truncated, "photos", photos, "photos_skipped",
        (json_int_t)m->photos_skipped, "raw_message", "sha256", m->raw_sha256, "bytes",
        (json_int_t)m->raw_bytes, "file", file);
}

int intake_mail_petition(const intake_mail_t *m, int64_t fallback_us, fb_petition_t **out) {
    *out = NULL;
    fb_petition_t *p = fb_petition_new();
    if (!p)
        return FB_ENOMEM;
    s_buf_t content = {0};
    buf_add(&content, m->subject, strlen(m->subject));
    if (*m->subject && *m->body)
        buf_add(&content, "\n\n", 2);
    buf_add(&content, m->body, strlen(m->body));
    p->content = buf_take(&content);
    int rc = FB_ENOMEM;
    if (!p->content)
        goto fail;
    if ((rc = fb_text_normalize(p->content, &p->content_norm)) != 0)
        goto fail;
    bool complaint = strstr(m->subject, "投诉") || strstr(m->subject, "投訴");
    p->channel = strdup("mailbox");
    p->idem_key = strdup(m->idem_key);
    p->received_at_us = m->has_date ? m->date_us : fallback_us;
    p->caller_name = fb_strdup0(m->from_name);
    p->urgency = strdup("normal");
    p->kind = strdup(complaint ? "complaint" : "help");
    p->raw = raw_json(m);
    rc = FB_ENOMEM;
    if (!p->channel || !p->idem_key || (m->from_name && !p->caller_name) || !p->urgency ||
        !p->kind || !p->raw)
        goto fail;
    *out = p;
    return 0;
fail:
    fb_petition_destroy(&p);
    return rc;
}
