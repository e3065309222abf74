/* miniapp.c — the WeChat mini-program channel: a resident's report with up to
 * nine photos, as multipart/form-data (POST /api/v1/miniapp/reports).
 *
 * The whole request is read and validated before anything is written: a
 * refused report leaves no photo file and no spool record behind. Photos are
 * recognised by their bytes, never by the type the client declared, and are
 * stored content-addressed (photo.c) before the petition that lists them is
 * spooled, so an acknowledged petition never names a photo that is not on
 * disk. Coordinates from the report are GCJ-02 (what wx.getLocation gives)
 * and are converted to WGS-84 first; without them, the GPS position in a
 * photo's EXIF (WGS-84 already) is used.
 *
 * Grid workers (网格员) report what they find on patrol the same way
 * (POST /api/v1/grid/reports, tokens of role grid bound to one grid or
 * community): no openid — the token says who — but a place is required and
 * must lie in the worker's own area (403 otherwise, nothing written), and
 * "resolved_on_site": true with at least one photo (taken after the fix)
 * makes the dispatcher close the case at once in the worker's name. */
#include "adapter.h"
#include "fb_common.h"
#include "fb_geo.h"
#include "fb_log.h"
#include "fb_text.h"
#include "fb_token.h"
#include "fb_upload.h"
#include "intake.h"
#include "fb_photo.h"

#include <ctype.h>
#include <libexif/exif-data.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_PHOTOS        FB_UPLOAD_MAX_PHOTOS
#define MAX_REPORT_BYTES  65536
#define MAX_CONTENT_BYTES 15000 /* ~5,000 Chinese characters, as the hotline */
#define MAX_KEY_BYTES     128
#define MAX_OPENID_BYTES  64

/* 1..max characters, each printable ASCII (graph_only: no spaces either). */
static bool printable(const char *s, size_t max, bool graph_only) {
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (graph_only ? !isgraph(c) : !isprint(c))
            return false;
    }
    return true;
}

/* ---- EXIF GPS ----------------------------------------------------------- */

/* Degrees from an EXIF GPS coordinate: three rationals (deg, min, sec) and
 * a reference letter (N/S, E/W). */
static bool exif_coord(ExifData *ed, ExifTag tag, ExifTag ref_tag, char neg_ref, double *out) {
    ExifEntry *e = exif_content_get_entry(ed->ifd[EXIF_IFD_GPS], tag);
    ExifEntry *r = exif_content_get_entry(ed->ifd[EXIF_IFD_GPS], ref_tag);
    if (!e || !r || e->format != EXIF_FORMAT_RATIONAL || e->components < 3 || !e->data ||
        e->size < 24 || !r->data || r->size < 1)
        return false;
    ExifByteOrder bo = exif_data_get_byte_order(ed);
    double v = 0, scale = 1;
    for (size_t i = 0; i < 3; i++) {
        ExifRational q = exif_get_rational(e->data + 8 * i, bo);
        if (q.denominator == 0)
            return false;
        v += (double)q.numerator / q.denominator / scale;
        scale *= 60;
    }
    char ref = (char)toupper((unsigned char)r->data[0]);
    *out = ref == neg_ref ? -v : v;
    return true;
}

static bool exif_gps(const unsigned char *buf, size_t len, double *lat, double *lng) {
    if (len > UINT32_MAX)
        return false;
    ExifData *ed = exif_data_new_from_data(buf, (unsigned)len);
    if (!ed)
        return false;
    bool ok = exif_coord(ed, EXIF_TAG_GPS_LATITUDE, EXIF_TAG_GPS_LATITUDE_REF, 'S', lat) &&
              exif_coord(ed, EXIF_TAG_GPS_LONGITUDE, EXIF_TAG_GPS_LONGITUDE_REF, 'W', lng);
    exif_data_unref(ed);
    return ok;
}

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* PNG keeps EXIF in an eXIf chunk (bare TIFF data); libexif reads it when
 * it carries the "Exif\0\0" header of a JPEG APP1 segment. */
static bool png_gps(const unsigned char *buf, size_t len, double *lat, double *lng) {
    size_t pos = 8;
    while (pos + 12 <= len) {
        uint32_t n = be32(buf + pos);
        const unsigned char *type = buf + pos + 4;
        if (n > len - pos - 12)
            return false;
        if (memcmp(type, "eXIf", 4) == 0) {
            unsigned char *b = malloc((size_t)n + 6);
            if (!b)
                return false;
            static const unsigned char header[6] = {'E', 'x', 'i', 'f', 0, 0};
            memcpy(b, header, sizeof header);
            memcpy(b + 6, buf + pos + 8, n);
            bool ok = exif_gps(b, (size_t)n + 6, lat, lng);
            free(b);
            return ok;
        }
        if (memcmp(type, "IDAT", 4) == 0 || memcmp(type, "IEND", 4) == 0)
            return false; /* eXIf must come before the image data */
        pos += 12 + (size_t)n;
    }
    return false;
}

