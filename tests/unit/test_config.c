/* test_config.c — the one settings table: defaults, loading an INI file over
 * them, and the refusals an administrator sees from --check-config
 * (fb_config.h). */
#include "fb_common.h"
#include "fb_config.h"

#include <check.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* s_root holds the temporary INI files; main() removes it at the end, also
 * when a failing test's process exited before its teardown. */
static char s_root[64];
static char s_path[128];

/* Writes text to a fresh temporary INI file named by s_path. */
static void write_ini(const char *text) {
    snprintf(s_path, sizeof s_path, "%s/config-XXXXXX", s_root);
    int fd = mkstemp(s_path);
    ck_assert_int_ge(fd, 0);
    size_t n = strlen(text);
    ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
    close(fd);
}

static void remove_ini(void) {
    if (s_path[0])
        unlink(s_path);
    s_path[0] = '\0';
}

/* Loads text and expects FB_EINVAL with a message containing word (and word2
 * unless it is NULL). */
static void expect_refused(const char *text, const char *word, const char *word2) {
    fb_config_t cfg;
    fb_config_defaults(&cfg);
    write_ini(text);
    char err[512] = "";
    int rc = fb_config_load(&cfg, s_path, err, sizeof err);
    ck_assert_msg(rc == FB_EINVAL, "accepted:\n%s", text);
    ck_assert_msg(strstr(err, word) != NULL, "message \"%s\" does not name %s", err, word);
    if (word2)
        ck_assert_msg(strstr(err, word2) != NULL, "message \"%s\" does not name %s", err, word2);
    fb_config_free(&cfg);
}

START_TEST(test_defaults) {
    fb_config_t cfg;
    fb_config_defaults(&cfg);
    /* DESIGN.md: intake on 127.0.0.1:12345, worker on 127.0.0.1:12346, the
     * city's zone Asia/Shanghai. */
    ck_assert_str_eq(cfg.intake_address, "127.0.0.1");
    ck_assert_int_eq(cfg.intake_port, 12345);
    ck_assert_str_eq(cfg.worker_address, "127.0.0.1");
    ck_assert_int_eq(cfg.worker_port, 12346);
    ck_assert_str_eq(cfg.timezone, "Asia/Shanghai");
    ck_assert_str_eq(cfg.log_level, "info");
    ck_assert_int_eq(cfg.instance_id, 1);
    ck_assert_ptr_nonnull(cfg.data_dir);
    ck_assert_ptr_nonnull(cfg.db_conninfo);
    ck_assert_ptr_nonnull(cfg.bus_petitions);
    ck_assert_ptr_nonnull(cfg.bus_assignments);
    ck_assert_str_ne(cfg.bus_petitions, cfg.bus_assignments);
    ck_assert_int_gt(cfg.spool_segment_bytes, 0);
    ck_assert_int_gt(cfg.dispatch_batch_max, 0);
    ck_assert_int_gt(cfg.intake_max_body, 0);
    fb_config_free(&cfg);
    ck_assert_ptr_null(cfg.data_dir);
}
END_TEST

