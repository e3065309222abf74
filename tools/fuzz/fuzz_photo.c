/* fuzz_photo.c — a photo's bytes as the mini-program path reads them: the
 * sniffing that decides JPEG/PNG (photo.c), then the GPS position miniapp.c
 * takes from it, through libexif for a JPEG (APP1) or from a PNG's eXIf
 * chunk. fuzz_miniapp reaches the same code only inside a whole valid
 * report; this target spends every run on the photo.
 *
 * The GPS readers are static in miniapp.c, so that file is compiled into
 * this target (its public symbols then come from here, and the linker never
 * pulls miniapp.o out of intake_core). */
#include "../../intake/miniapp.c"

#include "fuzz_common.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    fz_init_common();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* An exact-size copy, as part_append keeps a photo (plus its NUL). */
    unsigned char *b = malloc(size + 1);
    if (!b)
        return 0;
    memcpy(b, data, size);
    b[size] = '\0';
    const char *type = fb_photo_sniff(b, size);
    if (type) {
        FZ_CHECK(strcmp(type, "image/jpeg") == 0 || strcmp(type, "image/png") == 0,
                 "sniffing says JPEG or PNG");
        FZ_CHECK(fb_photo_ext(type) != NULL, "a sniffed type has an extension");
        double lat = 0, lng = 0;
        bool got = strcmp(type, "image/png") == 0 ? png_gps(b, size, &lat, &lng)
                                                  : exif_gps(b, size, &lat, &lng);
        if (got)
            FZ_CHECK(!isnan(lat) && !isnan(lng), "a GPS position is a number");
    }
    free(b);
    return 0;
}
