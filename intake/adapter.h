/* adapter.h — what every channel adapter of fenbo-intake produces: a
 * canonical petition without tracking number (main.c gives it one), or a
 * refusal saying which field is wrong. */
#ifndef INTAKE_ADAPTER_H
#define INTAKE_ADAPTER_H

#include "fb_common.h"
#include "fb_petition.h"

#include <stdbool.h>

/* An optional string member key of o, at most max bytes: absent or null
 * leaves *out NULL; anything else but a string is refused naming field. */
int intake_opt_string(const json_t *o, const char *key, const char *field, size_t max,
                      const char **out, fb_refusal_t *err);
/* Order numbers, keys and ids: 1..max printable ASCII characters, no spaces
 * (they are read over the phone and appear in logs). */
bool intake_token_like(const char *s, size_t max);
/* A telephone number: 3 to 20 digits, an optional leading +, dashes, spaces. */
bool intake_phone_like(const char *s);

/* Knows whether a category code exists; NULL or an empty set accepts any. */
typedef bool (*intake_category_known_cb)(void *ud, const char *code);

/* Parses and validates a hotline work order (POST /api/v1/hotline/orders).
 * On success *out is the caller's petition (channel "hotline", idem_key the
 * order number, content normalised, location in WGS-84); otherwise err says
 * why and nothing is allocated. */
int intake_hotline_parse(const char *body, size_t len, intake_category_known_cb known, void *ud,
                         fb_petition_t **out, fb_refusal_t *err);

#endif