START_TEST(test_load_overrides) {
    fb_config_t cfg;
    fb_config_defaults(&cfg);
    write_ini("; fenbo test configuration\n"
              "[general]\n"
              "instance_id = 7\n"
              "timezone = Asia/Urumqi\n"
              "data_dir = /srv/fenbo\n"
              "\n"
              "[intake]\n"
              "port = 18080\n"
              "max_body = 2048\n"
              "\n"
              "[dispatcher]\n"
              "batch_max = 50\n"
              "batch_wait_ms = 0\n"
              "[db]\n"
              "conninfo = host=/tmp dbname=fenbo_test\n");
    char err[512] = "";
    ck_assert_msg(fb_config_load(&cfg, s_path, err, sizeof err) == 0, "refused: %s", err);
    ck_assert_int_eq(cfg.instance_id, 7);
    ck_assert_str_eq(cfg.timezone, "Asia/Urumqi");
    ck_assert_str_eq(cfg.data_dir, "/srv/fenbo");
    ck_assert_int_eq(cfg.intake_port, 18080);
    ck_assert_int_eq(cfg.intake_max_body, 2048);
    ck_assert_int_eq(cfg.dispatch_batch_max, 50);
    ck_assert_int_eq(cfg.dispatch_batch_wait_ms, 0);
    ck_assert_str_eq(cfg.db_conninfo, "host=/tmp dbname=fenbo_test");
    /* What the file does not mention keeps its default. */
    ck_assert_int_eq(cfg.worker_port, 12346);
    ck_assert_str_eq(cfg.intake_address, "127.0.0.1");
    ck_assert_str_eq(cfg.log_level, "info");

    char path[256];
    fb_config_path(&cfg, "spool", path, sizeof path);
    ck_assert_str_eq(path, "/srv/fenbo/spool");
    fb_config_free(&cfg);
}
END_TEST

START_TEST(test_load_twice_last_wins) {
    fb_config_t cfg;
    fb_config_defaults(&cfg);
    write_ini("[general]\nlog_level = debug\n");
    char err[512];
    ck_assert_int_eq(fb_config_load(&cfg, s_path, err, sizeof err), 0);
    remove_ini();
    write_ini("[general]\nlog_level = warn\n");
    ck_assert_int_eq(fb_config_load(&cfg, s_path, err, sizeof err), 0);
    ck_assert_str_eq(cfg.log_level, "warn");
    fb_config_free(&cfg);
}
END_TEST

START_TEST(test_bounds_inclusive) {
    fb_config_t cfg;
    fb_config_defaults(&cfg);
    write_ini("[intake]\nport = 65535\n[worker]\nport = 1\n");
    char err[512] = "";
    ck_assert_msg(fb_config_load(&cfg, s_path, err, sizeof err) == 0, "refused: %s", err);
    ck_assert_int_eq(cfg.intake_port, 65535);
    ck_assert_int_eq(cfg.worker_port, 1);
    fb_config_free(&cfg);
}
END_TEST

START_TEST(test_unknown_key_refused) {
    expect_refused("[intake]\nport = 12345\nportt = 1\n", "portt", NULL);
    remove_ini();
    expect_refused("[general]\ninstance_id = 1\n[nosuchsection]\nfoo = bar\n", "foo", NULL);
    remove_ini();
    /* A known key in the wrong section is unknown there. */
    expect_refused("[worker]\nbatch_max = 10\n", "batch_max", NULL);
}
END_TEST

START_TEST(test_out_of_bounds_refused) {
    expect_refused("[intake]\nport = 70000\n", "port", "70000");
    remove_ini();
    expect_refused("[intake]\nport = 0\n", "port", NULL);
    remove_ini();
    expect_refused("[dispatcher]\nbatch_wait_ms = -1\n", "batch_wait_ms", NULL);
    remove_ini();
    expect_refused("[general]\ninstance_id = 99999999999999999999\n", "instance_id", NULL);
}
END_TEST

/* A setting that is a fraction ([dispatcher] classify_min_confidence, 0..1):
 * its default, its bounds (inclusive), and the refusals. */
