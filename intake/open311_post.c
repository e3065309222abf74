/* open311_post.c — POST /open311/v2/requests.{json,xml}: an Open311 client's
 * service request (form-urlencoded) becomes a canonical petition.
 *
 * Everything is checked before anything is submitted, so a refused POST
 * writes nothing: the api_key first (403, nothing else is looked at without
 * one), then jurisdiction_id and service_code (404 when unknown), then every
 * field, all wrong fields named in one 400 answer (the spec's error body is
 * an array for that). Success follows fenbo's contract rather than the
 * spec's 200: 202 once the petition is durable, 200 with the same
 * service_request_id for a retry; service_request_id is the tracking number. */
#include "fb_common.h"
#include "fb_geo.h"
#include "fb_log.h"
#include "fb_text.h"
#include "fb_token.h"
#include "adapter.h"
#include "open311_priv.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FIELDS        64
#define MAX_DESCRIPTION   4000 /* characters, the spec's limit */
#define MAX_ADDRESS_BYTES 600
#define MAX_DETAIL_CHARS  200
#define MAX_NAME_CHARS    50
#define MAX_ID_BYTES      128
#define MAX_URL_BYTES     2048
#define MAX_IDEM_HEADER   128

/* ---- the form -------------------------------------------------------------- */

typedef struct {
    char *name;
    char *value;
    size_t len, cap;
} s_field_t;

typedef struct {
    s_field_t f[MAX_FIELDS];
    size_t n;
    bool too_many, file, oom;
} s_form_t;

static int on_field(void *ud, const char *name, const char *filename, const char *content_type,
                    const char *data, size_t off, size_t len) {
    (void)content_type;
    s_form_t *form = ud;
    if (filename) {
        form->file = true;
        return 0;
    }
    if (!name)
        return FB_EINVAL; /* a multipart part without a name */
    s_field_t *f = form->n ? &form->f[form->n - 1] : NULL;
    /* A value longer than the post processor's buffer arrives in pieces at
     * increasing offsets; a new field starts at offset 0. */
    if (off == 0 || !f || strcmp(f->name, name) != 0) {
        if (form->n == MAX_FIELDS) {
            form->too_many = true;
            return 0;
        }
        f = &form->f[form->n];
        *f = (s_field_t){.name = strdup(name)};
        if (!f->name) {
            form->oom = true;
            return FB_ENOMEM;
        }
        form->n++;
    }
    if (fb_bytes_append(&f->value, &f->len, &f->cap, data, len) != 0) {
        form->oom = true;
        return FB_ENOMEM;
    }
    return 0;
}

static void form_free(s_form_t *form) {
    for (size_t i = 0; i < form->n; i++) {
        free(form->f[i].name);
        free(form->f[i].value);
    }
    form->n = 0;
}

/* The value of name, NULL when absent or empty ("Optional" in the spec:
 * an empty parameter is one not sent); *count says how often it came. */
static const char *form_get(const s_form_t *form, const char *name, int *count) {
    const char *v = NULL;
    int c = 0;
    for (size_t i = 0; i < form->n; i++) {
        if (strcmp(form->f[i].name, name) != 0)
            continue;
        c++;
        if (!v && form->f[i].len)
            v = form->f[i].value;
    }
    if (count)
        *count = c;
    return v;
}

/* ---- checks ---------------------------------------------------------------- */

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

/* No control characters (line breaks allowed where lines is set). */
static bool plain_text(const char *s, bool lines) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && !(lines && (*p == '\n' || *p == '\r' || *p == '\t'))) || *p == 0x7F)
            return false;
    return true;
}

static bool email_like(const char *s) {
    const char *at = strchr(s, '@');
    if (strlen(s) > 254 || !at || at == s || !at[1] || strchr(at + 1, '@') || !strchr(at + 1, '.'))
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= ' ' || *p == 0x7F || *p == '<' || *p == '>')
            return false;
    return true;
}

/* An absolute http(s) URL in printable ASCII (what the spec's "uri" format
 * and any client can follow). */
