/* deadlines.c — the SLA timers (reminder, overdue, escalation 督办), the
 * supervisors' overdue list, and the periodic sweep that runs every timer of
 * the worker (this file's, callback.c's and hotspot.c's). */
#include "deadlines.h"
#include "api_util.h"
#include "callback.h"
#include "fb_common.h"
#include "grid.h"
#include "fb_db.h"
#include "fb_log.h"
#include "hotspot.h"
#include "lifecycle.h"
#include "worker.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows per statement. Each event written locks its case until the
 * statement commits (the audit chain, 0009_case_locks): a few hundred at a
 * time keep those locks short. */
#define SWEEP_BATCH 200
/* Hotspot petitions noted on their cases per transaction: each holds its
 * cases locked for a few tens of milliseconds. */
#define NOTE_BATCH 1000
/* The calendar is read again this often (it changes a few times a year). */
#define CALENDAR_RELOAD_MS UINT64_C(60000)
/* A hotspot look reads the window's petitions and those since the last
 * look; this often (and at the start) a day's, for petitions that reached
 * the database late (spooled while the dispatcher was away). */
#define HOTSPOT_DAY_MS UINT64_C(600000)
/* A full sweep (every waiting case, every open task) this often and when
 * the worker starts; recent sweeps in between look back to the start of the
 * previous sweep and this margin further. */
#define FULL_SWEEP_MS   UINT64_C(60000)
#define RECENT_MARGIN_S 60.0
/* How long a sweep holds the loop before it lets HTTP and the bus in. */
#define TURN_BUDGET_MS 200

#define OVERDUE_LIMIT_DEFAULT 100
#define OVERDUE_LIMIT_MAX     1000

static const struct {
    const char *name, *event, *deadline;
} s_actions[FB_TIMER_ACTION_COUNT] = {
    [FB_TIMER_REMINDER_ACCEPT] = {"reminder_accept", "reminder_accept", "accept"},
    [FB_TIMER_REMINDER_REPLY] = {"reminder_reply", "reminder_reply", "reply"},
    [FB_TIMER_OVERDUE_ACCEPT] = {"overdue_accept", "overdue_accept", "accept"},
    [FB_TIMER_OVERDUE_REPLY] = {"overdue_reply", "overdue_reply", "reply"},
    [FB_TIMER_ESCALATED_ACCEPT] = {"escalated_accept", "escalated", "accept"},
    [FB_TIMER_ESCALATED_REPLY] = {"escalated_reply", "escalated", "reply"},
};

const char *fb_timer_action_name(fb_timer_action_t a) {
    return (unsigned)a < FB_TIMER_ACTION_COUNT ? s_actions[a].name : NULL;
}

const char *fb_timer_action_event(fb_timer_action_t a) {
    return (unsigned)a < FB_TIMER_ACTION_COUNT ? s_actions[a].event : NULL;
}

const char *fb_timer_action_deadline(fb_timer_action_t a) {
    return (unsigned)a < FB_TIMER_ACTION_COUNT ? s_actions[a].deadline : NULL;
}

void fb_deadline_opts_from_config(fb_deadline_opts_t *o, const fb_config_t *cfg) {
    o->reminder_accept_min = cfg->worker_reminder_accept_min;
    o->reminder_reply_min = cfg->worker_reminder_reply_min;
    o->escalate_after_h = cfg->worker_escalate_after_h;
    o->batch = SWEEP_BATCH;
}

bool fb_timer_action_offset(const fb_deadline_opts_t *o, fb_timer_action_t a, int64_t *offset_s) {
    switch (a) {
    case FB_TIMER_REMINDER_ACCEPT:
        *offset_s = -(int64_t)o->reminder_accept_min * 60;
        return o->reminder_accept_min > 0;
    case FB_TIMER_REMINDER_REPLY:
        *offset_s = -(int64_t)o->reminder_reply_min * 60;
        return o->reminder_reply_min > 0;
    case FB_TIMER_OVERDUE_ACCEPT:
    case FB_TIMER_OVERDUE_REPLY:
        *offset_s = 0;
        return true;
    case FB_TIMER_ESCALATED_ACCEPT:
    case FB_TIMER_ESCALATED_REPLY:
        *offset_s = (int64_t)o->escalate_after_h * 3600;
        return true;
    default:
        return false;
    }
}

