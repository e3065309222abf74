/* fb_daemon.c — the start every daemon shares. */
#include "fb_daemon.h"
#include "fb_common.h"
#include "fb_log.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* glibc silently falls back to UTC for a zone it does not know, which would
 * shift every deadline by hours: refuse such a setting instead. */
static bool timezone_known(const char *tz) {
    if (!tz || !*tz)
        return false;
    if (tz[0] == ':')
        tz++;
    char path[PATH_MAX];
    if (tz[0] == '/') {
        snprintf(path, sizeof path, "%s", tz);
    } else {
        const char *dir = getenv("TZDIR");
        if (strstr(tz, ".."))
            return false;
        snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", tz);
    }
    if (access(path, R_OK) == 0)
        return true;
    /* A POSIX rule such as "CST-8" names its offset itself. */
    return tz[0] != '/' && strpbrk(tz, "0123456789") != NULL;
}

int fb_daemon_config_read(const char *path, fb_config_t *cfg, char *err, size_t errlen) {
    fb_config_defaults(cfg);
    int rc = fb_config_load(cfg, path, err, errlen);
    if (rc != 0)
        return rc;
    if (fb_log_level_parse(cfg->log_level) < 0) {
        snprintf(err, errlen, "%s: [general] log_level = '%s': expected debug|info|warn|error",
                 path, cfg->log_level);
        return FB_EINVAL;
    }
    if (!timezone_known(cfg->timezone)) {
        snprintf(err, errlen, "%s: [general] timezone = '%s': unknown time zone", path,
                 cfg->timezone);
        return FB_EINVAL;
    }
    return 0;
}

static void usage(FILE *out, const char *prog, const char *summary) {
    fprintf(out,
            "usage: %s --config FILE [--check-config]\n%s\n"
            "  --config FILE    the fenbo INI file (config/fenbo.ini.example lists every key)\n"
            "  --check-config   print the settings as read, check them, and exit\n",
            prog, summary);
}

int fb_daemon_init(int argc, char **argv, const char *prog, const char *summary, fb_config_t *cfg,
                   const char **config_path) {
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool check = false;
    int o;
    *config_path = NULL;
    while ((o = getopt_long(argc, argv, "c:kh", opts, NULL)) != -1) {
        if (o == 'c') {
            *config_path = optarg;
        } else if (o == 'k') {
            check = true;
        } else {
            usage(o == 'h' ? stdout : stderr, prog, summary);
            return o == 'h' ? 0 : 2;
        }
    }
    if (!*config_path || optind != argc) {
        usage(stderr, prog, summary);
        return 2;
    }
    char err[512];
    if (fb_daemon_config_read(*config_path, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s: invalid configuration: %s\n", prog, err);
        return 1;
    }
    if (check) {
        fb_config_print(cfg, stdout);
        fprintf(stderr, "%s: configuration %s is valid\n", prog, *config_path);
        return 0;
    }
    /* Deadlines, the calendar and log times are all in the city's zone. */
    setenv("TZ", cfg->timezone, 1);
    tzset();
    fb_log_init(prog, (fb_log_level_t)fb_log_level_parse(cfg->log_level));
    signal(SIGPIPE, SIG_IGN);
    return -1;
}