static bool url_like(const char *s) {
    size_t n = strlen(s);
    if (n > MAX_URL_BYTES || !(strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0))
        return false;
    const char *host = s + (s[4] == 's' ? 8 : 7);
    if (!*host || *host == '/')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isgraph((unsigned char)s[i]) || s[i] == '"' || s[i] == '<' || s[i] == '>' ||
            s[i] == '\\')
            return false;
    return true;
}

static bool parse_coord(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* The single-valued fields of the spec (api_key and attributes aside). */
static const char *const s_single[] = {
    "jurisdiction_id", "service_code", "lat",         "long",       "address_string",
    "address_id",      "email",        "device_id",   "account_id", "first_name",
    "last_name",       "phone",        "description", "media_url",
};

/* The code of an "attribute[code]" or "attribute[code][]" field into code;
 * *list is set for the latter. False when name is not an attribute. */
static bool attribute_code(const char *name, char *code, size_t codelen, bool *list) {
    if (strncmp(name, "attribute[", 10) != 0)
        return false;
    const char *s = name + 10, *close = strchr(s, ']');
    if (!close || close == s || (size_t)(close - s) >= codelen)
        return false;
    *list = strcmp(close, "][]") == 0;
    if (!*list && close[1])
        return false;
    memcpy(code, s, (size_t)(close - s));
    code[close - s] = '\0';
    return true;
}

/* ---- the petition ---------------------------------------------------------- */

typedef struct {
    const char *api_key, *service_code, *lat, *lng, *address, *address_id, *email, *device_id,
        *account_id, *first, *last, *phone, *description, *media_url;
    const char *urgency, *detail;
    double dlat, dlng;
} s_input_t;

/* Chinese names are written family name first without a space; Latin ones
 * given name first. */
static char *caller_name(const char *first, const char *last) {
    if (!first && !last)
        return NULL;
    if (!first || !last)
        return strdup(first ? first : last);
    bool ascii = true;
    for (const char *p = first; *p; p++)
        ascii = ascii && (unsigned char)*p < 0x80;
    for (const char *p = last; *p; p++)
        ascii = ascii && (unsigned char)*p < 0x80;
    size_t n = strlen(first) + strlen(last) + 2;
    char *s = malloc(n);
    if (s && ascii)
        snprintf(s, n, "%s %s", first, last);
    else if (s)
        snprintf(s, n, "%s%s", last, first);
    return s;
}

/* All fields as they arrived but the api_key (a credential has no place in
 * the stored petition): a name sent more than once becomes an array. */
static json_t *raw_of(const s_form_t *form) {
    json_t *raw = json_object();
    for (size_t i = 0; raw && i < form->n; i++) {
        const s_field_t *f = &form->f[i];
        if (strcmp(f->name, "api_key") == 0)
            continue;
        json_t *v = json_stringn(f->value, f->len);
        json_t *prev = json_object_get(raw, f->name);
        if (!v)
            goto fail;
        if (!prev) {
            if (json_object_set_new(raw, f->name, v) != 0)
                goto fail;
        } else if (json_is_array(prev)) {
            if (json_array_append_new(prev, v) != 0)
                goto fail;
        } else {
            json_t *arr = json_pack("[O,o]", prev, v);
            if (!arr || json_object_set_new(raw, f->name, arr) != 0)
                goto fail;
        }
    }
    return raw;
fail:
    json_decref(raw);
    return NULL;
}

/* The idempotency key. With an Idempotency-Key header: who sent it (device,
 * account, or the app's key) and the header. Without: a digest of the whole
 * request, so that a client's retry of the very same POST, byte for byte
 * but in any field order, is recognised, and two different reports never
 * are (description and service alone would merge two address-only reports
 * of a broken street lamp in different streets). */
static int idem_key(const s_input_t *x, const s_form_t *form, const char *header, char *out,
                    size_t outlen) {
    char hex[FB_TOKEN_HASH_HEX];
    if (header) {
        /* The length keeps "d3:a:b:c" (device "a:b") apart from device "a". */
        if (x->device_id)
            snprintf(out, outlen, "d%zu:%s:%s", strlen(x->device_id), x->device_id, header);
        else if (x->account_id)
            snprintf(out, outlen, "a%zu:%s:%s", strlen(x->account_id), x->account_id, header);
        else if (fb_token_hash_hex(x->api_key, hex) == 0)
            snprintf(out, outlen, "k:%.16s:%s", hex, header);
        else
            return FB_EIO;
        return 0;
    }
    /* Length-prefixed "name=value" of every field, sorted, api_key included:
     * no two different forms give the same text. */
    const s_field_t *sorted[MAX_FIELDS];
    size_t n = form->n, total = 1;
    for (size_t i = 0; i < n; i++) {
        sorted[i] = &form->f[i];
        total += strlen(form->f[i].name) + form->f[i].len + 48;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            int c = strcmp(sorted[j - 1]->name, sorted[j]->name);
            if (c < 0 || (c == 0 && strcmp(sorted[j - 1]->value, sorted[j]->value) <= 0))
                break;
            const s_field_t *t = sorted[j];
            sorted[j] = sorted[j - 1];
            sorted[j - 1] = t;
        }
    char *text = malloc(total), *p = text;
    if (!text)
        return FB_ENOMEM;
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, "%zu:%s=%zu:%s;", strlen(sorted[i]->name), sorted[i]->name, sorted[i]->len,
                     sorted[i]->value);
    *p = '\0';
    int rc = fb_token_hash_hex(text, hex);
    free(text);
    if (rc == 0)
        snprintf(out, outlen, "h:%s", hex);
    return rc;
}

