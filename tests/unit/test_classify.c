/* test_classify.c — the petition classifier (fb_classify.h): it learns from
 * a few labelled sentences, ranks unseen wording, traditional characters and
 * full-width forms right, explains itself, and its stored form survives a
 * round trip and refuses garbage. */
#include "fb_classify.h"
#include "fb_common.h"
#include "fb_text.h"

#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const fb_example_t s_examples[] = {
    {"小区门口的路灯坏了好几天，晚上黑漆漆的", "030102"},
    {"路灯不亮了，晚上走路看不见", "030102"},
    {"我们这条街的路灯一到晚上就闪个不停", "030102"},
    {"马路边上那盏灯整晚都不亮", "030102"},
    {"楼下饭店油烟太大，熏得窗户都不敢开", "040201"},
    {"隔壁烧烤店排油烟，满屋子都是味道", "040201"},
    {"餐馆的油烟管道直接对着我家阳台", "040201"},
    {"饭馆抽油烟机的烟全排到居民楼里", "040201"},
    {"公司已经三个月没发工资了", "0601"},
    {"老板拖欠我们农民工的工资不给", "0601"},
    {"干了半年活，包工头一分钱工钱都不结", "0601"},
    {"厂里欠薪，找老板也找不到人", "0601"},
    {"闻到很浓的煤气味，怕是漏气了", "020301"},
    {"厨房里一股天然气的臭味", "020301"},
    {"楼道里燃气味很重，赶紧派人来看看", "020301"},
    {"液化气罐好像漏了，味道很大", "020301"},
};
#define N_EXAMPLES (sizeof s_examples / sizeof s_examples[0])

static fb_classifier_t *s_model;

static void setup(void) {
    ck_assert_int_eq(fb_text_init(), 0);
    char err[128] = "";
    fb_classify_params_t p = fb_classify_params_default();
    p.calibration_folds = 2;
    ck_assert_int_eq(fb_classifier_train(s_examples, N_EXAMPLES, &p, &s_model, err, sizeof err), 0);
    ck_assert_ptr_nonnull(s_model);
}

static void teardown(void) {
    fb_classifier_destroy(&s_model);
    ck_assert_ptr_null(s_model);
    fb_text_shutdown();
}

/* The top category of the normalised form of text. */
static const char *top_of(const fb_classifier_t *c, const char *text, double *conf) {
    char *norm = NULL;
    ck_assert_int_eq(fb_text_normalize(text, &norm), 0);
    fb_class_score_t s[3];
    size_t n = fb_classifier_classify(c, norm, s, 3);
    free(norm);
    ck_assert_uint_eq(n, 3);
    if (conf)
        *conf = s[0].confidence;
    return s[0].category;
}

START_TEST(test_unseen_wording) {
    ck_assert_str_eq(top_of(s_model, "晚上那个路灯一直不亮", NULL), "030102");
    ck_assert_str_eq(top_of(s_model, "烧烤摊的油烟呛死人了", NULL), "040201");
    ck_assert_str_eq(top_of(s_model, "包工头跑了，工资没拿到", NULL), "0601");
    ck_assert_str_eq(top_of(s_model, "家里有煤气味", NULL), "020301");
}
END_TEST

START_TEST(test_traditional_and_full_width) {
    /* Traditional characters and full-width forms reach the model already
     * normalised, as every petition text does. */
    ck_assert_str_eq(top_of(s_model, "路燈壞了，晚上一片漆黑", NULL), "030102");
    ck_assert_str_eq(top_of(s_model, "老闆拖欠工資３個月", NULL), "0601");
    ck_assert_str_eq(top_of(s_model, "ＸＸ飯店油煙太大", NULL), "040201");
}
END_TEST

