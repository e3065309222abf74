/* followup.c — the residents' follow-up codes at intake: the one function
 * every channel uses to hand a resident their code, and the limit on wrong
 * codes (per tracking number and per client address, with a wait that
 * doubles with each failure beyond the free ones: 429 with Retry-After).
 *
 * The limits live in this intake's memory: a restart forgets them, and each
 * intake behind a load balancer counts its own. With codes of 50 bits that
 * is still far out of reach of guessing. */
#include "fb_common.h"
#include "fb_log.h"
#include "fb_time.h"
#include "intake.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Entries idle this long are forgotten (when the table is swept). */
#define IDLE_US    (INT64_C(86400) * 1000000)
#define SWEEP_SIZE 100000

typedef struct {
    unsigned failures;
    int64_t until_us; /* no proof is checked before this */
    int64_t last_us;
} s_fail_t;

int intake_followup_open(intake_t *in) {
    char path[1024];
    bool dflt = !in->cfg.intake_follow_up_key_file || !*in->cfg.intake_follow_up_key_file;
    if (dflt)
        fb_config_path(&in->cfg, "follow_up.key", path, sizeof path);
    else
        snprintf(path, sizeof path, "%s", in->cfg.intake_follow_up_key_file);
    int rc = fb_followup_key_load(path, dflt, &in->follow_up_key);
    if (rc != 0) {
        fb_log(FB_LOG_ERROR, "event=follow_up_key_failed path=%s error=%s", path,
               rc == FB_EINVAL ? "\"not 64 hex digits\"" : "\"cannot read\"");
        return rc;
    }
    in->proof_failures = fb_map_new();
    return in->proof_failures ? 0 : FB_ENOMEM;
}

void intake_followup_free(intake_t *in) {
    fb_map_destroy(&in->proof_failures, free);
}

void intake_follow_up_code(const intake_t *in, const char *tracking_no,
                           char out[FB_FOLLOWUP_CODE_LEN + 1]) {
    fb_followup_code(&in->follow_up_key, tracking_no, out);
}

/* The client's address is personal data: logs carry a hash of it. */
static void client_hash(fb_http_req_t *req, char out[17]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    const char *peer = fb_http_peer(req);
    if (!peer)
        peer = "";
    EVP_Digest(peer, strlen(peer), md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 8; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int64_t wait_left_us(intake_t *in, const char *key, int64_t now) {
    s_fail_t *f = fb_map_get(in->proof_failures, key);
    return f && f->until_us > now ? f->until_us - now : 0;
}

static void retry_after(fb_http_req_t *req, int64_t wait_us) {
    long s = (long)((wait_us + 999999) / 1000000);
    char v[24];
    snprintf(v, sizeof v, "%ld", s < 1 ? 1 : s);
    fb_http_error(req, 429, "too_many_proofs", "proof",
                  "too many wrong follow-up codes: try again in %s s", v);
    fb_http_add_header(req, "Retry-After", v);
}

bool intake_proof_allowed(intake_t *in, fb_http_req_t *req, const char *tracking_no) {
    char key[300];
    int64_t now = fb_now_us(), w1, w2;
    snprintf(key, sizeof key, "t:%s", tracking_no);
    w1 = wait_left_us(in, key, now);
    snprintf(key, sizeof key, "c:%s", fb_http_peer(req) ? fb_http_peer(req) : "");
    w2 = wait_left_us(in, key, now);
    if (!w1 && !w2)
        return true;
    in->m.proof_limited++;
    retry_after(req, w1 > w2 ? w1 : w2);
    return false;
}

static void sweep(intake_t *in, int64_t now) {
    (void)now;
    /* The table only grows by wrong codes; beyond SWEEP_SIZE it starts
     * afresh rather than holding every address of a long attack. */
    fb_map_destroy(&in->proof_failures, free);
    in->proof_failures = fb_map_new();
}

static unsigned note_failure(intake_t *in, const char *key, int free_failures, int64_t now) {
    if (!in->proof_failures)
        return 0;
    s_fail_t *f = fb_map_get(in->proof_failures, key);
    if (f && now - f->last_us > IDLE_US) {
        f->failures = 0;
        f->until_us = 0;
    }
    if (!f) {
        if (fb_map_size(in->proof_failures) >= SWEEP_SIZE)
            sweep(in, now);
        f = calloc(1, sizeof *f);
        if (!f || !in->proof_failures || fb_map_put(in->proof_failures, key, f, NULL) != 0) {
            free(f);
            return 0;
        }
    }
    f->failures++;
    f->last_us = now;
    if (f->failures >= (unsigned)free_failures) {
        unsigned over = f->failures - (unsigned)free_failures;
        int64_t wait_s = over >= 20 ? in->cfg.intake_proof_max_wait_s : (INT64_C(1) << over);
        if (wait_s > in->cfg.intake_proof_max_wait_s)
            wait_s = in->cfg.intake_proof_max_wait_s;
        f->until_us = now + wait_s * 1000000;
    }
    return f->failures;
}

bool intake_proof_check(intake_t *in, fb_http_req_t *req, const char *tracking_no,
                        const char *proof) {
    if (!proof || !*proof)
        return false;
    if (fb_followup_check(&in->follow_up_key, tracking_no, proof))
        return true;
    char key[300], who[17];
    int64_t now = fb_now_us();
    snprintf(key, sizeof key, "t:%s", tracking_no);
    unsigned nt = note_failure(in, key, in->cfg.intake_proof_free_failures, now);
    snprintf(key, sizeof key, "c:%s", fb_http_peer(req) ? fb_http_peer(req) : "");
    unsigned nc = note_failure(in, key, in->cfg.intake_proof_client_free_failures, now);
    in->m.proof_failures++;
    client_hash(req, who);
    fb_log(FB_LOG_WARN,
           "event=proof_failed tracking_no=%s client_sha256=%s failures_tracking_no=%u "
           "failures_client=%u",
           tracking_no, who, nt, nc);
    return false;
}
