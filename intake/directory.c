/* directory.c — token and category snapshot, refreshed off the loop thread:
 * every token_refresh_s, and at once when the token table changes — a
 * thread of its own LISTENs for fenbo_tokens and wakes the loop — so that a
 * revoked token stops working within a second. A token's expiry is checked
 * at each use. */
#include "directory.h"
#include "fb_common.h"
#include "fb_db.h"
#include "fb_geo.h"
#include "fb_log.h"
#include "fb_map.h"
#include "fb_token.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_sql =
    "SELECT json_build_object("
    " 'tokens', (SELECT coalesce(json_agg(json_build_object('hash', encode(token_hash, 'hex'),"
    "                                 'role', role, 'region', region_code, 'name', name,"
    "                                 'expires', floor(extract(epoch FROM expires_at)))),"
    "                         '[]')"
    "            FROM api_tokens WHERE revoked_at IS NULL"
    "             AND (expires_at IS NULL OR expires_at > now())),"
    /* The grid workers' areas: each region a grid token is bound to. */
    " 'areas', (SELECT coalesce(json_object_agg(r.code, ST_AsGeoJSON(r.geom)::json), '{}')"
    "           FROM regions r WHERE r.code IN (SELECT region_code FROM api_tokens"
    "            WHERE role = 'grid' AND revoked_at IS NULL)),"
    " 'categories', (SELECT coalesce(json_agg(json_build_object('code', code, 'name', name,"
    "                                   'parent_code', parent_code) ORDER BY code), '[]')"
    "                FROM categories),"
    " 'bounds', (SELECT json_build_array(ST_YMin(e), ST_XMin(e), ST_YMax(e), ST_XMax(e))"
    "            FROM (SELECT ST_Extent(geom) AS e FROM regions WHERE level = 1) b"
    "            WHERE e IS NOT NULL))";

/* What a token hash maps to. */
typedef struct {
    int64_t expires; /* seconds since the epoch; 0: never */
    char role[24];
    char region[40]; /* a grid worker's region code, else "" */
    char name[128];
} s_token_t;

typedef struct {
    fb_map_t *tokens;     /* sha256 hex → s_token_t */
    fb_map_t *categories; /* code → non-NULL */
    json_t *category_list;
    json_t *areas; /* region code → GeoJSON geometry, for grid tokens */
    bool has_bounds;
    double bounds[4]; /* min lat, min lng, max lat, max lng */
} s_snapshot_t;

struct intake_directory {
    uv_loop_t *loop;
    char *conninfo;
    char *cache_path;
    s_snapshot_t snap;
    uv_timer_t timer;
    uv_work_t work;
    bool busy, closing, timer_closed;
    bool again;      /* the table changed during a fetch: fetch once more after it */
    json_t *fetched; /* result of the last background fetch */
    int refresh_s;
    uv_async_t wake; /* the listener's "tokens changed" */
    pthread_t listener;
    bool listening, wake_closed;
    atomic_bool stop;
};

static void snapshot_free(s_snapshot_t *s) {
    fb_map_destroy(&s->tokens, free);
    fb_map_destroy(&s->categories, NULL);
    json_decref(s->category_list);
    s->category_list = NULL;
    json_decref(s->areas);
    s->areas = NULL;
}