/* ---- the SLA timers ------------------------------------------------------ */

/* One statement per deadline column (a column cannot be a parameter), per
 * kind of sweep, and with or without a prerequisite:
 *   $1 statuses waiting for the deadline   $2 offset from the deadline (s)
 *   $3 window (s; a recent sweep)          $4 only before the deadline (reminder)
 *   $5 timer_actions.action   $6 batch     $7 event type   $8 "accept"|"reply"
 *   $9, $10 the cursor (due, case id; a full sweep)
 *   $11 the action that must have been done first for the same deadline
 *       (an escalation follows the overdue event)
 * A recent sweep takes the cases whose deadline made the action due within
 * the window, or that changed within it, through two small index ranges (no
 * order, no cursor: what it did drops out of the next batch); a full sweep
 * walks every waiting case in (deadline, id) order along the cursor.
 * The due cases are locked (SKIP LOCKED: another worker or an API call
 * holding one leaves it to the next sweep), which also means a case signed
 * for a moment ago is seen with its new status, not the old one. An action
 * row that conflicts inserts nothing and so appends no event. One row per
 * case looked at comes back, in cursor order, saying whether it was done. */
// clang-format off
#define SQL_TIMER(col, scope, prereq)                                                              \
    "WITH due AS ("                                                                                \
    " SELECT c.id, c." col " AS due, c.department_code, c.status FROM cases c"                     \
    " WHERE c.status = ANY($1::text[])"                                                            \
    " AND c." col " <= now() - make_interval(secs => $2::bigint)"                                  \
    " AND (NOT $4::boolean OR c." col " > now())"                                                  \
    " AND NOT EXISTS (SELECT 1 FROM timer_actions t"                                               \
    "  WHERE t.case_id = c.id AND t.action = $5 AND t.due = c." col ")"                            \
    prereq scope                                                                                   \
    " LIMIT $6::int FOR UPDATE OF c SKIP LOCKED),"                                                 \
    " ta AS (INSERT INTO timer_actions (case_id, action, due)"                                     \
    " SELECT id, $5, due FROM due ON CONFLICT DO NOTHING RETURNING case_id),"                      \
    " ev AS (INSERT INTO case_events (case_id, actor, type, data)"                                 \
    " SELECT ta.case_id, 'fenbo-worker', $7, jsonb_build_object('deadline', $8::text,"             \
    "  'due', due.due, 'department', due.department_code, 'status', due.status,"                   \
    "  'offset_s', $2::bigint)"                                                                    \
    " FROM ta JOIN due ON due.id = ta.case_id ORDER BY due.due, due.id RETURNING case_id)"         \
    " SELECT due.id, due.due, ev.case_id IS NOT NULL, due.department_code"                         \
    " FROM due LEFT JOIN ev ON ev.case_id = due.id ORDER BY due.due, due.id"

#define SQL_RECENT(col)                                                                            \
    " AND (c." col " > now() - make_interval(secs => $2::bigint)"                                  \
    "  - make_interval(secs => $3::float8)"                                                        \
    "  OR c.updated_at > now() - make_interval(secs => $3::float8))"
#define SQL_FULL(col)                                                                              \
    " AND (c." col ", c.id) > ($9::timestamptz, $10::bigint) ORDER BY c." col ", c.id"
#define SQL_PREREQ(col)                                                                            \
    " AND EXISTS (SELECT 1 FROM timer_actions p"                                                   \
    "  WHERE p.case_id = c.id AND p.action = $11 AND p.due = c." col ")"

/* [deadline: accept, reply][full sweep][prerequisite] */
static const char *const s_timer_sql[2][2][2] = {
    {{SQL_TIMER("accept_due", SQL_RECENT("accept_due"), ""),
      SQL_TIMER("accept_due", SQL_RECENT("accept_due"), SQL_PREREQ("accept_due"))},
     {SQL_TIMER("accept_due", SQL_FULL("accept_due"), ""),
      SQL_TIMER("accept_due", SQL_FULL("accept_due"), SQL_PREREQ("accept_due"))}},
    {{SQL_TIMER("reply_due", SQL_RECENT("reply_due"), ""),
      SQL_TIMER("reply_due", SQL_RECENT("reply_due"), SQL_PREREQ("reply_due"))},
     {SQL_TIMER("reply_due", SQL_FULL("reply_due"), ""),
      SQL_TIMER("reply_due", SQL_FULL("reply_due"), SQL_PREREQ("reply_due"))}},
};

