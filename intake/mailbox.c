/* mailbox.c — the mailbox channel: petitions by e-mail, from a Maildir.
 *
 * new/ is watched with inotify (a libuv fs event) and also scanned every
 * [mailbox] scan_s seconds, because events can be missed (queue overflow,
 * mail delivered while intake was down). Each file is read, parsed
 * (mailbox_parse.c) and its photos and raw bytes stored durably on libuv's
 * thread pool, so that parsing and fsyncs never stall the loop; the petition
 * is then submitted on the loop. Only when intake answers that it is durable
 * (202, or 200 for a message seen before) does the file move to cur/ with
 * the Seen flag: that move is the acknowledgement. A message that cannot be
 * read as a petition moves to .failed/ with the reason logged; one that
 * could not be stored (spool or disk trouble) stays in new/ and is tried
 * again after scan_s. Nothing is ever deleted, and a move never replaces a
 * file (RENAME_NOREPLACE).
 *
 * raw of a mailbox petition (the proof a resident gives for follow-up is
 * from.address):
 *   {"from": {"name", "address"}, "subject", "message_id", "date",
 *    "charset_lossy", "body_format": "plain"|"html", "content_truncated",
 *    "photos": [{"sha256", "content_type", "bytes"}], "photos_skipped",
 *    "raw_message": {"sha256", "bytes", "file": "mail/<sha256>.eml"}}
 * Photos live in the shared photo store (fb_photo.h), the raw message under
 * data_dir/mail/ (a hard link to the Maildir file where it can be), both
 * named by their SHA-256. */
#include "fb_common.h"
#include "fb_log.h"
#include "fb_map.h"
#include "intake.h"
#include "mailbox_parse.h"
#include "fb_photo.h"

#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_RUNNING       2     /* files on the thread pool at once (it also serves PostgreSQL) */
#define MAX_PHOTOS        9     /* as many as the mini-program takes */
#define MAX_CONTENT_BYTES 30000 /* ~10,000 Chinese characters; the raw message keeps the rest */
#define KICK_MS           20    /* an fs event scans this soon: bursts of deliveries coalesce */
#define PATH_BYTES        4096

typedef enum {
    OUT_SUBMIT, /* parsed and stored: submit the petition */
    OUT_FAILED, /* cannot be read as a petition: .failed/ */
    OUT_RETRY,  /* could not be stored now: stays in new/ */
    OUT_GONE,   /* the file went away before it was read */
} s_outcome_t;

struct intake_mailbox;

/* One file of new/, from the scan that found it until it is moved or left. */
typedef struct {
    uv_work_t work;
    struct intake_mailbox *mb;
    char *name;
    int64_t mtime_us;
    s_outcome_t outcome;
    char reason[256];
    intake_mail_t *mail;
} s_job_t;

struct intake_mailbox {
    intake_t *in;
    char new_dir[PATH_BYTES], cur_dir[PATH_BYTES], failed_dir[PATH_BYTES];
    char mail_dir[PATH_BYTES]; /* data_dir/mail: raw messages */
    uv_fs_event_t watch;
    uv_timer_t scan;
    uint64_t period_ms;
    fb_map_t *inflight; /* file name → s_job_t */
    fb_map_t *deferred; /* file name → uint64_t *: not before this fb_mono_ms() */
    unsigned running;   /* jobs on the thread pool */
    unsigned jobs;      /* jobs alive */
    unsigned handles;   /* handles not yet closed */
    bool stopping, rescan;
    size_t max_bytes;
    intake_mail_limits_t limits;
};

/* ---- files --------------------------------------------------------------- */

/* Creates dir when missing (and makes that durable in its parent). */
static int ensure_dir(const char *dir) {
    if (mkdir(dir, 0700) != 0) {
        struct stat st;
        if (errno == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        return FB_EIO;
    }
    char parent[PATH_BYTES];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent)
        *slash = '\0';
    (void)fb_fsync_dir(slash ? parent : ".");
    return 0;
}

