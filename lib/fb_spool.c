/* fb_spool.c — segment files of [magic len crc seq payload] records. */
#include "fb_spool.h"
#include "fb_common.h"
#include "fb_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#define MAGIC      0x31524246u /* "FBR1" little-endian */
#define HDR        20          /* magic(4) len(4) crc(4) seq(8) */
#define MAX_RECORD (64u << 20)

typedef struct {
    uint64_t first_seq;
    int fd;
    int ack_fd;
    uint64_t size;
    uint32_t *offsets; /* record i (seq first_seq+i) starts here */
    uint8_t *acked;
    size_t n, cap, n_acked;
    bool dirty;
} s_segment_t;

struct fb_spool {
    char *dir;
    int dir_fd;
    size_t segment_bytes;
    s_segment_t *segs;
    size_t nsegs, capsegs;
    uint64_t next_seq;
    size_t pending;
    bool dir_dirty;
};

static void seg_path(const fb_spool_t *s, uint64_t first, const char *ext, char *out, size_t n) {
    snprintf(out, n, "%s/seg-%020" PRIu64 ".%s", s->dir, first, ext);
}

static uint32_t record_crc(uint64_t seq, const void *data, size_t len) {
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, (const Bytef *)&seq, sizeof seq);
    c = crc32(c, (const Bytef *)data, (uInt)len);
    return (uint32_t)c;
}

static int seg_push(s_segment_t *g, uint32_t offset) {
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 1024;
        uint32_t *o = realloc(g->offsets, cap * sizeof *o);
        if (!o)
            return FB_ENOMEM;
        g->offsets = o;
        uint8_t *a = realloc(g->acked, cap);
        if (!a)
            return FB_ENOMEM;
        memset(a + g->cap, 0, cap - g->cap);
        g->acked = a;
        g->cap = cap;
    }
    g->offsets[g->n++] = offset;
    return 0;
}

static s_segment_t *seg_add(fb_spool_t *s, uint64_t first) {
    if (s->nsegs == s->capsegs) {
        size_t cap = s->capsegs ? s->capsegs * 2 : 8;
        s_segment_t *n = realloc(s->segs, cap * sizeof *n);
        if (!n)
            return NULL;
        s->segs = n;
        s->capsegs = cap;
    }
    s_segment_t *g = &s->segs[s->nsegs++];
    memset(g, 0, sizeof *g);
    g->first_seq = first;
    g->fd = g->ack_fd = -1;
    return g;
}

static void seg_free(s_segment_t *g) {
    if (g->fd >= 0)
        close(g->fd);
    if (g->ack_fd >= 0)
        close(g->ack_fd);
    free(g->offsets);
    free(g->acked);
}