static fb_petition_t *petition_of(const s_input_t *x, const s_form_t *form, const char *key,
                                  int *rc) {
    fb_petition_t *p = fb_petition_new();
    *rc = FB_ENOMEM;
    if (!p)
        return NULL;
    if ((*rc = fb_text_normalize(x->description, &p->content_norm)) != 0)
        goto fail;
    *rc = FB_ENOMEM;
    p->channel = strdup("open311");
    p->idem_key = strdup(key);
    p->received_at_us = fb_now_us();
    p->caller_name = caller_name(x->first, x->last);
    p->caller_phone = fb_strdup0(x->phone);
    p->content = strdup(x->description);
    p->category = strdup(x->service_code);
    /* The attribute's detail belongs with the address the department reads. */
    if (x->address && x->detail) {
        size_t n = strlen(x->address) + strlen(x->detail) + 2;
        p->address = malloc(n);
        if (p->address)
            snprintf(p->address, n, "%s %s", x->address, x->detail);
    } else {
        p->address = fb_strdup0(x->address ? x->address : x->detail);
    }
    if (x->lat) {
        p->has_location = true;
        p->lat = x->dlat;
        p->lng = x->dlng;
    }
    p->urgency = strdup(x->urgency ? x->urgency : "normal");
    p->kind = strdup("help");
    p->callback = false;
    p->raw = raw_of(form);
    if (!p->channel || !p->idem_key || !p->content || !p->category || !p->urgency || !p->kind ||
        !p->raw || ((x->first || x->last) && !p->caller_name) || (x->phone && !p->caller_phone) ||
        ((x->address || x->detail) && !p->address))
        goto fail;
    *rc = 0;
    return p;
fail:
    fb_petition_destroy(&p);
    return NULL;
}

/* ---- validation -------------------------------------------------------------- */

/* lat/long, address_string, address_id: one location at least (the spec),
 * and a point within the city. */