START_TEST(test_fraction_setting) {
    fb_config_t cfg;
    fb_config_defaults(&cfg);
    ck_assert_double_eq_tol(cfg.classify_min_confidence, 0.15, 1e-12);
    write_ini("[dispatcher]\nclassify_min_confidence = 0.85\n");
    char err[512] = "";
    ck_assert_msg(fb_config_load(&cfg, s_path, err, sizeof err) == 0, "refused: %s", err);
    ck_assert_double_eq_tol(cfg.classify_min_confidence, 0.85, 1e-12);
    remove_ini();
    write_ini("[dispatcher]\nclassify_min_confidence = 1\n");
    ck_assert_msg(fb_config_load(&cfg, s_path, err, sizeof err) == 0, "refused: %s", err);
    ck_assert_double_eq_tol(cfg.classify_min_confidence, 1.0, 1e-12);
    fb_config_free(&cfg);
    remove_ini();
    expect_refused("[dispatcher]\nclassify_min_confidence = 1.5\n", "classify_min_confidence",
                   "1.5");
    remove_ini();
    expect_refused("[dispatcher]\nclassify_min_confidence = -0.1\n", "classify_min_confidence",
                   NULL);
    remove_ini();
    expect_refused("[dispatcher]\nclassify_min_confidence = half\n", "classify_min_confidence",
                   NULL);
    remove_ini();
    expect_refused("[dispatcher]\nclassify_min_confidence = nan\n", "classify_min_confidence",
                   NULL);
}
END_TEST

START_TEST(test_not_a_number_refused) {
    expect_refused("[intake]\nport = http\n", "port", NULL);
    remove_ini();
    expect_refused("[intake]\nport = 80x\n", "port", NULL);
    remove_ini();
    expect_refused("[intake]\nport =\n", "port", NULL);
}
END_TEST

START_TEST(test_error_names_line) {
    /* The bad setting is on line 6. */
    expect_refused("; comment\n"
                   "[general]\n"
                   "instance_id = 2\n"
                   "\n"
                   "[intake]\n"
                   "max_connections = 0\n",
                   "max_connections", ":6");
}
END_TEST

START_TEST(test_first_error_reported_consistently) {
    /* Two mistakes: the message must describe one of them with its own line,
     * not the line of the first beside the key of the second. */
    expect_refused("[intake]\n"
                   "colour = blue\n" /* line 2: unknown */
                   "port = 12345\n"
                   "max_body = 1\n", /* line 4: out of bounds */
                   "colour", ":2");
}
END_TEST

START_TEST(test_missing_file) {
    fb_config_t cfg;
    fb_config_defaults(&cfg);
    char err[512] = "";
    ck_assert_int_eq(fb_config_load(&cfg, "/nonexistent/fenbo.ini", err, sizeof err), FB_EIO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/fenbo.ini"));
    ck_assert_int_eq(cfg.intake_port, 12345);
    fb_config_free(&cfg);
}
END_TEST

START_TEST(test_print_shows_values) {
    fb_config_t cfg;
    fb_config_defaults(&cfg);
    cfg.intake_port = 23456;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    fb_config_print(&cfg, f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "[intake]"));
    ck_assert_ptr_nonnull(strstr(buf, "23456"));
    ck_assert_ptr_nonnull(strstr(buf, "Asia/Shanghai"));
    /* Reloadable settings say so. */
    ck_assert_ptr_nonnull(strstr(buf, "SIGHUP"));
    free(buf);
    fb_config_free(&cfg);
}
END_TEST

static Suite *config_suite(void) {
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, NULL, remove_ini);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_load_overrides);
    tcase_add_test(tc, test_load_twice_last_wins);
    tcase_add_test(tc, test_bounds_inclusive);
    tcase_add_test(tc, test_unknown_key_refused);
    tcase_add_test(tc, test_out_of_bounds_refused);
    tcase_add_test(tc, test_not_a_number_refused);
    tcase_add_test(tc, test_fraction_setting);
    tcase_add_test(tc, test_error_names_line);
    tcase_add_test(tc, test_first_error_reported_consistently);
    tcase_add_test(tc, test_missing_file);
    tcase_add_test(tc, test_print_shows_values);
    suite_add_tcase(s, tc);
    return s;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(void) {
    const char *tmp = getenv("TMPDIR");
    snprintf(s_root, sizeof s_root, "%s/fenbo-unit-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s_root)) {
        perror(s_root);
        return EXIT_FAILURE;
    }
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(s_root, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
