/* fb_upload.h — a form of one JSON part and up to FB_UPLOAD_MAX_PHOTOS photo
 * parts (multipart/form-data), read whole through fb_http_form: residents'
 * and grid workers' reports (part "report", intake/miniapp.c) and a grid
 * worker's verification (part "verify", workers/grid.c). Parts are
 * reassembled from libmicrohttpd's pieces; an unknown part, a second JSON
 * part, too many photos or a part too large stop the reading, with the
 * refusal to answer. Nothing here looks inside the parts. */
#ifndef FB_UPLOAD_H
#define FB_UPLOAD_H

#include "fb_common.h"
#include "fb_http.h"

#include <stdbool.h>
#include <stddef.h>

#define FB_UPLOAD_MAX_PHOTOS 9

typedef struct {
    char *data; /* NUL-terminated after len bytes; NULL while empty */
    size_t len, cap;
    char declared[96]; /* the Content-Type the client gave, printable ASCII */
} fb_upload_part_t;

typedef struct {
    /* Set by the caller: the JSON part's name, what the form is (for
     * messages: "report", "verification") and the limits. */
    const char *json_name, *what;
    size_t json_max, photo_max;
    /* What was read. */
    fb_upload_part_t json;
    bool have_json;
    fb_upload_part_t photos[FB_UPLOAD_MAX_PHOTOS];
    size_t nphotos;
    fb_upload_part_t *cur; /* the part the last piece belonged to */
    /* The form refused (status nonzero); its field NULL or borrowed from
     * field_buf. */
    fb_refusal_t refusal;
    char field_buf[72];
} fb_upload_t;

/* Reads req's form into u. Returns 0; or FB_EINVAL with u->refusal to
 * answer (a part refused, or a body that is not well-formed
 * multipart/form-data). */
int fb_upload_read(fb_http_req_t *req, fb_upload_t *u);
/* Frees the parts' data (u itself, with the refusal, stays readable). */
void fb_upload_free(fb_upload_t *u);

#endif
