/* test_spool.c — intake's durable spool (fb_spool.h): what is appended and
 * synced survives a restart until it is acknowledged, a torn tail is cut
 * off, and a corrupted record is never handed out as if it were good. Each
 * test works in a fresh temporary directory, removed afterwards. */
#include "fb_common.h"
#include "fb_spool.h"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#define BIG_SEGMENT (1u << 20)

/* s_root holds every test's directory; main() removes it at the end, also
 * when a failing test's process exited before its teardown. */
static char s_root[64];
static char s_dir[128];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void dir_setup(void) {
    snprintf(s_dir, sizeof s_dir, "%s/t-XXXXXX", s_root);
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
}

static void dir_teardown(void) {
    if (s_dir[0])
        nftw(s_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    s_dir[0] = '\0';
}

static fb_spool_t *open_ok(size_t segment_bytes) {
    fb_spool_t *s = NULL;
    int rc = fb_spool_open(s_dir, segment_bytes, &s);
    ck_assert_msg(rc == 0, "fb_spool_open: %d", rc);
    ck_assert_ptr_nonnull(s);
    return s;
}

static uint64_t append_ok(fb_spool_t *s, const char *text) {
    uint64_t seq = 0;
    ck_assert_int_eq(fb_spool_append(s, text, strlen(text), &seq), 0);
    return seq;
}

/* The payload of the i-th test record: distinct, of a fixed length. */
static void payload(int i, char *out, size_t n) {
    snprintf(out, n, "{\"petition\":%04d,\"content\":\"路灯不亮\"}", i);
}

static void expect_record(fb_spool_t *s, uint64_t seq, const char *want) {
    char *data = NULL;
    size_t len = 0;
    int rc = fb_spool_read(s, seq, &data, &len);
    ck_assert_msg(rc == 0, "read seq %" PRIu64 ": %d", seq, rc);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_mem_eq(data, want, len);
    free(data);
}

static void expect_gone(fb_spool_t *s, uint64_t seq) {
    char *data = (char *)0x1;
    size_t len;
    ck_assert_int_eq(fb_spool_read(s, seq, &data, &len), FB_ENOTFOUND);
}

/* Collects what fb_spool_foreach_pending() hands out. */
typedef struct {
    size_t n;
    uint64_t seq[4096];
    char *data[4096];
    size_t len[4096];
    size_t stop_after; /* 0: never stop */
} s_walk_t;

static int walk_cb(void *ud, uint64_t seq, const char *data, size_t len) {
    s_walk_t *w = ud;
    ck_assert_uint_lt(w->n, 4096);
    w->seq[w->n] = seq;
    w->data[w->n] = malloc(len + 1);
    memcpy(w->data[w->n], data, len);
    w->data[w->n][len] = '\0';
    w->len[w->n] = len;
    w->n++;
    return w->stop_after && w->n == w->stop_after ? 77 : 0;
}

static s_walk_t *walk(fb_spool_t *s) {
    s_walk_t *w = calloc(1, sizeof *w);
    ck_assert_int_eq(fb_spool_foreach_pending(s, walk_cb, w), 0);
    return w;
}

static void walk_free(s_walk_t *w) {
    for (size_t i = 0; i < w->n; i++)
        free(w->data[i]);
    free(w);
}

/* Segment files (*.log) in the spool directory. */
static size_t count_logs(void) {
    DIR *d = opendir(s_dir);
    ck_assert_ptr_nonnull(d);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".log") == 0)
            n++;
    }
    closedir(d);
    return n;
}

/* Path of the newest (last) segment file: names sort by first sequence. */
static void last_log(char *out, size_t n) {
    DIR *d = opendir(s_dir);
    ck_assert_ptr_nonnull(d);
    char best[256] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".log") == 0 && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    }
    closedir(d);
    ck_assert_str_ne(best, "");
    snprintf(out, n, "%s/%s", s_dir, best);
}

static void first_log(char *out, size_t n) {
    DIR *d = opendir(s_dir);
    ck_assert_ptr_nonnull(d);
    char best[256] = "";
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".log") == 0 &&
            (!best[0] || strcmp(e->d_name, best) < 0))
            snprintf(best, sizeof best, "%s", e->d_name);
    }
    closedir(d);
    ck_assert_str_ne(best, "");
    snprintf(out, n, "%s/%s", s_dir, best);
}