/* dir + "/" + name into out; FB_EINVAL when it does not fit. */
static int join_path(char *out, size_t outlen, const char *dir, const char *name) {
    int n = snprintf(out, outlen, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= outlen ? FB_EINVAL : 0;
}

/* Moves from_dir/name into to_dir under name (without any ":2,…" info
 * when info is given) + info, never replacing a file there: on a clash a
 * counter goes before the info. The final name goes to moved. Returns 0 or
 * FB_EIO (errno set; ENOENT when the file went away). */
static int move_file(const char *from_dir, const char *name, const char *to_dir, const char *info,
                     char *moved, size_t movedlen) {
    char from[PATH_BYTES], to[PATH_BYTES];
    if (!info || strstr(name, ":2,"))
        info = ""; /* none wanted, or the name carries Maildir info already */
    if (join_path(from, sizeof from, from_dir, name) != 0) {
        errno = ENAMETOOLONG;
        return FB_EIO;
    }
    for (int k = 0; k < 1000; k++) {
        char candidate[600];
        int n = k == 0 ? snprintf(candidate, sizeof candidate, "%s%s", name, info)
                       : snprintf(candidate, sizeof candidate, "%s.%d%s", name, k, info);
        if (n < 0 || (size_t)n >= sizeof candidate || join_path(to, sizeof to, to_dir, candidate)) {
            errno = ENAMETOOLONG;
            return FB_EIO;
        }
        int rc = renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE);
        if (rc != 0 && (errno == EINVAL || errno == ENOSYS)) {
            /* A file system without RENAME_NOREPLACE: link() refuses to
             * replace as well; the old name goes only once the new exists. */
            rc = link(from, to);
            if (rc == 0)
                (void)unlink(from);
        }
        if (rc == 0) {
            snprintf(moved, movedlen, "%s", candidate);
            return 0;
        }
        if (errno != EEXIST)
            return FB_EIO;
    }
    errno = EEXIST;
    return FB_EIO;
}

/* A file name fit for a key=value log line. */
static const char *log_name(const char *name, char *out, size_t outlen) {
    size_t n = 0;
    for (const char *s = name; *s && n + 1 < outlen; s++)
        out[n++] = (char)(((unsigned char)*s <= ' ' || *s == '"' || *s == '\\') ? '_' : *s);
    out[n] = '\0';
    return out;
}

/* ---- the thread pool: read, parse, store ---------------------------------- */

static void job_set(s_job_t *job, s_outcome_t outcome, const char *reason) {
    job->outcome = outcome;
    snprintf(job->reason, sizeof job->reason, "%s", reason);
}

/* errno's text on a pool thread (GNU strerror_r: thread-safe). */
static const char *errno_text(char *buf, size_t len) {
    return strerror_r(errno, buf, len);
}

/* Keeps the raw message as mail_dir/<sha256>.eml, stored once per content
 * like photos: a hard link to the Maildir file (fd, open on new/<file>)
 * when both lie on one filesystem — the message is then on disk once under
 * two names, until the retention sweep removes both — else a copy. */
static int store_raw(const struct intake_mailbox *mb, int fd, const char *file, const char *sha,
                     const char *data, size_t len) {
    char name[80], src[PATH_BYTES], dst[PATH_BYTES];
    snprintf(name, sizeof name, "%s.eml", sha);
    if (join_path(src, sizeof src, mb->new_dir, file) == 0 &&
        join_path(dst, sizeof dst, mb->mail_dir, name) == 0 &&
        (link(src, dst) == 0 || errno == EEXIST) && fsync(fd) == 0 &&
        fb_fsync_dir(mb->mail_dir) == 0)
        return 0;
    return fb_store_durably(mb->mail_dir, name, data, len);
}