/* The parameters' types, given so that a variant need not use all of them:
 * text[], bigint, float8, boolean, text, integer, text, text, timestamptz,
 * bigint, text (PostgreSQL's built-in type OIDs). */
static const Oid s_timer_types[11] = {1009, 20, 701, 16, 25, 23, 25, 25, 1184, 20, 25};
// clang-format on

/* A PostgreSQL array literal of the statuses for which pred holds of the
 * lifecycle table: the timers ask the table which cases still wait, they do
 * not keep a list of their own. */
static void statuses_where(bool (*pred)(fb_case_status_t), char *out, size_t outlen) {
    size_t n = (size_t)snprintf(out, outlen, "{");
    for (int s = 0; s < FB_CASE_STATUS_COUNT && n < outlen; s++) {
        if (!pred((fb_case_status_t)s))
            continue;
        n += (size_t)snprintf(out + n, outlen - n, "%s%s", n > 1 ? "," : "",
                              fb_case_status_name((fb_case_status_t)s));
    }
    if (n < outlen)
        snprintf(out + n, outlen - n, "}");
}

/* Waiting to be signed for: the department may still accept it. */
static bool awaits_accept(fb_case_status_t s) {
    return fb_lifecycle_allowed(s, FB_CASE_ACCEPT);
}

/* Waiting for the reply: it may still be signed for, or replied to. */
static bool awaits_reply(fb_case_status_t s) {
    return fb_lifecycle_allowed(s, FB_CASE_ACCEPT) || fb_lifecycle_allowed(s, FB_CASE_REPLY);
}

/* The action an escalation waits for. */
static const char *prerequisite(fb_timer_action_t a) {
    if (a == FB_TIMER_ESCALATED_ACCEPT)
        return fb_timer_action_name(FB_TIMER_OVERDUE_ACCEPT);
    if (a == FB_TIMER_ESCALATED_REPLY)
        return fb_timer_action_name(FB_TIMER_OVERDUE_REPLY);
    return NULL;
}

static bool is_reminder(fb_timer_action_t a) {
    return a == FB_TIMER_REMINDER_ACCEPT || a == FB_TIMER_REMINDER_REPLY;
}

void fb_timer_cursor_reset(fb_timer_cursor_t *cur) {
    snprintf(cur->due, sizeof cur->due, "-infinity");
    cur->id = 0;
}

int fb_deadlines_batch(PGconn *db, const fb_deadline_opts_t *o, fb_timer_action_t a,
                       double window_s, fb_timer_cursor_t *cur, int *scanned, int *done) {
    *scanned = *done = 0;
    int64_t offset_s;
    if (!fb_timer_action_offset(o, a, &offset_s))
        return 0;
    bool accept = strcmp(fb_timer_action_deadline(a), "accept") == 0;
    const char *pre = prerequisite(a);
    char statuses[256], off[24], win[32], cur_id[24], lim[16];
    statuses_where(accept ? awaits_accept : awaits_reply, statuses, sizeof statuses);
    snprintf(off, sizeof off, "%" PRId64, offset_s);
    snprintf(win, sizeof win, "%.3f", window_s);
    snprintf(cur_id, sizeof cur_id, "%" PRId64, cur->id);
    snprintf(lim, sizeof lim, "%d", o->batch);
    const char *params[] = {statuses,
                            off,
                            window_s >= 0 ? win : NULL,
                            is_reminder(a) ? "true" : "false",
                            fb_timer_action_name(a),
                            lim,
                            fb_timer_action_event(a),
                            fb_timer_action_deadline(a),
                            cur->due,
                            cur_id,
                            pre};
    const char *sql = s_timer_sql[accept ? 0 : 1][window_s < 0][pre != NULL];
    PGresult *r = PQexecParams(db, sql, 11, s_timer_types, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fb_log(FB_LOG_WARN, "event=db_error op=timer action=%s error=\"%s\"",
               fb_timer_action_name(a), fb_db_error(db));
        PQclear(r);
        return FB_EDB;
    }
    *scanned = PQntuples(r);
    for (int i = 0; i < *scanned; i++) {
        if (strcmp(PQgetvalue(r, i, 2), "t") != 0)
            continue;
        (*done)++;
        fb_log(a >= FB_TIMER_OVERDUE_ACCEPT ? FB_LOG_INFO : FB_LOG_DEBUG,
               "event=%s case_id=%s deadline=%s due=\"%s\" department=%s", fb_timer_action_name(a),
               PQgetvalue(r, i, 0), fb_timer_action_deadline(a), PQgetvalue(r, i, 1),
               PQgetisnull(r, i, 3) ? "-" : PQgetvalue(r, i, 3));
    }
    if (*scanned > 0) {
        snprintf(cur->due, sizeof cur->due, "%s", PQgetvalue(r, *scanned - 1, 1));
        cur->id = strtoll(PQgetvalue(r, *scanned - 1, 0), NULL, 10);
    }
    PQclear(r);
    return 0;
}

