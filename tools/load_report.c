/* load_report.c — fenbo-load's report: latency distributions and rates of
 * the run, human-readable on stderr (or stdout) and as one JSON object with
 * --json. */
#include "fb_common.h"
#include "load.h"

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- report */

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

typedef struct dist {
    long n;
    double p50, p90, p99, p999, max; /* ms */
} dist_t;

/* Nearest-rank percentiles of v (sorted here). */
static dist_t dist_of(int64_t *v, long n) {
    dist_t d = {.n = n};
    if (n == 0)
        return d;
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    double *ps[] = {&d.p50, &d.p90, &d.p99, &d.p999};
    const double q[] = {0.50, 0.90, 0.99, 0.999};
    for (size_t k = 0; k < FB_ARRAY_LEN(q); k++) {
        long r = (long)ceil(q[k] * (double)n) - 1;
        *ps[k] = (double)v[r < 0 ? 0 : r] / 1000.0;
    }
    d.max = (double)v[n - 1] / 1000.0;
    return d;
}

static void print_dist(FILE *f, const char *label, const dist_t *d) {
    if (d->n == 0) {
        load_say(f, "  %-12s %9s\n", label, "-");
        return;
    }
    load_say(f, "  %-12s %9.3f %9.3f %9.3f %9.3f %9.3f  (%ld)\n", label, d->p50, d->p90, d->p99,
             d->p999, d->max, d->n);
}

static json_t *json_dist(const dist_t *d) {
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "n", (json_int_t)d->n, "p50", d->p50, "p90",
                     d->p90, "p99", d->p99, "p99.9", d->p999, "max", d->max);
}

static double per_s(long n, int64_t us) {
    return us > 0 ? (double)n * 1e6 / (double)us : 0.0;
}