/* Reads the records of one segment file; truncates a torn tail when last. */
static int seg_load(fb_spool_t *s, s_segment_t *g, bool last) {
    char path[4096];
    seg_path(s, g->first_seq, "log", path, sizeof path);
    g->fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    if (g->fd < 0)
        return FB_EIO;
    FILE *f = fdopen(dup(g->fd), "rb");
    if (!f)
        return FB_EIO;
    struct stat st;
    uint64_t file_size = fstat(g->fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    uint64_t off = 0;
    char *buf = NULL;
    size_t bufcap = 0;
    int rc = 0;
    for (;;) {
        unsigned char hdr[HDR];
        size_t got = fread(hdr, 1, HDR, f);
        if (got == 0)
            break;
        uint32_t magic, len, crc;
        uint64_t seq;
        memcpy(&magic, hdr, 4);
        memcpy(&len, hdr + 4, 4);
        memcpy(&crc, hdr + 8, 4);
        memcpy(&seq, hdr + 12, 8);
        bool ok = got == HDR && magic == MAGIC && len <= MAX_RECORD && seq == g->first_seq + g->n;
        if (ok && len > bufcap) {
            char *nb = realloc(buf, len);
            if (!nb) {
                rc = FB_ENOMEM;
                break;
            }
            buf = nb;
            bufcap = len;
        }
        bool complete = ok && fread(buf, 1, len, f) == len;
        if (complete && record_crc(seq, buf, len) != crc && off + HDR + len < file_size) {
            /* A damaged record with intact records after it: a torn append
             * can only be the last one, so this is corruption. Keep the
             * records that follow; this one can never be delivered. */
            fb_log(FB_LOG_ERROR,
                   "event=spool_corrupt_record segment=%s offset=%" PRIu64 " seq=%" PRIu64, path,
                   off, seq);
            if ((rc = seg_push(g, (uint32_t)off)) != 0)
                break;
            g->acked[g->n - 1] = 1;
            g->n_acked++;
            off += HDR + len;
            continue;
        }
        ok = complete && record_crc(seq, buf, len) == crc;
        if (!ok) {
            if (last) {
                fb_log(FB_LOG_WARN, "event=spool_torn_tail segment=%s offset=%" PRIu64, path, off);
                if (ftruncate(g->fd, (off_t)off) != 0)
                    rc = FB_EIO;
            } else {
                fb_log(FB_LOG_ERROR, "event=spool_corrupt segment=%s offset=%" PRIu64, path, off);
                rc = FB_ECORRUPT;
            }
            break;
        }
        if ((rc = seg_push(g, (uint32_t)off)) != 0)
            break;
        off += HDR + len;
    }
    free(buf);
    fclose(f);
    g->size = off;
    if (rc)
        return rc;
    /* Acknowledgements already recorded for this segment. */
    seg_path(s, g->first_seq, "ack", path, sizeof path);
    g->ack_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (g->ack_fd < 0)
        return FB_EIO;
    uint64_t seq;
    while (read(g->ack_fd, &seq, sizeof seq) == (ssize_t)sizeof seq) {
        if (seq >= g->first_seq && seq < g->first_seq + g->n && !g->acked[seq - g->first_seq]) {
            g->acked[seq - g->first_seq] = 1;
            g->n_acked++;
        }
    }
    return 0;
}

static int seg_create(fb_spool_t *s, uint64_t first) {
    s_segment_t *g = seg_add(s, first);
    if (!g)
        return FB_ENOMEM;
    char path[4096];
    seg_path(s, first, "log", path, sizeof path);
    g->fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    seg_path(s, first, "ack", path, sizeof path);
    g->ack_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (g->fd < 0 || g->ack_fd < 0)
        return FB_EIO;
    s->dir_dirty = true;
    return 0;
}

static void remove_segment(fb_spool_t *s, size_t idx);

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int fb_spool_open(const char *dir, size_t segment_bytes, fb_spool_t **out) {
    *out = NULL;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return FB_EIO;
    fb_spool_t *s = calloc(1, sizeof *s);
    if (!s)
        return FB_ENOMEM;
    s->dir = strdup(dir);
    s->segment_bytes = segment_bytes;
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = FB_EIO;
    uint64_t *firsts = NULL;
    size_t nf = 0, capf = 0;
    DIR *d = opendir(dir);
    if (!s->dir || s->dir_fd < 0 || !d)
        goto fail;
    struct dirent *e;
    while ((e = readdir(d))) {
        uint64_t first;
        char tail[8];
        if (sscanf(e->d_name, "seg-%20" SCNu64 ".%3s", &first, tail) == 2 &&
            strcmp(tail, "log") == 0) {
            if (nf == capf) {
                capf = capf ? capf * 2 : 16;
                uint64_t *n = realloc(firsts, capf * sizeof *n);
                if (!n) {
                    rc = FB_ENOMEM;
                    goto fail;
                }
                firsts = n;
            }
            firsts[nf++] = first;
        }
    }
    if (nf)
        qsort(firsts, nf, sizeof *firsts, cmp_u64);
    s->next_seq = 1;
    for (size_t i = 0; i < nf; i++) {
        s_segment_t *g = seg_add(s, firsts[i]);
        if (!g) {
            rc = FB_ENOMEM;
            goto fail;
        }
        if ((rc = seg_load(s, g, i + 1 == nf)) != 0)
            goto fail;
        s->next_seq = g->first_seq + g->n;
        s->pending += g->n - g->n_acked;
    }
    for (size_t i = s->nsegs; i-- > 1;)
        if (s->segs[i - 1].n_acked == s->segs[i - 1].n)
            remove_segment(s, i - 1);
    if (s->nsegs == 0 && (rc = seg_create(s, s->next_seq)) != 0)
        goto fail;
    closedir(d);
    free(firsts);
    *out = s;
    return fb_spool_sync(s);
fail:
    if (d)
        closedir(d);
    free(firsts);
    fb_spool_close(&s);
    return rc;
}

void fb_spool_close(fb_spool_t **sp) {
    fb_spool_t *s = *sp;
    if (!s)
        return;
    for (size_t i = 0; i < s->nsegs; i++)
        seg_free(&s->segs[i]);
    free(s->segs);
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    free(s->dir);
    free(s);
    *sp = NULL;
}

int fb_spool_append(fb_spool_t *s, const void *data, size_t len, uint64_t *seq) {
    if (len > MAX_RECORD)
        return FB_EINVAL;
    s_segment_t *g = &s->segs[s->nsegs - 1];
    if (g->size >= s->segment_bytes) {
        int rc = seg_create(s, s->next_seq);
        if (rc)
            return rc;
        /* The segment just closed may have been acknowledged while active. */
        if (s->segs[s->nsegs - 2].n_acked == s->segs[s->nsegs - 2].n)
            remove_segment(s, s->nsegs - 2);
        g = &s->segs[s->nsegs - 1];
    }
    uint64_t q = s->next_seq;
    unsigned char hdr[HDR];
    uint32_t magic = MAGIC, l32 = (uint32_t)len, crc = record_crc(q, data, len);
    memcpy(hdr, &magic, 4);
    memcpy(hdr + 4, &l32, 4);
    memcpy(hdr + 8, &crc, 4);
    memcpy(hdr + 12, &q, 8);
    struct iovec iov[2] = {{hdr, HDR}, {(void *)data, len}};
    ssize_t w = writev(g->fd, iov, 2);
    if (w != (ssize_t)(HDR + len)) {
        /* Leave no partial record behind for the next append to follow. */
        if (w > 0 && ftruncate(g->fd, (off_t)g->size) != 0)
            fb_log(FB_LOG_ERROR, "event=spool_truncate_failed error=\"%s\"", strerror(errno));
        return FB_EIO;
    }
    int rc = seg_push(g, (uint32_t)g->size);
    if (rc)
        return rc;
    g->size += HDR + len;
    g->dirty = true;
    s->next_seq++;
    s->pending++;
    *seq = q;
    return 0;
}

int fb_spool_sync(fb_spool_t *s) {
    for (size_t i = 0; i < s->nsegs; i++) {
        s_segment_t *g = &s->segs[i];
        if (g->dirty) {
            if (fdatasync(g->fd) != 0)
                return FB_EIO;
            g->dirty = false;
        }
    }
    if (s->dir_dirty) {
        if (fsync(s->dir_fd) != 0)
            return FB_EIO;
        s->dir_dirty = false;
    }
    return 0;
}

typedef struct {
    fb_spool_t *s;
    int rc;
} s_sync_job_t;

static void *sync_thread(void *arg) {
    s_sync_job_t *j = arg;
    j->rc = fb_spool_sync(j->s);
    return NULL;
}

int fb_spool_sync_pair(fb_spool_t *a, fb_spool_t *b) {
    s_sync_job_t ja = {a, 0};
    pthread_t t;
    /* Without a thread, one after the other: slower, as safe. */
    if (pthread_create(&t, NULL, sync_thread, &ja) != 0) {
        int rc = fb_spool_sync(a);
        return rc ? rc : fb_spool_sync(b);
    }
    int rb = fb_spool_sync(b);
    pthread_join(t, NULL);
    return ja.rc ? ja.rc : rb;
}

static s_segment_t *find_seg(fb_spool_t *s, uint64_t seq, size_t *idx) {
    size_t lo = 0, hi = s->nsegs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (s->segs[mid].first_seq <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0)
        return NULL;
    s_segment_t *g = &s->segs[lo - 1];
    if (seq >= g->first_seq + g->n)
        return NULL;
    *idx = lo - 1;
    return g;
}

static void remove_segment(fb_spool_t *s, size_t idx) {
    s_segment_t *g = &s->segs[idx];
    char path[4096];
    seg_path(s, g->first_seq, "log", path, sizeof path);
    if (unlink(path) != 0)
        fb_log(FB_LOG_WARN, "event=spool_unlink_failed path=%s error=\"%s\"", path,
               strerror(errno));
    seg_path(s, g->first_seq, "ack", path, sizeof path);
    (void)unlink(path);
    seg_free(g);
    memmove(&s->segs[idx], &s->segs[idx + 1], (s->nsegs - idx - 1) * sizeof *g);
    s->nsegs--;
}

int fb_spool_ack(fb_spool_t *s, uint64_t seq) {
    size_t idx;
    s_segment_t *g = find_seg(s, seq, &idx);
    if (!g || g->acked[seq - g->first_seq])
        return 0;
    g->acked[seq - g->first_seq] = 1;
    g->n_acked++;
    s->pending--;
    if (write(g->ack_fd, &seq, sizeof seq) != (ssize_t)sizeof seq)
        fb_log(FB_LOG_WARN, "event=spool_ack_write_failed error=\"%s\"", strerror(errno));
    /* The active (last) segment stays, so the next sequence number survives. */
    if (g->n_acked == g->n && idx + 1 < s->nsegs)
        remove_segment(s, idx);
    return 1;
}

static int read_at(const s_segment_t *g, size_t i, char **data, size_t *len) {
    unsigned char hdr[HDR];
    if (pread(g->fd, hdr, HDR, g->offsets[i]) != HDR)
        return FB_EIO;
    uint32_t l32;
    memcpy(&l32, hdr + 4, 4);
    char *buf = malloc(l32 ? l32 : 1);
    if (!buf)
        return FB_ENOMEM;
    if (pread(g->fd, buf, l32, (off_t)g->offsets[i] + HDR) != (ssize_t)l32) {
        free(buf);
        return FB_EIO;
    }
    *data = buf;
    *len = l32;
    return 0;
}

int fb_spool_read(fb_spool_t *s, uint64_t seq, char **data, size_t *len) {
    size_t idx;
    s_segment_t *g = find_seg(s, seq, &idx);
    if (!g || g->acked[seq - g->first_seq])
        return FB_ENOTFOUND;
    return read_at(g, seq - g->first_seq, data, len);
}

int fb_spool_foreach_pending(fb_spool_t *s, fb_spool_cb cb, void *ud) {
    for (size_t k = 0; k < s->nsegs; k++) {
        s_segment_t *g = &s->segs[k];
        for (size_t i = 0; i < g->n; i++) {
            if (g->acked[i])
                continue;
            char *data;
            size_t len;
            int rc = read_at(g, i, &data, &len);
            if (rc)
                return rc;
            rc = cb(ud, g->first_seq + i, data, len);
            free(data);
            if (rc)
                return rc;
        }
    }
    return 0;
}

size_t fb_spool_pending(const fb_spool_t *s) {
    return s->pending;
}

size_t fb_spool_segments(const fb_spool_t *s) {
    return s->nsegs;
}