/* ---- the report ---------------------------------------------------------- */

/* Reads the report's location into WGS-84 (*has false when there is none). */
static int report_location(intake_t *in, const json_t *j, bool *has, double *lat, double *lng,
                           fb_refusal_t *err) {
    const json_t *loc = json_object_get(j, "location");
    *has = false;
    if (!loc || json_is_null(loc))
        return 0;
    if (!json_is_object(loc))
        return fb_refuse(err, 422, "invalid_field", "location",
                         "location must be {\"lat\": number, \"lng\": number} in GCJ-02");
    const json_t *jlat = json_object_get(loc, "lat"), *jlng = json_object_get(loc, "lng");
    const char *crs;
    if (intake_opt_string(loc, "crs", "location.crs", 16, &crs, err))
        return FB_EINVAL;
    if (!json_is_number(jlat))
        return fb_refuse(err, 422, jlat ? "invalid_field" : "missing_field", "location.lat",
                         "location.lat must be a number (degrees north)");
    if (!json_is_number(jlng))
        return fb_refuse(err, 422, jlng ? "invalid_field" : "missing_field", "location.lng",
                         "location.lng must be a number (degrees east)");
    double y = json_number_value(jlat), x = json_number_value(jlng);
    if (!(y >= -90 && y <= 90))
        return fb_refuse(err, 422, "invalid_field", "location.lat",
                         "location.lat must lie between -90 and 90");
    if (!(x >= -180 && x <= 180) || !fb_geo_valid(y, x))
        return fb_refuse(err, 422, "invalid_field", "location.lng",
                         "location.lng must lie between -180 and 180");
    /* WeChat's wx.getLocation answers GCJ-02 unless asked for wgs84; a client
     * that asked may say so. */
    if (!crs || strcmp(crs, "gcj02") == 0)
        fb_geo_gcj02_to_wgs84(y, x, &y, &x);
    else if (strcmp(crs, "wgs84") != 0)
        return fb_refuse(err, 422, "invalid_field", "location.crs",
                         "location.crs must be gcj02 (the default) or wgs84");
    if (!intake_directory_in_city(in->dir, y, x))
        return fb_refuse(err, 422, "outside_city", "location",
                         "location (%.6f, %.6f WGS-84) lies outside the city this hotline serves",
                         y, x);
    *lat = y;
    *lng = x;
    *has = true;
    return 0;
}

/* A grid worker's report: where it must lie, and whether it was fixed on
 * the spot (grid_fields). */
static int grid_fields(intake_t *in, const intake_token_info_t *grid, const json_t *j,
                       const fb_upload_t *f, fb_petition_t *p, fb_refusal_t *err) {
    const json_t *on_site = json_object_get(j, "resolved_on_site");
    if (on_site && !json_is_boolean(on_site))
        return fb_refuse(err, 422, "invalid_field", "resolved_on_site",
                         "resolved_on_site must be true or false");
    p->resolved_on_site = json_is_true(on_site);
    if (p->resolved_on_site && f->nphotos == 0)
        return fb_refuse(err, 422, "missing_field", "photo",
                         "a report resolved on site needs at least one photo taken after "
                         "the fix");
    if (!p->has_location)
        return fb_refuse(err, 422, "missing_field", "location",
                         "a grid report needs its place: location in the report, or a photo "
                         "that knows where it was taken");
    if (!intake_directory_in_area(in->dir, grid->region, p->lat, p->lng))
        return fb_refuse(err, 403, "outside_area", "location",
                         "(%.6f, %.6f WGS-84) lies outside your area %s", p->lat, p->lng,
                         grid->region);
    p->grid_region = strdup(grid->region);
    p->grid_worker = strdup(grid->name);
    if (!p->grid_region || !p->grid_worker)
        return fb_refuse(err, 503, "out_of_memory", NULL, "out of memory");
    return 0;
}

/* Validates everything and builds the petition (without storing photos);
 * types[i] is photo i's sniffed content type; grid: the grid worker who
 * reports, NULL for a resident. */