static off_t file_size(const char *path) {
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

/* Flips one byte of path at offset from its end. */
static void flip_byte_from_end(const char *path, off_t back) {
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    off_t at = file_size(path) - back;
    unsigned char c;
    ck_assert_int_eq(pread(fd, &c, 1, at), 1);
    c ^= 0x5A;
    ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

/* Finds the offset of needle in path. */
static off_t find_in_file(const char *path, const char *needle) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= n; i++)
        if (memcmp(buf + i, needle, nl) == 0)
            return (off_t)i;
    ck_abort_msg("%s not found in %s", needle, path);
    return -1;
}

/* ---- tests ---- */

START_TEST(test_append_sync_read) {
    fb_spool_t *s = open_ok(BIG_SEGMENT);
    ck_assert_uint_eq(fb_spool_pending(s), 0);
    uint64_t a = append_ok(s, "{\"content\":\"马路上有个坑\"}");
    /* Binary data, NULs included, comes back byte for byte. */
    const char bin[] = {'x', '\0', 'y', '\xff', '\0'};
    uint64_t b;
    ck_assert_int_eq(fb_spool_append(s, bin, sizeof bin, &b), 0);
    uint64_t c;
    ck_assert_int_eq(fb_spool_append(s, "", 0, &c), 0);
    ck_assert_int_eq(fb_spool_sync(s), 0);
    ck_assert_uint_eq(fb_spool_pending(s), 3);
    expect_record(s, a, "{\"content\":\"马路上有个坑\"}");
    char *data;
    size_t len;
    ck_assert_int_eq(fb_spool_read(s, b, &data, &len), 0);
    ck_assert_uint_eq(len, sizeof bin);
    ck_assert_mem_eq(data, bin, sizeof bin);
    free(data);
    ck_assert_int_eq(fb_spool_read(s, c, &data, &len), 0);
    ck_assert_uint_eq(len, 0);
    free(data);
    expect_gone(s, c + 1000);
    fb_spool_close(&s);
    ck_assert_ptr_null(s);
}
END_TEST

/* Two spools synced together (intake's spool and idempotency journal): both
 * hold their records after a reopen. */
START_TEST(test_sync_pair_keeps_both) {
    char da[160], db[160];
    snprintf(da, sizeof da, "%s/a", s_dir);
    snprintf(db, sizeof db, "%s/b", s_dir);
    fb_spool_t *a = NULL, *b = NULL;
    ck_assert_int_eq(fb_spool_open(da, BIG_SEGMENT, &a), 0);
    ck_assert_int_eq(fb_spool_open(db, BIG_SEGMENT, &b), 0);
    uint64_t sa = append_ok(a, "petition");
    uint64_t sb = append_ok(b, "key");
    ck_assert_int_eq(fb_spool_sync_pair(a, b), 0);
    fb_spool_close(&a);
    fb_spool_close(&b);
    ck_assert_int_eq(fb_spool_open(da, BIG_SEGMENT, &a), 0);
    ck_assert_int_eq(fb_spool_open(db, BIG_SEGMENT, &b), 0);
    expect_record(a, sa, "petition");
    expect_record(b, sb, "key");
    expect_gone(a, sb + 1);
    fb_spool_close(&a);
    fb_spool_close(&b);
}
END_TEST

START_TEST(test_sequence_numbers_increase) {
    fb_spool_t *s = open_ok(BIG_SEGMENT);
    uint64_t prev = 0;
    for (int i = 0; i < 200; i++) {
        char p[64];
        payload(i, p, sizeof p);
        uint64_t seq = append_ok(s, p);
        ck_assert_msg(seq > prev, "seq %" PRIu64 " after %" PRIu64, seq, prev);
        prev = seq;
    }
    fb_spool_close(&s);
}
END_TEST