static int snapshot_from_json(const json_t *j, s_snapshot_t *out) {
    s_snapshot_t s = {fb_map_new(), fb_map_new(), NULL, NULL, false, {0}};
    const json_t *tokens = json_object_get(j, "tokens"), *cats = json_object_get(j, "categories");
    if (!s.tokens || !s.categories || !json_is_array(tokens) || !json_is_array(cats)) {
        snapshot_free(&s);
        return FB_EINVAL;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(tokens, i, v) {
        const char *h = json_string_value(json_object_get(v, "hash"));
        const char *role = json_string_value(json_object_get(v, "role"));
        const char *region = json_string_value(json_object_get(v, "region"));
        const char *name = json_string_value(json_object_get(v, "name"));
        s_token_t *t =
            role && strlen(role) < sizeof t->role && (!region || strlen(region) < sizeof t->region)
                ? calloc(1, sizeof *t)
                : NULL;
        if (t) {
            snprintf(t->role, sizeof t->role, "%s", role);
            snprintf(t->region, sizeof t->region, "%s", region ? region : "");
            snprintf(t->name, sizeof t->name, "%s", name ? name : "");
            t->expires = (int64_t)json_number_value(json_object_get(v, "expires"));
        }
        if (h && t && fb_map_put(s.tokens, h, t, NULL) == 0)
            continue;
        free(t);
    }
    json_array_foreach(cats, i, v) {
        const char *code = json_string_value(json_object_get(v, "code"));
        if (code)
            fb_map_put(s.categories, code, (void *)1, NULL);
    }
    s.category_list = json_incref((json_t *)cats);
    const json_t *areas = json_object_get(j, "areas");
    s.areas = json_is_object(areas) ? json_incref((json_t *)areas) : json_object();
    const json_t *b = json_object_get(j, "bounds");
    if (json_array_size(b) == 4) {
        s.has_bounds = true;
        for (size_t k = 0; k < 4; k++)
            s.bounds[k] = json_number_value(json_array_get(b, k));
    }
    *out = s;
    return 0;
}

static void install(intake_directory_t *d, const json_t *j, bool save) {
    s_snapshot_t s;
    if (snapshot_from_json(j, &s) != 0)
        return;
    snapshot_free(&d->snap);
    d->snap = s;
    fb_log(FB_LOG_DEBUG, "event=directory_loaded tokens=%zu categories=%zu", fb_map_size(s.tokens),
           fb_map_size(s.categories));
    if (!save)
        return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", d->cache_path);
    if (json_dump_file(j, tmp, JSON_COMPACT) != 0 || rename(tmp, d->cache_path) != 0)
        fb_log(FB_LOG_WARN, "event=directory_cache_write_failed path=%s", d->cache_path);
}

static json_t *fetch(const char *conninfo) {
    PGconn *db;
    if (fb_db_connect_timeout(conninfo, 3, &db) != 0)
        return NULL;
    json_t *j = NULL;
    PGresult *r = PQexec(db, s_sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        j = json_loads(PQgetvalue(r, 0, 0), 0, NULL);
    else
        fb_log(FB_LOG_WARN, "event=directory_fetch_failed error=\"%s\"", fb_db_error(db));
    PQclear(r);
    PQfinish(db);
    return j;
}

static void work_cb(uv_work_t *w) {
    intake_directory_t *d = w->data;
    d->fetched = fetch(d->conninfo);
}

/* Frees d once its handles are closed and no fetch is under way. */
static void maybe_free(intake_directory_t *d) {
    if (!d->timer_closed || !d->wake_closed || d->busy)
        return;
    snapshot_free(&d->snap);
    free(d->conninfo);
    free(d->cache_path);
    free(d);
}

static void on_timer(uv_timer_t *t);

static void after_work_cb(uv_work_t *w, int status) {
    intake_directory_t *d = w->data;
    d->busy = false;
    if (status == 0 && d->fetched && !d->closing)
        install(d, d->fetched, true);
    json_decref(d->fetched);
    d->fetched = NULL;
    if (d->closing)
        maybe_free(d);
    else if (d->again)
        on_timer(&d->timer);
}

static void on_timer(uv_timer_t *t) {
    intake_directory_t *d = t->data;
    if (d->busy)
        return;
    d->busy = true;
    d->again = false;
    d->work.data = d;
    uv_queue_work(d->loop, &d->work, work_cb, after_work_cb);
}

/* The listener thread: LISTEN fenbo_tokens on a connection of its own,
 * waking the loop on each notification; reconnects every second while
 * PostgreSQL is away. */
static void *listen_main(void *arg) {
    intake_directory_t *d = arg;
    PGconn *db = NULL;
    while (!atomic_load(&d->stop)) {
        if (!db) {
            if (fb_db_connect_timeout(d->conninfo, 3, &db) != 0 ||
                fb_db_exec(db, "LISTEN fenbo_tokens", 0, NULL) != 0) {
                if (db)
                    PQfinish(db);
                db = NULL;
                sleep(1);
                continue;
            }
            uv_async_send(&d->wake); /* changes while we were away */
        }
        int fd = PQsocket(db);
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(fd, &rd);
        struct timeval tv = {1, 0};
        if (select(fd + 1, &rd, NULL, NULL, &tv) < 0 || !PQconsumeInput(db)) {
            PQfinish(db);
            db = NULL;
            continue;
        }
        bool changed = false;
        PGnotify *n;
        while ((n = PQnotifies(db)) != NULL) {
            changed = true;
            PQfreemem(n);
        }
        if (changed)
            uv_async_send(&d->wake);
    }
    if (db)
        PQfinish(db);
    return NULL;
}

static void on_wake(uv_async_t *a) {
    intake_directory_t *d = a->data;
    if (d->busy)
        d->again = true; /* the fetch under way may have read it before the change */
    else
        on_timer(&d->timer);
}

int intake_directory_open(uv_loop_t *loop, const char *conninfo, const char *cache_path,
                          int refresh_s, intake_directory_t **out) {
    intake_directory_t *d = calloc(1, sizeof *d);
    if (!d)
        return FB_ENOMEM;
    d->loop = loop;
    d->conninfo = strdup(conninfo);
    d->cache_path = strdup(cache_path);
    d->refresh_s = refresh_s;
    d->snap.tokens = fb_map_new();
    d->snap.categories = fb_map_new();
    json_t *cached = json_load_file(cache_path, 0, NULL);
    if (cached) {
        install(d, cached, false);
        json_decref(cached);
    }
    json_t *fresh = fetch(conninfo);
    if (fresh) {
        install(d, fresh, true);
        json_decref(fresh);
    } else {
        fb_log(FB_LOG_WARN, "event=directory_from_cache tokens=%zu path=%s",
               fb_map_size(d->snap.tokens), cache_path);
    }
    uv_timer_init(loop, &d->timer);
    d->timer.data = d;
    uv_timer_start(&d->timer, on_timer, (uint64_t)refresh_s * 1000, (uint64_t)refresh_s * 1000);
    uv_async_init(loop, &d->wake, on_wake);
    d->wake.data = d;
    atomic_init(&d->stop, false);
    d->listening = pthread_create(&d->listener, NULL, listen_main, d) == 0;
    if (!d->listening)
        fb_log(FB_LOG_WARN, "event=token_listener_failed");
    *out = d;
    return 0;
}

void intake_directory_set_refresh(intake_directory_t *d, int refresh_s) {
    d->refresh_s = refresh_s;
    uv_timer_start(&d->timer, on_timer, (uint64_t)refresh_s * 1000, (uint64_t)refresh_s * 1000);
}

static void on_timer_closed(uv_handle_t *h) {
    intake_directory_t *d = h->data;
    d->timer_closed = true;
    maybe_free(d);
}

static void on_wake_closed(uv_handle_t *h) {
    intake_directory_t *d = h->data;
    d->wake_closed = true;
    maybe_free(d);
}

void intake_directory_close(intake_directory_t **dp) {
    intake_directory_t *d = *dp;
    if (!d)
        return;
    d->closing = true;
    atomic_store(&d->stop, true);
    if (d->listening)
        pthread_join(d->listener, NULL); /* within a second: its select()'s timeout */
    uv_close((uv_handle_t *)&d->timer, on_timer_closed);
    uv_close((uv_handle_t *)&d->wake, on_wake_closed);
    *dp = NULL;
}

bool intake_directory_token(const intake_directory_t *d, const char *token,
                            intake_token_info_t *out) {
    char hex[FB_TOKEN_HASH_HEX];
    *out = (intake_token_info_t){0};
    if (!token || fb_token_hash_hex(token, hex) != 0)
        return false;
    const s_token_t *t = fb_map_get(d->snap.tokens, hex);
    if (!t || (t->expires && t->expires <= (int64_t)time(NULL)))
        return false;
    *out = (intake_token_info_t){t->role, t->region[0] ? t->region : NULL, t->name};
    return true;
}

const char *intake_directory_role(const intake_directory_t *d, const char *token) {
    intake_token_info_t t;
    return intake_directory_token(d, token, &t) ? t.role : NULL;
}

bool intake_directory_in_area(const intake_directory_t *d, const char *region, double lat,
                              double lng) {
    return region && fb_geo_in_geojson(json_object_get(d->snap.areas, region), lat, lng);
}

bool intake_directory_category_known(void *ud, const char *code) {
    const intake_directory_t *d = ud;
    return fb_map_size(d->snap.categories) == 0 || fb_map_get(d->snap.categories, code) != NULL;
}

const json_t *intake_directory_categories(const intake_directory_t *d) {
    return d->snap.category_list;
}

bool intake_directory_in_city(const intake_directory_t *d, double lat, double lng) {
    const double *b = d->snap.bounds;
    return !d->snap.has_bounds || (lat >= b[0] && lng >= b[1] && lat <= b[2] && lng <= b[3]);
}