/* Prints the report; returns the exit status it implies. */
int load_report(load_t *L, int64_t t_end) {
    long n = L->norders - L->warmup, submitted = L->cnt[1].sent;
    long ok = L->cnt[1].acked, published = L->cnt[1].published;
    int64_t *ack = malloc(sizeof *ack * (size_t)(n ? n : 1));
    int64_t *e2e = malloc(sizeof *e2e * (size_t)(n ? n : 1));
    long status_n[MAX_STATUSES] = {0}, nack = 0, ne2e = 0, foreign = 0;
    if (!ack || !e2e) {
        free(ack);
        free(e2e);
        load_say(stderr, "fenbo-load: out of memory for the report\n");
        return EXIT_FAILURE;
    }
    for (long i = L->warmup; i < L->norders; i++) {
        const order_t *o = &L->orders[i];
        if (o->http >= 200 && o->http <= 299)
            ack[nack++] = o->t_ack - o->t_sched;
        if (o->t_pub) {
            e2e[ne2e++] = o->t_pub - o->t_sched;
            status_n[o->asg]++;
        }
    }
    for (size_t k = 0; k < L->map.cap; k++)
        if (L->map.b[k].tracking_no && L->map.b[k].order < 0)
            foreign++;
    dist_t dack = dist_of(ack, nack), de2e = dist_of(e2e, ne2e);
    free(ack);
    free(e2e);

    int64_t last = L->t_last_ack > L->t_last_pub ? L->t_last_ack : L->t_last_pub;
    if (last == 0)
        last = t_end;
    double wall = (double)(last - L->t0) / 1e6;
    long errors = L->cnt[1].errors, unpublished = L->sub ? ok - published : 0;
    long unsent = n - submitted;

    FILE *f = L->json ? stderr : stdout;
    load_say(f, "fenbo-load: %s, %ld connections, rate ", L->url, L->conns);
    if (L->rate > 0)
        load_say(f, "%.1f/s (open loop)", L->rate);
    else
        load_say(f, "unlimited");
    load_say(f, ", warmup %ld, prefix %s\n", L->warmup, L->prefix);
    load_say(f, "petitions submitted   %ld", submitted);
    if (unsent)
        load_say(f, " (%ld not sent: interrupted)", unsent);
    load_say(f, "\nHTTP status          ");
    for (int c = 0; c < 600; c++)
        if (L->http[c])
            load_say(f, " %d: %ld", c, L->http[c]);
    load_say(f, "\nerrors                %ld", errors);
    if (L->bad_answers)
        load_say(f, " (2xx without tracking_no: %ld)", L->bad_answers);
    for (int c = 0; c < CURL_LAST; c++)
        if (L->curl_err[c])
            load_say(f, " [%s: %ld]", curl_easy_strerror((CURLcode)c), L->curl_err[c]);
    if (L->inflight)
        load_say(f, " (abandoned in flight: %ld)", L->inflight);
    load_say(f, "\nconnections opened    %ld\n", L->connects);
    load_say(f, "wall time             %.3f s\n", wall);
    load_say(f, "acknowledged          %.1f petitions/s (HTTP 2xx: %ld)\n",
             per_s(ok, L->t_last_ack - L->t0), ok);
    if (L->sub) {
        load_say(f, "end to end            %.1f petitions/s (published: %ld)\n",
                 per_s(published, L->t_last_pub - L->t0), published);
        load_say(f, "never published       %ld (drain timeout %.0f s)\n", unpublished,
                 L->drain_timeout_s);
    }
    load_say(f, "latency ms                 p50       p90       p99     p99.9       max  (n)\n");
    print_dist(f, "HTTP ack", &dack);
    if (L->sub) {
        print_dist(f, "end to end", &de2e);
        load_say(f, "assignments          ");
        for (int k = 0; k < L->nstatuses; k++)
            if (status_n[k])
                load_say(f, " %s: %ld", L->statuses[k], status_n[k]);
        load_say(f, "\nbus events            %ld (not ours or unmatched: %ld, not ASG: %ld)\n",
                 L->events, foreign, L->bad_events);
    }
    if (L->collisions)
        load_say(f, "tracking_no collisions %ld (two orders, one tracking number)\n",
                 L->collisions);

    if (L->json) {
        json_t *st = json_object(), *ce = json_object(), *asg = json_object();
        for (int c = 0; c < 600; c++) {
            char key[8];
            (void)snprintf(key, sizeof key, "%d", c);
            if (L->http[c])
                json_object_set_new(st, key, json_integer(L->http[c]));
        }
        for (int c = 0; c < CURL_LAST; c++)
            if (L->curl_err[c])
                json_object_set_new(ce, curl_easy_strerror((CURLcode)c),
                                    json_integer(L->curl_err[c]));
        for (int k = 0; k < L->nstatuses; k++)
            if (status_n[k])
                json_object_set_new(asg, L->statuses[k], json_integer(status_n[k]));
        json_t *j = json_pack(
            "{s:s, s:I, s:f, s:I, s:s, s:I, s:I, s:o, s:I, s:o, s:I, s:I, s:f, s:f, s:f, "
            "s:{s:o, s:o}, s:b}",
            "url", L->url, "connections", (json_int_t)L->conns, "rate", L->rate, "warmup",
            (json_int_t)L->warmup, "prefix", L->prefix, "submitted", (json_int_t)submitted,
            "acknowledged", (json_int_t)ok, "http_status", st, "errors", (json_int_t)errors,
            "transport_errors", ce, "bad_answers", (json_int_t)L->bad_answers, "connections_opened",
            (json_int_t)L->connects, "wall_s", wall, "ack_per_s", per_s(ok, L->t_last_ack - L->t0),
            "e2e_per_s", per_s(published, L->t_last_pub - L->t0), "latency_ms", "ack",
            json_dist(&dack), "e2e", json_dist(&de2e), "sub", L->sub != NULL);
        if (j)
            json_object_set_new(j, "abandoned", json_integer(L->inflight));
        if (j && L->sub) {
            json_object_set_new(j, "published", json_integer(published));
            json_object_set_new(j, "unpublished", json_integer(unpublished));
            json_object_set_new(j, "drain_timeout_s", json_real(L->drain_timeout_s));
            json_object_set_new(j, "assignments", json_incref(asg));
            json_object_set_new(j, "bus_events", json_integer(L->events));
            json_object_set_new(j, "bus_unmatched", json_integer(foreign));
        }
        json_decref(asg);
        char *s = j ? json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
        if (s)
            load_say(stdout, "%s\n", s);
        else
            load_say(stderr, "fenbo-load: out of memory for the JSON report\n");
        free(s);
        json_decref(j);
    }
    if (fflush(stdout) != 0)
        load_output_failed = true;
    if (load_output_failed)
        return EXIT_FAILURE;
    return errors || unpublished || unsent ? EXIT_INCOMPLETE : EXIT_SUCCESS;
}
