/* teach.h — operators teach the classifier: every decision an operator takes
 * on a case's category (assigning a manual-queue case, changing a category,
 * re-dispatching an approved return) becomes a training example
 * (training_examples, source 'operator'), in the decision's own transaction.
 * The worker's retraining (retrain.h) turns them into the next model. */
#ifndef FB_TEACH_H
#define FB_TEACH_H

#include "casetx.h"

#include <stdbool.h>
#include <stdint.h>

/* Records the case's first petition's text as an example of category (NULL:
 * the case's own category). Only a leaf of the catalogue teaches: with a
 * coarse category, or none, nothing is written (*written false). who is the
 * operator's token name. Returns 0 or FB_EDB. */
int fb_teach_example(fb_casetx_t *t, int64_t case_id, const char *category, const char *who,
                     bool *written);

/* Whether category is a code of the catalogue (*known) and a leaf (*leaf). */
int fb_teach_category_known(fb_casetx_t *t, const char *category, bool *known, bool *leaf);

/* Sets the case's category on an operator's word (category_source
 * 'operator', no model version or confidence). *changed: it was another. */
int fb_teach_set_category(fb_casetx_t *t, int64_t case_id, const char *category, bool *changed);

/* The category of the case's suggestion (the model's top 3, best first) whose
 * department is department: the category an operator picks with a
 * suggestion. Writes "" when none. */
int fb_teach_suggested_category(fb_casetx_t *t, int64_t case_id, const char *department, char *out,
                                size_t outlen);

#endif
