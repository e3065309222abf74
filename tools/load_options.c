/* load_options.c — fenbo-load's command line: the usage text and the
 * options into the run's settings. */
#include "fb_common.h"
#include "load.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: fenbo-load [--url URL] [--token TOKEN] [--sub ENDPOINT | --no-sub] [-n TOTAL]\n"
    "                  [-c CONNECTIONS] [--rate R] [--warmup N] [--drain-timeout S]\n"
    "                  [--timeout S] [--prefix STR] [--seed N] [--free-text PCT] [--json]\n"
    "\n"
    "  --url URL          intake base URL (default $FENBO_INTAKE_URL or http://127.0.0.1:12345);\n"
    "                     orders go to URL" ORDERS_PATH "\n"
    "  --token TOKEN      hotline bearer token (default $FENBO_TOKEN_HOTLINE)\n"
    "  --sub ENDPOINT     dispatcher PUB endpoint (default tcp://127.0.0.1:5556)\n"
    "  --no-sub           measure HTTP only, do not wait for assignments\n"
    "  -n TOTAL           petitions to submit, warmup excluded (default 10000)\n"
    "  -c CONNECTIONS     parallel keep-alive connections (default 32)\n"
    "  --rate R           offered petitions/s, open loop (default 0: as fast as possible)\n"
    "  --warmup N         petitions sent and answered first, left out of the results\n"
    "  --drain-timeout S  wait this long after the last answer for assignments (default 30)\n"
    "  --timeout S        per-request HTTP timeout (default 30)\n"
    "  --prefix STR       order_no prefix (default from time and pid, so runs never collide)\n"
    "  --seed N           seed of the order generator (default from time and pid)\n"
    "  --free-text PCT    share of orders sent without a category, for the\n"
    "                     dispatcher's classifier to give them one (default 50)\n"
    "  --json             print the results as one JSON object on stdout, the\n"
    "                     human-readable report on stderr\n"
    "\n"
    "Exit status: 0 all petitions acknowledged and published, 3 some failed or were\n"
    "never published, 1 could not run, 2 bad usage.\n";

/* ---------------------------------------------------------------- options */

static int parse_long(const char *s, long min, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min)
        return FB_EINVAL;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double min, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= min) || !isfinite(v))
        return FB_EINVAL;
    *out = v;
    return 0;
}

int load_parse_args(load_t *L, int argc, char **argv, char **prefix_buf) {
    enum {
        O_URL = 256,
        O_TOKEN,
        O_SUB,
        O_NOSUB,
        O_RATE,
        O_WARMUP,
        O_DRAIN,
        O_TIMEOUT,
        O_PREFIX,
        O_SEED,
        O_JSON,
        O_FREE_TEXT
    };
    static const struct option opts[] = {
        {"url", required_argument, NULL, O_URL},
        {"token", required_argument, NULL, O_TOKEN},
        {"sub", required_argument, NULL, O_SUB},
        {"no-sub", no_argument, NULL, O_NOSUB},
        {"rate", required_argument, NULL, O_RATE},
        {"warmup", required_argument, NULL, O_WARMUP},
        {"drain-timeout", required_argument, NULL, O_DRAIN},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"prefix", required_argument, NULL, O_PREFIX},
        {"seed", required_argument, NULL, O_SEED},
        {"json", no_argument, NULL, O_JSON},
        {"free-text", required_argument, NULL, O_FREE_TEXT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = getenv("FENBO_INTAKE_URL");
    long seed = -1;
    int c, bad = 0;

    L->token = getenv("FENBO_TOKEN_HOTLINE");
    L->sub_endpoint = "tcp://127.0.0.1:5556";
    L->total = 10000;
    L->conns = 32;
    L->free_text_pct = 50;
    L->drain_timeout_s = 30;
    L->timeout_s = 30;
    while ((c = getopt_long(argc, argv, "n:c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            bad |= parse_long(optarg, 1, &L->total);
            break;
        case 'c':
            bad |= parse_long(optarg, 1, &L->conns);
            break;
        case O_URL:
            url = optarg;
            break;
        case O_TOKEN:
            L->token = optarg;
            break;
        case O_SUB:
            L->sub_endpoint = optarg;
            break;
        case O_NOSUB:
            L->sub_endpoint = NULL;
            break;
        case O_RATE:
            bad |= parse_double(optarg, 0, &L->rate);
            break;
        case O_WARMUP:
            bad |= parse_long(optarg, 0, &L->warmup);
            break;
        case O_DRAIN:
            bad |= parse_double(optarg, 0, &L->drain_timeout_s);
            break;
        case O_TIMEOUT:
            bad |= parse_double(optarg, 0.001, &L->timeout_s);
            break;
        case O_PREFIX:
            L->prefix = optarg;
            break;
        case O_SEED:
            bad |= parse_long(optarg, 0, &seed);
            break;
        case O_JSON:
            L->json = true;
            break;
        case O_FREE_TEXT:
            bad |= parse_long(optarg, 0, &L->free_text_pct) || L->free_text_pct > 100;
            break;
        case 'h':
            load_say(stdout, "%s", usage_text);
            exit(EXIT_SUCCESS);
        default:
            bad = 1;
        }
    }
    if (bad || optind != argc || (L->sub_endpoint && !*L->sub_endpoint) || L->conns > 10000 ||
        L->total > 100000000 || L->warmup > 100000000) {
        if (!bad && optind != argc)
            load_say(stderr, "fenbo-load: unexpected argument '%s'\n", argv[optind]);
        else
            load_say(stderr, "fenbo-load: bad option value\n");
        load_say(stderr, "%s", usage_text);
        return FB_EINVAL;
    }

    /* Base URL → the hotline endpoint, unless the full path was given. */
    if (!url)
        url = "http://127.0.0.1:12345";
    size_t len = strlen(url);
    while (len > 0 && url[len - 1] == '/')
        len--;
    bool full = len >= strlen(ORDERS_PATH) &&
                memcmp(url + len - strlen(ORDERS_PATH), ORDERS_PATH, strlen(ORDERS_PATH)) == 0;
    if (asprintf(&L->url, "%.*s%s", (int)len, url, full ? "" : ORDERS_PATH) < 0)
        return FB_ENOMEM;

    int64_t wall = fb_now_us();
    if (!L->prefix) {
        /* Time and pid: two runs, even at once, never reuse an order_no (which
         * intake would rightly answer with 200 and the first run's petition). */
        time_t secs = (time_t)(wall / 1000000);
        struct tm tm;
        char stamp[32];
        localtime_r(&secs, &tm);
        if (strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm) == 0)
            (void)snprintf(stamp, sizeof stamp, "%lld", (long long)secs);
        if (asprintf(prefix_buf, "LOAD-%s-%ld", stamp, (long)getpid()) < 0)
            return FB_ENOMEM;
        L->prefix = *prefix_buf;
    }
    L->seed = seed >= 0 ? (uint64_t)seed : (uint64_t)wall ^ ((uint64_t)getpid() << 32);
    L->rng = L->seed * 0x9E3779B97F4A7C15ULL + 1; /* never 0: xorshift would stay there */
    return 0;
}
