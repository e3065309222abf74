/* test_photo.c — intake's photo store (intake/photo.h): photos are recognised
 * by their bytes, stored once under their SHA-256 with the extension of what
 * they really are, and anything else is refused without writing a byte. Each
 * test works in a fresh temporary directory, removed afterwards. */
#include "fb_common.h"
#include "fb_photo.h"

#include <check.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char s_root[64];
static char s_dir[128];

static const unsigned char JPEG[] = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J',  'F',
                                     'I',  'F',  0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
                                     0x00, 0x01, 0x00, 0x00, 0xFF, 0xD9};
static const unsigned char PNG[] = {0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A,
                                    0x00, 0x00, 0x00, 0x0D, 'I',  'H',  'D',  'R'};
static const char TEXT[] = "GIF89a? no: just text pretending to be a photo";

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
        nftw(s_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    s_dir[0] = '\0';
}

static void hex_sha256(const void *b, size_t n, char out[65]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    ck_assert(EVP_Digest(b, n, md, &len, EVP_sha256(), NULL));
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static bool file_equals(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char buf[256];
    size_t got = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return got == n && memcmp(buf, b, n) == 0;
}

/* Files under dir, recursively, hidden ones included. */
static int s_count;
static int count_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)path;
    (void)st;
    (void)ftw;
    if (flag == FTW_F)
        s_count++;
    return 0;
}

static int files_under(const char *dir) {
    s_count = 0;
    nftw(dir, count_entry, 16, FTW_PHYS);
    return s_count;
}

START_TEST(sniffs_by_magic_only) {
    ck_assert_str_eq(fb_photo_sniff(JPEG, sizeof JPEG), "image/jpeg");
    ck_assert_str_eq(fb_photo_sniff(PNG, sizeof PNG), "image/png");
    ck_assert_ptr_null(fb_photo_sniff(TEXT, sizeof TEXT - 1));
    ck_assert_ptr_null(fb_photo_sniff(JPEG, 2)); /* too short for the magic */
    ck_assert_ptr_null(fb_photo_sniff(PNG, 7));
    ck_assert_ptr_null(fb_photo_sniff(JPEG, 0));
    ck_assert_ptr_null(fb_photo_sniff(NULL, 10));
    ck_assert_str_eq(fb_photo_ext("image/jpeg"), "jpg");
    ck_assert_str_eq(fb_photo_ext("image/png"), "png");
    ck_assert_ptr_null(fb_photo_ext("image/gif"));
    ck_assert_ptr_null(fb_photo_ext(NULL));
}
END_TEST

START_TEST(stores_under_sha256_with_real_extension) {
    char sha[65], want[65], path[512];
    const char *type = NULL;
    ck_assert_int_eq(fb_photo_store(s_dir, PNG, sizeof PNG, sha, &type), 0);
    hex_sha256(PNG, sizeof PNG, want);
    ck_assert_str_eq(sha, want);
    ck_assert_str_eq(type, "image/png");
    snprintf(path, sizeof path, "%s/photos/%.2s/%s.png", s_dir, want, want);
    ck_assert(file_equals(path, PNG, sizeof PNG));
    char got[512];
    ck_assert_int_eq(fb_photo_path(s_dir, sha, type, got, sizeof got), 0);
    ck_assert_str_eq(got, path);

    ck_assert_int_eq(fb_photo_store(s_dir, JPEG, sizeof JPEG, sha, &type), 0);
    ck_assert_str_eq(type, "image/jpeg");
    hex_sha256(JPEG, sizeof JPEG, want);
    snprintf(path, sizeof path, "%s/photos/%.2s/%s.jpg", s_dir, want, want);
    ck_assert(file_equals(path, JPEG, sizeof JPEG));
    ck_assert_int_eq(files_under(s_dir), 2); /* no temporary file left */
}
END_TEST

START_TEST(a_photo_stored_twice_is_written_once) {
    char sha[65], path[512];
    const char *type;
    ck_assert_int_eq(fb_photo_store(s_dir, JPEG, sizeof JPEG, sha, &type), 0);
    ck_assert_int_eq(fb_photo_path(s_dir, sha, type, path, sizeof path), 0);
    struct stat a, b;
    ck_assert_int_eq(stat(path, &a), 0);
    ck_assert_int_eq(fb_photo_store(s_dir, JPEG, sizeof JPEG, sha, NULL), 0);
    ck_assert_int_eq(stat(path, &b), 0);
    ck_assert_uint_eq(a.st_ino, b.st_ino); /* not replaced */
    ck_assert_int_eq(files_under(s_dir), 1);
}
END_TEST

START_TEST(anything_else_is_refused_and_writes_nothing) {
    char sha[65];
    const char *type = "unchanged";
    ck_assert_int_eq(fb_photo_store(s_dir, TEXT, sizeof TEXT - 1, sha, &type), FB_EINVAL);
    ck_assert_ptr_null(type);
    ck_assert_int_eq(fb_photo_store(s_dir, "", 0, sha, &type), FB_EINVAL);
    char photos[256];
    snprintf(photos, sizeof photos, "%s/photos", s_dir);
    ck_assert_int_ne(access(photos, F_OK), 0); /* not even the directory */
}
END_TEST

START_TEST(an_unusable_data_dir_is_an_io_error) {
    char file[256], sha[65];
    snprintf(file, sizeof file, "%s/not-a-dir", s_dir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    ck_assert_int_eq(fb_photo_store(file, JPEG, sizeof JPEG, sha, NULL), FB_EIO);
}
END_TEST

START_TEST(path_refuses_what_it_cannot_name) {
    char sha[65], out[512], tiny[16];
    memset(sha, 'a', 64);
    sha[64] = '\0';
    ck_assert_int_eq(fb_photo_path("/d", sha, "image/gif", out, sizeof out), FB_EINVAL);
    ck_assert_int_eq(fb_photo_path("/d", "abc", "image/png", out, sizeof out), FB_EINVAL);
    ck_assert_int_eq(fb_photo_path("/d", sha, "image/png", tiny, sizeof tiny), FB_EINVAL);
}
END_TEST

int main(void) {
    snprintf(s_root, sizeof s_root, "/tmp/fenbo-test-photo-XXXXXX");
    if (!mkdtemp(s_root))
        return 1;
    Suite *s = suite_create("photo");
    TCase *tc = tcase_create("store");
    tcase_add_checked_fixture(tc, dir_setup, dir_teardown);
    tcase_add_test(tc, sniffs_by_magic_only);
    tcase_add_test(tc, stores_under_sha256_with_real_extension);
    tcase_add_test(tc, a_photo_stored_twice_is_written_once);
    tcase_add_test(tc, anything_else_is_refused_and_writes_nothing);
    tcase_add_test(tc, an_unusable_data_dir_is_an_io_error);
    tcase_add_test(tc, path_refuses_what_it_cannot_name);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(s_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed ? 1 : 0;
}