START_TEST(test_ack) {
    fb_spool_t *s = open_ok(BIG_SEGMENT);
    uint64_t a = append_ok(s, "first"), b = append_ok(s, "second"), c = append_ok(s, "third");
    ck_assert_int_eq(fb_spool_sync(s), 0);
    ck_assert_int_eq(fb_spool_ack(s, b), 1);
    ck_assert_uint_eq(fb_spool_pending(s), 2);
    /* A repeated acknowledgement changes nothing. */
    ck_assert_int_eq(fb_spool_ack(s, b), 0);
    ck_assert_uint_eq(fb_spool_pending(s), 2);
    /* Nor does one for a record that never existed. */
    ck_assert_int_eq(fb_spool_ack(s, c + 100), 0);
    ck_assert_int_eq(fb_spool_ack(s, 0), 0);
    ck_assert_uint_eq(fb_spool_pending(s), 2);
    expect_gone(s, b);
    expect_record(s, a, "first");
    expect_record(s, c, "third");
    s_walk_t *w = walk(s);
    ck_assert_uint_eq(w->n, 2);
    ck_assert_uint_eq(w->seq[0], a);
    ck_assert_str_eq(w->data[0], "first");
    ck_assert_uint_eq(w->seq[1], c);
    ck_assert_str_eq(w->data[1], "third");
    walk_free(w);
    fb_spool_close(&s);
}
END_TEST

START_TEST(test_foreach_stops_when_told) {
    fb_spool_t *s = open_ok(BIG_SEGMENT);
    for (int i = 0; i < 5; i++)
        append_ok(s, "x");
    s_walk_t *w = calloc(1, sizeof *w);
    w->stop_after = 2;
    ck_assert_int_eq(fb_spool_foreach_pending(s, walk_cb, w), 77);
    ck_assert_uint_eq(w->n, 2);
    walk_free(w);
    fb_spool_close(&s);
}
END_TEST

START_TEST(test_reopen_replays_unacknowledged_in_order) {
    fb_spool_t *s = open_ok(BIG_SEGMENT);
    uint64_t seq[6];
    char p[6][64];
    for (int i = 0; i < 6; i++) {
        payload(i, p[i], sizeof p[i]);
        seq[i] = append_ok(s, p[i]);
    }
    ck_assert_int_eq(fb_spool_sync(s), 0);
    ck_assert_int_eq(fb_spool_ack(s, seq[1]), 1);
    ck_assert_int_eq(fb_spool_ack(s, seq[4]), 1);
    fb_spool_close(&s);

    s = open_ok(BIG_SEGMENT);
    ck_assert_uint_eq(fb_spool_pending(s), 4);
    s_walk_t *w = walk(s);
    const int want[] = {0, 2, 3, 5};
    ck_assert_uint_eq(w->n, 4);
    for (size_t i = 0; i < 4; i++) {
        ck_assert_uint_eq(w->seq[i], seq[want[i]]);
        ck_assert_str_eq(w->data[i], p[want[i]]);
    }
    walk_free(w);
    expect_gone(s, seq[1]);
    expect_gone(s, seq[4]);
    fb_spool_close(&s);
}
END_TEST

START_TEST(test_many_records_survive_reopen) {
    fb_spool_t *s = open_ok(BIG_SEGMENT);
    enum { N = 3000 };
    uint64_t *seq = malloc(N * sizeof *seq);
    for (int i = 0; i < N; i++) {
        char p[64];
        payload(i, p, sizeof p);
        seq[i] = append_ok(s, p);
    }
    ck_assert_int_eq(fb_spool_sync(s), 0);
    for (int i = 1; i < N; i += 2)
        ck_assert_int_eq(fb_spool_ack(s, seq[i]), 1);
    fb_spool_close(&s);

    s = open_ok(BIG_SEGMENT);
    ck_assert_uint_eq(fb_spool_pending(s), N / 2);
    s_walk_t *w = walk(s);
    ck_assert_uint_eq(w->n, N / 2);
    for (size_t i = 0; i < w->n; i++) {
        char p[64];
        payload((int)(2 * i), p, sizeof p);
        ck_assert_uint_eq(w->seq[i], seq[2 * i]);
        ck_assert_str_eq(w->data[i], p);
    }
    walk_free(w);
    free(seq);
    fb_spool_close(&s);
}
END_TEST

