/* fb_classify_priv.h — what fb_classify.c (features, scoring, the stored
 * form) and fb_classify_train.c (training) share; no other file includes
 * it. */
#ifndef FB_CLASSIFY_PRIV_H
#define FB_CLASSIFY_PRIV_H

#include "fb_classify.h"
#include "fb_map.h"

#include <linear.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NGRAM_MAX_LEN 8 /* code points; params are clamped to it */

struct fb_classifier {
    int ngram_min, ngram_max;
    size_t n_classes, n_features;
    char **labels;       /* n_classes category codes, sorted */
    char **ngrams;       /* n_features n-grams */
    float *idf;          /* n_features */
    float *bias;         /* n_classes */
    uint32_t *off;       /* n_features + 1: feature f's weights are [off[f], off[f+1]) */
    uint16_t *cls;       /* class of each stored weight */
    float *w;            /* the weights, near-zero ones pruned */
    double scale, shift; /* calibration: σ(scale × decision value + shift) */
    fb_map_t *index;     /* n-gram → feature + 1 */
};

/* A text as LIBLINEAR's features. */
typedef struct vec {
    struct feature_node *x; /* sorted by index, L2-normalised, then bias, then -1 */
    size_t n;               /* nodes before the bias */
} vec_t;

typedef void (*ngram_cb)(void *ud, const char *ngram);

/* The code points of text the n-grams are made of, 0 at a boundary; *n
 * their count. The array is the caller's. */
uint32_t *fb_classify_units(const char *text, size_t *n);
/* cp as UTF-8 into out (4 bytes at most); returns the length. */
size_t fb_classify_utf8_encode(uint32_t cp, char *out);
/* Calls cb for every n-gram of text (lengths min..max), in order. */
void fb_classify_for_each_ngram(const char *text, int min, int max, ngram_cb cb, void *ud);
/* The sublinear TF-IDF vector of text over index's features, with a bias
 * node; out->x is the caller's. */
int fb_classify_vectorise(const fb_map_t *index, const float *idf, size_t n_features, int ngram_min,
                          int ngram_max, const char *text, vec_t *out);
/* The class id of category, -1 when the model does not know it. */
int fb_classify_class_of(const fb_classifier_t *c, const char *category);

#endif