static void job_work(uv_work_t *w) {
    s_job_t *job = w->data;
    struct intake_mailbox *mb = job->mb;
    char path[PATH_BYTES], why[256], eb[128];
    char *buf = NULL;
    if (join_path(path, sizeof path, mb->new_dir, job->name) != 0) {
        job_set(job, OUT_FAILED, "file name too long");
        return;
    }
    /* O_NONBLOCK: a FIFO dropped into new/ must not hang the pool thread. */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            job_set(job, OUT_GONE, "gone");
        else if (errno == ELOOP)
            job_set(job, OUT_FAILED, "a symbolic link, not a message");
        else
            job_set(job, OUT_RETRY, errno_text(eb, sizeof eb));
        return;
    }
    struct stat st = {0};
    if (fstat(fd, &st) != 0) {
        job_set(job, OUT_RETRY, errno_text(eb, sizeof eb));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        job_set(job, OUT_FAILED, "not a regular file");
        goto done;
    }
    if ((uint64_t)st.st_size > mb->max_bytes) {
        snprintf(why, sizeof why, "larger than %zu bytes ([intake] max_upload)", mb->max_bytes);
        job_set(job, OUT_FAILED, why);
        goto done;
    }
    job->mtime_us = (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
    size_t cap = (size_t)st.st_size, len = 0;
    buf = malloc(cap ? cap : 1);
    if (!buf) {
        job_set(job, OUT_RETRY, "out of memory");
        goto done;
    }
    while (len < cap) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            job_set(job, OUT_RETRY, errno_text(eb, sizeof eb));
            goto done;
        }
        if (r == 0)
            break;
        len += (size_t)r;
    }
    int rc = intake_mail_parse(buf, len, &mb->limits, &job->mail, why, sizeof why);
    if (rc == FB_EINVAL) {
        job_set(job, OUT_FAILED, why);
        goto done;
    }
    if (rc != 0) {
        job_set(job, OUT_RETRY, "out of memory");
        goto done;
    }
    /* Photos and the raw message are on disk before the petition that names
     * them is submitted, so an acknowledged petition never points at
     * nothing. */
    for (size_t i = 0; i < job->mail->nphotos; i++) {
        intake_mail_photo_t *ph = &job->mail->photos[i];
        char sha[65];
        if (fb_photo_store(mb->in->cfg.data_dir, ph->data, ph->len, sha, NULL) != 0) {
            snprintf(why, sizeof why, "photo store failed: %s", errno_text(eb, sizeof eb));
            job_set(job, OUT_RETRY, why);
            goto done;
        }
        free(ph->data); /* only its hash and size are needed from here on */
        ph->data = NULL;
    }
    if (store_raw(mb, fd, job->name, job->mail->raw_sha256, buf, len) != 0) {
        snprintf(why, sizeof why, "raw message store failed: %s", errno_text(eb, sizeof eb));
        job_set(job, OUT_RETRY, why);
        goto done;
    }
    job_set(job, OUT_SUBMIT, "");
done:
    free(buf);
    close(fd);
    /* A large mail's parse tree is gone: give its memory back to the system
     * rather than keep the peak for good (glibc keeps freed arenas). */
    if (st.st_size > (1 << 20))
        malloc_trim(0);
}

/* ---- the loop --------------------------------------------------------------- */

static void mailbox_free_if_done(struct intake_mailbox *mb) {
    if (!mb->stopping || mb->handles || mb->jobs)
        return;
    fb_map_destroy(&mb->inflight, NULL);
    fb_map_destroy(&mb->deferred, free);
    free(mb);
}

static void job_end(s_job_t *job) {
    struct intake_mailbox *mb = job->mb;
    fb_map_remove(mb->inflight, job->name);
    intake_mail_destroy(&job->mail);
    free(job->name);
    free(job);
    mb->jobs--;
    mailbox_free_if_done(mb);
}

static void undefer(struct intake_mailbox *mb, const char *name) {
    free(fb_map_remove(mb->deferred, name));
}

/* Leaves the file in new/ until the next periodic scan, so that a file that
 * cannot be stored now neither spins the loop nor holds up the others. */
static void defer(struct intake_mailbox *mb, const char *name, const char *reason) {
    char ln[256];
    fb_log(FB_LOG_WARN, "event=mail_deferred file=%s reason=\"%s\" retry_in_ms=%llu",
           log_name(name, ln, sizeof ln), reason, (unsigned long long)mb->period_ms);
    uint64_t *due = malloc(sizeof *due);
    void *old = NULL;
    if (!due)
        return;
    *due = fb_mono_ms() + mb->period_ms;
    if (fb_map_put(mb->deferred, name, due, &old) != 0)
        free(due);
    free(old);
}

static void fail_file(struct intake_mailbox *mb, const char *name, const char *reason) {
    char moved[600], ln[256], lm[600];
    mb->in->m.rejected++;
    undefer(mb, name);
    if (move_file(mb->new_dir, name, mb->failed_dir, NULL, moved, sizeof moved) != 0) {
        fb_log(FB_LOG_ERROR, "event=mail_failed file=%s reason=\"%s\" moved=false error=\"%s\"",
               log_name(name, ln, sizeof ln), reason, strerror(errno));
        return;
    }
    fb_log(FB_LOG_WARN, "event=mail_failed file=%s reason=\"%s\" moved_to=.failed/%s",
           log_name(name, ln, sizeof ln), reason, log_name(moved, lm, sizeof lm));
}