START_TEST(test_segments_roll_and_are_removed) {
    /* Each record is 20 bytes of header plus ~45 of payload: a 100-byte
     * segment holds two. */
    fb_spool_t *s = open_ok(100);
    uint64_t seq[10];
    char p[10][64];
    for (int i = 0; i < 10; i++) {
        payload(i, p[i], sizeof p[i]);
        seq[i] = append_ok(s, p[i]);
    }
    ck_assert_int_eq(fb_spool_sync(s), 0);
    size_t segs = fb_spool_segments(s);
    ck_assert_uint_ge(segs, 3);
    ck_assert_uint_eq(count_logs(), segs);

    /* Acknowledging the first half empties the oldest segments: their
     * files go, the rest stay readable. */
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(fb_spool_ack(s, seq[i]), 1);
    ck_assert_uint_lt(fb_spool_segments(s), segs);
    ck_assert_uint_eq(count_logs(), fb_spool_segments(s));
    for (int i = 5; i < 10; i++)
        expect_record(s, seq[i], p[i]);
    fb_spool_close(&s);

    s = open_ok(100);
    ck_assert_uint_eq(fb_spool_pending(s), 5);
    s_walk_t *w = walk(s);
    ck_assert_uint_eq(w->n, 5);
    for (int i = 0; i < 5; i++) {
        ck_assert_uint_eq(w->seq[i], seq[5 + i]);
        ck_assert_str_eq(w->data[i], p[5 + i]);
    }
    walk_free(w);

    /* Everything acknowledged: only the active segment is left. */
    for (int i = 5; i < 10; i++)
        ck_assert_int_eq(fb_spool_ack(s, seq[i]), 1);
    ck_assert_uint_eq(fb_spool_pending(s), 0);
    ck_assert_uint_eq(fb_spool_segments(s), 1);
    ck_assert_uint_eq(count_logs(), 1);
    fb_spool_close(&s);

    s = open_ok(100);
    ck_assert_uint_eq(fb_spool_pending(s), 0);
    w = walk(s);
    ck_assert_uint_eq(w->n, 0);
    walk_free(w);
    ck_assert_uint_eq(count_logs(), 1);
    fb_spool_close(&s);
}
END_TEST

START_TEST(test_middle_segment_acknowledged_first) {
    /* Acknowledgements arrive out of order: a fully acknowledged segment in
     * the middle goes, the older one with a pending record stays. */
    fb_spool_t *s = open_ok(100);
    uint64_t seq[8];
    char p[8][64];
    for (int i = 0; i < 8; i++) {
        payload(i, p[i], sizeof p[i]);
        seq[i] = append_ok(s, p[i]);
    }
    ck_assert_int_eq(fb_spool_sync(s), 0);
    size_t segs = fb_spool_segments(s);
    for (int i = 1; i < 8; i++)
        if (i != 7)
            ck_assert_int_eq(fb_spool_ack(s, seq[i]), 1);
    ck_assert_uint_lt(fb_spool_segments(s), segs);
    ck_assert_uint_eq(count_logs(), fb_spool_segments(s));
    expect_record(s, seq[0], p[0]);
    expect_record(s, seq[7], p[7]);
    for (int i = 1; i < 7; i++)
        expect_gone(s, seq[i]);
    fb_spool_close(&s);

    s = open_ok(100);
    s_walk_t *w = walk(s);
    ck_assert_uint_eq(w->n, 2);
    ck_assert_uint_eq(w->seq[0], seq[0]);
    ck_assert_str_eq(w->data[0], p[0]);
    ck_assert_uint_eq(w->seq[1], seq[7]);
    ck_assert_str_eq(w->data[1], p[7]);
    walk_free(w);
    fb_spool_close(&s);
}
END_TEST

START_TEST(test_next_sequence_survives_reopen) {
    fb_spool_t *s = open_ok(BIG_SEGMENT);
    uint64_t last = 0;
    for (int i = 0; i < 3; i++)
        last = append_ok(s, "x");
    ck_assert_int_eq(fb_spool_sync(s), 0);
    for (uint64_t q = last - 2; q <= last; q++)
        ck_assert_int_eq(fb_spool_ack(s, q), 1);
    fb_spool_close(&s);

    /* Nothing pending, yet numbers are never handed out twice. */
    s = open_ok(BIG_SEGMENT);
    uint64_t next = append_ok(s, "y");
    ck_assert_uint_gt(next, last);
    fb_spool_close(&s);
}
END_TEST