/* ---- GET /api/v1/overdue ------------------------------------------------- */

/*   $1 statuses waiting to be signed for   $2 statuses waiting for a reply
 *   $3 deadline filter   $4 department filter   $5 the caller's department
 *   (scope)   $6 escalated filter   $7 limit */
static const char s_overdue_sql[] =
    "WITH o AS ("
    " SELECT c.id, 'accept'::text AS deadline, c.accept_due AS due FROM cases c"
    " WHERE c.status = ANY($1::text[]) AND c.accept_due <= now()"
    " UNION ALL"
    " SELECT c.id, 'reply'::text, c.reply_due FROM cases c"
    " WHERE c.status = ANY($2::text[]) AND c.reply_due <= now()),"
    " x AS ("
    " SELECT o.*, (SELECT t.done_at FROM timer_actions t WHERE t.case_id = o.id"
    "   AND t.action = 'escalated_' || o.deadline AND t.due = o.due) AS escalated_at"
    " FROM o JOIN cases c ON c.id = o.id"
    " WHERE ($3::text IS NULL OR o.deadline = $3::text)"
    " AND ($4::text IS NULL OR c.department_code = $4::text)"
    " AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM assignments sa"
    "  WHERE sa.case_id = c.id AND sa.department_code = $5::text)))"
    " , page AS (SELECT * FROM x"
    " WHERE $6::boolean IS NULL OR (x.escalated_at IS NOT NULL) = $6::boolean"
    " ORDER BY x.due, x.id, x.deadline LIMIT $7::int)"
    " SELECT json_build_object('now', now(), 'overdue', coalesce(json_agg(json_build_object("
    "  'case_id', c.id, 'status', c.status, 'department', c.department_code,"
    "  'department_name', d.name, 'category', c.category, 'region_code', c.region_code,"
    "  'urgency', c.urgency, 'kind', c.kind, 'deadline', page.deadline, 'due', page.due,"
    "  'overdue_s', floor(extract(epoch FROM now() - page.due))::bigint,"
    "  'escalated', page.escalated_at IS NOT NULL, 'escalated_at', page.escalated_at,"
    "  'created_at', c.created_at,"
    "  'tracking_nos', (SELECT coalesce(json_agg(p.tracking_no ORDER BY p.id), '[]'::json)"
    "   FROM petitions p WHERE p.case_id = c.id))"
    "  ORDER BY page.due, page.id, page.deadline), '[]'::json),"
    " 'total', (SELECT count(*) FROM x"
    "  WHERE $6::boolean IS NULL OR (x.escalated_at IS NOT NULL) = $6::boolean))"
    " FROM page JOIN cases c ON c.id = page.id LEFT JOIN departments d ON d.code = "
    "c.department_code";

