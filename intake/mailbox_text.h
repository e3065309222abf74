/* mailbox_text.h — the text of a mail (mailbox_text.c): a growable string,
 * charset decoding with iconv (lossy conversions reported), RFC 2047
 * encoded-words in headers, and HTML reduced to text. mailbox_parse.c
 * walks the MIME tree with GMime and uses these on what it finds. */
#ifndef INTAKE_MAILBOX_TEXT_H
#define INTAKE_MAILBOX_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/* A growable string; oom once an allocation failed. */
typedef struct {
    char *p;
    size_t len, cap;
    bool oom;
} mail_buf_t;

/* Appends s as clean UTF-8: invalid bytes become U+FFFD (*lossy), CR LF and
 * lone CR become LF, NUL and other control characters but tab and LF go. */
void mail_append_clean(mail_buf_t *b, const char *s, size_t n, bool *lossy);
/* The growable string: append, cut back to len, and take its text (the
 * caller's; NULL when out of memory). */
void mail_buf_add(mail_buf_t *b, const void *s, size_t n);
void mail_buf_cut(mail_buf_t *b, size_t len);
char *mail_buf_take(mail_buf_t *b);
/* In place: every run of whitespace becomes one space; trimmed. */
void mail_collapse_ws(char *s);
/* A raw header value with its RFC 2047 encoded-words decoded, as UTF-8 (the
 * caller's); phrase: an address's display name. */
char *mail_decode_header(const char *raw, bool phrase, bool *lossy);
/* Appends in[0..n) in charset, converted to UTF-8 (GB2312/GBK/GB18030,
 * Big5, UTF-8 and what iconv knows); *lossy when characters were lost. */
void mail_decode_into(mail_buf_t *b, const char *charset, const char *in, size_t n, bool *lossy);
/* In place: spaces at line ends removed, at most one blank line in a row,
 * leading and trailing whitespace trimmed. */
void mail_tidy_text(char *s);
/* Cuts s to at most max bytes on a character boundary; true when it cut. */
bool mail_utf8_truncate(char *s, size_t max);

#endif
