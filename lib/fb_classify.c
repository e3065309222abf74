/* fb_classify.c — the petition classifier: character n-grams, TF-IDF, a
 * LIBLINEAR one-vs-rest logistic regression, and a sigmoid fitted on held-out
 * folds (Platt scaling) so that confidences are calibrated.
 *
 * Why character n-grams: Chinese has no spaces, residents misspell by
 * homophone and abbreviate freely, and a word segmenter trained on news text
 * knows none of "铁盖子" or "楼上滴水"; overlapping 1–3 character pieces carry
 * the words without deciding where they end.
 *
 * This file turns text into features and scores a model, and stores and
 * loads models; fb_classify_train.c trains them. */
#include "fb_classify.h"
#include "fb_classify_priv.h"
#include "fb_common.h"
#include "fb_log.h"
#include "fb_map.h"
#include "fb_text.h"

#include <arpa/inet.h>
#include <linear.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "FBCLS002"

/* ---- n-grams ------------------------------------------------------------ */

/* What the n-grams are made of: CJK ideographs and letters (lower case) as
 * they are, a run of digits as one '0' (house numbers and dates say nothing
 * about the matter), anything else a boundary no n-gram crosses. */
typedef struct unit {
    uint32_t cp;
} unit_t;

static size_t utf8_decode(const unsigned char *s, uint32_t *cp) {
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = (s[0] & 0xE0) == 0xC0   ? 2
                 : (s[0] & 0xF0) == 0xE0 ? 3
                 : (s[0] & 0xF8) == 0xF0 ? 4
                                         : 0;
    if (!len)
        return 0;
    *cp = s[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        *cp = (*cp << 6) | (s[i] & 0x3F);
    }
    return len;
}

size_t fb_classify_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static bool is_word_cp(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2FFFF) || (cp >= 'a' && cp <= 'z');
}

/* The units of text; 0 marks a boundary. *n their count; the array is the
 * caller's. */
uint32_t *fb_classify_units(const char *text, size_t *n) {
    size_t len = strlen(text);
    uint32_t *u = malloc((len + 1) * sizeof *u);
    if (!u)
        return NULL;
    size_t k = 0;
    const unsigned char *p = (const unsigned char *)text;
    while (*p) {
        uint32_t cp;
        size_t l = utf8_decode(p, &cp);
        if (!l) {
            p++;
            continue;
        }
        p += l;
        if (cp >= 'A' && cp <= 'Z')
            cp += 'a' - 'A';
        if (cp >= '0' && cp <= '9') {
            if (k == 0 || u[k - 1] != '0')
                u[k++] = '0';
        } else if (is_word_cp(cp)) {
            u[k++] = cp;
        } else if (k > 0 && u[k - 1] != 0) {
            u[k++] = 0;
        }
    }
    *n = k;
    return u;
}

/* Calls cb for every n-gram of text (lengths min..max), in order. */
void fb_classify_for_each_ngram(const char *text, int min, int max, ngram_cb cb, void *ud) {
    size_t n;
    uint32_t *u = fb_classify_units(text, &n);
    if (!u)
        return;
    char buf[NGRAM_MAX_LEN * 4 + 1];
    for (size_t i = 0; i < n; i++) {
        size_t off = 0;
        for (int len = 1; len <= max && i + (size_t)len <= n; len++) {
            uint32_t cp = u[i + (size_t)len - 1];
            if (cp == 0)
                break;
            off += fb_classify_utf8_encode(cp, buf + off);
            if (len >= min) {
                buf[off] = '\0';
                cb(ud, buf);
            }
        }
    }
    free(u);
}

/* ---- a text as a feature vector ---------------------------------------- */

typedef struct collect {
    const fb_map_t *index;
    int *ids;
    size_t n, cap;
    bool oom;
} collect_t;