static int build_petition(intake_t *in, const char *key, const fb_upload_t *f, const char **types,
                          const intake_token_info_t *grid, fb_petition_t **out, fb_refusal_t *err) {
    *out = NULL;
    if (!f->have_json)
        return fb_refuse(err, 422, "missing_field", "report",
                         "part report (the report as JSON) is required");
    json_error_t je;
    json_t *j =
        json_loadb(f->json.data ? f->json.data : "", f->json.len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        if (json_error_code(&je) == json_error_invalid_utf8)
            return fb_refuse(err, 400, "invalid_utf8", "report", "report is not valid UTF-8");
        return fb_refuse(err, 400, "malformed_json", "report",
                         "report is not valid JSON: %s (line %d)", je.text, je.line);
    }
    fb_petition_t *p = NULL;
    json_t *raw = NULL;
    int rc = FB_EINVAL;
    if (!json_is_object(j)) {
        fb_refuse(err, 400, "malformed_json", "report", "report must be a JSON object");
        goto fail;
    }
    const char *openid, *content, *category, *address, *urgency, *kind;
    if (intake_opt_string(j, "openid", "openid", 256, &openid, err) ||
        intake_opt_string(j, "content", "content", MAX_CONTENT_BYTES, &content, err) ||
        intake_opt_string(j, "category", "category", 32, &category, err) ||
        intake_opt_string(j, "address", "address", 600, &address, err) ||
        intake_opt_string(j, "urgency", "urgency", 16, &urgency, err) ||
        intake_opt_string(j, "kind", "kind", 16, &kind, err))
        goto fail;
    if (!grid && !printable(openid, MAX_OPENID_BYTES, true)) {
        fb_refuse(err, 422, openid ? "invalid_field" : "missing_field", "openid",
                  "openid is required: the resident's mini-program openid, 1-%d printable "
                  "characters without spaces",
                  MAX_OPENID_BYTES);
        goto fail;
    }
    if (!content) {
        fb_refuse(err, 422, "missing_field", "content", "content is required");
        goto fail;
    }
    if (category && !intake_directory_category_known(in->dir, category)) {
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
    p = fb_petition_new();
    if (!p) {
        rc = FB_ENOMEM;
        fb_refuse(err, 503, "out_of_memory", NULL, "out of memory");
        goto fail;
    }
    if (report_location(in, j, &p->has_location, &p->lat, &p->lng, err))
        goto fail;
    rc = fb_text_normalize(content, &p->content_norm);
    if (rc) {
        fb_refuse(err, 400, "invalid_utf8", "content", "content is not valid UTF-8");
        goto fail;
    }
    rc = FB_EINVAL;
    if (!*p->content_norm) {
        fb_refuse(err, 422, "missing_field", "content", "content is empty");
        goto fail;
    }
    /* Without a location in the report, the first photo that knows where it
     * was taken (inside the city) tells. A photo taken elsewhere is not a
     * reason to refuse the report: it is only not used as its place. */
    for (size_t i = 0; !p->has_location && i < f->nphotos; i++) {
        const unsigned char *b = (const unsigned char *)f->photos[i].data;
        double y, x;
        bool got = strcmp(types[i], "image/png") == 0 ? png_gps(b, f->photos[i].len, &y, &x)
                                                      : exif_gps(b, f->photos[i].len, &y, &x);
        if (!got)
            continue;
        if (fb_geo_valid(y, x) && intake_directory_in_city(in->dir, y, x)) {
            p->lat = y;
            p->lng = x;
            p->has_location = true;
            fb_log(FB_LOG_DEBUG, "event=location_from_exif photo=%zu", i + 1);
        } else {
            fb_log(FB_LOG_INFO, "event=exif_location_ignored photo=%zu reason=outside_city", i + 1);
        }
    }

    if (grid && grid_fields(in, grid, j, f, p, err) != 0)
        goto fail;
    raw = grid ? json_pack("{s:O,s:[]}", "report", j, "photos")
               : json_pack("{s:O,s:s,s:[]}", "report", j, "openid", openid, "photos");
    p->channel = strdup(grid ? "grid" : "miniapp");
    p->idem_key = strdup(key);
    p->received_at_us = fb_now_us();
    p->content = strdup(content);
    p->category = fb_strdup0(category);
    p->address = fb_strdup0(address);
    p->urgency = strdup(urgency ? urgency : "normal");
    p->kind = strdup(kind ? kind : "help");
    if (!raw || !p->channel || !p->idem_key || !p->content || !p->urgency || !p->kind ||
        (category && !p->category) || (address && !p->address)) {
        rc = FB_ENOMEM;
        fb_refuse(err, 503, "out_of_memory", NULL, "out of memory");
        goto fail;
    }
    p->raw = raw;
    json_decref(j);
    *out = p;
    return 0;
fail:
    json_decref(raw);
    fb_petition_destroy(&p);
    json_decref(j);
    return rc ? rc : FB_EINVAL;
}

/* Stores the photos and lists them in the petition's raw JSON. Runs only once
 * everything else was accepted. */
static int store_photos(intake_t *in, const fb_upload_t *f, fb_petition_t *p, fb_refusal_t *err) {
    json_t *list = json_object_get(p->raw, "photos");
    for (size_t i = 0; i < f->nphotos; i++) {
        char sha[65];
        const char *type;
        if (fb_photo_store(in->cfg.data_dir, f->photos[i].data, f->photos[i].len, sha, &type) != 0)
            return fb_refuse(err, 503, "photo_store_failed", "photo",
                             "photo %zu could not be stored; retry with the same Idempotency-Key",
                             i + 1);
        if (json_array_append_new(list, json_pack("{s:s,s:s,s:I}", "sha256", sha, "content_type",
                                                  type, "bytes", (json_int_t)f->photos[i].len)))
            return fb_refuse(err, 503, "out_of_memory", NULL, "out of memory");
    }
    return 0;
}

static void refused(intake_t *in, fb_http_req_t *req, const char *channel,
                    const fb_refusal_t *err) {
    in->m.rejected++;
    fb_log(FB_LOG_INFO, "event=petition_refused channel=%s code=%s field=%s", channel, err->code,
           err->field ? err->field : "-");
    fb_http_error(req, err->status, err->code, err->field, "%s", err->message);
}

/* A report with photos from a resident (grid NULL) or a grid worker. */
static void report_http(intake_t *in, fb_http_req_t *req, const char *channel,
                        const intake_token_info_t *grid) {
    fb_refusal_t err = {0};
    fb_upload_t form = {.json_name = "report",
                        .what = "report",
                        .json_max = MAX_REPORT_BYTES,
                        .photo_max = (size_t)in->cfg.intake_photo_max_bytes};
    fb_petition_t *p = NULL;
    const char *key = fb_http_header(req, "Idempotency-Key");
    if (!printable(key, MAX_KEY_BYTES, false)) {
        fb_refuse(&err, 422, key ? "invalid_field" : "missing_field", "Idempotency-Key",
                  "an Idempotency-Key header of 1-%d printable characters is required, the same "
                  "for every retry of one report",
                  MAX_KEY_BYTES);
        goto fail;
    }
    const char *ctype = fb_http_header(req, "Content-Type");
    if (!ctype || strncasecmp(ctype, "multipart/form-data", 19) != 0) {
        fb_refuse(&err, 415, "unsupported_media_type", "Content-Type",
                  "send multipart/form-data: a part report (JSON) and up to %d parts photo",
                  MAX_PHOTOS);
        goto fail;
    }
    if (fb_upload_read(req, &form) != 0) {
        err = form.refusal;
        goto fail;
    }
    const char *types[MAX_PHOTOS];
    for (size_t i = 0; i < form.nphotos; i++) {
        types[i] = fb_photo_sniff(form.photos[i].data, form.photos[i].len);
        if (!types[i]) {
            fb_refuse(&err, 415, "unsupported_photo", "photo",
                      "photo %zu is not a JPEG or PNG image (declared as %s)", i + 1,
                      form.photos[i].declared);
            goto fail;
        }
    }
    if (build_petition(in, key, &form, types, grid, &p, &err) != 0 || !p)
        goto fail;
    /* A retry of a key already taken writes nothing: intake_submit answers
     * it with the first tracking number, whose photos are stored. */
    char known[MAX_KEY_BYTES + 16];
    (void)snprintf(known, sizeof known, "%s:%s", channel, key); /* key ≤ 128 bytes: fits */
    if (!fb_map_get(in->keys, known) && store_photos(in, &form, p, &err) != 0)
        goto fail;
    fb_log(FB_LOG_DEBUG, "event=report channel=%s photos=%zu location=%s on_site=%d", channel,
           form.nphotos, p->has_location ? "yes" : "no", p->resolved_on_site);
    fb_upload_free(&form);
    intake_submit_http(in, req, p);
    return;
fail:
    fb_petition_destroy(&p);
    fb_upload_free(&form);
    refused(in, req, channel, &err);
}

void intake_miniapp_http(intake_t *in, fb_http_req_t *req) {
    static const char *const roles[] = {"miniapp", "admin", NULL};
    if (strcmp(fb_http_method(req), "POST") != 0) {
        fb_http_error(req, 405, "method_not_allowed", NULL, "use POST");
        return;
    }
    if (intake_authorize(in, req, roles))
        report_http(in, req, "miniapp", NULL);
}

void intake_grid_http(intake_t *in, fb_http_req_t *req) {
    static const char *const roles[] = {"grid", NULL};
    if (strcmp(fb_http_method(req), "POST") != 0) {
        fb_http_error(req, 405, "method_not_allowed", NULL, "use POST");
        return;
    }
    if (!intake_authorize(in, req, roles))
        return;
    intake_token_info_t grid;
    if (!intake_directory_token(in->dir, fb_token_from_header(fb_http_header(req, "Authorization")),
                                &grid) ||
        !grid.region) {
        fb_http_error(req, 403, "forbidden", NULL, "this grid token is bound to no area");
        return;
    }
    report_http(in, req, "grid", &grid);
}
