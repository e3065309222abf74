/* fuzz_mail.c — the MIME mail path: one e-mail's raw bytes (a Maildir file)
 * through intake_mail_parse (GMime, charset decoding, HTML reduction,
 * photos) and, when it reads as a petition, intake_mail_petition.
 *
 * Checks what mailbox_parse.h promises: every string valid UTF-8, the
 * limits kept, the photos' types and SHA-256 right, the idempotency key
 * the Message-ID or the raw bytes' digest; and the petition survives the
 * spool. The limits are mailbox.c's (9 photos, the default photo size,
 * 30,000 bytes of content). */
#include "fb_common.h"
#include "fuzz_common.h"
#include "mailbox_parse.h"
#include "fb_photo.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const intake_mail_limits_t s_limits = {9, 5242880, 30000};

static void sha256_hex(const void *data, size_t len, char out[65]) {
    unsigned char md[32];
    unsigned n = 0;
    FZ_CHECK(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) == 1 && n == 32, "EVP_Digest");
    for (size_t i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init_common();
    intake_mail_init();
    return 0;
}

static void check_mail(const intake_mail_t *m, const uint8_t *raw, size_t len) {
    char hex[65];
    sha256_hex(raw, len, hex);
    FZ_CHECK(strcmp(m->raw_sha256, hex) == 0, "raw_sha256 is the message's digest");
    FZ_CHECK(m->raw_bytes == len, "raw_bytes is the message's size");
    fz_check_text(m->idem_key, false, "idem_key is UTF-8");
    fz_check_text(m->message_id, true, "message_id is UTF-8");
    if (m->message_id) {
        FZ_CHECK(strcmp(m->idem_key, m->message_id) == 0, "idem_key is the Message-ID");
    } else {
        FZ_CHECK(strncmp(m->idem_key, "sha256:", 7) == 0 && strcmp(m->idem_key + 7, hex) == 0,
                 "without a Message-ID idem_key is sha256:<raw digest>");
    }
    fz_check_text(m->from_name, true, "from_name is UTF-8");
    fz_check_text(m->from_address, false, "from_address is set and UTF-8");
    fz_check_text(m->subject, false, "subject is set and UTF-8");
    fz_check_text(m->body, false, "body is set and UTF-8");
    FZ_CHECK(*m->subject || *m->body, "an accepted mail has some text");
    size_t sl = strlen(m->subject), bl = strlen(m->body);
    FZ_CHECK(bl == 0 || sl + 2 + bl <= s_limits.max_content_bytes,
             "subject and body keep max_content_bytes");
    FZ_CHECK(m->nphotos <= s_limits.max_photos, "at most max_photos photos");
    for (size_t i = 0; i < m->nphotos; i++) {
        const intake_mail_photo_t *ph = &m->photos[i];
        FZ_CHECK(ph->len <= s_limits.max_photo_bytes, "a photo keeps max_photo_bytes");
        const char *type = fb_photo_sniff(ph->data, ph->len);
        FZ_CHECK(type && ph->content_type && strcmp(type, ph->content_type) == 0,
                 "a photo's type is what its bytes say");
        sha256_hex(ph->data, ph->len, hex);
        FZ_CHECK(strcmp(ph->sha256, hex) == 0, "a photo's sha256 is its digest");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy: a read past the message is caught by ASan. */
    uint8_t *raw = malloc(size ? size : 1);
    if (!raw)
        return 0;
    if (size)
        memcpy(raw, data, size);
    intake_mail_t *m = NULL;
    char reason[200];
    int rc = intake_mail_parse(raw, size, &s_limits, &m, reason, sizeof reason);
    if (rc == 0) {
        FZ_CHECK(m != NULL, "an accepted mail is returned");
        check_mail(m, raw, size);
        fb_petition_t *p = NULL;
        FZ_CHECK(intake_mail_petition(m, 1763776800000000, &p) == 0,
                 "an accepted mail makes a petition");
        fz_check_petition(p, "mailbox");
        fb_petition_destroy(&p);
        intake_mail_destroy(&m);
        FZ_CHECK(m == NULL, "intake_mail_destroy clears the pointer");
    } else {
        FZ_CHECK(m == NULL, "a refused mail leaves *out NULL");
        FZ_CHECK(rc == FB_EINVAL, "refusal is FB_EINVAL (not out of memory)");
        FZ_CHECK(memchr(reason, '\0', sizeof reason) && *reason, "a refusal says why");
        fz_check_text(reason, false, "the reason is UTF-8");
    }
    free(raw);
    return 0;
}