static void collect_id(void *ud, const char *ngram) {
    collect_t *c = ud;
    uintptr_t id = (uintptr_t)fb_map_get(c->index, ngram);
    if (!id || c->oom)
        return;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        int *ids = realloc(c->ids, cap * sizeof *ids);
        if (!ids) {
            c->oom = true;
            return;
        }
        c->ids = ids, c->cap = cap;
    }
    c->ids[c->n++] = (int)id; /* 1-based, as LIBLINEAR counts features */
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* The sublinear TF-IDF vector of text over the features of index (idf
 * 0-based by feature), with a bias node of index n_features + 1. */
int fb_classify_vectorise(const fb_map_t *index, const float *idf, size_t n_features, int ngram_min,
                          int ngram_max, const char *text, vec_t *out) {
    collect_t c = {.index = index};
    fb_classify_for_each_ngram(text, ngram_min, ngram_max, collect_id, &c);
    if (c.oom) {
        free(c.ids);
        return FB_ENOMEM;
    }
    if (c.n)
        qsort(c.ids, c.n, sizeof *c.ids, cmp_int);
    out->x = malloc((c.n + 2) * sizeof *out->x);
    if (!out->x) {
        free(c.ids);
        return FB_ENOMEM;
    }
    size_t k = 0;
    double norm = 0;
    for (size_t i = 0; i < c.n;) {
        size_t j = i;
        while (j < c.n && c.ids[j] == c.ids[i])
            j++;
        double v = (1.0 + log((double)(j - i))) * idf[c.ids[i] - 1];
        out->x[k++] = (struct feature_node){.index = c.ids[i], .value = v};
        norm += v * v;
        i = j;
    }
    free(c.ids);
    norm = norm > 0 ? sqrt(norm) : 1;
    for (size_t i = 0; i < k; i++)
        out->x[i].value /= norm;
    out->n = k;
    out->x[k] = (struct feature_node){.index = (int)n_features + 1, .value = 1.0};
    out->x[k + 1] = (struct feature_node){.index = -1, .value = 0};
    return 0;
}

/* ---- scoring ------------------------------------------------------------ */

/* Decision values of every class for v: bias + Σ x·w. */
static void decide(const fb_classifier_t *c, const vec_t *v, double *dec) {
    for (size_t j = 0; j < c->n_classes; j++)
        dec[j] = c->bias[j];
    for (size_t i = 0; i < v->n; i++) {
        size_t f = (size_t)v->x[i].index - 1;
        double x = v->x[i].value;
        for (uint32_t k = c->off[f]; k < c->off[f + 1]; k++)
            dec[c->cls[k]] += x * c->w[k];
    }
}

/* Decision values become confidences: each class's calibrated probability,
 * scaled down only when they sum past one (two classes both likely share). */
static void calibrate(const fb_classifier_t *c, double *dec) {
    double sum = 0;
    for (size_t j = 0; j < c->n_classes; j++)
        sum += dec[j] = 1 / (1 + exp(-(c->scale * dec[j] + c->shift)));
    if (sum > 1)
        for (size_t j = 0; j < c->n_classes; j++)
            dec[j] /= sum;
}

size_t fb_classifier_classify(const fb_classifier_t *c, const char *text_norm,
                              fb_class_score_t *out, size_t k) {
    if (!c || !text_norm || k == 0)
        return 0;
    vec_t v;
    if (fb_classify_vectorise(c->index, c->idf, c->n_features, c->ngram_min, c->ngram_max,
                              text_norm, &v))
        return 0;
    double stackbuf[512];
    double *p =
        c->n_classes <= FB_ARRAY_LEN(stackbuf) ? stackbuf : malloc(c->n_classes * sizeof *p);
    if (!p) {
        free(v.x);
        return 0;
    }
    decide(c, &v, p);
    free(v.x);
    calibrate(c, p);
    /* Top k by insertion into the short sorted out[]. */
    size_t got = 0;
    for (size_t j = 0; j < c->n_classes; j++) {
        if (got == k && p[j] <= out[k - 1].confidence)
            continue;
        size_t at = got < k ? got++ : k - 1;
        while (at > 0 && out[at - 1].confidence < p[j]) {
            out[at] = out[at - 1];
            at--;
        }
        out[at] = (fb_class_score_t){.category = c->labels[j], .confidence = p[j]};
    }
    if (p != stackbuf)
        free(p);
    return got;
}