START_TEST(test_next_sequence_survives_reopen_after_rolling) {
    /* Tiny segments: every record rolls a new one, all are acknowledged and
     * removed; the number still moves on. */
    fb_spool_t *s = open_ok(1);
    uint64_t last = 0;
    for (int i = 0; i < 4; i++) {
        last = append_ok(s, "record");
        ck_assert_int_eq(fb_spool_sync(s), 0);
        ck_assert_int_eq(fb_spool_ack(s, last), 1);
    }
    ck_assert_uint_eq(fb_spool_pending(s), 0);
    /* Each segment went as soon as the next one started. */
    ck_assert_uint_eq(fb_spool_segments(s), 1);
    ck_assert_uint_eq(count_logs(), 1);
    fb_spool_close(&s);
    s = open_ok(1);
    ck_assert_uint_gt(append_ok(s, "after"), last);
    fb_spool_close(&s);
    s = open_ok(1);
    ck_assert_uint_gt(append_ok(s, "after again"), last + 1);
    fb_spool_close(&s);
}
END_TEST

START_TEST(test_acknowledged_segment_left_by_crash_removed) {
    /* A crash between recording the last acknowledgement of a segment and
     * removing its file leaves a fully acknowledged segment behind: the next
     * open removes it and replays nothing of it. Hard links keep the files
     * of the first segment as they were at the moment of the crash. */
    fb_spool_t *s = open_ok(100);
    uint64_t seq[5];
    char p[5][64];
    for (int i = 0; i < 5; i++) {
        payload(i, p[i], sizeof p[i]);
        seq[i] = append_ok(s, p[i]);
    }
    ck_assert_int_eq(fb_spool_sync(s), 0);
    ck_assert_uint_ge(fb_spool_segments(s), 3);
    char first[512], stem[256], keep[256];
    first_log(first, sizeof first);
    snprintf(stem, sizeof stem, "%s", strrchr(first, '/') + 1);
    stem[strlen(stem) - 4] = '\0'; /* without ".log" */
    snprintf(keep, sizeof keep, "%s/keep", s_dir);
    ck_assert_int_eq(mkdir(keep, 0700), 0);
    DIR *d = opendir(s_dir);
    struct dirent *e;
    char names[8][256];
    int nn = 0;
    while ((e = readdir(d)))
        if (strncmp(e->d_name, stem, strlen(stem)) == 0 && nn < 8)
            snprintf(names[nn++], sizeof names[0], "%s", e->d_name);
    closedir(d);
    ck_assert_int_ge(nn, 1);
    char from[600], to[600];
    for (int i = 0; i < nn; i++) {
        snprintf(from, sizeof from, "%s/%s", s_dir, names[i]);
        snprintf(to, sizeof to, "%s/%s", keep, names[i]);
        ck_assert_int_eq(link(from, to), 0);
    }
    ck_assert_int_eq(fb_spool_ack(s, seq[0]), 1);
    ck_assert_int_eq(fb_spool_ack(s, seq[1]), 1);
    fb_spool_close(&s);
    ck_assert_int_ne(access(first, F_OK), 0); /* removed, as it should be */
    for (int i = 0; i < nn; i++) {
        snprintf(from, sizeof from, "%s/%s", keep, names[i]);
        snprintf(to, sizeof to, "%s/%s", s_dir, names[i]);
        ck_assert_int_eq(rename(from, to), 0);
    }
    ck_assert_int_eq(rmdir(keep), 0);

    s = open_ok(100);
    ck_assert_uint_eq(fb_spool_pending(s), 3);
    s_walk_t *w = walk(s);
    ck_assert_uint_eq(w->n, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(w->seq[i], seq[2 + i]);
        ck_assert_str_eq(w->data[i], p[2 + i]);
    }
    walk_free(w);
    ck_assert_int_ne(access(first, F_OK), 0);
    ck_assert_uint_eq(count_logs(), fb_spool_segments(s));
    fb_spool_close(&s);
}
END_TEST

/* Appends three synced records, closes, and returns their numbers. */
static void three_records(uint64_t seq[3], const char *const text[3]) {
    fb_spool_t *s = open_ok(BIG_SEGMENT);
    for (int i = 0; i < 3; i++)
        seq[i] = append_ok(s, text[i]);
    ck_assert_int_eq(fb_spool_sync(s), 0);
    fb_spool_close(&s);
}