void fb_deadlines_api_overdue(fb_worker_t *w, fb_http_req_t *req, const char *role,
                              const char *department) {
    (void)role;
    const char *deadline = fb_http_query(req, "deadline");
    const char *dept = fb_http_query(req, "department");
    long long limit;
    int escalated;
    if (deadline && !*deadline)
        deadline = NULL;
    if (dept && !*dept)
        dept = NULL;
    if (deadline && strcmp(deadline, "accept") != 0 && strcmp(deadline, "reply") != 0) {
        fb_http_error(req, 400, "invalid", "deadline", "deadline must be accept or reply");
        return;
    }
    if (!fb_api_query_int(req, "limit", 1, OVERDUE_LIMIT_MAX, OVERDUE_LIMIT_DEFAULT, &limit) ||
        !fb_api_query_bool(req, "escalated", &escalated))
        return;
    char accept_st[256], reply_st[256], lim[24];
    statuses_where(awaits_accept, accept_st, sizeof accept_st);
    statuses_where(awaits_reply, reply_st, sizeof reply_st);
    snprintf(lim, sizeof lim, "%lld", limit);
    const char *params[] = {accept_st,  reply_st,
                            deadline,   dept,
                            department, escalated < 0 ? NULL : escalated ? "true" : "false",
                            lim};
    json_t *out;
    if (fb_api_query_json(w, req, s_overdue_sql, 7, params, &out) != 0)
        return;
    fb_http_respond_json(req, 200, out);
}

/* ---- the sweep ----------------------------------------------------------- */

/* Counters behind /metrics; only ever increased. */
typedef struct {
    uint64_t sweeps, full_sweeps, failures;
    uint64_t actions[FB_TIMER_ACTION_COUNT];
    uint64_t callbacks[FB_CALLBACK_STEP_COUNT];
    uint64_t hotspot_alerts, hotspot_grown, verifications_escalated;
} s_metrics_t;

/* A sweep goes through these phases: the timer actions (in their order),
 * the callback steps (in theirs), the hotspots, their case events. */
enum {
    PHASE_CALLBACKS = FB_TIMER_ACTION_COUNT,
    PHASE_HOTSPOTS = PHASE_CALLBACKS + FB_CALLBACK_STEP_COUNT,
    PHASE_HOTSPOT_NOTES,
    PHASE_VERIFICATIONS, /* overdue verifications to the street office (grid.c) */
    PHASE_COUNT
};

struct fb_timers {
    fb_worker_t *w;
    uv_timer_t timer;
    fb_calendar_t *calendar; /* NULL until first read */
    uint64_t calendar_ms;    /* fb_mono_ms() of that read */
    /* The sweep in progress; it may span several loop turns. */
    bool sweeping;
    bool full;       /* a full sweep, else a recent one … */
    double window_s; /* … looking this far back */
    int phase;
    fb_timer_cursor_t tcur;
    fb_callback_cursor_t ccur;
    uint64_t started_ms;
    int done[PHASE_COUNT]; /* what this sweep did, for its log line */
    /* Completed sweeps, by fb_mono_ms() of their start (0: none yet). */
    uint64_t last_ms, last_full_ms;
    uint64_t hotspot_ms;     /* of the last hotspot look */
    uint64_t hotspot_day_ms; /* of the last one that read a day */
    s_metrics_t m;
};

static uint64_t interval_ms(const fb_timers_t *t) {
    return (uint64_t)t->w->cfg.worker_timers_s * 1000;
}

/* Reads calendar_days into a new calendar; keeps the old one on failure
 * (deadlines keep counting on what was known). */
static int calendar_refresh(fb_timers_t *t, PGconn *db) {
    if (t->calendar && t->calendar_ms && fb_mono_ms() - t->calendar_ms < CALENDAR_RELOAD_MS)
        return 0;
    json_t *days = NULL;
    fb_calendar_t *cal = fb_calendar_new();
    int rc = cal ? 0 : FB_ENOMEM;
    if (rc == 0)
        rc = fb_db_query_json(db,
                              "SELECT json_agg(json_build_object('day', day::text, 'kind', kind)"
                              " ORDER BY day) FROM calendar_days",
                              0, NULL, &days);
    if (rc == 0)
        rc = fb_calendar_load_json(cal, days);
    json_decref(days);
    if (rc != 0) {
        fb_log(FB_LOG_WARN, "event=calendar_load_failed rc=%d", rc);
        fb_calendar_destroy(&cal);
        return t->calendar ? 0 : rc;
    }
    fb_calendar_destroy(&t->calendar);
    t->calendar = cal;
    t->calendar_ms = fb_mono_ms();
    return 0;
}

