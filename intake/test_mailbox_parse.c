/* test_mailbox_parse.c — the mailbox channel's parser (mailbox_parse.h): the
 * seed messages of tests/fixtures/mail (made by gen_mail.py with Python's
 * email package) read into petitions, and the decoders they rest on. */
#include "fb_common.h"
#include "fb_text.h"
#include "fb_time.h"
#include "mailbox_parse.h"

#include <check.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FENBO_SOURCE_DIR
#define FENBO_SOURCE_DIR "."
#endif

static const intake_mail_limits_t s_limits = {9, 5 << 20, 30000};

/* The texts gen_mail.py put into the seed messages. */
#define GBK_SUBJECT                                                                                \
    "关于幸福小区东门长期占道经营、夜间噪音扰民和垃圾堆放问题的投诉，请相关部门尽快处理"
#define GBK_BODY                                                                                            \
    "您好：\n幸福小区东门外每天晚上有十几个摊位占道经营，油烟和噪音很大，" \
    "垃圾堆在路边无人清理。请城管部门尽快处理。\n谢谢！"

static char *slurp(const char *name, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/mail/%s", FENBO_SOURCE_DIR, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static intake_mail_t *parse_ok(const char *name) {
    size_t len;
    char *raw = slurp(name, &len), reason[256];
    intake_mail_t *m = NULL;
    int rc = intake_mail_parse(raw, len, &s_limits, &m, reason, sizeof reason);
    ck_assert_msg(rc == 0, "%s: rc=%d reason=%s", name, rc, reason);
    ck_assert_ptr_nonnull(m);
    free(raw);
    return m;
}

static void parse_fails(const char *name, const char *reason_part) {
    size_t len;
    char *raw = slurp(name, &len), reason[256];
    intake_mail_t *m = (intake_mail_t *)0x1;
    int rc = intake_mail_parse(raw, len, &s_limits, &m, reason, sizeof reason);
    ck_assert_int_eq(rc, FB_EINVAL);
    ck_assert_ptr_null(m);
    ck_assert_msg(strstr(reason, reason_part), "%s: reason \"%s\" lacks \"%s\"", name, reason,
                  reason_part);
    free(raw);
}

