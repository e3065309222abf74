/* adapter.h — what every channel adapter of fenbo-intake produces: a
 * canonical petition without tracking number (main.c gives it one), or a
 * refusal saying which field is wrong. */
#ifndef INTAKE_ADAPTER_H
#define INTAKE_ADAPTER_H

#include "fb_petition.h"

#include <stdbool.h>

typedef struct intake_error {
    unsigned status;   /* HTTP status of the refusal (400, 422, …) */
    const char *code;  /* machine-readable, e.g. "invalid_field" */
    const char *field; /* the offending field, or NULL */
    char message[256];
} intake_error_t;

/* Knows whether a category code exists; NULL or an empty set accepts any. */
typedef bool (*intake_category_known_cb)(void *ud, const char *code);

/* Parses and validates a hotline work order (POST /api/v1/hotline/orders).
 * On success *out is the caller's petition (channel "hotline", idem_key the
 * order number, content normalised, location in WGS-84); otherwise err says
 * why and nothing is allocated. */
int intake_hotline_parse(const char *body, size_t len, intake_category_known_cb known, void *ud,
                         fb_petition_t **out, intake_error_t *err);

#endif
