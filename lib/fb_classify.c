/* fb_classify.c — the petition classifier: character n-grams, TF-IDF, a
 * LIBLINEAR one-vs-rest logistic regression, and a sigmoid fitted on held-out
 * folds (Platt scaling) so that confidences are calibrated.
 *
 * Why character n-grams: Chinese has no spaces, residents misspell by
 * homophone and abbreviate freely, and a word segmenter trained on news text
 * knows none of "铁盖子" or "楼上滴水"; overlapping 1–3 character pieces carry
 * the words without deciding where they end. */
#include "fb_classify.h"
#include "fb_common.h"
#include "fb_log.h"
#include "fb_map.h"
#include "fb_text.h"

#include <linear.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NGRAM_MAX_LEN 8 /* code points; params are clamped to it */
#define MAGIC         "FBCLS001"

struct fb_classifier {
    int ngram_min, ngram_max;
    size_t n_classes, n_features;
    char **labels;      /* n_classes category codes, sorted */
    char **ngrams;      /* n_features n-grams */
    float *idf;         /* n_features */
    float *bias;        /* n_classes */
    uint32_t *off;      /* n_features + 1: feature f's weights are [off[f], off[f+1]) */
    uint16_t *cls;      /* class of each stored weight */
    float *w;           /* the weights, near-zero ones pruned */
    double scale, shift; /* calibration: σ(scale × decision value + shift) */
    fb_map_t *index;    /* n-gram → feature + 1 */
};

fb_classify_params_t fb_classify_params_default(void) {
    return (fb_classify_params_t){.ngram_min = 1,
                                  .ngram_max = 2,
                                  .min_df = 1,
                                  .c = 10.0,
                                  .calibration_folds = 3,
                                  .prune = 0.2};
}

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