static void sha256_of(const void *data, size_t len, char hex[65]) {
    unsigned char md[32];
    unsigned n = 0;
    ck_assert(EVP_Digest(data, len, md, &n, EVP_sha256(), NULL));
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

static int64_t seed_date_us(void) {
    int64_t us;
    ck_assert_int_eq(fb_time_parse("2026-11-20T09:30:00+08:00", &us), 0);
    return us;
}

/* ---- whole messages ------------------------------------------------------ */

START_TEST(test_gbk_subject_folded_and_body_base64) {
    intake_mail_t *m = parse_ok("gbk-plain.eml");
    ck_assert_str_eq(m->subject, GBK_SUBJECT);
    ck_assert_str_eq(m->body, GBK_BODY);
    ck_assert_str_eq(m->from_name, "张三");
    ck_assert_str_eq(m->from_address, "zhangsan@example.cn");
    ck_assert_str_eq(m->message_id, "gbk-plain@seed.mail.example.cn");
    ck_assert_str_eq(m->idem_key, "gbk-plain@seed.mail.example.cn");
    ck_assert(m->has_date);
    ck_assert_int_eq(m->date_us, seed_date_us());
    ck_assert(!m->charset_lossy);
    ck_assert(!m->body_html);
    ck_assert_uint_eq(m->nphotos, 0);
    intake_mail_destroy(&m);
    ck_assert_ptr_null(m);
}
END_TEST

START_TEST(test_gb18030_quoted_printable) {
    intake_mail_t *m = parse_ok("gb18030-qp.eml");
    /* 𠮷 (U+20BB7) exists only in GB18030's four-byte range. */
    ck_assert_str_eq(m->subject, "建议在𠮷祥路口增设人行横道信号灯");
    ck_assert_str_eq(m->body, "𠮷祥路与和平街交叉口没有信号灯，老人和孩子过马路很危险，"
                              "建议增设人行横道信号灯。");
    ck_assert_str_eq(m->from_name, "李四");
    ck_assert(!m->charset_lossy);
    intake_mail_destroy(&m);
}
END_TEST

START_TEST(test_big5_alternative_prefers_plain) {
    intake_mail_t *m = parse_ok("big5-alternative.eml");
    /* Python labels Big5 words "big5_tw": read as Big5 all the same. */
    ck_assert_str_eq(m->subject, "關於公園路燈損壞的反映");
    ck_assert_str_eq(m->from_name, "陳大文");
    ck_assert_str_eq(m->body, "公園東側步道的路燈已經壞了兩個星期，晚上散步很不安全，請盡快維修。");
    ck_assert(!m->body_html);
    ck_assert(!m->charset_lossy);
    intake_mail_destroy(&m);
}
END_TEST

START_TEST(test_html_only_reduced_to_text) {
    intake_mail_t *m = parse_ok("utf8-html-only.eml");
    ck_assert_str_eq(m->subject,
                     "人民路下水道井盖缺失，存在安全隐患，请尽快处理（附详细位置说明）");
    ck_assert(m->body_html);
    ck_assert_msg(strstr(m->body, "井盖缺失\n人民路 128 号门前的下水道井盖 "
                                  "缺失&已有三天，晚上<看不清>，\"非常危险\"！"),
                  "body: %s", m->body);
    ck_assert_msg(strstr(m->body, "位置：人民路128号\n时间：三天前\n\n请尽快处理。"), "body: %s",
                  m->body);
    ck_assert_ptr_null(strstr(m->body, "标题不应出现"));
    ck_assert_ptr_null(strstr(m->body, "样式不应出现"));
    ck_assert_ptr_null(strstr(m->body, "脚本不应出现"));
    ck_assert_ptr_null(strstr(m->body, "注释不应出现"));
    ck_assert_ptr_null(strstr(m->body, "<"
                                       "p>"));
    intake_mail_destroy(&m);
}
END_TEST

START_TEST(test_photos_sniffed) {
    intake_mail_t *m = parse_ok("with-photos.eml");
    ck_assert_str_eq(m->body, "建设路 56 号附近路面塌陷，直径约一米，已经放了锥桶，照片见附件。");
    /* The JPEG and the PNG; the text that claims to be image/jpeg is not one. */
    ck_assert_uint_eq(m->nphotos, 2);
    ck_assert_uint_eq(m->photos_skipped, 0);
    ck_assert_str_eq(m->photos[0].content_type, "image/jpeg");
    ck_assert_str_eq(m->photos[1].content_type, "image/png");
    size_t len;
    char *jpeg = slurp("tiny.jpg", &len), hex[65];
    sha256_of(jpeg, len, hex);
    ck_assert_str_eq(m->photos[0].sha256, hex);
    ck_assert_uint_eq(m->photos[0].len, len);
    ck_assert_mem_eq(m->photos[0].data, jpeg, len);
    free(jpeg);
    intake_mail_destroy(&m);
}
END_TEST

START_TEST(test_photo_limits) {
    size_t len;
    char *raw = slurp("with-photos.eml", &len), reason[256];
    intake_mail_limits_t one = {1, 5 << 20, 30000};
    intake_mail_t *m;
    ck_assert_int_eq(intake_mail_parse(raw, len, &one, &m, reason, sizeof reason), 0);
    ck_assert_uint_eq(m->nphotos, 1);
    ck_assert_uint_eq(m->photos_skipped, 1);
    intake_mail_destroy(&m);
    intake_mail_limits_t tiny = {9, 100, 30000}; /* the PNG fits, the JPEG does not */
    ck_assert_int_eq(intake_mail_parse(raw, len, &tiny, &m, reason, sizeof reason), 0);
    ck_assert_uint_eq(m->nphotos, 1);
    ck_assert_str_eq(m->photos[0].content_type, "image/png");
    ck_assert_uint_eq(m->photos_skipped, 1);
    intake_mail_destroy(&m);
    free(raw);
}
END_TEST

START_TEST(test_no_message_id_keyed_by_hash) {
    size_t len;
    char *raw = slurp("no-message-id.eml", &len), hex[65], key[80];
    sha256_of(raw, len, hex);
    snprintf(key, sizeof key, "sha256:%s", hex);
    intake_mail_t *m = parse_ok("no-message-id.eml");
    ck_assert_ptr_null(m->message_id);
    ck_assert_str_eq(m->raw_sha256, hex);
    ck_assert_str_eq(m->idem_key, key);
    ck_assert_uint_eq(m->raw_bytes, len);
    intake_mail_destroy(&m);
    free(raw);
}
END_TEST

START_TEST(test_unknown_charset_lossy) {
    intake_mail_t *m = parse_ok("unknown-charset.eml");
    ck_assert(m->charset_lossy);
    ck_assert_str_eq(m->body, "报修：电梯故障");
    intake_mail_destroy(&m);
}
END_TEST

START_TEST(test_invalid_gbk_lossy) {
    intake_mail_t *m = parse_ok("invalid-gbk.eml");
    ck_assert(m->charset_lossy);
    ck_assert_msg(strncmp(m->body, "路灯不亮\xEF\xBF\xBD", strlen("路灯不亮") + 3) == 0, "body: %s",
                  m->body);
    /* The text after the bad bytes is not shifted out of step. */
    ck_assert_msg(strstr(m->body, "请维修"), "body: %s", m->body);
    intake_mail_destroy(&m);
}
END_TEST

START_TEST(test_encoded_word_split_character) {
    intake_mail_t *m = parse_ok("split-encoded-word.eml");
    ck_assert_str_eq(m->subject, "燃气管道异味");
    ck_assert(!m->charset_lossy);
    intake_mail_destroy(&m);
}
END_TEST

START_TEST(test_unreadable_messages) {
    parse_fails("truncated.eml", "truncated");
    parse_fails("binary-garbage.eml", "");
    parse_fails("no-from.eml", "From");
    char reason[256];
    intake_mail_t *m;
    ck_assert_int_eq(intake_mail_parse("", 0, &s_limits, &m, reason, sizeof reason), FB_EINVAL);
    ck_assert_str_eq(reason, "empty file");
    const char *empty = "From: a@example.cn\nSubject:  \n\n   \n";
    ck_assert_int_eq(intake_mail_parse(empty, strlen(empty), &s_limits, &m, reason, sizeof reason),
                     FB_EINVAL);
    ck_assert_str_eq(reason, "neither subject nor body text");
    const char nul[] = "From: a@example.cn\nSubject: x\0y\n\nbody\n";
    ck_assert_int_eq(intake_mail_parse(nul, sizeof nul - 1, &s_limits, &m, reason, sizeof reason),
                     FB_EINVAL);
    ck_assert_ptr_nonnull(strstr(reason, "NUL"));
    const char *ooo = "From: a@example.cn\nAuto-Submitted: auto-replied\nSubject: 外出\n\nx\n";
    ck_assert_int_eq(intake_mail_parse(ooo, strlen(ooo), &s_limits, &m, reason, sizeof reason),
                     FB_EINVAL);
    ck_assert_ptr_nonnull(strstr(reason, "automatic reply"));
    const char *dsn = "From: MAILER-DAEMON@example.cn\nSubject: Undelivered\n"
                      "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n"
                      "\n--b\nContent-Type: text/plain\n\nfailed\n--b--\n";
    ck_assert_int_eq(intake_mail_parse(dsn, strlen(dsn), &s_limits, &m, reason, sizeof reason),
                     FB_EINVAL);
    ck_assert_ptr_nonnull(strstr(reason, "delivery status"));
    /* A web form's mail (auto-generated, not a reply) is a petition. */
    const char *form = "From: form@gov.example.cn\nAuto-Submitted: auto-generated\n"
                       "Subject: 网上留言\n\n路灯坏了\n";
    ck_assert_int_eq(intake_mail_parse(form, strlen(form), &s_limits, &m, reason, sizeof reason),
                     0);
    intake_mail_destroy(&m);
}
END_TEST

START_TEST(test_content_truncated) {
    size_t len;
    char *raw = slurp("gbk-plain.eml", &len), reason[256];
    intake_mail_limits_t small = {9, 5 << 20, strlen(GBK_SUBJECT) + 2 + 10};
    intake_mail_t *m;
    ck_assert_int_eq(intake_mail_parse(raw, len, &small, &m, reason, sizeof reason), 0);
    ck_assert(m->content_truncated);
    ck_assert_str_eq(m->body, "您好：\n"); /* 10 bytes, cut at a character */
    intake_mail_destroy(&m);
    free(raw);
}
END_TEST

START_TEST(test_display_name_with_comma) {
    /* "张,三" as an encoded-word: decoded, the comma must not split the
     * address list. */
    const char *msg = "From: =?utf-8?b?5bygLOS4iQ==?= <zs@example.cn>\n"
                      "Subject: hello\n\nbody\n";
    char reason[256];
    intake_mail_t *m;
    ck_assert_int_eq(intake_mail_parse(msg, strlen(msg), &s_limits, &m, reason, sizeof reason), 0);
    ck_assert_str_eq(m->from_name, "张,三");
    ck_assert_str_eq(m->from_address, "zs@example.cn");
    intake_mail_destroy(&m);
    const char *bare = "From: zs@example.cn\nSubject: hello\n\nbody\n";
    ck_assert_int_eq(intake_mail_parse(bare, strlen(bare), &s_limits, &m, reason, sizeof reason),
                     0);
    ck_assert_ptr_null(m->from_name);
    ck_assert(!m->has_date);
    intake_mail_destroy(&m);
}
END_TEST

/* ---- the petition --------------------------------------------------------- */

START_TEST(test_petition_of_gbk_complaint) {
    ck_assert_int_eq(fb_text_init(), 0);
    intake_mail_t *m = parse_ok("gbk-plain.eml");
    fb_petition_t *p;
    ck_assert_int_eq(intake_mail_petition(m, 42, &p), 0);
    ck_assert_str_eq(p->channel, "mailbox");
    ck_assert_str_eq(p->idem_key, "gbk-plain@seed.mail.example.cn");
    ck_assert_str_eq(p->content, GBK_SUBJECT "\n\n" GBK_BODY);
    ck_assert_ptr_nonnull(p->content_norm);
    ck_assert_str_eq(p->kind, "complaint"); /* 投诉 in the subject */
    ck_assert_str_eq(p->urgency, "normal");
    ck_assert_str_eq(p->caller_name, "张三");
    ck_assert_ptr_null(p->caller_phone);
    ck_assert_ptr_null(p->category);
    ck_assert(!p->has_location);
    ck_assert(!p->callback);
    ck_assert_int_eq(p->received_at_us, seed_date_us());
    json_t *raw = p->raw;
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(raw, "from"), "address")),
                     "zhangsan@example.cn");
    ck_assert_str_eq(json_string_value(json_object_get(raw, "subject")), GBK_SUBJECT);
    ck_assert(json_is_false(json_object_get(raw, "charset_lossy")));
    ck_assert_str_eq(json_string_value(json_object_get(raw, "body_format")), "plain");
    json_t *rm = json_object_get(raw, "raw_message");
    ck_assert_str_eq(json_string_value(json_object_get(rm, "sha256")), m->raw_sha256);
    char file[96];
    intake_mail_raw_path(m->raw_sha256, file, sizeof file);
    ck_assert_str_eq(json_string_value(json_object_get(rm, "file")), file);
    /* The petition codec carries it through the spool. */
    p->tracking_no = strdup("20261122-1-000001");
    char *s = fb_petition_dumps(p);
    fb_petition_t *q;
    ck_assert_int_eq(fb_petition_loads(s, strlen(s), &q), 0);
    ck_assert_str_eq(q->content, p->content);
    free(s);
    fb_petition_destroy(&q);
    fb_petition_destroy(&p);
    intake_mail_destroy(&m);
    fb_text_shutdown();
}
END_TEST