int fb_classify_class_of(const fb_classifier_t *c, const char *category) {
    size_t lo = 0, hi = c->n_classes;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(c->labels[mid], category);
        if (r == 0)
            return (int)mid;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

size_t fb_classifier_explain(const fb_classifier_t *c, const char *text_norm, const char *category,
                             fb_ngram_weight_t *out, size_t k) {
    int j = c && category ? fb_classify_class_of(c, category) : -1;
    if (j < 0 || !text_norm || k == 0)
        return 0;
    vec_t v;
    if (fb_classify_vectorise(c->index, c->idf, c->n_features, c->ngram_min, c->ngram_max,
                              text_norm, &v))
        return 0;
    size_t got = 0;
    for (size_t i = 0; i < v.n; i++) {
        size_t f = (size_t)v.x[i].index - 1;
        double contrib = 0;
        for (uint32_t q = c->off[f]; q < c->off[f + 1]; q++)
            if (c->cls[q] == j)
                contrib = v.x[i].value * c->w[q];
        if (contrib <= 0 || (got == k && contrib <= out[k - 1].weight))
            continue;
        size_t at = got < k ? got++ : k - 1;
        while (at > 0 && out[at - 1].weight < contrib) {
            out[at] = out[at - 1];
            at--;
        }
        out[at].weight = contrib;
        snprintf(out[at].ngram, sizeof out[at].ngram, "%s", c->ngrams[f]);
    }
    free(v.x);
    return got;
}

size_t fb_classifier_categories(const fb_classifier_t *c) {
    return c ? c->n_classes : 0;
}

const char *fb_classifier_category(const fb_classifier_t *c, size_t i) {
    return c && i < c->n_classes ? c->labels[i] : NULL;
}

void fb_classifier_destroy(fb_classifier_t **cp) {
    fb_classifier_t *c = cp ? *cp : NULL;
    if (!c)
        return;
    for (size_t j = 0; c->labels && j < c->n_classes; j++)
        free(c->labels[j]);
    for (size_t f = 0; c->ngrams && f < c->n_features; f++)
        free(c->ngrams[f]);
    free(c->labels);
    free(c->ngrams);
    free(c->idf);
    free(c->bias);
    free(c->off);
    free(c->cls);
    free(c->w);
    fb_map_destroy(&c->index, NULL);
    free(c);
    *cp = NULL;
}

/* ---- the stored form ---------------------------------------------------- */
/* MAGIC, then little-endian: u32 ngram_min, ngram_max, n_classes,
 * n_features, nnz; f64 scale, shift; per class u16 length + code, f32 bias;
 * per feature u8 length + n-gram, f32 idf, u32 weights; then nnz × (u16
 * class, f32 weight). The machine's own byte order is checked by the
 * magic's companion word. */

typedef struct wbuf {
    unsigned char *p;
    size_t len, cap;
    bool oom;
} wbuf_t;

static void put(wbuf_t *b, const void *data, size_t n) {
    if (b->oom)
        return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void put_u8(wbuf_t *b, uint8_t v) {
    put(b, &v, sizeof v);
}
static void put_u16(wbuf_t *b, uint16_t v) {
    put(b, &v, sizeof v);
}
static void put_u32(wbuf_t *b, uint32_t v) {
    put(b, &v, sizeof v);
}
static void put_f32(wbuf_t *b, float v) {
    put(b, &v, sizeof v);
}

static const uint32_t s_order_mark = 0x01020304u;

int fb_classifier_save(const fb_classifier_t *c, unsigned char **buf, size_t *len) {
    wbuf_t b = {0};
    put(&b, MAGIC, 8);
    put_u32(&b, s_order_mark);
    put_u32(&b, (uint32_t)c->ngram_min);
    put_u32(&b, (uint32_t)c->ngram_max);
    put_u32(&b, (uint32_t)c->n_classes);
    put_u32(&b, (uint32_t)c->n_features);
    put_u32(&b, c->off[c->n_features]);
    put(&b, &c->scale, sizeof c->scale);
    put(&b, &c->shift, sizeof c->shift);
    for (size_t j = 0; j < c->n_classes; j++) {
        size_t l = strlen(c->labels[j]);
        put_u16(&b, (uint16_t)l);
        put(&b, c->labels[j], l);
        put_f32(&b, c->bias[j]);
    }
    for (size_t f = 0; f < c->n_features; f++) {
        size_t l = strlen(c->ngrams[f]);
        put_u8(&b, (uint8_t)l);
        put(&b, c->ngrams[f], l);
        put_f32(&b, c->idf[f]);
        put_u32(&b, c->off[f + 1] - c->off[f]);
    }
    for (uint32_t k = 0; k < c->off[c->n_features]; k++) {
        put_u16(&b, c->cls[k]);
        put_f32(&b, c->w[k]);
    }
    if (b.oom) {
        free(b.p);
        return FB_ENOMEM;
    }
    *buf = b.p;
    *len = b.len;
    return 0;
}

typedef struct rbuf {
    const unsigned char *p;
    size_t left;
    bool bad;
} rbuf_t;

static void get(rbuf_t *r, void *out, size_t n) {
    if (r->bad || r->left < n) {
        r->bad = true;
        memset(out, 0, n);
        return;
    }
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
}

/* A NUL-terminated copy of the next n bytes; NULL (and r->bad) when short,
 * empty, not UTF-8 or out of memory. */
static char *get_str(rbuf_t *r, size_t n) {
    if (r->bad || n == 0 || r->left < n || !fb_utf8_valid((const char *)r->p, n)) {
        r->bad = true;
        return NULL;
    }
    char *s = malloc(n + 1);
    if (!s) {
        r->bad = true;
        return NULL;
    }
    memcpy(s, r->p, n);
    s[n] = '\0';
    r->p += n;
    r->left -= n;
    return s;
}

int fb_classifier_load(const unsigned char *buf, size_t len, fb_classifier_t **out) {
    *out = NULL;
    rbuf_t r = {buf, len, false};
    char magic[8];
    uint32_t mark, nmin, nmax, ncls, nfeat, nnz;
    get(&r, magic, 8);
    get(&r, &mark, sizeof mark);
    get(&r, &nmin, sizeof nmin);
    get(&r, &nmax, sizeof nmax);
    get(&r, &ncls, sizeof ncls);
    get(&r, &nfeat, sizeof nfeat);
    get(&r, &nnz, sizeof nnz);
    if (r.bad || memcmp(magic, MAGIC, 8) != 0 || mark != s_order_mark || nmin < 1 || nmax < nmin ||
        nmax > NGRAM_MAX_LEN || ncls < 2 || ncls > UINT16_MAX)
        return FB_EINVAL;
    /* Each class, feature and weight takes bytes: counts beyond the buffer
     * are a lie, and refusing them bounds every allocation below. */
    if ((uint64_t)ncls * 7 + (uint64_t)nfeat * 10 + (uint64_t)nnz * 6 > r.left + 8)
        return FB_EINVAL;
    fb_classifier_t *c = calloc(1, sizeof *c);
    if (!c)
        return FB_ENOMEM;
    int rc = FB_EINVAL;
    c->ngram_min = (int)nmin, c->ngram_max = (int)nmax;
    get(&r, &c->scale, sizeof c->scale);
    get(&r, &c->shift, sizeof c->shift);
    if (!(c->scale > 0 && c->scale < 1e6 && fabs(c->shift) < 1e6))
        goto fail;
    c->labels = calloc(ncls, sizeof *c->labels);
    c->bias = calloc(ncls, sizeof *c->bias);
    c->ngrams = calloc(nfeat ? nfeat : 1, sizeof *c->ngrams);
    c->idf = calloc(nfeat ? nfeat : 1, sizeof *c->idf);
    c->off = calloc((size_t)nfeat + 1, sizeof *c->off);
    c->cls = calloc(nnz ? nnz : 1, sizeof *c->cls);
    c->w = calloc(nnz ? nnz : 1, sizeof *c->w);
    c->index = fb_map_new();
    if (!c->labels || !c->bias || !c->ngrams || !c->idf || !c->off || !c->cls || !c->w ||
        !c->index) {
        rc = FB_ENOMEM;
        goto fail;
    }
    for (uint32_t j = 0; j < ncls; j++) {
        uint16_t l;
        get(&r, &l, sizeof l);
        c->labels[j] = get_str(&r, l);
        get(&r, &c->bias[j], sizeof c->bias[j]);
        if (r.bad)
            goto fail;
        c->n_classes = j + 1;
        if (j > 0 && strcmp(c->labels[j - 1], c->labels[j]) >= 0)
            goto fail; /* fb_classify_class_of() relies on the order */
    }
    for (uint32_t f = 0; f < nfeat; f++) {
        uint8_t l;
        uint32_t nw;
        get(&r, &l, sizeof l);
        c->ngrams[f] = get_str(&r, l);
        get(&r, &c->idf[f], sizeof c->idf[f]);
        get(&r, &nw, sizeof nw);
        if (r.bad)
            goto fail;
        c->n_features = f + 1;
        if (nw > nnz - c->off[f] || fb_map_get(c->index, c->ngrams[f]))
            goto fail;
        c->off[f + 1] = c->off[f] + nw;
        if (fb_map_put(c->index, c->ngrams[f], (void *)(uintptr_t)(f + 1), NULL)) {
            rc = FB_ENOMEM;
            goto fail;
        }
    }
    if (c->off[nfeat] != nnz)
        goto fail;
    for (uint32_t k = 0; k < nnz; k++) {
        get(&r, &c->cls[k], sizeof c->cls[k]);
        get(&r, &c->w[k], sizeof c->w[k]);
        if (r.bad || c->cls[k] >= ncls || !isfinite(c->w[k]))
            goto fail;
    }
    if (r.left != 0)
        goto fail;
    *out = c;
    return 0;
fail:
    fb_classifier_destroy(&c);
    return rc;
}

int fb_classifier_load_latest(PGconn *db, fb_classifier_t **out, int *version) {
    *out = NULL;
    *version = 0;
    /* Binary results: the bytea arrives as its bytes, not hex text. */
    PGresult *res = PQexecParams(
        db, "SELECT version, model FROM classifier_models ORDER BY version DESC LIMIT 1", 0, NULL,
        NULL, NULL, NULL, 1);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        fb_log(FB_LOG_ERROR, "event=classifier_load_failed error=\"%s\"",
               PQresultErrorMessage(res));
        PQclear(res);
        return FB_EDB;
    }
    int rc = 0;
    if (PQntuples(res) == 1) {
        uint32_t v;
        memcpy(&v, PQgetvalue(res, 0, 0), sizeof v);
        v = ntohl(v); /* a binary int4 comes in network order */
        rc = fb_classifier_load((const unsigned char *)PQgetvalue(res, 0, 1),
                                (size_t)PQgetlength(res, 0, 1), out);
        if (rc == 0)
            *version = (int)v;
        else
            fb_log(FB_LOG_ERROR, "event=classifier_invalid version=%u", v);
    }
    PQclear(res);
    return rc;
}
