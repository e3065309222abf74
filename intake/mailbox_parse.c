/* mailbox_parse.c — one e-mail read into what a petition needs.
 *
 * GMime reads the MIME structure, the transfer encodings (base64,
 * quoted-printable), addresses, Date and Message-ID; the text found in it is
 * decoded by mailbox_text.c (charsets, encoded-words, HTML). */
#include "mailbox_parse.h"
#include "mailbox_text.h"
#include "fb_common.h"
#include "fb_text.h"
#include "fb_time.h"
#include "fb_token.h"
#include "fb_photo.h"

#include <ctype.h>
#include <errno.h>
#include <gmime/gmime.h>
#include <iconv.h>
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
static bool leaf_text(GMimeObject *o, mail_buf_t *out, intake_mail_t *m) {
    bool html = is_text(o, "html");
    if (is_attachment(o) || !(html || is_text(o, "plain")))
        return false;
    GByteArray *ba = part_bytes(o);
    const char *charset = g_mime_object_get_content_type_parameter(o, "charset");
    size_t mark = out->len;
    bool lossy = false;
    if (!html) {
        mail_decode_into(out, charset, (const char *)ba->data, ba->len, &lossy);
    } else {
        mail_buf_t dec = {0};
        mail_decode_into(&dec, charset, (const char *)ba->data, ba->len, &lossy);
        char *text = dec.oom ? NULL : intake_mail_html_to_text(dec.p ? dec.p : "", dec.len);
        if (text)
            mail_buf_add(out, text, strlen(text));
        else
            out->oom = true;
        free(text);
        free(dec.p);
    }
    g_byte_array_free(ba, TRUE);
    if (out->oom || out->len == mark || only_space(out->p + mark, out->len - mark)) {
        mail_buf_cut(out, mark);
        return false;
    }
    m->charset_lossy |= lossy;
    m->body_html |= html;
    return true;
}

/* The body: text/plain preferred over text/html in an alternative; the
 * inline text parts of a mixed (or any other) multipart in order. */
static bool body_of(GMimeObject *o, mail_buf_t *out, intake_mail_t *m, int depth) {
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
            mail_buf_add(out, "\n\n", 2);
        if (body_of(c, out, m, depth + 1))
            found = true;
        else
            mail_buf_cut(out, mark);
    }
    return found;
}

static int add_photo(intake_mail_t *m, const intake_mail_limits_t *lim, const GByteArray *ba) {
    const char *type = fb_photo_sniff(ba->data, ba->len);
    if (!type)
        return 0;
    if (m->nphotos >= lim->max_photos || ba->len > lim->max_photo_bytes) {
        m->photos_skipped++;
        return 0;
    }
    char sha[65];
    if (fb_sha256_hex(ba->data, ba->len, sha) != 0)
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
    mail_buf_t b = {0};
    mail_append_clean(&b, s, strlen(s), lossy);
    char *c = mail_buf_take(&b);
    if (c) {
        mail_collapse_ws(c);
        mail_utf8_truncate(c, max);
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
    char *from = mail_decode_header(raw_header(mo, "From"), true, &lossy);
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

    m->subject = mail_decode_header(raw_header(mo, "Subject"), false, &lossy);
    if (!m->subject)
        return FB_ENOMEM;
    mail_collapse_ws(m->subject);
    mail_utf8_truncate(m->subject, MAX_SUBJECT_BYTES);

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

    mail_buf_t body = {0};
    body_of(g_mime_message_get_mime_part(msg), &body, m, 0);
    m->body = mail_buf_take(&body);
    if (!m->body)
        return FB_ENOMEM;
    mail_tidy_text(m->body);
    size_t room = lim->max_content_bytes > strlen(m->subject) + 2
                      ? lim->max_content_bytes - strlen(m->subject) - 2
                      : 0;
    m->content_truncated = mail_utf8_truncate(m->body, room);
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
    int rc = fb_sha256_hex(raw, len, m->raw_sha256) != 0 ? FB_ENOMEM : 0;
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
    mail_buf_t content = {0};
    mail_buf_add(&content, m->subject, strlen(m->subject));
    if (*m->subject && *m->body)
        mail_buf_add(&content, "\n\n", 2);
    mail_buf_add(&content, m->body, strlen(m->body));
    p->content = mail_buf_take(&content);
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