START_TEST(test_confidences_ranked_and_bounded) {
    char *norm = NULL;
    ck_assert_int_eq(fb_text_normalize("闻到煤气味", &norm), 0);
    fb_class_score_t s[8];
    size_t n = fb_classifier_classify(s_model, norm, s, 8);
    free(norm);
    ck_assert_uint_eq(n, 4); /* the model knows four categories */
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert(s[i].confidence >= 0 && s[i].confidence <= 1);
        if (i > 0)
            ck_assert(s[i - 1].confidence >= s[i].confidence);
        sum += s[i].confidence;
    }
    ck_assert(sum <= 1.0 + 1e-9);
    ck_assert_str_eq(s[0].category, "020301");
    /* A text with nothing the model knows is less sure than a clear one. */
    double vague, clear;
    top_of(s_model, "你好", &vague);
    top_of(s_model, "闻到煤气味", &clear);
    ck_assert(vague < clear);
}
END_TEST

START_TEST(test_explain_names_the_ngrams) {
    fb_ngram_weight_t w[3];
    size_t n = fb_classifier_explain(s_model, "路灯晚上不亮", "030102", w, 3);
    ck_assert_uint_ge(n, 1);
    /* The heaviest pieces come from 路灯, not from the words every
     * petition shares. */
    ck_assert(strstr("路灯", w[0].ngram) != NULL || strstr(w[0].ngram, "灯") != NULL);
    for (size_t i = 1; i < n; i++)
        ck_assert(w[i - 1].weight >= w[i].weight);
    ck_assert_uint_eq(fb_classifier_explain(s_model, "路灯", "999999", w, 3), 0);
}
END_TEST

START_TEST(test_save_load_round_trip) {
    unsigned char *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(fb_classifier_save(s_model, &buf, &len), 0);
    fb_classifier_t *copy = NULL;
    ck_assert_int_eq(fb_classifier_load(buf, len, &copy), 0);
    ck_assert_uint_eq(fb_classifier_categories(copy), 4);
    const char *texts[] = {"路灯坏了", "油烟扰民", "欠薪", "漏气"};
    for (size_t i = 0; i < 4; i++) {
        double a, b;
        ck_assert_str_eq(top_of(s_model, texts[i], &a), top_of(copy, texts[i], &b));
        ck_assert(fabs(a - b) < 1e-6);
    }
    fb_classifier_destroy(&copy);
    free(buf);
}
END_TEST

START_TEST(test_garbage_refused) {
    unsigned char *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(fb_classifier_save(s_model, &buf, &len), 0);
    fb_classifier_t *c = NULL;
    /* Every truncation, a flipped magic, and trailing bytes. */
    for (size_t cut = 0; cut < len; cut += 1 + cut / 8) {
        ck_assert_int_eq(fb_classifier_load(buf, cut, &c), FB_EINVAL);
        ck_assert_ptr_null(c);
    }
    buf[0] ^= 0xff;
    ck_assert_int_eq(fb_classifier_load(buf, len, &c), FB_EINVAL);
    buf[0] ^= 0xff;
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    ck_assert_int_eq(fb_classifier_load(longer, len + 1, &c), FB_EINVAL);
    ck_assert_ptr_null(c);
    free(longer);
    free(buf);
}
END_TEST

START_TEST(test_one_category_refused) {
    fb_example_t one[] = {{"路灯坏了", "030102"}, {"路灯不亮", "030102"}};
    fb_classifier_t *c = NULL;
    char err[128] = "";
    ck_assert_int_eq(fb_classifier_train(one, 2, NULL, &c, err, sizeof err), FB_EINVAL);
    ck_assert_ptr_null(c);
    ck_assert(strstr(err, "categories") != NULL);
}
END_TEST

static Suite *classify_suite(void) {
    Suite *s = suite_create("classify");
    TCase *tc = tcase_create("model");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_unseen_wording);
    tcase_add_test(tc, test_traditional_and_full_width);
    tcase_add_test(tc, test_confidences_ranked_and_bounded);
    tcase_add_test(tc, test_explain_names_the_ngrams);
    tcase_add_test(tc, test_save_load_round_trip);
    tcase_add_test(tc, test_garbage_refused);
    tcase_add_test(tc, test_one_category_refused);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(classify_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
