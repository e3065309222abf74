/* retention.c — raw mail and photos kept no longer than personal data.
 *
 * A raw message (data_dir/mail/<sha256>.eml, and its copy the MTA left in
 * the Maildir's cur/) and a photo (data_dir/photos/xx/<sha256>.*) carry what
 * a resident wrote, their address and their face: once [intake]
 * raw_retention_days have passed since the file was written, it is
 * deleted, as the worker anonymises a closed case's names and phones after
 * [worker] retention_days. The sweep runs hourly, from intake's loop: a
 * directory walk of files already counted by the day. */
#include "fb_log.h"
#include "intake.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Deletes the regular files under dir (depth levels of subdirectories)
 * last modified before cutoff; returns how many. */
static size_t sweep(const char *dir, int depth, time_t cutoff) {
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue;
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth > 0)
            n += sweep(path, depth - 1, cutoff);
        else if (S_ISREG(st.st_mode) && st.st_mtime < cutoff) {
            if (unlink(path) == 0)
                n++;
            else
                fb_log(FB_LOG_WARN, "event=retention_unlink_failed path=%s error=\"%s\"", path,
                       strerror(errno));
        }
    }
    closedir(d);
    return n;
}

void intake_retention_sweep(intake_t *in) {
    int days = in->cfg.intake_raw_retention_days;
    if (days <= 0)
        return;
    time_t cutoff = time(NULL) - (time_t)days * 86400;
    char path[4096];
    size_t n = 0;
    fb_config_path(&in->cfg, "mail", path, sizeof path);
    n += sweep(path, 0, cutoff);
    fb_config_path(&in->cfg, "photos", path, sizeof path);
    n += sweep(path, 1, cutoff);
    if (in->cfg.maildir && *in->cfg.maildir) {
        snprintf(path, sizeof path, "%s/cur", in->cfg.maildir);
        n += sweep(path, 0, cutoff);
    }
    if (n)
        fb_log(FB_LOG_INFO, "event=retention_swept files=%zu days=%d", n, days);
}