START_TEST(test_petition_without_date_uses_fallback) {
    const char *msg = "From: zs@example.cn\nSubject: 路灯\n\n不亮\n";
    char reason[256];
    intake_mail_t *m;
    ck_assert_int_eq(intake_mail_parse(msg, strlen(msg), &s_limits, &m, reason, sizeof reason), 0);
    fb_petition_t *p;
    ck_assert_int_eq(intake_mail_petition(m, 1700000000000000, &p), 0);
    ck_assert_int_eq(p->received_at_us, 1700000000000000);
    ck_assert_str_eq(p->kind, "help");
    ck_assert_ptr_null(p->caller_name);
    ck_assert_str_eq(p->content, "路灯\n\n不亮");
    ck_assert(json_is_null(json_object_get(p->raw, "date")));
    ck_assert(json_is_null(json_object_get(p->raw, "message_id")));
    ck_assert_int_eq(json_array_size(json_object_get(p->raw, "photos")), 0);
    fb_petition_destroy(&p);
    intake_mail_destroy(&m);
}
END_TEST

START_TEST(test_petition_photos_in_raw) {
    intake_mail_t *m = parse_ok("with-photos.eml");
    fb_petition_t *p;
    ck_assert_int_eq(intake_mail_petition(m, 0, &p), 0);
    json_t *photos = json_object_get(p->raw, "photos");
    ck_assert_int_eq(json_array_size(photos), 2);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(photos, 0), "sha256")),
                     m->photos[0].sha256);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(photos, 0), "content_type")),
                     "image/jpeg");
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(photos, 0), "bytes")),
                     (json_int_t)m->photos[0].len);
    fb_petition_destroy(&p);
    intake_mail_destroy(&m);
}
END_TEST