static void validate_location(intake_t *in, const s_form_t *form, s_input_t *x, json_t *errors) {
    x->lat = form_get(form, "lat", NULL);
    x->lng = form_get(form, "long", NULL);
    x->address = form_get(form, "address_string", NULL);
    x->address_id = form_get(form, "address_id", NULL);
    if ((x->lat != NULL) != (x->lng != NULL)) {
        intake_open311_add_error(errors, 400, "lat and long must be sent together");
        x->lat = x->lng = NULL;
    } else if (x->lat) {
        if (!parse_coord(x->lat, &x->dlat) || !parse_coord(x->lng, &x->dlng) ||
            !fb_geo_valid(x->dlat, x->dlng)) {
            intake_open311_add_error(errors, 400,
                                     "lat and long must be WGS-84 degrees (lat -90…90, long "
                                     "-180…180), e.g. lat=30.2591&long=120.1551");
        } else if (!intake_directory_in_city(in->dir, x->dlat, x->dlng)) {
            intake_open311_add_error(errors, 400,
                                     "lat/long %.6f,%.6f lies outside the area %s serves", x->dlat,
                                     x->dlng, in->cfg.open311_jurisdiction);
        }
    } else if (!x->address && !x->address_id) {
        intake_open311_add_error(errors, 400,
                                 "a location was not provided: send lat and long, "
                                 "address_string or address_id");
    }
    if (x->address && (strlen(x->address) > MAX_ADDRESS_BYTES || !plain_text(x->address, false)))
        intake_open311_add_error(errors, 400, "address_string must be one line of at most %d bytes",
                                 MAX_ADDRESS_BYTES);
    if (x->address_id && !intake_token_like(x->address_id, MAX_ID_BYTES))
        intake_open311_add_error(errors, 400,
                                 "address_id must be 1-%d printable characters without spaces",
                                 MAX_ID_BYTES);
}

/* The description and who sent it. */
static void validate_person(const s_form_t *form, s_input_t *x, json_t *errors) {
    x->description = form_get(form, "description", NULL);
    if (!x->description)
        intake_open311_add_error(errors, 400, "description was not provided: say what is wrong");
    else if (utf8_chars(x->description) > MAX_DESCRIPTION || !plain_text(x->description, true))
        intake_open311_add_error(errors, 400, "description must be text of at most %d characters",
                                 MAX_DESCRIPTION);

    x->email = form_get(form, "email", NULL);
    if (x->email && !email_like(x->email))
        intake_open311_add_error(errors, 400, "email is not an e-mail address");
    x->phone = form_get(form, "phone", NULL);
    if (x->phone && !intake_phone_like(x->phone))
        intake_open311_add_error(errors, 400, "phone is not a telephone number");
    x->first = form_get(form, "first_name", NULL);
    x->last = form_get(form, "last_name", NULL);
    if ((x->first && (utf8_chars(x->first) > MAX_NAME_CHARS || !plain_text(x->first, false))) ||
        (x->last && (utf8_chars(x->last) > MAX_NAME_CHARS || !plain_text(x->last, false))))
        intake_open311_add_error(errors, 400,
                                 "first_name and last_name must be one line of at most %d "
                                 "characters each",
                                 MAX_NAME_CHARS);
    x->device_id = form_get(form, "device_id", NULL);
    x->account_id = form_get(form, "account_id", NULL);
    if (x->device_id && !intake_token_like(x->device_id, MAX_ID_BYTES))
        intake_open311_add_error(errors, 400,
                                 "device_id must be 1-%d printable characters without spaces",
                                 MAX_ID_BYTES);
    if (x->account_id && !intake_token_like(x->account_id, MAX_ID_BYTES))
        intake_open311_add_error(errors, 400,
                                 "account_id must be 1-%d printable characters without spaces",
                                 MAX_ID_BYTES);
    x->media_url = form_get(form, "media_url", NULL);
    if (x->media_url && !url_like(x->media_url))
        intake_open311_add_error(errors, 400,
                                 "media_url must be an http:// or https:// URL of at most %d "
                                 "characters",
                                 MAX_URL_BYTES);
}

static size_t first_index(const s_form_t *form, const char *name) {
    size_t i = 0;
    while (i < form->n && strcmp(form->f[i].name, name) != 0)
        i++;
    return i;
}

