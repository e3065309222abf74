/* fb_classify_train.c — training a classifier (fb_classify.h): the
 * vocabulary and its document frequencies, LIBLINEAR's one-vs-rest logistic
 * regression, Platt scaling fitted on held-out folds, and the pruned weights
 * the stored model keeps. */
#include "fb_classify.h"
#include "fb_classify_priv.h"
#include "fb_common.h"
#include "fb_log.h"
#include "fb_text.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fb_classify_params_t fb_classify_params_default(void) {
    return (fb_classify_params_t){.ngram_min = 1,
                                  .ngram_max = 2,
                                  .min_df = 1,
                                  .c = 10.0,
                                  .calibration_folds = 3,
                                  .prune = 0.2};
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
        cp.y[i] = fb_classify_class_of(c, ex[i].category);
        d.seen = fb_map_new();
        if (!d.seen)
            goto fail;
        fb_classify_for_each_ngram(cp.norm[i], pr.ngram_min, pr.ngram_max, count_df, &d);
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
        uint32_t *u = fb_classify_units(cp.norm[i], &nu);
        if (!u)
            goto fail;
        char buf[NGRAM_MAX_LEN * 4 + 1];
        for (size_t a = 0; a < nu; a++) {
            size_t off = 0;
            for (int len = 1; len <= pr.ngram_max && a + (size_t)len <= nu; len++) {
                uint32_t cpnt = u[a + (size_t)len - 1];
                if (cpnt == 0)
                    break;
                off += fb_classify_utf8_encode(cpnt, buf + off);
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
        if ((rc = fb_classify_vectorise(c->index, c->idf, c->n_features, c->ngram_min, c->ngram_max,
                                        cp.norm[i], &cp.vec[i])) != 0)
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