/* ---- decoders -------------------------------------------------------------- */

static void expect_header(const char *raw, const char *want, bool want_lossy) {
    bool lossy = !want_lossy;
    char *s = intake_mail_decode_header(raw, &lossy);
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(strcmp(s, want) == 0, "decode(%s) = \"%s\", want \"%s\"", raw, s, want);
    ck_assert_msg(lossy == want_lossy, "decode(%s): lossy %d", raw, lossy);
    free(s);
}

START_TEST(test_decode_header_words) {
    expect_header("plain ascii", "plain ascii", false);
    expect_header("=?utf-8?q?a_b?= =?utf-8?q?c?=", "a bc", false);
    expect_header("Re: =?utf-8?b?5Lit5paH?= ok", "Re: 中文 ok", false);
    /* Words of different charsets, folded: whitespace between them goes. */
    expect_header(" =?gbk?b?1tA=?=\r\n =?big5?b?pOU=?=", " 中文", false);
    /* gb2312 label, GBK-only character (喆): read as GB18030. */
    expect_header("=?gb2312?b?hrQ=?=", "喆", false);
    /* A word in a charset nobody knows: read as it can be, flagged. */
    expect_header("=?x-nobody?q?abc?=", "abc", true);
    /* Raw 8-bit GBK in a header: undeclared, a guess. */
    expect_header("\xD6\xD0\xCE\xC4", "中文", true);
    /* Not a word: stays text. */
    expect_header("=?broken", "=?broken", false);
    expect_header("=?utf-8?x?abc?=", "=?utf-8?x?abc?=", false);
    expect_header("", "", false);
}
END_TEST

