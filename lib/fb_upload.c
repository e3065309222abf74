/* fb_upload.c — a form of one JSON part and photo parts (fb_upload.h). */
#include "fb_upload.h"
#include "fb_common.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/* Copies what a client named (a part's name or type) for a message:
 * printable ASCII only, so that the JSON error is always valid UTF-8. */
static void copy_label(char *dst, size_t size, const char *src) {
    size_t n = 0;
    for (; src && *src && n + 1 < size; src++)
        dst[n++] = isprint((unsigned char)*src) ? *src : '?';
    dst[n] = '\0';
}

static void part_free(fb_upload_part_t *p) {
    free(p->data);
    *p = (fb_upload_part_t){0};
}

/* libmicrohttpd hands a part over in pieces at increasing offsets; a piece at
 * offset 0 starts a new part. An empty first piece may be followed by another
 * at offset 0 for the same part, so that one does not start a second part. */
static bool starts_part(const fb_upload_t *u, const fb_upload_part_t *same_kind_cur, size_t off) {
    return off == 0 && !(u->cur && u->cur == same_kind_cur && u->cur->len == 0);
}

static int on_field(void *ud, const char *name, const char *filename, const char *content_type,
                    const char *data, size_t off, size_t len) {
    (void)filename;
    fb_upload_t *u = ud;
    fb_upload_part_t *p;
    if (u->refusal.status)
        return FB_EINVAL; /* nonzero: stops the post processor */
    if (name && strcmp(name, u->json_name) == 0) {
        if (starts_part(u, &u->json, off)) {
            if (u->have_json)
                return fb_refuse(&u->refusal, 422, "invalid_field", u->json_name,
                                 "send exactly one %s part", u->json_name);
            u->have_json = true;
        }
        p = &u->json;
        if (p->len + len > u->json_max)
            return fb_refuse(&u->refusal, 413, "too_large", u->json_name,
                             "the %s part exceeds %zu bytes", u->json_name, u->json_max);
    } else if (name && strcmp(name, "photo") == 0) {
        fb_upload_part_t *last = u->nphotos ? &u->photos[u->nphotos - 1] : NULL;
        if (!last || starts_part(u, last, off)) {
            if (u->nphotos == FB_UPLOAD_MAX_PHOTOS)
                return fb_refuse(&u->refusal, 422, "too_many_photos", "photo",
                                 "at most %d photos per %s", FB_UPLOAD_MAX_PHOTOS, u->what);
            last = &u->photos[u->nphotos++];
            copy_label(last->declared, sizeof last->declared, content_type ? content_type : "none");
        }
        p = last;
        if (p->len + len > u->photo_max)
            return fb_refuse(&u->refusal, 413, "photo_too_large", "photo",
                             "photo %zu is larger than %zu bytes", u->nphotos, u->photo_max);
    } else {
        copy_label(u->field_buf, sizeof u->field_buf, name);
        return fb_refuse(&u->refusal, 422, "unknown_part", *u->field_buf ? u->field_buf : NULL,
                         "unknown part \"%s\": a %s has one part %s and up to %d parts photo",
                         u->field_buf, u->what, u->json_name, FB_UPLOAD_MAX_PHOTOS);
    }
    u->cur = p;
    if (fb_bytes_append(&p->data, &p->len, &p->cap, data, len) != 0)
        return fb_refuse(&u->refusal, 503, "out_of_memory", NULL, "out of memory");
    return 0;
}

int fb_upload_read(fb_http_req_t *req, fb_upload_t *u) {
    int rc = fb_http_form(req, on_field, u);
    if (u->refusal.status)
        return FB_EINVAL;
    if (rc != 0)
        return fb_refuse(&u->refusal, 400, "malformed_multipart", NULL,
                         "the body is not well-formed multipart/form-data");
    return 0;
}

void fb_upload_free(fb_upload_t *u) {
    part_free(&u->json);
    for (size_t i = 0; i < u->nphotos; i++)
        part_free(&u->photos[i]);
    u->nphotos = 0;
}
