/* fb_petition.c — canonical petition and its JSON codec. */
#include "fb_petition.h"
#include "fb_common.h"
#include "fb_time.h"

#include <stdlib.h>
#include <string.h>

static const char *const s_urgencies[] = {"normal", "urgent", "emergency"};
static const char *const s_kinds[] = {"consult", "help",       "complaint",
                                      "report",  "suggestion", "praise"};

static bool in_list(const char *s, const char *const *list, size_t n) {
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return true;
    return false;
}

bool fb_urgency_valid(const char *s) {
    return in_list(s, s_urgencies, FB_ARRAY_LEN(s_urgencies));
}

bool fb_kind_valid(const char *s) {
    return in_list(s, s_kinds, FB_ARRAY_LEN(s_kinds));
}

fb_petition_t *fb_petition_new(void) {
    return calloc(1, sizeof(fb_petition_t));
}

void fb_petition_destroy(fb_petition_t **pp) {
    fb_petition_t *p = *pp;
    if (!p)
        return;
    free(p->tracking_no);
    free(p->channel);
    free(p->idem_key);
    free(p->caller_name);
    free(p->caller_phone);
    free(p->content);
    free(p->content_norm);
    free(p->category);
    free(p->address);
    free(p->urgency);
    free(p->kind);
    free(p->grid_region);
    free(p->grid_worker);
    json_decref(p->raw);
    free(p);
    *pp = NULL;
}

static json_t *str_or_null(const char *s) {
    return s ? json_string(s) : json_null();
}

json_t *fb_petition_to_json(const fb_petition_t *p) {
    char rcv[40], spl[40];
    json_t *loc =
        p->has_location ? json_pack("{s:f,s:f}", "lat", p->lat, "lng", p->lng) : json_null();
    json_t *caller = (p->caller_name || p->caller_phone)
                         ? json_pack("{s:o,s:o}", "name", str_or_null(p->caller_name), "phone",
                                     str_or_null(p->caller_phone))
                         : json_null();
    json_t *j =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:s,s:s,s:o,s:o,s:o,s:s,s:s,s:b,s:O}", "tracking_no",
                  p->tracking_no, "channel", p->channel, "idem_key", p->idem_key, "received_at",
                  fb_time_format(p->received_at_us, rcv, sizeof rcv), "spooled_at",
                  fb_time_format(p->spooled_at_us, spl, sizeof spl), "caller", caller, "content",
                  p->content, "content_norm", p->content_norm, "category", str_or_null(p->category),
                  "address", str_or_null(p->address), "location", loc, "urgency", p->urgency,
                  "kind", p->kind, "callback", p->callback, "raw", p->raw ? p->raw : json_null());
    if (j && p->grid_region &&
        json_object_set_new(j, "grid",
                            json_pack("{s:s,s:s,s:b}", "region", p->grid_region, "worker",
                                      p->grid_worker ? p->grid_worker : "", "resolved_on_site",
                                      p->resolved_on_site)) != 0) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static int take_str(const json_t *j, const char *key, bool required, char **out) {
    const json_t *v = json_object_get(j, key);
    if (!v || json_is_null(v)) {
        *out = NULL;
        return required ? FB_EINVAL : 0;
    }
    if (!json_is_string(v))
        return FB_EINVAL;
    *out = strdup(json_string_value(v));
    return *out ? 0 : FB_ENOMEM;
}

static int take_time(const json_t *j, const char *key, int64_t *out) {
    const char *s = json_string_value(json_object_get(j, key));
    return s ? fb_time_parse(s, out) : FB_EINVAL;
}

int fb_petition_from_json(const json_t *j, fb_petition_t **out) {
    *out = NULL;
    if (!json_is_object(j))
        return FB_EINVAL;
    fb_petition_t *p = fb_petition_new();
    if (!p)
        return FB_ENOMEM;
    const json_t *caller = json_object_get(j, "caller");
    const json_t *loc = json_object_get(j, "location");
    int rc;
    if ((rc = take_str(j, "tracking_no", true, &p->tracking_no)) ||
        (rc = take_str(j, "channel", true, &p->channel)) ||
        (rc = take_str(j, "idem_key", true, &p->idem_key)) ||
        (rc = take_time(j, "received_at", &p->received_at_us)) ||
        (rc = take_time(j, "spooled_at", &p->spooled_at_us)) ||
        (rc = take_str(j, "content", true, &p->content)) ||
        (rc = take_str(j, "content_norm", true, &p->content_norm)) ||
        (rc = take_str(j, "category", false, &p->category)) ||
        (rc = take_str(j, "address", false, &p->address)) ||
        (rc = take_str(j, "urgency", true, &p->urgency)) ||
        (rc = take_str(j, "kind", true, &p->kind)))
        goto fail;
    if (json_is_object(caller) && ((rc = take_str(caller, "name", false, &p->caller_name)) ||
                                   (rc = take_str(caller, "phone", false, &p->caller_phone))))
        goto fail;
    if (json_is_object(loc)) {
        const json_t *lat = json_object_get(loc, "lat"), *lng = json_object_get(loc, "lng");
        if (!json_is_number(lat) || !json_is_number(lng)) {
            rc = FB_EINVAL;
            goto fail;
        }
        p->has_location = true;
        p->lat = json_number_value(lat);
        p->lng = json_number_value(lng);
    }
    p->callback = json_is_true(json_object_get(j, "callback"));
    const json_t *grid = json_object_get(j, "grid");
    if (json_is_object(grid)) {
        if ((rc = take_str(grid, "region", true, &p->grid_region)) ||
            (rc = take_str(grid, "worker", true, &p->grid_worker)))
            goto fail;
        p->resolved_on_site = json_is_true(json_object_get(grid, "resolved_on_site"));
    }
    json_t *raw = json_object_get(j, "raw");
    p->raw = raw ? json_incref(raw) : json_null();
    *out = p;
    return 0;
fail:
    fb_petition_destroy(&p);
    return rc;
}

char *fb_petition_dumps(const fb_petition_t *p) {
    json_t *j = fb_petition_to_json(p);
    if (!j)
        return NULL;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

int fb_petition_loads(const char *buf, size_t len, fb_petition_t **out) {
    json_t *j = json_loadb(buf, len, 0, NULL);
    if (!j) {
        *out = NULL;
        return FB_EINVAL;
    }
    int rc = fb_petition_from_json(j, out);
    json_decref(j);
    return rc;
}