static size_t utf8_encode(uint32_t cp, char *out) {
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
static uint32_t *units_of(const char *text, size_t *n) {
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

typedef void (*ngram_cb)(void *ud, const char *ngram);

/* Calls cb for every n-gram of text (lengths min..max), in order. */
static void for_each_ngram(const char *text, int min, int max, ngram_cb cb, void *ud) {
    size_t n;
    uint32_t *u = units_of(text, &n);
    if (!u)
        return;
    char buf[NGRAM_MAX_LEN * 4 + 1];
    for (size_t i = 0; i < n; i++) {
        size_t off = 0;
        for (int len = 1; len <= max && i + (size_t)len <= n; len++) {
            uint32_t cp = u[i + (size_t)len - 1];
            if (cp == 0)
                break;
            off += utf8_encode(cp, buf + off);
            if (len >= min) {
                buf[off] = '\0';
                cb(ud, buf);
            }
        }
    }
    free(u);
}

/* ---- a text as a feature vector ---------------------------------------- */

typedef struct vec {
    struct feature_node *x; /* sorted by index, L2-normalised, then bias, then -1 */
    size_t n;               /* nodes before the bias */
} vec_t;

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
static int vectorise(const fb_map_t *index, const float *idf, size_t n_features, int ngram_min,
                     int ngram_max, const char *text, vec_t *out) {
    collect_t c = {.index = index};
    for_each_ngram(text, ngram_min, ngram_max, collect_id, &c);
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
    if (vectorise(c->index, c->idf, c->n_features, c->ngram_min, c->ngram_max, text_norm, &v))
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

static int class_of(const fb_classifier_t *c, const char *category) {
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
    int j = c && category ? class_of(c, category) : -1;
    if (j < 0 || !text_norm || k == 0)
        return 0;
    vec_t v;
    if (vectorise(c->index, c->idf, c->n_features, c->ngram_min, c->ngram_max, text_norm, &v))
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

/* ---- training ----------------------------------------------------------- */

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void liblinear_quiet(const char *s) {
    (void)s;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Document frequencies: each n-gram once per document. */
typedef struct df_pass {
    fb_map_t *df;   /* n-gram → count (as a pointer-sized integer) */
    fb_map_t *seen; /* this document's n-grams */
    bool oom;
} df_pass_t;

static void count_df(void *ud, const char *ngram) {
    df_pass_t *d = ud;
    if (d->oom || fb_map_get(d->seen, ngram))
        return;
    uintptr_t n = (uintptr_t)fb_map_get(d->df, ngram);
    if (fb_map_put(d->seen, ngram, (void *)1, NULL) != 0 ||
        fb_map_put(d->df, ngram, (void *)(n + 1), NULL) != 0)
        d->oom = true;
}

/* What training works on: normalised texts, class ids, vectors. */
typedef struct corpus {
    size_t n;
    char **norm;
    double *y; /* class id as LIBLINEAR's label */
    vec_t *vec;
} corpus_t;

static void corpus_free(corpus_t *cp) {
    for (size_t i = 0; i < cp->n; i++) {
        free(cp->norm ? cp->norm[i] : NULL);
        free(cp->vec ? cp->vec[i].x : NULL);
    }
    free(cp->norm);
    free(cp->y);
    free(cp->vec);
}

/* Trains LIBLINEAR on the examples whose fold differs from skip_fold (-1:
 * all); NULL when out of memory. */
static struct model *train_fold(const corpus_t *cp, const int *fold, int skip_fold,
                                size_t n_features, double cost) {
    struct problem prob = {.n = (int)n_features + 1, .bias = 1.0};
    prob.y = malloc(cp->n * sizeof *prob.y);
    prob.x = malloc(cp->n * sizeof *prob.x);
    if (!prob.y || !prob.x) {
        free(prob.y);
        free(prob.x);
        return NULL;
    }
    for (size_t i = 0; i < cp->n; i++) {
        if (skip_fold >= 0 && fold[i] == skip_fold)
            continue;
        prob.y[prob.l] = cp->y[i];
        prob.x[prob.l] = cp->vec[i].x;
        prob.l++;
    }
    /* The dual solver: fast when features outnumber examples, as here. */
    struct parameter param = {.solver_type = L2R_LR_DUAL, .eps = 0.1, .C = cost};
    struct model *m = NULL;
    if (!check_parameter(&prob, &param))
        m = train(&prob, &param);
    free(prob.y);
    free(prob.x);
    return m;
}

/* The weight of feature f (0-based; n_features is the bias) for class id j
 * in a LIBLINEAR model. Two classes share one weight vector. */
static double model_weight(const struct model *m, const int *slot, size_t f, int j) {
    int s = slot[j];
    if (s < 0)
        return 0;
    if (m->nr_class == 2)
        return s == 0 ? m->w[f] : -m->w[f];
    return m->w[f * (size_t)m->nr_class + (size_t)s];
}

/* slot[class id] = the model's column for it, -1 when the fold lacked it. */
static void model_slots(const struct model *m, size_t n_classes, int *slot) {
    for (size_t j = 0; j < n_classes; j++)
        slot[j] = -1;
    for (int s = 0; s < m->nr_class; s++)
        slot[m->label[s]] = s;
}

/* Fits Platt's sigmoid σ(scale·d + shift) to held-out decision values d of
 * every (example, class) pair against "is this its class", by Newton's
 * method on the two parameters. Each class's score then reads as the
 * probability that the petition is of that class, so a text that shares
 * nothing with any class scores low everywhere — a softmax would hand the
 * class with the largest bias a confident win. */
static void fit_calibration(const corpus_t *cp, size_t n_classes, size_t n_features,
                            const fb_classify_params_t *params, double *scale, double *shift) {
    *scale = 1.0, *shift = 0.0;
    int folds = params->calibration_folds;
    if (folds < 2 || cp->n < (size_t)folds * 2)
        return;
    int *fold = malloc(cp->n * sizeof *fold);
    double *dec = malloc(cp->n * n_classes * sizeof *dec);
    int *slot = malloc(n_classes * sizeof *slot);
    if (!fold || !dec || !slot)
        goto done;
    for (size_t i = 0; i < cp->n; i++)
        fold[i] = (int)(i % (size_t)folds);
    for (int k = 0; k < folds; k++) {
        struct model *m = train_fold(cp, fold, k, n_features, params->c);
        if (!m)
            goto done;
        model_slots(m, n_classes, slot);
        for (size_t i = 0; i < cp->n; i++) {
            if (fold[i] != k)
                continue;
            double *d = dec + i * n_classes;
            for (size_t j = 0; j < n_classes; j++) {
                d[j] = slot[j] < 0 ? NAN : model_weight(m, slot, n_features, (int)j);
                for (size_t q = 0; q < cp->vec[i].n && slot[j] >= 0; q++)
                    d[j] += cp->vec[i].x[q].value *
                            model_weight(m, slot, (size_t)cp->vec[i].x[q].index - 1, (int)j);
            }
        }
        free_and_destroy_model(&m);
        fb_log(FB_LOG_INFO, "event=classify_calibration_fold fold=%d of=%d", k + 1, folds);
    }
    double a = 1.0, b = 0.0, loss = 0;
    for (int it = 0; it < 50; it++) {
        double ga = 0, gb = 0, haa = 1e-9, hab = 0, hbb = 1e-9;
        loss = 0;
        for (size_t i = 0; i < cp->n; i++)
            for (size_t j = 0; j < n_classes; j++) {
                double d = dec[i * n_classes + j];
                if (isnan(d))
                    continue; /* a class the fold never saw */
                double y = (size_t)cp->y[i] == j, z = a * d + b, p = 1 / (1 + exp(-z));
                loss -= y ? log(fmax(p, 1e-15)) : log(fmax(1 - p, 1e-15));
                double w = p * (1 - p);
                ga += (p - y) * d, gb += p - y;
                haa += w * d * d, hab += w * d, hbb += w;
            }
        double det = haa * hbb - hab * hab;
        if (!(det > 0))
            break;
        double da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det;
        a -= da, b -= db;
        if (fabs(da) < 1e-6 && fabs(db) < 1e-6)
            break;
    }
    if (isfinite(a) && isfinite(b) && a > 0)
        *scale = a, *shift = b;
    fb_log(FB_LOG_INFO, "event=classify_calibrated scale=%.4f shift=%.4f log_loss=%.5f", *scale,
           *shift, loss / (double)(cp->n * n_classes));
done:
    free(fold);
    free(dec);
    free(slot);
}

/* Copies the final model's weights into c, dropping those too small to move
 * a confidence (|w| < prune): most of a one-vs-rest model is near zero, and
 * the dispatcher keeps the model in memory. */
static int take_weights(fb_classifier_t *c, const struct model *m, double prune) {
    int *slot = malloc(c->n_classes * sizeof *slot);
    c->off = calloc(c->n_features + 1, sizeof *c->off);
    c->bias = calloc(c->n_classes, sizeof *c->bias);
    if (!slot || !c->off || !c->bias)
        goto oom;
    model_slots(m, c->n_classes, slot);
    size_t nnz = 0;
    for (size_t f = 0; f < c->n_features; f++)
        for (size_t j = 0; j < c->n_classes; j++)
            nnz += fabs(model_weight(m, slot, f, (int)j)) >= prune;
    c->cls = malloc((nnz ? nnz : 1) * sizeof *c->cls);
    c->w = malloc((nnz ? nnz : 1) * sizeof *c->w);
    if (!c->cls || !c->w)
        goto oom;
    size_t k = 0;
    for (size_t f = 0; f < c->n_features; f++) {
        c->off[f] = (uint32_t)k;
        for (size_t j = 0; j < c->n_classes; j++) {
            double w = model_weight(m, slot, f, (int)j);
            if (fabs(w) >= prune) {
                c->cls[k] = (uint16_t)j;
                c->w[k++] = (float)w;
            }
        }
    }
    c->off[c->n_features] = (uint32_t)k;
    for (size_t j = 0; j < c->n_classes; j++)
        c->bias[j] = slot[j] < 0 ? -1e3f : (float)model_weight(m, slot, c->n_features, (int)j);
    free(slot);
    fb_log(FB_LOG_INFO, "event=classify_weights kept=%zu of=%zu", nnz,
           c->n_features * c->n_classes);
    return 0;
oom:
    free(slot);
    return FB_ENOMEM;
}

int fb_classifier_train(const fb_example_t *ex, size_t n, const fb_classify_params_t *params,
                        fb_classifier_t **out, char *err, size_t errlen) {
    fb_classify_params_t pr = params ? *params : fb_classify_params_default();
    if (pr.ngram_min < 1)
        pr.ngram_min = 1;
    if (pr.ngram_max > NGRAM_MAX_LEN)
        pr.ngram_max = NGRAM_MAX_LEN;
    if (pr.ngram_max < pr.ngram_min)
        pr.ngram_max = pr.ngram_min;
    *out = NULL;
    set_print_string_function(liblinear_quiet);

    int rc = FB_ENOMEM;
    corpus_t cp = {0};
    df_pass_t d = {0};
    fb_classifier_t *c = calloc(1, sizeof *c);
    if (!c)
        return FB_ENOMEM;
    c->ngram_min = pr.ngram_min, c->ngram_max = pr.ngram_max;

    /* Labels: the distinct categories, sorted, so a class id is stable. */
    char **labels = malloc((n ? n : 1) * sizeof *labels);
    if (!labels)
        goto fail;
    for (size_t i = 0; i < n; i++)
        labels[i] = (char *)ex[i].category;
    qsort(labels, n, sizeof *labels, cmp_str);
    size_t nl = 0;
    for (size_t i = 0; i < n; i++)
        if (nl == 0 || strcmp(labels[nl - 1], labels[i]) != 0)
            labels[nl++] = labels[i];
    if (nl < 2 || nl > UINT16_MAX) {
        free(labels);
        fb_classifier_destroy(&c);
        seterr(err, errlen, "training needs examples of 2 to %d categories, not %zu", UINT16_MAX,
               nl);
        return FB_EINVAL;
    }
    c->labels = calloc(nl, sizeof *c->labels);
    if (!c->labels) {
        free(labels);
        goto fail;
    }
    c->n_classes = nl;
    for (size_t j = 0; j < nl; j++)
        if (!(c->labels[j] = strdup(labels[j]))) {
            free(labels);
            goto fail;
        }
    free(labels);

    /* Normalise every text and count document frequencies. */
    cp.n = n;
    cp.norm = calloc(n, sizeof *cp.norm);
    cp.y = malloc(n * sizeof *cp.y);
    cp.vec = calloc(n, sizeof *cp.vec);
    d.df = fb_map_new();
    if (!cp.norm || !cp.y || !cp.vec || !d.df)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        int r = fb_text_normalize(ex[i].text ? ex[i].text : "", &cp.norm[i]);
        if (r == FB_EUTF8) {
            rc = FB_EINVAL;
            seterr(err, errlen, "example %zu is not valid UTF-8", i + 1);
            goto fail;
        }
        if (r)
            goto fail;
        cp.y[i] = class_of(c, ex[i].category);
        d.seen = fb_map_new();
        if (!d.seen)
            goto fail;
        for_each_ngram(cp.norm[i], pr.ngram_min, pr.ngram_max, count_df, &d);
        fb_map_destroy(&d.seen, NULL);
        if (d.oom)
            goto fail;
    }

    /* The vocabulary: n-grams in at least min_df documents, numbered in the
     * order the texts first show them (fb_map has no iterator). */
    c->index = fb_map_new();
    c->ngrams = malloc((fb_map_size(d.df) + 1) * sizeof *c->ngrams);
    if (!c->index || !c->ngrams)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        size_t nu;
        uint32_t *u = units_of(cp.norm[i], &nu);
        if (!u)
            goto fail;
        char buf[NGRAM_MAX_LEN * 4 + 1];
        for (size_t a = 0; a < nu; a++) {
            size_t off = 0;
            for (int len = 1; len <= pr.ngram_max && a + (size_t)len <= nu; len++) {
                uint32_t cpnt = u[a + (size_t)len - 1];
                if (cpnt == 0)
                    break;
                off += utf8_encode(cpnt, buf + off);
                buf[off] = '\0';
                if (len < pr.ngram_min || fb_map_get(c->index, buf))
                    continue;
                if ((uintptr_t)fb_map_get(d.df, buf) < (uintptr_t)(pr.min_df > 0 ? pr.min_df : 1))
                    continue;
                char *s = strdup(buf);
                if (!s || fb_map_put(c->index, buf, (void *)(uintptr_t)(c->n_features + 1), NULL)) {
                    free(s);
                    free(u);
                    goto fail;
                }
                c->ngrams[c->n_features++] = s;
            }
        }
        free(u);
    }
    c->idf = malloc((c->n_features ? c->n_features : 1) * sizeof *c->idf);
    if (!c->idf)
        goto fail;
    for (size_t f = 0; f < c->n_features; f++) {
        double df = (double)(uintptr_t)fb_map_get(d.df, c->ngrams[f]);
        c->idf[f] = (float)(log((1.0 + (double)n) / (1.0 + df)) + 1.0);
    }
    fb_map_destroy(&d.df, NULL);
    fb_log(FB_LOG_INFO, "event=classify_vocabulary examples=%zu categories=%zu features=%zu", n,
           c->n_classes, c->n_features);

    for (size_t i = 0; i < n; i++)
        if ((rc = vectorise(c->index, c->idf, c->n_features, c->ngram_min, c->ngram_max, cp.norm[i],
                            &cp.vec[i])) != 0)
            goto fail;
    rc = FB_ENOMEM;

    fit_calibration(&cp, c->n_classes, c->n_features, &pr, &c->scale, &c->shift);
    struct model *m = train_fold(&cp, NULL, -1, c->n_features, pr.c);
    if (!m)
        goto fail;
    rc = take_weights(c, m, pr.prune);
    free_and_destroy_model(&m);
    if (rc)
        goto fail;
    corpus_free(&cp);
    *out = c;
    return 0;
fail:
    fb_map_destroy(&d.df, NULL);
    fb_map_destroy(&d.seen, NULL);
    corpus_free(&cp);
    fb_classifier_destroy(&c);
    if (rc == FB_ENOMEM)
        seterr(err, errlen, "out of memory");
    return rc;
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
            goto fail; /* class_of() relies on the order */
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
        v = (v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24); /* network order */
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
