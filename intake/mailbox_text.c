/* mailbox_text.c — the text of a mail (mailbox_text.h). The text itself —
 * bodies and the encoded-words of Subject and From — is decoded here, with
 * iconv, because GMime's own decoders neither report a lossy conversion
 * (invalid bytes silently shift the rest of a GBK text) nor know the Chinese
 * charset labels mail really carries (an unknown label is read as Latin-1).
 * HTML bodies are reduced to text by a small scanner: GMime has no
 * HTML-to-text, and a petition needs words, not layout. */
#include "mailbox_text.h"
#include "fb_common.h"
#include "mailbox_parse.h"

#include <ctype.h>
#include <errno.h>
#include <gmime/gmime.h>
#include <iconv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- a growable string ------------------------------------------------- */

void mail_buf_add(mail_buf_t *b, const void *s, size_t n) {
    if (!b->oom && n && fb_bytes_append(&b->p, &b->len, &b->cap, s, n) != 0)
        b->oom = true;
}

static void buf_addc(mail_buf_t *b, char c) {
    mail_buf_add(b, &c, 1);
}

static void buf_addcp(mail_buf_t *b, uint32_t cp) {
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
    mail_buf_add(b, u, n);
}

/* Drops what follows len (the buffer keeps its memory). */
void mail_buf_cut(mail_buf_t *b, size_t len) {
    if (b->p && len < b->len) {
        b->len = len;
        b->p[len] = '\0';
    }
}

/* Hands the string over to the caller ("" when nothing was added), or NULL
 * when memory ran out; b is empty afterwards. */
