/* fb_petition.h — the canonical petition every channel adapter produces and
 * the codec that carries it through the spool and over the bus (JSON).
 *
 * All strings of a petition are owned by it; fb_petition_destroy() frees them. */
#ifndef FB_PETITION_H
#define FB_PETITION_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct fb_petition {
    char *tracking_no;
    char *channel;  /* hotline | miniapp | mailbox | open311 | grid */
    char *idem_key; /* unique per channel: order_no, Idempotency-Key, Message-ID… */
    int64_t received_at_us;
    int64_t spooled_at_us;
    char *caller_name;  /* may be NULL */
    char *caller_phone; /* may be NULL */
    char *content;      /* as the resident or operator wrote it */
    char *content_norm; /* normalised for matching (fb_text_normalize) */
    char *category;     /* category code, may be NULL */
    char *address;      /* may be NULL */
    bool has_location;
    double lat, lng; /* WGS-84 */
    char *urgency;   /* normal | urgent | emergency */
    char *kind;      /* consult | help | complaint | report | suggestion | praise */
    bool callback;
    /* Channel grid: the reporting grid worker's region and name, and whether
     * the problem was fixed on the spot (its case closes at once); NULL,
     * NULL, false for every other channel. */
    char *grid_region;
    char *grid_worker;
    bool resolved_on_site;
    json_t *raw; /* the input as it arrived (owned reference) */
} fb_petition_t;

fb_petition_t *fb_petition_new(void);
void fb_petition_destroy(fb_petition_t **p);

/* Returns a new reference the caller must json_decref(). */
json_t *fb_petition_to_json(const fb_petition_t *p);
/* Decodes what fb_petition_to_json() wrote; *out is the caller's. Returns
 * FB_EINVAL naming nothing: the codec is internal, its input trusted only as
 * far as its shape is checked. */
int fb_petition_from_json(const json_t *j, fb_petition_t **out);

/* Serialises to a compact UTF-8 JSON string the caller must free(). */
char *fb_petition_dumps(const fb_petition_t *p);
int fb_petition_loads(const char *buf, size_t len, fb_petition_t **out);

bool fb_urgency_valid(const char *s);
bool fb_kind_valid(const char *s);

#endif