static void on_submitted(void *ud, unsigned status, const char *tracking_no) {
    s_job_t *job = ud;
    struct intake_mailbox *mb = job->mb;
    char ln[256], moved[600];
    if (status == 202 || status == 200) {
        /* Durable: now, and only now, the message counts as received. */
        undefer(mb, job->name);
        if (move_file(mb->new_dir, job->name, mb->cur_dir, ":2,S", moved, sizeof moved) == 0)
            fb_log(FB_LOG_INFO, "event=mail_spooled file=%s tracking_no=%s status=%u",
                   log_name(job->name, ln, sizeof ln), tracking_no, status);
        else
            /* Left in new/, it is submitted again and answered 200. */
            fb_log(FB_LOG_ERROR,
                   "event=mail_move_failed file=%s tracking_no=%s to=cur error=\"%s\"",
                   log_name(job->name, ln, sizeof ln), tracking_no, strerror(errno));
    } else {
        defer(mb, job->name, "the spool could not store the petition");
    }
    job_end(job);
}

static void on_scan(uv_timer_t *t);

/* Scans soon, keeping the period; a burst of events gives one scan. */
static void kick(struct intake_mailbox *mb) {
    if (!mb->stopping && uv_timer_get_due_in(&mb->scan) > KICK_MS)
        uv_timer_start(&mb->scan, on_scan, KICK_MS, mb->period_ms);
}

static void job_after(uv_work_t *w, int status) {
    s_job_t *job = w->data;
    struct intake_mailbox *mb = job->mb;
    mb->running--;
    if (mb->rescan) { /* the scan left files for when a job is done */
        mb->rescan = false;
        kick(mb);
    }
    if (mb->stopping || status != 0) {
        job_end(job); /* the file stays in new/ for the next start */
        return;
    }
    fb_petition_t *p = NULL;
    int rc;
    switch (job->outcome) {
    case OUT_GONE:
        undefer(mb, job->name);
        job_end(job);
        break;
    case OUT_FAILED:
        fail_file(mb, job->name, job->reason);
        job_end(job);
        break;
    case OUT_RETRY:
        defer(mb, job->name, job->reason);
        job_end(job);
        break;
    case OUT_SUBMIT:
        rc = intake_mail_petition(job->mail, job->mtime_us, &p);
        intake_mail_destroy(&job->mail);
        if (rc == FB_ENOMEM) {
            defer(mb, job->name, "out of memory");
            job_end(job);
        } else if (rc != 0) {
            fail_file(mb, job->name, "the text could not be normalised");
            job_end(job);
        } else {
            intake_submit(mb->in, p, on_submitted, job); /* may answer at once */
        }
        break;
    }
}

static void scan(struct intake_mailbox *mb) {
    if (mb->stopping)
        return;
    DIR *d = opendir(mb->new_dir);
    if (!d) {
        fb_log(FB_LOG_ERROR, "event=mailbox_scan_failed dir=%s error=\"%s\"", mb->new_dir,
               strerror(errno));
        return;
    }
    uint64_t now = fb_mono_ms();
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || fb_map_get(mb->inflight, e->d_name))
            continue;
        uint64_t *due = fb_map_get(mb->deferred, e->d_name);
        if (due && *due > now)
            continue;
        if (mb->running >= MAX_RUNNING) {
            mb->rescan = true; /* more when a job is done */
            break;
        }
        s_job_t *job = calloc(1, sizeof *job);
        if (job && !(job->name = strdup(e->d_name))) {
            free(job);
            job = NULL;
        }
        if (!job || fb_map_put(mb->inflight, job->name, job, NULL) != 0) {
            if (job)
                free(job->name);
            free(job);
            break;
        }
        job->mb = mb;
        job->work.data = job;
        if (uv_queue_work(mb->in->loop, &job->work, job_work, job_after) != 0) {
            fb_map_remove(mb->inflight, job->name);
            free(job->name);
            free(job);
            break;
        }
        mb->jobs++;
        mb->running++;
    }
    closedir(d);
}

static void on_scan(uv_timer_t *t) {
    struct intake_mailbox *mb = t->data;
    /* scan_s may have been reloaded (SIGHUP). */
    uint64_t period = (uint64_t)mb->in->cfg.maildir_scan_s * 1000;
    if (period && period != mb->period_ms) {
        mb->period_ms = period;
        uv_timer_set_repeat(&mb->scan, period);
    }
    scan(mb);
}

