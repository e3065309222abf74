/* fb_classify.h — the petition classifier: normalised text → ranked leaf
 * categories with calibrated confidences. fenbo-dispatcher, fenbo-worker
 * (retraining, suggestions) and `fenboctl classify|rules explain` all run this
 * very code, like the rule matcher.
 *
 * The model is character n-grams of the normalised text (fb_text_normalize),
 * weighted TF-IDF and L2-normalised, scored by a linear model trained with
 * LIBLINEAR (one-vs-rest logistic regression); the decision values go through
 * a sigmoid fitted on held-out folds (Platt scaling), so that a confidence
 * reads as the probability that the petition is of that category (scaled
 * down when several are likely, so that they never sum past one). A model is a byte string
 * (fb_classifier_save/load) kept in PostgreSQL (classifier_models). */
#ifndef FB_CLASSIFY_H
#define FB_CLASSIFY_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct fb_classifier fb_classifier_t;

/* One labelled example. Strings borrowed. text is the original text: training
 * normalises it itself. */
typedef struct fb_example {
    const char *text;
    const char *category;
} fb_example_t;

/* Training settings; fb_classify_params_default() gives the measured best. */
typedef struct fb_classify_params {
    int ngram_min, ngram_max; /* character n-gram lengths, e.g. 1..3 */
    int min_df;               /* keep an n-gram seen in at least this many examples */
    double c;                 /* LIBLINEAR's cost */
    int calibration_folds;    /* folds for the calibration; 0: none */
    double prune;             /* weights of smaller magnitude are dropped from the model */
} fb_classify_params_t;

fb_classify_params_t fb_classify_params_default(void);

/* One ranked category. category is borrowed from the classifier. */
typedef struct fb_class_score {
    const char *category;
    double confidence; /* calibrated probability in [0, 1] */
} fb_class_score_t;

/* One n-gram's contribution to a category's score (tf-idf × weight). */
typedef struct fb_ngram_weight {
    char ngram[64]; /* UTF-8 */
    double weight;
} fb_ngram_weight_t;

/* Trains a model on n examples. *out is the caller's. Progress lines go to
 * the log at INFO. Returns FB_EINVAL (message in err) when fewer than two
 * categories have examples. */
int fb_classifier_train(const fb_example_t *ex, size_t n, const fb_classify_params_t *params,
                        fb_classifier_t **out, char *err, size_t errlen);

/* Serialises a model; *buf is the caller's (free()). */
int fb_classifier_save(const fb_classifier_t *c, unsigned char **buf, size_t *len);
/* Reads a serialised model; FB_EINVAL when it is not one. *out the caller's. */
int fb_classifier_load(const unsigned char *buf, size_t len, fb_classifier_t **out);
void fb_classifier_destroy(fb_classifier_t **c);

/* The newest model in classifier_models, and its version. *out is the
 * caller's; NULL with *version 0 when there is none (not an error). */
int fb_classifier_load_latest(PGconn *db, fb_classifier_t **out, int *version);

/* Ranks categories for normalised text: writes the k best to out (fewer when
 * the model knows fewer), best first, and returns how many. */
size_t fb_classifier_classify(const fb_classifier_t *c, const char *text_norm,
                              fb_class_score_t *out, size_t k);

/* The k n-grams of text_norm that weighed most for category, heaviest first;
 * returns how many. */
size_t fb_classifier_explain(const fb_classifier_t *c, const char *text_norm, const char *category,
                             fb_ngram_weight_t *out, size_t k);

/* How many categories the model knows, and the i-th (borrowed; NULL past
 * the end), in code order. */
size_t fb_classifier_categories(const fb_classifier_t *c);
const char *fb_classifier_category(const fb_classifier_t *c, size_t i);

#endif
