/* test_api.c — the pure helpers of the case API (Check suite): masking a
 * resident's name for the views that must not show it. */
#include "api_util.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_mask_name) {
    char buf[16];
    ck_assert_str_eq(fb_api_mask_name("张三丰", buf, sizeof buf), "张*");
    ck_assert_str_eq(fb_api_mask_name("张", buf, sizeof buf), "张*");
    ck_assert_str_eq(fb_api_mask_name("Li Lei", buf, sizeof buf), "L*");
    ck_assert_str_eq(fb_api_mask_name("𠀋家", buf, sizeof buf), "𠀋*"); /* 4-byte UTF-8 */
    ck_assert_str_eq(fb_api_mask_name("", buf, sizeof buf), "*");
    ck_assert_str_eq(fb_api_mask_name(NULL, buf, sizeof buf), "*");
}
END_TEST

/* Bad UTF-8 or a tiny buffer: never more than what is there, never overrun. */
START_TEST(test_mask_name_edges) {
    char buf[16];
    ck_assert_str_eq(fb_api_mask_name("\xe5\xbc", buf, sizeof buf), "\xe5\xbc*");
    ck_assert_str_eq(fb_api_mask_name("\xe5"
                                      "A",
                                      buf, sizeof buf),
                     "\xe5*");
    ck_assert_str_eq(fb_api_mask_name("\x80\x80", buf, sizeof buf), "\x80*");
    char small[8];
    memset(small, '#', sizeof small);
    ck_assert_str_eq(fb_api_mask_name("张三", small, 4), ""); /* needs 5 */
    ck_assert_int_eq(small[4], '#');
    ck_assert_str_eq(fb_api_mask_name("张三", small, 5), "张*");
}
END_TEST

static Suite *api_suite(void) {
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("mask");
    tcase_add_test(tc, test_mask_name);
    tcase_add_test(tc, test_mask_name_edges);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(api_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