/* attribute[code]=value for the attributes every service defines. */
static void validate_attributes(const s_form_t *form, s_input_t *x, json_t *errors) {
    for (size_t i = 0; i < form->n; i++) {
        const s_field_t *f = &form->f[i];
        char code[64];
        bool list;
        if (!attribute_code(f->name, code, sizeof code, &list)) {
            char shown[80];
            if (strncmp(f->name, "attribute", 9) == 0)
                intake_open311_add_error(errors, 400,
                                         "%s: attributes are sent as attribute[code]=value",
                                         intake_open311_clip(f->name, shown, sizeof shown));
            continue;
        }
        int n = 0;
        form_get(form, f->name, &n);
        if (n > 1 && first_index(form, f->name) != i)
            continue; /* one error for a repeated attribute */
        if (strcmp(code, "urgency") == 0) {
            if (list || n > 1)
                intake_open311_add_error(errors, 400,
                                         "attribute[urgency] takes one value (singlevaluelist)");
            else if (f->len && !fb_urgency_valid(f->value))
                intake_open311_add_error(errors, 400,
                                         "attribute[urgency] must be normal, urgent or emergency");
            else if (f->len)
                x->urgency = f->value;
        } else if (strcmp(code, "address_detail") == 0) {
            if (list || n > 1)
                intake_open311_add_error(errors, 400, "attribute[address_detail] takes one value");
            else if (utf8_chars(f->value) > MAX_DETAIL_CHARS || !plain_text(f->value, false))
                intake_open311_add_error(errors, 400,
                                         "attribute[address_detail] must be one line of at most "
                                         "%d characters",
                                         MAX_DETAIL_CHARS);
            else if (f->len)
                x->detail = f->value;
        } else {
            char shown[80];
            intake_open311_add_error(errors, 400,
                                     "attribute[%s] is not defined: see the service definition",
                                     intake_open311_clip(code, shown, sizeof shown));
        }
    }
}

/* Checks the form into x; 400s go to errors. Returns 0 to go on with
 * whatever errors holds, or the status of a refusal already answered (403,
 * 404). */
static unsigned validate(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt, s_form_t *form,
                         s_input_t *x, json_t *errors) {
    int count;
    x->api_key = form_get(form, "api_key", &count);
    if (!x->api_key) {
        intake_open311_error(req, fmt, 403,
                             "api_key was not provided -- can't proceed with create_request");
        return 403;
    }
    const char *role = count == 1 ? intake_directory_role(in->dir, x->api_key) : NULL;
    if (!role || strcmp(role, "open311") != 0) {
        intake_open311_error(req, fmt, 403,
                             "Invalid api_key received -- can't proceed with create_request");
        return 403;
    }
    /* Everything below echoes or stores text: it must be UTF-8 first. */
    for (size_t i = 0; i < form->n; i++) {
        const s_field_t *f = &form->f[i];
        if (!fb_utf8_valid(f->name, strlen(f->name)) || !fb_utf8_valid(f->value, f->len)) {
            intake_open311_error(req, fmt, 400, "field %zu is not valid UTF-8 text", i + 1);
            return 400;
        }
    }
    if (intake_open311_wrong_jurisdiction(in, req, fmt, form_get(form, "jurisdiction_id", NULL)))
        return 404;
    x->service_code = form_get(form, "service_code", NULL);
    if (x->service_code && !intake_open311_service_known(in, x->service_code)) {
        char shown[80];
        intake_open311_error(req, fmt, 404, "service_code provided was not found: %s",
                             intake_open311_clip(x->service_code, shown, sizeof shown));
        return 404;
    }
    if (!x->service_code)
        intake_open311_add_error(errors, 400, "service_code was not provided");

    for (size_t i = 0; i < FB_ARRAY_LEN(s_single); i++) {
        form_get(form, s_single[i], &count);
        if (count > 1)
            intake_open311_add_error(errors, 400, "%s was given more than once", s_single[i]);
    }

    validate_location(in, form, x, errors);
    validate_person(form, x, errors);
    validate_attributes(form, x, errors);
    return 0;
}

/* ---- answering ------------------------------------------------------------- */

