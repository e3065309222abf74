/* test_followup.c — follow-up codes (fb_followup.h): derived from the
 * tracking number under the key, readable, checked whatever the case and
 * dashes, and the key file made once and never overwritten. */
#include "fb_common.h"
#include "fb_followup.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const fb_followup_key_t s_key = {{1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                         12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                         23, 24, 25, 26, 27, 28, 29, 30, 31, 32}};

START_TEST(test_code_shape_and_stability) {
    char a[FB_FOLLOWUP_CODE_LEN + 1], b[FB_FOLLOWUP_CODE_LEN + 1], c[FB_FOLLOWUP_CODE_LEN + 1];
    fb_followup_code(&s_key, "20261122-1-000123", a);
    fb_followup_code(&s_key, "20261122-1-000123", b);
    fb_followup_code(&s_key, "20261122-1-000124", c);
    ck_assert_uint_eq(strlen(a), FB_FOLLOWUP_CODE_LEN);
    ck_assert_str_eq(a, b);
    ck_assert_str_ne(a, c);
    ck_assert_uint_eq(strspn(a, "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"), FB_FOLLOWUP_CODE_LEN);
    fb_followup_key_t other = s_key;
    other.bytes[0] ^= 1;
    fb_followup_code(&other, "20261122-1-000123", c);
    ck_assert_str_ne(a, c);
}
END_TEST

START_TEST(test_check_forgiving_and_strict) {
    char a[FB_FOLLOWUP_CODE_LEN + 1], spaced[32];
    fb_followup_code(&s_key, "20261122-1-000123", a);
    ck_assert(fb_followup_check(&s_key, "20261122-1-000123", a));
    snprintf(spaced, sizeof spaced, "%.5s-%s", a, a + 5);
    for (char *p = spaced; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    ck_assert(fb_followup_check(&s_key, "20261122-1-000123", spaced));
    ck_assert(!fb_followup_check(&s_key, "20261122-1-000124", a));
    ck_assert(!fb_followup_check(&s_key, "20261122-1-000123", ""));
    ck_assert(!fb_followup_check(&s_key, "20261122-1-000123", NULL));
    ck_assert(!fb_followup_check(&s_key, "20261122-1-000123", "1234"));
    char longer[32];
    snprintf(longer, sizeof longer, "%sX", a);
    ck_assert(!fb_followup_check(&s_key, "20261122-1-000123", longer));
}
END_TEST

START_TEST(test_key_file) {
    char dir[] = "/tmp/fb-followup-XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/k", dir);
    fb_followup_key_t k1, k2;
    ck_assert_int_eq(fb_followup_key_load(path, false, &k1), FB_ENOTFOUND);
    ck_assert_int_eq(fb_followup_key_load(path, true, &k1), 0);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(fb_followup_key_load(path, true, &k2), 0);
    ck_assert_mem_eq(k1.bytes, k2.bytes, sizeof k1.bytes);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not hex\n", f);
    fclose(f);
    ck_assert_int_eq(fb_followup_key_load(path, true, &k2), FB_EINVAL);
    unlink(path);
    rmdir(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("followup");
    TCase *tc = tcase_create("code");
    tcase_add_test(tc, test_code_shape_and_stability);
    tcase_add_test(tc, test_check_forgiving_and_strict);
    tcase_add_test(tc, test_key_file);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
