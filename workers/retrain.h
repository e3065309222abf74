/* retrain.h — the classifier's retraining schedule.
 *
 * Every [worker] classify_retrain_every_h hours (0: never) a worker retrains
 * the classifier when operators (or imports) added training examples since
 * the newest model, so that today's decisions route tomorrow's petitions. It
 * does not train on its own loop: it spawns `fenboctl classify train`, which
 * stores the model in classifier_models; the trigger there NOTIFYs
 * fenbo_model and every dispatcher loads it. The worker looks every ten
 * minutes whether a model is due (the newest is older than the period), so
 * a restart neither skips nor repeats a round. */
#ifndef FB_RETRAIN_H
#define FB_RETRAIN_H

#include "fb_config.h"

#include <libpq-fe.h>
#include <stdbool.h>

typedef struct fb_worker fb_worker_t;
typedef struct fb_retrain fb_retrain_t;

/* Starts the schedule's timer on w's loop. *out is the caller's:
 * fb_retrain_stop(). */
int fb_retrain_start(fb_worker_t *w, fb_retrain_t **out);
/* Stops the timer and a training still running (nothing half stored); the
 * memory is freed once the handles have closed. Sets *r to NULL. */
void fb_retrain_stop(fb_retrain_t **r);
/* Takes classify_retrain_every_h from cfg (SIGHUP). */
void fb_retrain_reload(fb_retrain_t *r, const fb_config_t *cfg);

/* Whether a new model is due on db: examples newer than the newest model,
 * and that model older than every_h hours (or none at all). Returns 0 with
 * *due set, or FB_EDB. */
int fb_retrain_due(PGconn *db, int every_h, bool *due);

#endif