static void on_fs_event(uv_fs_event_t *h, const char *filename, int events, int status) {
    (void)filename;
    (void)events;
    struct intake_mailbox *mb = h->data;
    if (status < 0)
        fb_log(FB_LOG_WARN, "event=mailbox_watch_error error=\"%s\"", uv_strerror(status));
    kick(mb);
}

static void on_handle_closed(uv_handle_t *h) {
    struct intake_mailbox *mb = h->data;
    mb->handles--;
    mailbox_free_if_done(mb);
}

/* ---- start and stop ------------------------------------------------------- */

int intake_mailbox_start(intake_t *in) {
    const char *root = in->cfg.maildir;
    if (!root || !*root)
        return 0;
    struct intake_mailbox *mb = calloc(1, sizeof *mb);
    if (!mb)
        return FB_ENOMEM;
    mb->in = in;
    mb->period_ms = (uint64_t)in->cfg.maildir_scan_s * 1000;
    mb->max_bytes = (size_t)in->cfg.intake_max_upload;
    mb->limits = (intake_mail_limits_t){MAX_PHOTOS, (size_t)in->cfg.intake_photo_max_bytes,
                                        MAX_CONTENT_BYTES};
    char tmp_dir[PATH_BYTES];
    snprintf(mb->new_dir, sizeof mb->new_dir, "%s/new", root);
    snprintf(mb->cur_dir, sizeof mb->cur_dir, "%s/cur", root);
    snprintf(tmp_dir, sizeof tmp_dir, "%s/tmp", root);
    snprintf(mb->failed_dir, sizeof mb->failed_dir, "%s/.failed", root);
    fb_config_path(&in->cfg, "mail", mb->mail_dir, sizeof mb->mail_dir);
    const char *dirs[] = {root, mb->new_dir, mb->cur_dir, tmp_dir, mb->failed_dir, mb->mail_dir};
    for (size_t i = 0; i < FB_ARRAY_LEN(dirs); i++) {
        if (ensure_dir(dirs[i]) != 0) {
            fb_log(FB_LOG_ERROR, "event=mailbox_dir_failed dir=%s error=\"%s\"", dirs[i],
                   strerror(errno));
            free(mb);
            return FB_EIO;
        }
    }
    mb->inflight = fb_map_new();
    mb->deferred = fb_map_new();
    if (!mb->inflight || !mb->deferred) {
        fb_map_destroy(&mb->inflight, NULL);
        fb_map_destroy(&mb->deferred, free);
        free(mb);
        return FB_ENOMEM;
    }
    intake_mail_init();

    uv_timer_init(in->loop, &mb->scan);
    mb->scan.data = mb;
    uv_fs_event_init(in->loop, &mb->watch);
    mb->watch.data = mb;
    mb->handles = 2;
    int rc = uv_fs_event_start(&mb->watch, on_fs_event, mb->new_dir, 0);
    if (rc != 0)
        fb_log(FB_LOG_WARN, "event=mailbox_watch_failed dir=%s error=\"%s\" scan_s=%d", mb->new_dir,
               uv_strerror(rc), in->cfg.maildir_scan_s);
    /* First scan at once: mail may have arrived while intake was down. */
    uv_timer_start(&mb->scan, on_scan, 0, mb->period_ms);
    in->mailbox = mb;
    fb_log(FB_LOG_INFO, "event=mailbox_started maildir=%s scan_s=%d watch=%s", root,
           in->cfg.maildir_scan_s, rc == 0 ? "inotify" : "scan-only");
    return 0;
}

void intake_mailbox_stop(intake_t *in) {
    struct intake_mailbox *mb = in->mailbox;
    if (!mb)
        return;
    in->mailbox = NULL;
    mb->stopping = true;
    fb_log(FB_LOG_INFO, "event=mailbox_stopping in_flight=%u", mb->jobs);
    uv_timer_stop(&mb->scan);
    uv_close((uv_handle_t *)&mb->scan, on_handle_closed);
    uv_close((uv_handle_t *)&mb->watch, on_handle_closed);
    /* Jobs still on the pool end in job_after; petitions being spooled are
     * answered by intake_close_handles, and their files moved then. */
}
