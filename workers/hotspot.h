/* hotspot.h — hotspots (未诉先办): acting before more residents have to call.
 *
 * When [worker] hotspot_threshold petitions of one category arrive from one
 * community (a grid's petitions count towards its community, through
 * regions.parent_code) within [worker] hotspot_window_min minutes, one alert
 * is raised: a hotspot_alerts row, its petitions in hotspot_petitions, the
 * street office that owns the place (the street_office department whose
 * jurisdiction's region code is the longest prefix of the community's
 * code), a 'hotspot' event on each case involved (written just after, a
 * few hundred petitions per transaction), and a log line.
 * Supervisors, operators and that street office read it at GET
 * /api/v1/hotspots.
 *
 * An alert is a burst: the petitions of one category and community cut
 * wherever two come more than a window apart. Every further petition of its
 * burst joins the alert (it grows, and the new cases get their 'hotspot'
 * event), so a lasting burst is one alert, not one per `threshold` calls;
 * after a quiet window the next burst is a new alert. A petition is in one
 * alert at most (the primary key of hotspot_petitions).
 *
 * One worker at a time sweeps (a transaction advisory lock); the other
 * skips its turn. A sweep looks back `lookback_min` minutes: a day after the
 * worker starts and every ten minutes (late petitions: intake spooled them
 * while the dispatcher was away), the window and the time since the last
 * sweep in between. */
#ifndef FB_HOTSPOT_H
#define FB_HOTSPOT_H

#include "fb_http.h"

#include <libpq-fe.h>

typedef struct fb_worker fb_worker_t;

/* How far back a full look goes, in minutes: a day, or the window when that
 * is longer. Pure. */
int fb_hotspot_lookback_min(int window_min);

/* Joins new petitions to their growing alerts, then raises the new alerts.
 * threshold 0 disables. *raised: alerts raised, *grown: alerts that took in
 * petitions. Returns 0 or FB_EDB. */
int fb_hotspot_sweep(PGconn *db, int threshold, int window_min, int lookback_min, int *raised,
                     int *grown);

/* Writes the 'hotspot' events of up to `batch` petitions the sweeps linked
 * and did not note yet, in one short transaction (a flood's events in one
 * held all its cases locked). *noted: petitions noted, fewer than batch when
 * none is left. Skips, with 0, while another worker sweeps. Returns 0 or
 * FB_EDB. */
int fb_hotspot_note(PGconn *db, int batch, int *noted);

/* GET /api/v1/hotspots — alerts raised or grown in the last `hours` hours
 * (1..720, default 24), newest first, with the category, the community, the
 * street office and the petitions' tracking numbers. A department token sees
 * only the alerts of its own street. Answers the request. */
void fb_hotspot_api_list(fb_worker_t *w, fb_http_req_t *req, const char *role,
                         const char *department);

#endif
