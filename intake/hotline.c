/* hotline.c — the 12345 hotline channel: operators' work orders as JSON.
 * Validation names the first wrong field; nothing is written for a refused
 * order. */
#include "adapter.h"
#include "fb_log.h"
#include "intake.h"
#include "fb_common.h"
#include "fb_geo.h"
#include "fb_text.h"
#include "fb_time.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CONTENT_BYTES 15000 /* ~5,000 Chinese characters */

int intake_hotline_parse(const char *body, size_t len, intake_category_known_cb known, void *ud,
                         fb_petition_t **out, fb_refusal_t *err) {
    *out = NULL;
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        if (json_error_code(&je) == json_error_invalid_utf8)
            return fb_refuse(err, 400, "invalid_utf8", NULL, "body is not valid UTF-8");
        return fb_refuse(err, 400, "malformed_json", NULL, "body is not valid JSON: %s (line %d)",
                         je.text, je.line);
    }
    fb_petition_t *p = NULL;
    int rc = FB_EINVAL;
    if (!json_is_object(j)) {
        fb_refuse(err, 400, "malformed_json", NULL, "body must be a JSON object");
        goto fail;
    }
    const char *order_no, *received, *content, *category, *address, *urgency, *kind;
    const char *name = NULL, *phone = NULL;
    if (intake_opt_string(j, "order_no", "order_no", 64, &order_no, err) ||
        intake_opt_string(j, "received_at", "received_at", 40, &received, err) ||
        intake_opt_string(j, "content", "content", MAX_CONTENT_BYTES, &content, err) ||
        intake_opt_string(j, "category", "category", 32, &category, err) ||
        intake_opt_string(j, "address", "address", 600, &address, err) ||
        intake_opt_string(j, "urgency", "urgency", 16, &urgency, err) ||
        intake_opt_string(j, "kind", "kind", 16, &kind, err))
        goto fail;
    if (!order_no || !intake_token_like(order_no, 64)) {
        fb_refuse(err, 422, order_no ? "invalid_field" : "missing_field", "order_no",
                  "order_no is required: 1-64 printable characters without spaces");
        goto fail;
    }
    int64_t received_us;
    if (!received || fb_time_parse(received, &received_us) != 0) {
        fb_refuse(err, 422, received ? "invalid_field" : "missing_field", "received_at",
                  "received_at is required as an RFC 3339 time, e.g. 2026-11-22T09:30:00+08:00");
        goto fail;
    }
    if (received_us < INT64_C(946684800000000)) { /* 2000-01-01 */
        fb_refuse(err, 422, "invalid_field", "received_at", "received_at lies before 2000");
        goto fail;
    }
    if (received_us > fb_now_us() + INT64_C(86400000000)) {
        fb_refuse(err, 422, "invalid_field", "received_at", "received_at lies in the future");
        goto fail;
    }
    const json_t *caller = json_object_get(j, "caller");
    if (caller && !json_is_null(caller)) {
        if (!json_is_object(caller)) {
            fb_refuse(err, 422, "invalid_field", "caller", "caller must be an object");
            goto fail;
        }
        if (intake_opt_string(caller, "name", "caller.name", 100, &name, err) ||
            intake_opt_string(caller, "phone", "caller.phone", 32, &phone, err))
            goto fail;
        if (phone && !intake_phone_like(phone)) {
            fb_refuse(err, 422, "invalid_field", "caller.phone",
                      "caller.phone must be a telephone number");
            goto fail;
        }
    }
    if (!content) {
        fb_refuse(err, 422, "missing_field", "content", "content is required");
        goto fail;
    }
    if (category && known && !known(ud, category)) {
        fb_refuse(err, 422, "unknown_category", "category", "category %s does not exist", category);
        goto fail;
    }
    if (urgency && !fb_urgency_valid(urgency)) {
        fb_refuse(err, 422, "invalid_field", "urgency",
                  "urgency must be normal, urgent or emergency");
        goto fail;
    }
    if (kind && !fb_kind_valid(kind)) {
        fb_refuse(err, 422, "invalid_field", "kind",
                  "kind must be consult, help, complaint, report, suggestion or praise");
        goto fail;
    }
    const json_t *cb = json_object_get(j, "callback");
    if (cb && !json_is_boolean(cb) && !json_is_null(cb)) {
        fb_refuse(err, 422, "invalid_field", "callback", "callback must be true or false");
        goto fail;
    }

    p = fb_petition_new();
    if (!p) {
        rc = FB_ENOMEM;
        fb_refuse(err, 503, "out_of_memory", NULL, "out of memory");
        goto fail;
    }
    const json_t *loc = json_object_get(j, "location");
    if (loc && !json_is_null(loc)) {
        const json_t *lat = json_object_get(loc, "lat"), *lng = json_object_get(loc, "lng");
        const char *crs = json_string_value(json_object_get(loc, "crs"));
        if (!json_is_object(loc) || !json_is_number(lat) || !json_is_number(lng)) {
            fb_refuse(err, 422, "invalid_field", "location",
                      "location must be {\"lat\": number, \"lng\": number, \"crs\": …}");
            goto fail;
        }
        p->lat = json_number_value(lat);
        p->lng = json_number_value(lng);
        if (!fb_geo_valid(p->lat, p->lng)) {
            fb_refuse(err, 422, "invalid_field",
                      (p->lat < -90 || p->lat > 90 || p->lat != p->lat) ? "location.lat"
                                                                        : "location.lng",
                      "location is not a point on Earth");
            goto fail;
        }
        if (crs && strcmp(crs, "gcj02") == 0) {
            fb_geo_gcj02_to_wgs84(p->lat, p->lng, &p->lat, &p->lng);
        } else if (crs && strcmp(crs, "wgs84") != 0) {
            fb_refuse(err, 422, "invalid_field", "location.crs",
                      "location.crs must be wgs84 or gcj02");
            goto fail;
        }
        p->has_location = true;
    }
    rc = fb_text_normalize(content, &p->content_norm);
    if (rc) {
        fb_refuse(err, 400, "invalid_utf8", "content", "content is not valid UTF-8");
        goto fail;
    }
    if (!*p->content_norm) {
        rc = FB_EINVAL;
        fb_refuse(err, 422, "missing_field", "content", "content is empty");
        goto fail;
    }
    p->channel = strdup("hotline");
    p->idem_key = strdup(order_no);
    p->received_at_us = received_us;
    p->caller_name = fb_strdup0(name);
    p->caller_phone = fb_strdup0(phone);
    p->content = strdup(content);
    p->category = fb_strdup0(category);
    p->address = fb_strdup0(address);
    p->urgency = strdup(urgency ? urgency : "normal");
    p->kind = strdup(kind ? kind : "help");
    p->callback = json_is_true(cb);
    p->raw = j;
    if (!p->channel || !p->idem_key || !p->content || !p->urgency || !p->kind) {
        p->raw = NULL;
        rc = FB_ENOMEM;
        fb_refuse(err, 503, "out_of_memory", NULL, "out of memory");
        goto fail;
    }
    *out = p;
    return 0;
fail:
    fb_petition_destroy(&p);
    json_decref(j);
    return rc ? rc : FB_EINVAL;
}

void intake_hotline_http(intake_t *in, fb_http_req_t *req) {
    static const char *const roles[] = {"hotline", "operator", "admin", NULL};
    if (strcmp(fb_http_method(req), "POST") != 0) {
        fb_http_error(req, 405, "method_not_allowed", NULL, "use POST");
        return;
    }
    if (!intake_authorize(in, req, roles))
        return;
    size_t len;
    const char *body = fb_http_body(req, &len);
    fb_petition_t *p;
    fb_refusal_t err;
    if (intake_hotline_parse(body, len, intake_directory_category_known, in->dir, &p, &err) != 0) {
        in->m.rejected++;
        fb_log(FB_LOG_INFO, "event=petition_refused channel=hotline code=%s field=%s", err.code,
               err.field ? err.field : "-");
        fb_http_error(req, err.status, err.code, err.field, "%s", err.message);
        return;
    }
    intake_submit_http(in, req, p);
}