char *mail_buf_take(mail_buf_t *b) {
    char *p = b->oom ? NULL : b->p ? b->p : strdup("");
    if (b->oom)
        free(b->p);
    *b = (mail_buf_t){0};
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
void mail_append_clean(mail_buf_t *b, const char *s, size_t n, bool *lossy) {
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
        mail_buf_add(b, s + i, k);
        i += k;
    }
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. Returns
 * true when something was cut. */
bool mail_utf8_truncate(char *s, size_t max) {
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
static bool iconv_append(mail_buf_t *b, const char *name, const char *in, size_t n, bool *lossy) {
    iconv_t cd = iconv_open("UTF-8", name);
    if (cd == (iconv_t)-1)
        return false;
    mail_buf_t tmp = {0};
    char chunk[4096];
    char *ip = (char *)in;
    size_t il = n;
    while (il > 0) {
        char *op = chunk;
        size_t ol = sizeof chunk;
        size_t r = iconv(cd, &ip, &il, &op, &ol);
        int err = errno;
        mail_buf_add(&tmp, chunk, sizeof chunk - ol);
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
    mail_buf_add(&tmp, chunk, sizeof chunk - ol);
    iconv_close(cd);
    if (tmp.oom)
        b->oom = true;
    else if (tmp.len)
        mail_append_clean(b, tmp.p, tmp.len, lossy);
    free(tmp.p);
    return true;
}

void mail_decode_into(mail_buf_t *b, const char *charset, const char *in, size_t n, bool *lossy) {
    char name[64];
    s_cs_kind_t kind = classify_charset(charset, name, sizeof name);
    if (kind == CS_UTF8) {
        mail_append_clean(b, in, n, lossy);
        return;
    }
    if (kind == CS_ICONV && iconv_append(b, name, in, n, lossy))
        return;
    if (kind != CS_UNDECLARED)
        *lossy = true; /* a label nobody can read: whatever we make of it is a guess */
    if (utf8_ok(in, n)) {
        mail_append_clean(b, in, n, lossy);
        return;
    }
    /* 8-bit text of unknown charset: in a Chinese city's mail, GB18030 is
     * the likeliest, and still a guess. */
    *lossy = true;
    if (!iconv_append(b, "GB18030", in, n, lossy))
        mail_append_clean(b, in, n, lossy);
}

char *intake_mail_decode_text(const char *charset, const char *in, size_t n, bool *lossy) {
    bool l = false;
    mail_buf_t b = {0};
    intake_mail_init();
    mail_decode_into(&b, charset, in, n, &l);
    if (lossy)
        *lossy = l;
    return mail_buf_take(&b);
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
static void b64_decode(const char *s, size_t n, mail_buf_t *out) {
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

static void q_decode(const char *s, size_t n, mail_buf_t *out) {
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
static size_t parse_word(const char *p, char *cs, size_t cslen, mail_buf_t *bytes) {
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
static void emit_decoded(mail_buf_t *out, const char *s, size_t n, bool phrase, bool in_quotes) {
    if (!phrase) {
        mail_buf_add(out, s, n);
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

static void flush_word(mail_buf_t *out, mail_buf_t *pend, const char *cs, bool phrase,
                       bool in_quotes, bool *lossy) {
    mail_buf_t dec = {0};
    mail_decode_into(&dec, cs, pend->p ? pend->p : "", pend->len, lossy);
    if (dec.oom)
        out->oom = true;
    else
        emit_decoded(out, dec.p ? dec.p : "", dec.len, phrase, in_quotes);
    free(dec.p);
    mail_buf_cut(pend, 0);
}

char *mail_decode_header(const char *raw, bool phrase, bool *lossy) {
    mail_buf_t out = {0}, pend = {0}, ws = {0};
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
        mail_buf_t word = {0};
        size_t used = parse_word(p, cs, sizeof cs, &word);
        if (used) {
            if (have_pend && strcasecmp(cs, pend_cs) != 0) {
                flush_word(&out, &pend, pend_cs, phrase, in_quotes, lossy);
            } else if (!have_pend) {
                mail_buf_add(&out, ws.p, ws.len);
            }
            /* Whitespace between two encoded-words is not text (RFC 2047
             * 6.2); words of one charset are joined as bytes first, since
             * mailers split multi-byte characters between words. */
            mail_buf_cut(&ws, 0);
            snprintf(pend_cs, sizeof pend_cs, "%s", cs);
            have_pend = true;
            mail_buf_add(&pend, word.p, word.len);
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
        mail_buf_add(&out, ws.p, ws.len);
        mail_buf_cut(&ws, 0);
        const char *s = p;
        do {
            if (*p == '\\' && p[1] && phrase)
                p++;
            else if (*p == '"' && phrase)
                in_quotes = !in_quotes;
            p++;
        } while (*p && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' &&
                 !(p[0] == '=' && p[1] == '?'));
        mail_decode_into(&out, NULL, s, (size_t)(p - s), lossy);
    }
    if (have_pend)
        flush_word(&out, &pend, pend_cs, phrase, in_quotes, lossy);
    mail_buf_add(&out, ws.p, ws.len);
    if (pend.oom || ws.oom)
        out.oom = true;
    free(pend.p);
    free(ws.p);
    return mail_buf_take(&out);
}

char *intake_mail_decode_header(const char *raw, bool *lossy) {
    bool l = false;
    intake_mail_init();
    char *s = mail_decode_header(raw, false, &l);
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
    mail_buf_t out;
    bool space; /* whitespace seen since the last text */
} s_html_t;

static void html_text(s_html_t *h, const char *s, size_t n) {
    if (h->space && h->out.len && h->out.p[h->out.len - 1] != '\n')
        buf_addc(&h->out, ' ');
    h->space = false;
    mail_buf_add(&h->out, s, n);
}

/* Ends the line: a block element only when the line has text, <br> always
 * (two in a row make a blank line, more do not). */
static void html_newline(s_html_t *h, bool always) {
    while (h->out.len && h->out.p[h->out.len - 1] == ' ')
        mail_buf_cut(&h->out, h->out.len - 1);
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
                    mail_buf_t one = {0};
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
        mail_buf_cut(&h.out, h.out.len - 1);
    return mail_buf_take(&h.out);
}

/* ---- tidying ------------------------------------------------------------- */

/* In place: spaces at line ends removed, at most one blank line in a row,
 * leading and trailing whitespace trimmed. */
void mail_tidy_text(char *s) {
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
void mail_collapse_ws(char *s) {
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