START_TEST(test_decode_text_charsets) {
    bool lossy = true;
    char *s = intake_mail_decode_text("GB2312", "\x86\xb4", 2, &lossy);
    ck_assert_str_eq(s, "喆");
    ck_assert(!lossy);
    free(s);
    s = intake_mail_decode_text("\"big5\"", "\xa4\xa4\xa4\xe5", 4, &lossy);
    ck_assert_str_eq(s, "中文");
    ck_assert(!lossy);
    free(s);
    s = intake_mail_decode_text("utf-8",
                                "a\xff"
                                "b\r\nc\x01",
                                7, &lossy);
    ck_assert_str_eq(s, "a\xEF\xBF\xBD"
                        "b\nc");
    ck_assert(lossy);
    free(s);
    s = intake_mail_decode_text(NULL, "ascii", 5, &lossy);
    ck_assert_str_eq(s, "ascii");
    ck_assert(!lossy);
    free(s);
    s = intake_mail_decode_text("iso-8859-1", "caf\xe9", 4, &lossy);
    ck_assert_str_eq(s, "café");
    ck_assert(!lossy);
    free(s);
    /* A GBK text cut inside a character: the rest is kept, the cut marked. */
    s = intake_mail_decode_text("gbk", "\xD6\xD0\xCE", 3, &lossy);
    ck_assert_str_eq(s, "中\xEF\xBF\xBD");
    ck_assert(lossy);
    free(s);
}
END_TEST