static const char *const s_three[3] = {
    "{\"tracking_no\":\"20261122-1-000001\",\"content\":\"路灯不亮\"}",
    "{\"tracking_no\":\"20261122-1-000002\",\"content\":\"井盖丢失\"}",
    "{\"tracking_no\":\"20261122-1-000003\",\"content\":\"噪音扰民\"}",
};

/* After a damaged tail: the intact records are pending, a new record can be
 * appended after them, and it too survives the next reopen. */
static void expect_intact_prefix(const uint64_t seq[3], int intact) {
    fb_spool_t *s = open_ok(BIG_SEGMENT);
    ck_assert_uint_eq(fb_spool_pending(s), (size_t)intact);
    s_walk_t *w = walk(s);
    ck_assert_uint_eq(w->n, (size_t)intact);
    for (int i = 0; i < intact; i++) {
        ck_assert_uint_eq(w->seq[i], seq[i]);
        ck_assert_str_eq(w->data[i], s_three[i]);
    }
    walk_free(w);
    uint64_t fresh = append_ok(s, "after the repair");
    ck_assert_uint_gt(fresh, seq[intact - 1]);
    ck_assert_int_eq(fb_spool_sync(s), 0);
    fb_spool_close(&s);

    s = open_ok(BIG_SEGMENT);
    ck_assert_uint_eq(fb_spool_pending(s), (size_t)intact + 1);
    expect_record(s, fresh, "after the repair");
    for (int i = 0; i < intact; i++)
        expect_record(s, seq[i], s_three[i]);
    fb_spool_close(&s);
}

START_TEST(test_torn_tail_short_garbage) {
    uint64_t seq[3];
    three_records(seq, s_three);
    char path[512];
    last_log(path, sizeof path);
    FILE *f = fopen(path, "ab");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite("\x46\x42\x52\x31zz", 1, 6, f), 6); /* half a header */
    fclose(f);
    expect_intact_prefix(seq, 3);
}
END_TEST

START_TEST(test_torn_tail_long_garbage) {
    uint64_t seq[3];
    three_records(seq, s_three);
    char path[512];
    last_log(path, sizeof path);
    FILE *f = fopen(path, "ab");
    ck_assert_ptr_nonnull(f);
    char junk[300];
    memset(junk, 0xAB, sizeof junk);
    ck_assert_int_eq(fwrite(junk, 1, sizeof junk, f), sizeof junk);
    fclose(f);
    expect_intact_prefix(seq, 3);
}
END_TEST

START_TEST(test_torn_tail_half_record) {
    uint64_t seq[3];
    three_records(seq, s_three);
    char path[512];
    last_log(path, sizeof path);
    /* Cut the last record in half, as a crash in the middle of its write. */
    off_t size = file_size(path);
    ck_assert_int_eq(truncate(path, size - (off_t)strlen(s_three[2]) / 2), 0);
    expect_intact_prefix(seq, 2);
    /* The half record is not handed out as if it were whole. */
    fb_spool_t *s = open_ok(BIG_SEGMENT);
    s_walk_t *w = walk(s);
    for (size_t i = 0; i < w->n; i++)
        ck_assert_str_ne(w->data[i], s_three[2]);
    walk_free(w);
    fb_spool_close(&s);
}
END_TEST

START_TEST(test_corrupt_last_record_detected) {
    uint64_t seq[3];
    three_records(seq, s_three);
    char path[512];
    last_log(path, sizeof path);
    /* One flipped byte in the payload of the last record. */
    flip_byte_from_end(path, 5);
    fb_spool_t *s = open_ok(BIG_SEGMENT);
    ck_assert_uint_eq(fb_spool_pending(s), 2);
    s_walk_t *w = walk(s);
    ck_assert_uint_eq(w->n, 2);
    ck_assert_str_eq(w->data[0], s_three[0]);
    ck_assert_str_eq(w->data[1], s_three[1]);
    walk_free(w);
    char *data;
    size_t len;
    ck_assert_int_ne(fb_spool_read(s, seq[2], &data, &len), 0);
    fb_spool_close(&s);
}
END_TEST