static void sweep_begin(fb_timers_t *t) {
    uint64_t now = fb_mono_ms();
    t->sweeping = true;
    t->started_ms = now;
    t->full = t->last_full_ms == 0 || now - t->last_full_ms >= FULL_SWEEP_MS;
    /* Everything that fell due or changed since the last sweep began, and
     * a margin for transactions that committed late and clocks that differ. */
    t->window_s = t->full ? -1 : (double)(now - t->last_ms) / 1000.0 + RECENT_MARGIN_S;
    t->phase = 0;
    fb_timer_cursor_reset(&t->tcur);
    t->ccur = (fb_callback_cursor_t){0, 0};
    memset(t->done, 0, sizeof t->done);
}

static void sweep_end(fb_timers_t *t) {
    const int *d = t->done;
    t->sweeping = false;
    t->last_ms = t->started_ms;
    t->m.sweeps++;
    if (t->full) {
        t->last_full_ms = t->started_ms;
        t->m.full_sweeps++;
    }
    int total = 0;
    for (int i = 0; i < PHASE_COUNT; i++)
        total += d[i];
    fb_log(total ? FB_LOG_INFO : FB_LOG_DEBUG,
           "event=timers_swept kind=%s reminders=%d overdue=%d escalated=%d rated=%d"
           " callbacks_scheduled=%d rating_requests=%d closed_not_rated=%d hotspots=%d ms=%llu",
           t->full ? "full" : "recent", d[FB_TIMER_REMINDER_ACCEPT] + d[FB_TIMER_REMINDER_REPLY],
           d[FB_TIMER_OVERDUE_ACCEPT] + d[FB_TIMER_OVERDUE_REPLY],
           d[FB_TIMER_ESCALATED_ACCEPT] + d[FB_TIMER_ESCALATED_REPLY],
           d[PHASE_CALLBACKS + FB_CALLBACK_RATED], d[PHASE_CALLBACKS + FB_CALLBACK_SCHEDULE],
           d[PHASE_CALLBACKS + FB_CALLBACK_REQUEST], d[PHASE_CALLBACKS + FB_CALLBACK_CLOSE],
           d[PHASE_HOTSPOTS], (unsigned long long)(fb_mono_ms() - t->started_ms));
}

/* One batch of the current phase. *through: the phase has nothing left. */
static int phase_batch(fb_timers_t *t, PGconn *db, bool *through) {
    const fb_config_t *cfg = &t->w->cfg;
    int scanned = 0, done = 0, rc = 0;
    *through = true;
    if (t->phase < PHASE_CALLBACKS) {
        fb_deadline_opts_t o;
        fb_deadline_opts_from_config(&o, cfg);
        rc = fb_deadlines_batch(db, &o, (fb_timer_action_t)t->phase, t->window_s, &t->tcur,
                                &scanned, &done);
        t->m.actions[t->phase] += (uint64_t)done;
        *through = scanned < o.batch;
    } else if (t->phase < PHASE_HOTSPOTS) {
        fb_callback_step_t step = (fb_callback_step_t)(t->phase - PHASE_CALLBACKS);
        if (step == 0)
            rc = calendar_refresh(t, db);
        if (rc == 0)
            rc = fb_callback_batch(db, t->calendar, cfg->worker_callback_days, step, t->window_s,
                                   SWEEP_BATCH, &t->ccur, &scanned, &done);
        t->m.callbacks[step] += (uint64_t)done;
        *through = scanned < SWEEP_BATCH;
    } else if (t->phase == PHASE_HOTSPOT_NOTES) {
        rc = fb_hotspot_note(db, NOTE_BATCH, &scanned);
        *through = scanned < NOTE_BATCH;
    } else if (t->phase == PHASE_VERIFICATIONS) {
        rc = fb_grid_escalate(db, NOTE_BATCH, &done);
        t->m.verifications_escalated += (uint64_t)done;
        *through = done < NOTE_BATCH;
    } else if (t->hotspot_ms == 0 ||
               fb_mono_ms() - t->hotspot_ms >= (uint64_t)cfg->worker_hotspot_every_s * 1000) {
        /* A day back now and then; otherwise the window and the time since
         * the last look, and a minute more. */
        uint64_t now = fb_mono_ms();
        bool day = t->hotspot_day_ms == 0 || now - t->hotspot_day_ms >= HOTSPOT_DAY_MS;
        int win = cfg->worker_hotspot_window_min, grown = 0;
        int back =
            day ? fb_hotspot_lookback_min(win) : win + (int)((now - t->hotspot_ms) / 60000) + 1;
        rc = fb_hotspot_sweep(db, cfg->worker_hotspot_threshold, win, back, &done, &grown);
        if (rc == 0) {
            t->hotspot_ms = now;
            if (day)
                t->hotspot_day_ms = now;
        }
        t->m.hotspot_alerts += (uint64_t)done;
        t->m.hotspot_grown += (uint64_t)grown;
    }
    t->done[t->phase] += done;
    return rc;
}