typedef struct {
    intake_t *in;
    fb_http_req_t *req;
    open311_fmt_t fmt;
    bool in_handler; /* main.c counts answers given before the handler returns */
} s_post_t;

static void post_done(void *ud, unsigned status, const char *tracking_no) {
    s_post_t *ctx = ud;
    if (tracking_no) {
        char notice[200], code[FB_FOLLOWUP_CODE_LEN + 1];
        intake_follow_up_code(ctx->in, tracking_no, code);
        snprintf(notice, sizeof notice,
                 "诉求已受理，编号 %s，查询码 %s：凭编号和查询码查询办理进度、评价", tracking_no,
                 code);
        intake_open311_respond(ctx->req, status, ctx->fmt, "service_requests",
                               json_pack("[{s:s,s:s,s:s,s:n}]", "service_request_id", tracking_no,
                                         "follow_up_code", code, "service_notice", notice,
                                         "account_id"));
    } else {
        intake_open311_error(ctx->req, ctx->fmt, 503,
                             "the request could not be stored; send the same request again");
    }
    if (!ctx->in_handler) {
        intake_open311_count(ctx->in, ctx->req);
        free(ctx);
    }
}

void intake_open311_post_request(intake_t *in, fb_http_req_t *req, open311_fmt_t fmt) {
    s_form_t *form = calloc(1, sizeof *form);
    json_t *errors = json_array();
    s_post_t *ctx = NULL;
    if (!form || !errors) {
        intake_open311_error(req, fmt, 503, "out of memory");
        goto done;
    }
    int rc = fb_http_form(req, on_field, form);
    if (form->oom) {
        intake_open311_error(req, fmt, 503, "out of memory");
        goto done;
    }
    if (rc != 0) {
        intake_open311_error(req, fmt, 400,
                             "the body must be application/x-www-form-urlencoded; charset=utf-8");
        goto refused;
    }
    if (form->file || form->too_many) {
        intake_open311_error(req, fmt, 400,
                             form->file ? "files are not accepted: send a media_url"
                                        : "too many fields (at most %d)",
                             MAX_FIELDS);
        goto refused;
    }
    s_input_t x = {0};
    unsigned st = validate(in, req, fmt, form, &x, errors);
    if (st)
        goto refused;
    const char *header = fb_http_header(req, "Idempotency-Key");
    if (header && *header && !intake_token_like(header, MAX_IDEM_HEADER))
        intake_open311_add_error(errors, 400,
                                 "the Idempotency-Key header must be 1-%d printable characters "
                                 "without spaces",
                                 MAX_IDEM_HEADER);
    if (json_array_size(errors)) {
        intake_open311_respond(req, 400, fmt, "errors", json_incref(errors));
        goto refused;
    }
    char key[400];
    fb_petition_t *p = NULL;
    if (idem_key(&x, form, header && *header ? header : NULL, key, sizeof key) != 0 ||
        !(p = petition_of(&x, form, key, &rc))) {
        if (rc == FB_EUTF8)
            intake_open311_error(req, fmt, 400, "description is not valid UTF-8 text");
        else
            intake_open311_error(req, fmt, 503, "out of memory");
        goto done;
    }
    if (!*p->content_norm) {
        fb_petition_destroy(&p);
        intake_open311_error(req, fmt, 400, "description is empty");
        goto refused;
    }
    ctx = calloc(1, sizeof *ctx);
    if (!ctx) {
        fb_petition_destroy(&p);
        intake_open311_error(req, fmt, 503, "out of memory");
        goto done;
    }
    *ctx = (s_post_t){in, req, fmt, true};
    intake_submit(in, p, post_done, ctx);
    if (fb_http_answered(req))
        free(ctx); /* answered at once: a retry of a durable key, or a failure */
    else
        ctx->in_handler = false;
    goto done;
refused:
    in->m.rejected++;
    fb_log(FB_LOG_INFO, "event=petition_refused channel=open311 status=%u", fb_http_status(req));
done:
    if (form)
        form_free(form);
    free(form);
    json_decref(errors);
}
