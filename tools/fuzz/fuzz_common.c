/* fuzz_common.c — the checks shared by the fuzz targets (fuzz_common.h). */
#include "fuzz_common.h"

#include "fb_common.h"
#include "fb_log.h"
#include "fb_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void fz_fail(const char *what, const char *file, int line) {
    fprintf(stderr, "fuzz check failed: %s (%s:%d)\n", what, file, line);
    abort();
}

void fz_init_common(void) {
    /* The city's zone, as the daemons run (config timezone, which the
     * dispatcher puts in TZ): times are formatted in it on the spool. */
    setenv("TZ", "Asia/Shanghai", 1);
    tzset();
    fb_log_init("fuzz", FB_LOG_ERROR);
    if (fb_text_init() != 0) {
        /* Without OpenCC's data traditional characters stay as they are: the
         * targets still run, they only cover a little less. */
        fprintf(stderr, "fuzz: OpenCC data missing, fb_text_normalize will not convert\n");
    }
}

void fz_check_text(const char *s, bool may_be_null, const char *what) {
    if (!s) {
        FZ_CHECK(may_be_null, what);
        return;
    }
    FZ_CHECK(fb_utf8_valid(s, strlen(s)), what);
}

void fz_check_petition(const fb_petition_t *p, const char *channel) {
    FZ_CHECK(p != NULL, "an accepted input gives a petition");
    FZ_CHECK(p->channel && strcmp(p->channel, channel) == 0, "petition.channel");
    FZ_CHECK(p->idem_key && *p->idem_key, "petition.idem_key is set");
    fz_check_text(p->idem_key, false, "petition.idem_key is UTF-8");
    fz_check_text(p->content, false, "petition.content is UTF-8");
    fz_check_text(p->content_norm, false, "petition.content_norm is UTF-8");
    fz_check_text(p->caller_name, true, "petition.caller_name is UTF-8");
    fz_check_text(p->caller_phone, true, "petition.caller_phone is UTF-8");
    fz_check_text(p->category, true, "petition.category is UTF-8");
    fz_check_text(p->address, true, "petition.address is UTF-8");
    FZ_CHECK(p->urgency && fb_urgency_valid(p->urgency), "petition.urgency is valid");
    FZ_CHECK(p->kind && fb_kind_valid(p->kind), "petition.kind is valid");
    if (p->has_location)
        FZ_CHECK(isfinite(p->lat) && isfinite(p->lng) && fabs(p->lat) <= 90 && fabs(p->lng) <= 180,
                 "petition.location lies on the globe");

    /* What intake_submit does next: a tracking number, then the spool's JSON;
     * the dispatcher reads it back. Both must work for every accepted input. */
    fb_petition_t copy = *p;
    copy.tracking_no = "20261122-1-000001";
    copy.spooled_at_us = p->received_at_us;
    char *once = fb_petition_dumps(&copy);
    FZ_CHECK(once != NULL, "an accepted petition serialises (fb_petition_dumps)");
    fb_petition_t *back = NULL;
    FZ_CHECK(fb_petition_loads(once, strlen(once), &back) == 0,
             "the dispatcher reads the spooled petition back (fb_petition_loads)");
    char *twice = fb_petition_dumps(back);
    FZ_CHECK(twice != NULL && strcmp(once, twice) == 0,
             "the petition survives the spool round trip unchanged");
    free(twice);
    fb_petition_destroy(&back);
    free(once);
}