static void on_timer(uv_timer_t *h);

/* Works on the sweep for up to TURN_BUDGET_MS, then yields the loop: an
 * unfinished sweep goes on at the next turn. */
static void sweep(fb_timers_t *t) {
    fb_worker_t *w = t->w;
    PGconn *db = fb_dblink_conn(w->db);
    if (!db || w->stopping || fb_dblink_context_set(w->db, FB_DBLINK_SYSTEM, NULL) != 0)
        return;
    if (!t->sweeping)
        sweep_begin(t);
    uint64_t until = fb_mono_ms() + TURN_BUDGET_MS;
    while (t->phase < PHASE_COUNT) {
        if (fb_mono_ms() >= until) {
            /* 1 ms, not 0: libuv runs a timer restarted with 0 from its own
             * callback again before it polls for I/O, which would starve
             * the API all the same. */
            uv_timer_start(&t->timer, on_timer, 1, interval_ms(t));
            return;
        }
        bool through;
        if (phase_batch(t, db, &through) != 0) {
            /* Start afresh next time; the next recent sweep still reaches
             * back to the last complete one. */
            t->sweeping = false;
            t->m.failures++;
            fb_dblink_check(w->db);
            return;
        }
        if (through) {
            t->phase++;
            fb_timer_cursor_reset(&t->tcur);
            t->ccur = (fb_callback_cursor_t){0, 0};
        }
    }
    sweep_end(t);
}

static void on_timer(uv_timer_t *h) {
    sweep(h->data);
}

int fb_timers_start(fb_worker_t *w, fb_timers_t **out) {
    fb_timers_t *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t)
        return FB_ENOMEM;
    t->w = w;
    uv_timer_init(&w->loop, &t->timer);
    t->timer.data = t;
    /* The first sweep comes with the database connection (fb_timers_kick). */
    uv_timer_start(&t->timer, on_timer, interval_ms(t), interval_ms(t));
    *out = t;
    return 0;
}

static void on_closed(uv_handle_t *h) {
    fb_timers_t *t = h->data;
    fb_calendar_destroy(&t->calendar);
    free(t);
}

void fb_timers_stop(fb_timers_t **tp) {
    fb_timers_t *t = *tp;
    if (!t)
        return;
    *tp = NULL;
    uv_timer_stop(&t->timer);
    uv_close((uv_handle_t *)&t->timer, on_closed);
}

void fb_timers_kick(fb_timers_t *t) {
    if (t)
        uv_timer_start(&t->timer, on_timer, 0, interval_ms(t));
}

void fb_timers_reload(fb_timers_t *t, const fb_config_t *cfg) {
    if (!t)
        return;
    fb_config_t *c = &t->w->cfg;
    bool interval_changed = c->worker_timers_s != cfg->worker_timers_s;
    c->worker_timers_s = cfg->worker_timers_s;
    c->worker_reminder_accept_min = cfg->worker_reminder_accept_min;
    c->worker_reminder_reply_min = cfg->worker_reminder_reply_min;
    c->worker_escalate_after_h = cfg->worker_escalate_after_h;
    c->worker_callback_days = cfg->worker_callback_days;
    c->worker_hotspot_threshold = cfg->worker_hotspot_threshold;
    c->worker_hotspot_window_min = cfg->worker_hotspot_window_min;
    c->worker_hotspot_every_s = cfg->worker_hotspot_every_s;
    c->grid_verify_hours = cfg->grid_verify_hours;
    if (interval_changed) {
        uv_timer_set_repeat(&t->timer, interval_ms(t));
        uv_timer_again(&t->timer);
    }
    /* New settings apply to everything waiting, and an operator who has
     * just imported a calendar wants it used: read it again, and make the
     * next sweep a full one. */
    t->calendar_ms = 0;
    t->last_full_ms = 0;
    if (!t->sweeping)
        fb_timers_kick(t);
    fb_log(FB_LOG_INFO,
           "event=timers_reloaded timers_s=%d reminder_accept_min=%d reminder_reply_min=%d"
           " escalate_after_h=%d callback_days=%d hotspot_threshold=%d hotspot_window_min=%d"
           " hotspot_every_s=%d",
           c->worker_timers_s, c->worker_reminder_accept_min, c->worker_reminder_reply_min,
           c->worker_escalate_after_h, c->worker_callback_days, c->worker_hotspot_threshold,
           c->worker_hotspot_window_min, c->worker_hotspot_every_s);
}

