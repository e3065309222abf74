/* mailbox_parse.h — the pure half of the mailbox channel: one e-mail (the raw
 * bytes of a Maildir file) read with GMime into what a petition needs, and
 * the petition built from it. No files are touched here; mailbox.c stores the
 * photos and the raw message and moves the Maildir files.
 *
 * Text is decoded by this module, not by GMime's own charset filter, so that
 * a lossy decode can be seen and flagged: declared charsets GB2312/GBK/GB18030
 * are read as GB18030 (their superset: mail labelled gb2312 routinely holds
 * GBK characters), every Big5 label as Big5-HKSCS, others through iconv;
 * bytes that do not decode become U+FFFD and set charset_lossy, and so does a
 * charset iconv does not know or an undeclared 8-bit text that is not UTF-8
 * (read as GB18030, the likeliest guess for a Chinese city's mail). */
#ifndef INTAKE_MAILBOX_PARSE_H
#define INTAKE_MAILBOX_PARSE_H

#include "fb_petition.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A picture found among the message's parts: JPEG or PNG by its magic bytes
 * (the declared type and file name are not trusted). */
typedef struct intake_mail_photo {
    unsigned char *data; /* decoded bytes, owned */
    size_t len;
    const char *content_type; /* "image/jpeg" | "image/png", static */
    char sha256[65];          /* lower-case hex */
} intake_mail_photo_t;

/* What the parser read. Every string is owned, valid UTF-8 without NULs. */
typedef struct intake_mail {
    char *idem_key;   /* message_id, or "sha256:" + raw_sha256 */
    char *message_id; /* without <>; NULL when absent or unusable as a key */
    char raw_sha256[65];
    size_t raw_bytes;
    char *from_name;    /* display name, NULL when none */
    char *from_address; /* never NULL */
    char *subject;      /* "" when none */
    char *body;         /* the text; "" when none */
    bool body_html;     /* the body was reduced from text/html */
    bool charset_lossy; /* some text did not decode faithfully */
    bool content_truncated;
    bool has_date; /* date_us is the Date header's (plausible) time */
    int64_t date_us;
    intake_mail_photo_t *photos;
    size_t nphotos;
    size_t photos_skipped; /* beyond max_photos or max_photo_bytes */
} intake_mail_t;

typedef struct intake_mail_limits {
    size_t max_photos;
    size_t max_photo_bytes;
    size_t max_content_bytes; /* subject + body; the rest is cut (content_truncated) */
} intake_mail_limits_t;

/* Initialises GMime once per process (thread-safe). */
void intake_mail_init(void);

/* Reads one message. Returns 0 with *out the caller's (intake_mail_destroy),
 * FB_EINVAL when the message cannot be read as a petition — reason then
 * says why in a short sentence (no quotes) — or FB_ENOMEM. */
int intake_mail_parse(const void *raw, size_t len, const intake_mail_limits_t *limits,
                      intake_mail_t **out, char *reason, size_t reasonlen);
void intake_mail_destroy(intake_mail_t **m);

/* Builds the mailbox petition of m: idem_key, received_at from the Date
 * header or else fallback_us (the file's mtime), caller_name the sender's
 * display name, content subject + blank line + body, content_norm, kind
 * complaint when the subject says 投诉, raw the JSON described in mailbox.c.
 * Calls fb_text_normalize: run it on the loop thread. *out is the caller's. */
int intake_mail_petition(const intake_mail_t *m, int64_t fallback_us, fb_petition_t **out);

/* Where mailbox.c keeps the raw message, relative to data_dir:
 * "mail/<sha256>.eml". out needs 80 bytes. */
void intake_mail_raw_path(const char *sha256_hex, char *out, size_t outlen);

/* Building blocks, public for the unit tests. Each returns a new UTF-8
 * string the caller frees (NULL only when out of memory) and sets *lossy
 * (when not NULL) if anything did not decode faithfully. */

/* Decodes n bytes of text in charset (NULL or "": undeclared). */
char *intake_mail_decode_text(const char *charset, const char *in, size_t n, bool *lossy);
/* Decodes a raw (possibly folded) header value: RFC 2047 encoded-words,
 * adjacent words of one charset joined before decoding (a character split
 * between two words survives), 8-bit bytes as undeclared text. */
char *intake_mail_decode_header(const char *raw, bool *lossy);
/* Reduces HTML to text: no tags, comments, head, script or style; block
 * elements end lines; character references decoded; whitespace collapsed. */
char *intake_mail_html_to_text(const char *html, size_t len);

#endif
