/* test_text.c — UTF-8 validation and the normaliser that every petition text
 * goes through before the rules look at it (fb_text.h). */
#include "fb_common.h"
#include "fb_text.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Normalises in, asserts success and returns the caller's copy. */
static char *norm_ok(const char *in) {
    char *out = (char *)0x1; /* must be overwritten */
    int rc = fb_text_normalize(in, &out);
    ck_assert_int_eq(rc, 0);
    ck_assert_ptr_nonnull(out);
    return out;
}

static void expect_norm(const char *in, const char *want) {
    char *out = norm_ok(in);
    ck_assert_str_eq(out, want);
    free(out);
}

/* ---- fb_utf8_valid ---- */

START_TEST(test_utf8_valid_multibyte) {
    /* 1-, 2-, 3- and 4-byte sequences: "aé中😀". */
    const char *s = "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80";
    ck_assert(fb_utf8_valid(s, strlen(s)));
    const char *cn = "马路上有个坑，请尽快处理。";
    ck_assert(fb_utf8_valid(cn, strlen(cn)));
    /* The highest code point, U+10FFFF, is still valid. */
    ck_assert(fb_utf8_valid("\xF4\x8F\xBF\xBF", 4));
    ck_assert(fb_utf8_valid("", 0));
}
END_TEST

START_TEST(test_utf8_overlong_refused) {
    ck_assert(!fb_utf8_valid("\xC0\xAF", 2));         /* "/" in two bytes */
    ck_assert(!fb_utf8_valid("\xC1\xBF", 2));         /* U+007F in two bytes */
    ck_assert(!fb_utf8_valid("\xE0\x80\xAF", 3));     /* "/" in three bytes */
    ck_assert(!fb_utf8_valid("\xF0\x80\x80\xAF", 4)); /* "/" in four bytes */
}
END_TEST

START_TEST(test_utf8_surrogate_refused) {
    ck_assert(!fb_utf8_valid("\xED\xA0\x80", 3)); /* U+D800 */
    ck_assert(!fb_utf8_valid("\xED\xBF\xBF", 3)); /* U+DFFF */
    /* The code points just outside the surrogate range are fine. */
    ck_assert(fb_utf8_valid("\xED\x9F\xBF", 3)); /* U+D7FF */
    ck_assert(fb_utf8_valid("\xEE\x80\x80", 3)); /* U+E000 */
}
END_TEST

START_TEST(test_utf8_truncated_refused) {
    const char *zhong = "\xE4\xB8\xAD"; /* 中 */
    ck_assert(fb_utf8_valid(zhong, 3));
    ck_assert(!fb_utf8_valid(zhong, 2));
    ck_assert(!fb_utf8_valid(zhong, 1));
    ck_assert(!fb_utf8_valid("ab\xF0\x9F\x98", 5)); /* emoji missing its last byte */
    /* A continuation byte where a lead byte belongs. */
    ck_assert(!fb_utf8_valid("\x80", 1));
    ck_assert(!fb_utf8_valid("a\xBF"
                             "b",
                             3));
    /* A lead byte followed by something that is not a continuation. */
    ck_assert(!fb_utf8_valid("\xE4"
                             "ab",
                             3));
}
END_TEST

START_TEST(test_utf8_out_of_range_refused) {
    ck_assert(!fb_utf8_valid("\xF4\x90\x80\x80", 4));     /* U+110000 */
    ck_assert(!fb_utf8_valid("\xF8\x88\x80\x80\x80", 5)); /* old 5-byte form */
    ck_assert(!fb_utf8_valid("\xFF", 1));
    ck_assert(!fb_utf8_valid("\xFE", 1));
}
END_TEST

START_TEST(test_utf8_embedded_nul_refused) {
    /* A NUL cannot hide inside a C string, but a body with a length can hold one. */
    const char s[] = {'a', '\0', 'b'};
    ck_assert(!fb_utf8_valid(s, sizeof s));
    ck_assert(fb_utf8_valid(s, 1));
}
END_TEST

/* ---- fb_text_normalize ---- */

START_TEST(test_norm_fullwidth_to_halfwidth) {
    expect_norm("ＡＢＣ１２３", "ABC123");
    expect_norm("ａｂｃ！？", "abc!?");
    /* Ordinary CJK text is not touched. */
    expect_norm("路灯不亮", "路灯不亮");
}
END_TEST

START_TEST(test_norm_whitespace_collapsed) {
    /* U+3000 ideographic space, tabs and newlines each collapse to one space. */
    expect_norm("路灯\xE3\x80\x80不亮", "路灯 不亮");
    expect_norm("a\t\tb\n\nc\r\n d", "a b c d");
    expect_norm("噪音\xE3\x80\x80\t\n 扰民", "噪音 扰民");
}
END_TEST

START_TEST(test_norm_trimmed) {
    expect_norm("  \t路灯不亮\n  ", "路灯不亮");
    expect_norm("\xE3\x80\x80\xE3\x80\x80 ＡＢＣ \xE3\x80\x80", "ABC");
    expect_norm(" \t\n\xE3\x80\x80 ", "");
    expect_norm("", "");
}
END_TEST

START_TEST(test_norm_invalid_utf8_refused) {
    const char *bad[] = {"abc\xC0\xAF", "\xED\xA0\x80路灯", "路灯\xE4\xB8", "\xFF"};
    for (size_t i = 0; i < FB_ARRAY_LEN(bad); i++) {
        char *out = (char *)0x1;
        ck_assert_int_eq(fb_text_normalize(bad[i], &out), FB_EUTF8);
        ck_assert_ptr_null(out);
    }
}
END_TEST

