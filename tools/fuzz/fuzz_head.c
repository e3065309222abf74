/* fuzz_head.c — the request head's checks (lib/fb_http.c, fb_http_head_*)
 * on arbitrary heads: the checks both daemons run before reading a body.
 *
 * Input: the first byte picks the version (even: HTTP/1.1, odd: HTTP/1.0);
 * the rest is lines split at '\n': the first is the path, a line starting
 * with '?' a query argument "key=value", any other a header "name:value"
 * (bytes as they come: NUL, CR, invalid UTF-8 included). Beyond "does not
 * crash": the verdict is 0 or 400, a refusal names a field that is valid
 * UTF-8 (it goes into a JSON answer), and a head of plain ASCII headers
 * with one Host and no Content-Length passes. */
#include "fb_http.h"
#include "fb_text.h"
#include "fuzz_common.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    const char *version = data[0] % 2 ? "HTTP/1.0" : "HTTP/1.1";
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    char path[256] = "/";
    fb_http_head_t hd = {0};
    bool plain = true; /* only printable ASCII names and values so far */
    int lines = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (lines++ == 0) {
            size_t k = n < sizeof path - 1 ? n : sizeof path - 1;
            memcpy(path, p, k);
            path[k] = '\0';
        } else if (n && p[0] == '?') {
            const char *eq = memchr(p + 1, '=', n - 1);
            size_t kl = eq ? (size_t)(eq - p - 1) : n - 1;
            fb_http_head_note(&hd, true, p + 1, kl, eq ? eq + 1 : NULL, eq ? n - kl - 2 : 0);
        } else {
            const char *colon = memchr(p, ':', n);
            size_t kl = colon ? (size_t)(colon - p) : n;
            for (size_t i = 0; i < n; i++)
                plain &= p[i] >= 0x20 && p[i] < 0x7f;
            fb_http_head_note(&hd, false, p, kl, colon ? colon + 1 : "", colon ? n - kl - 1 : 0);
        }
        p += n + (nl != NULL);
    }
    const char *code, *field, *why;
    unsigned st = fb_http_head_verdict(&hd, version, path, &code, &field, &why);
    FZ_CHECK(st == 0 || st == 400, "the verdict is 0 or 400");
    if (st) {
        FZ_CHECK(code && field && why, "a refusal says what and why");
        FZ_CHECK(fb_utf8_valid(field, strlen(field)), "the field named is UTF-8");
    }
    if (plain && hd.content_length == 0 && hd.has_host && fb_utf8_valid(path, strlen(path)) &&
        !hd.bad_query)
        FZ_CHECK(st == 0, "a plain head with a Host passes");
    return 0;
}