/* snprintf into out + *n, advancing *n; false when it did not fit. */
static bool append(char *out, size_t outlen, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool append(char *out, size_t outlen, size_t *n, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out + *n, outlen - *n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= outlen - *n)
        return false;
    *n += (size_t)k;
    return true;
}

int fb_timers_metrics(const fb_timers_t *t, char *out, size_t outlen) {
    if (outlen == 0)
        return -1;
    out[0] = '\0';
    if (!t)
        return 0;
    const s_metrics_t *m = &t->m;
    size_t n = 0;
    bool ok = append(out, outlen, &n,
                     "# HELP fenbo_worker_timer_sweeps_total Timer sweeps completed, by kind, "
                     "and failed.\n"
                     "# TYPE fenbo_worker_timer_sweeps_total counter\n"
                     "fenbo_worker_timer_sweeps_total{kind=\"recent\"} %llu\n"
                     "fenbo_worker_timer_sweeps_total{kind=\"full\"} %llu\n"
                     "fenbo_worker_timer_sweeps_total{kind=\"failed\"} %llu\n"
                     "# HELP fenbo_worker_timer_actions_total SLA timer actions done, by action.\n"
                     "# TYPE fenbo_worker_timer_actions_total counter\n",
                     (unsigned long long)(m->sweeps - m->full_sweeps),
                     (unsigned long long)m->full_sweeps, (unsigned long long)m->failures);
    for (int a = 0; ok && a < FB_TIMER_ACTION_COUNT; a++)
        ok = append(out, outlen, &n, "fenbo_worker_timer_actions_total{action=\"%s\"} %llu\n",
                    fb_timer_action_name((fb_timer_action_t)a), (unsigned long long)m->actions[a]);
    ok = ok && append(out, outlen, &n,
                      "# HELP fenbo_worker_callbacks_total Callback (回访) work done, by step.\n"
                      "# TYPE fenbo_worker_callbacks_total counter\n");
    for (int s = 0; ok && s < FB_CALLBACK_STEP_COUNT; s++)
        ok = append(out, outlen, &n, "fenbo_worker_callbacks_total{step=\"%s\"} %llu\n",
                    fb_callback_step_name((fb_callback_step_t)s),
                    (unsigned long long)m->callbacks[s]);
    ok = ok && append(out, outlen, &n,
                      "# HELP fenbo_worker_hotspot_alerts_total Hotspot alerts raised.\n"
                      "# TYPE fenbo_worker_hotspot_alerts_total counter\n"
                      "fenbo_worker_hotspot_alerts_total %llu\n"
                      "# HELP fenbo_worker_hotspot_grown_total Times a hotspot alert took in "
                      "further petitions.\n"
                      "# TYPE fenbo_worker_hotspot_grown_total counter\n"
                      "fenbo_worker_hotspot_grown_total %llu\n"
                      "# HELP fenbo_worker_verifications_escalated_total Overdue verifications "
                      "(核查) escalated to the street office.\n"
                      "# TYPE fenbo_worker_verifications_escalated_total counter\n"
                      "fenbo_worker_verifications_escalated_total %llu\n",
                      (unsigned long long)m->hotspot_alerts, (unsigned long long)m->hotspot_grown,
                      (unsigned long long)m->verifications_escalated);
    return ok ? (int)n : -1;
}