START_TEST(test_norm_original_untouched) {
    char in[] = "  ＡＢＣ\xE3\x80\x80馬路上有個坑\t ";
    char copy[sizeof in];
    memcpy(copy, in, sizeof in);
    char *out = norm_ok(in);
    ck_assert_str_ne(out, in);
    ck_assert_ptr_ne(out, in);
    ck_assert_mem_eq(in, copy, sizeof in);
    free(out);
}
END_TEST

START_TEST(test_norm_without_opencc_keeps_traditional) {
    /* Without fb_text_init() the converter is absent: traditional stays. */
    expect_norm("馬路上有個坑", "馬路上有個坑");
}
END_TEST

/* ---- with OpenCC ---- */

static void opencc_setup(void) {
    ck_assert_int_eq(fb_text_init(), 0);
}

static void opencc_teardown(void) {
    fb_text_shutdown();
}

START_TEST(test_norm_traditional_to_simplified) {
    expect_norm("馬路上有個坑", "马路上有个坑");
    expect_norm("噪音擾民", "噪音扰民");
    /* Already simplified text comes out the same. */
    expect_norm("马路上有个坑", "马路上有个坑");
}
END_TEST

START_TEST(test_norm_all_steps_together) {
    expect_norm("\xE3\x80\x80 樓下ＫＴＶ\t\t噪音擾民１２點以後\n", "楼下KTV 噪音扰民12点以后");
}
END_TEST

START_TEST(test_init_twice_is_harmless) {
    ck_assert_int_eq(fb_text_init(), 0);
    expect_norm("擾民", "扰民");
}
END_TEST

/* Every line of tests/fixtures/mask_text.tsv, which the SQL twin
 * fenbo_mask_text is tested against as well. */
START_TEST(test_mask_personal_fixture) {
    FILE *f = fopen(FENBO_SOURCE_DIR "/tests/fixtures/mask_text.tsv", "r");
    ck_assert_ptr_nonnull(f);
    char line[1024];
    int cases = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (line[0] == '#' || !tab)
            continue;
        *tab = '\0';
        char *out = NULL;
        ck_assert_int_eq(fb_text_mask_personal(line, &out), 0);
        ck_assert_msg(strcmp(out, tab + 1) == 0, "mask(%s) = %s, want %s", line, out, tab + 1);
        free(out);
        cases++;
    }
    fclose(f);
    ck_assert_int_ge(cases, 20);
}
END_TEST

START_TEST(test_mask_personal_edges) {
    char *out = NULL;
    ck_assert_int_eq(fb_text_mask_personal("", &out), 0);
    ck_assert_str_eq(out, "");
    free(out);
    /* Growth: the longest output per input byte (a@b.cd → a***@b.cd) fits. */
    char in[701];
    for (int i = 0; i < 100; i++)
        memcpy(in + 7 * i, "a@b.cd ", 7);
    in[700] = '\0';
    ck_assert_int_eq(fb_text_mask_personal(in, &out), 0);
    ck_assert_uint_eq(strlen(out), 1000);
    ck_assert(strncmp(out, "a***@b.cd a***@b.cd ", 20) == 0);
    free(out);
    ck_assert_int_eq(fb_text_mask_personal("x 1234567 y 7654321", &out), 0);
    ck_assert_str_eq(out, "x ****4567 y ****4321");
    free(out);
    /* A masked text masks to itself. */
    ck_assert_int_eq(fb_text_mask_personal("电话199****5678 z***@example.com", &out), 0);
    ck_assert_str_eq(out, "电话199****5678 z***@example.com");
    free(out);
}
END_TEST

static Suite *text_suite(void) {
    Suite *s = suite_create("text");
    TCase *tc = tcase_create("utf8");
    tcase_add_test(tc, test_utf8_valid_multibyte);
    tcase_add_test(tc, test_utf8_overlong_refused);
    tcase_add_test(tc, test_utf8_surrogate_refused);
    tcase_add_test(tc, test_utf8_truncated_refused);
    tcase_add_test(tc, test_utf8_out_of_range_refused);
    tcase_add_test(tc, test_utf8_embedded_nul_refused);
    suite_add_tcase(s, tc);

    tc = tcase_create("normalize");
    /* Make sure no converter is left open by an earlier test (no-fork mode). */
    tcase_add_checked_fixture(tc, opencc_teardown, NULL);
    tcase_add_test(tc, test_norm_fullwidth_to_halfwidth);
    tcase_add_test(tc, test_norm_whitespace_collapsed);
    tcase_add_test(tc, test_norm_trimmed);
    tcase_add_test(tc, test_norm_invalid_utf8_refused);
    tcase_add_test(tc, test_norm_original_untouched);
    tcase_add_test(tc, test_norm_without_opencc_keeps_traditional);
    suite_add_tcase(s, tc);

    tc = tcase_create("mask");
    tcase_add_test(tc, test_mask_personal_fixture);
    tcase_add_test(tc, test_mask_personal_edges);
    suite_add_tcase(s, tc);

    tc = tcase_create("opencc");
    tcase_add_checked_fixture(tc, opencc_setup, opencc_teardown);
    tcase_add_test(tc, test_norm_traditional_to_simplified);
    tcase_add_test(tc, test_norm_all_steps_together);
    tcase_add_test(tc, test_init_twice_is_harmless);
    tcase_add_test(tc, test_norm_fullwidth_to_halfwidth);
    tcase_add_test(tc, test_norm_invalid_utf8_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(text_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