START_TEST(test_corrupt_middle_record_keeps_later_records) {
    /* A record in the middle of the last segment is damaged (a bad sector,
     * not a crash during an append: the records after it were synced, hence
     * answered 2xx). The damaged record must not be handed out, and the
     * records after it must not be silently thrown away: either the spool
     * refuses to open (FB_ECORRUPT, for an operator to look at) or they are
     * still pending. */
    uint64_t seq[3];
    three_records(seq, s_three);
    char path[512];
    last_log(path, sizeof path);
    off_t size_before = file_size(path);
    off_t at = find_in_file(path, "井盖丢失");
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    unsigned char c;
    ck_assert_int_eq(pread(fd, &c, 1, at), 1);
    c ^= 0x01;
    ck_assert_int_eq(pwrite(fd, &c, 1, at), 1);
    close(fd);

    fb_spool_t *s = NULL;
    int rc = fb_spool_open(s_dir, BIG_SEGMENT, &s);
    if (rc == FB_ECORRUPT) {
        ck_assert_ptr_null(s);
        /* Refusing must not have destroyed the evidence either. */
        ck_assert_int_eq(file_size(path), size_before);
        return;
    }
    ck_assert_int_eq(rc, 0);
    s_walk_t *w = walk(s);
    bool saw_third = false;
    for (size_t i = 0; i < w->n; i++) {
        ck_assert_str_ne(w->data[i], s_three[1]);
        ck_assert_msg(strstr(w->data[i], "20261122-1-000002") == NULL,
                      "damaged record handed out: %s", w->data[i]);
        if (strcmp(w->data[i], s_three[2]) == 0)
            saw_third = true;
    }
    ck_assert_msg(saw_third,
                  "the synced record after the damaged one was thrown away "
                  "(%zu pending)",
                  w->n);
    walk_free(w);
    fb_spool_close(&s);
}
END_TEST

START_TEST(test_corrupt_older_segment_detected) {
    /* A damaged record in a segment that is not the last cannot be a torn
     * append: the spool reports corruption rather than replaying it. */
    fb_spool_t *s = open_ok(100);
    for (int i = 0; i < 8; i++) {
        char p[64];
        payload(i, p, sizeof p);
        append_ok(s, p);
    }
    ck_assert_int_eq(fb_spool_sync(s), 0);
    ck_assert_uint_ge(fb_spool_segments(s), 2);
    fb_spool_close(&s);
    char path[512];
    first_log(path, sizeof path);
    flip_byte_from_end(path, 3);
    s = (fb_spool_t *)0x1;
    ck_assert_int_eq(fb_spool_open(s_dir, 100, &s), FB_ECORRUPT);
    ck_assert_ptr_null(s);
}
END_TEST

static Suite *spool_suite(void) {
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");
    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    tcase_add_test(tc, test_append_sync_read);
    tcase_add_test(tc, test_sync_pair_keeps_both);
    tcase_add_test(tc, test_sequence_numbers_increase);
    tcase_add_test(tc, test_ack);
    tcase_add_test(tc, test_foreach_stops_when_told);
    tcase_add_test(tc, test_reopen_replays_unacknowledged_in_order);
    tcase_add_test(tc, test_many_records_survive_reopen);
    tcase_add_test(tc, test_segments_roll_and_are_removed);
    tcase_add_test(tc, test_middle_segment_acknowledged_first);
    tcase_add_test(tc, test_acknowledged_segment_left_by_crash_removed);
    tcase_add_test(tc, test_next_sequence_survives_reopen);
    tcase_add_test(tc, test_next_sequence_survives_reopen_after_rolling);
    tcase_add_test(tc, test_torn_tail_short_garbage);
    tcase_add_test(tc, test_torn_tail_long_garbage);
    tcase_add_test(tc, test_torn_tail_half_record);
    tcase_add_test(tc, test_corrupt_last_record_detected);
    tcase_add_test(tc, test_corrupt_middle_record_keeps_later_records);
    tcase_add_test(tc, test_corrupt_older_segment_detected);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(s_root, sizeof s_root, "%s/fenbo-unit-spool-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s_root)) {
        perror(s_root);
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(spool_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(s_root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