static void expect_html(const char *html, const char *want) {
    char *s = intake_mail_html_to_text(html, strlen(html));
    ck_assert_ptr_nonnull(s);
    ck_assert_msg(strcmp(s, want) == 0, "html(%s) = \"%s\", want \"%s\"", html, s, want);
    free(s);
}

START_TEST(test_html_to_text) {
    expect_html("<p>a</p><p>b</p>", "a\nb");
    expect_html("a<br>b<br/>c", "a\nb\nc");
    expect_html("a<br><br><br><br>b<br>", "a\n\nb");
    expect_html("  lots   of\n\n  space  ", "lots of space");
    expect_html("&lt;&gt;&amp;&quot;&#20013;&#x6587;&nbsp;x&unknown;", "<>&\"中文 x&unknown;");
    expect_html("a < b", "a < b");
    expect_html("<script type=\"x\">alert('<p>')</script>ok", "ok");
    expect_html("<STYLE>p{}</STYLE>ok<!-- gone -->", "ok");
    expect_html("<a href=\"x>y\">link</a>", "link");
    expect_html("<td>1</td><td>2</td>", "1 2");
    expect_html("<script>never closed", "");
    expect_html("", "");
}
END_TEST

static Suite *mailbox_parse_suite(void) {
    Suite *s = suite_create("mailbox_parse");
    TCase *tc = tcase_create("messages");
    tcase_add_test(tc, test_gbk_subject_folded_and_body_base64);
    tcase_add_test(tc, test_gb18030_quoted_printable);
    tcase_add_test(tc, test_big5_alternative_prefers_plain);
    tcase_add_test(tc, test_html_only_reduced_to_text);
    tcase_add_test(tc, test_photos_sniffed);
    tcase_add_test(tc, test_photo_limits);
    tcase_add_test(tc, test_no_message_id_keyed_by_hash);
    tcase_add_test(tc, test_unknown_charset_lossy);
    tcase_add_test(tc, test_invalid_gbk_lossy);
    tcase_add_test(tc, test_encoded_word_split_character);
    tcase_add_test(tc, test_unreadable_messages);
    tcase_add_test(tc, test_content_truncated);
    tcase_add_test(tc, test_display_name_with_comma);
    suite_add_tcase(s, tc);

    tc = tcase_create("petition");
    tcase_add_test(tc, test_petition_of_gbk_complaint);
    tcase_add_test(tc, test_petition_without_date_uses_fallback);
    tcase_add_test(tc, test_petition_photos_in_raw);
    suite_add_tcase(s, tc);

    tc = tcase_create("decoders");
    tcase_add_test(tc, test_decode_header_words);
    tcase_add_test(tc, test_decode_text_charsets);
    tcase_add_test(tc, test_html_to_text);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) {
    SRunner *sr = srunner_create(mailbox_parse_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
