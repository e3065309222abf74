/* fb_daemon.h — what every fenbo daemon does first: read its command line
 * (--config FILE, --check-config, --help), its configuration (the table's
 * defaults, the file, the checks the table cannot express), and set up its
 * log and the city's time zone. */
#ifndef FB_DAEMON_H
#define FB_DAEMON_H

#include "fb_config.h"

/* Parses argv and reads the configuration into cfg; *config_path is
 * borrowed from argv. Returns -1 when the daemon should go on (TZ set, the
 * log initialised for prog, SIGPIPE ignored), else the exit status: 0 after
 * --help or --check-config, 1 for a bad configuration, 2 for a usage error.
 * summary is the one line --help prints under the usage line. */
int fb_daemon_init(int argc, char **argv, const char *prog, const char *summary, fb_config_t *cfg,
                   const char **config_path);

/* Defaults, then the file at path, then the checks the table cannot express
 * (log level, time zone). For SIGHUP: cfg is the caller's to free. Returns 0,
 * or FB_EINVAL/FB_EIO with the reason in err. */
int fb_daemon_config_read(const char *path, fb_config_t *cfg, char *err, size_t errlen);

#endif
