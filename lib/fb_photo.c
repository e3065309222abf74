/* fb_photo.c — the photo store (fb_photo.h).
 *
 * A photo's name is its SHA-256, so a resident who sends the same picture
 * twice (or a retry of the same request) stores it once, and two intake
 * requests writing the same photo at once cannot corrupt it: each writes its
 * own temporary file and rename() replaces atomically with identical bytes. */
#include "fb_photo.h"
#include "fb_common.h"
#include "fb_log.h"
#include "fb_token.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char JPEG_MAGIC[] = {0xFF, 0xD8, 0xFF};
static const unsigned char PNG_MAGIC[] = {0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A};

const char *fb_photo_sniff(const void *bytes, size_t len) {
    if (bytes && len >= sizeof JPEG_MAGIC && memcmp(bytes, JPEG_MAGIC, sizeof JPEG_MAGIC) == 0)
        return "image/jpeg";
    if (bytes && len >= sizeof PNG_MAGIC && memcmp(bytes, PNG_MAGIC, sizeof PNG_MAGIC) == 0)
        return "image/png";
    return NULL;
}

const char *fb_photo_ext(const char *content_type) {
    if (content_type && strcmp(content_type, "image/jpeg") == 0)
        return "jpg";
    if (content_type && strcmp(content_type, "image/png") == 0)
        return "png";
    return NULL;
}

int fb_photo_path(const char *data_dir, const char *sha256_hex, const char *content_type, char *out,
                  size_t outlen) {
    const char *ext = fb_photo_ext(content_type);
    if (!ext || strlen(sha256_hex) != 64)
        return FB_EINVAL;
    int n = snprintf(out, outlen, "%s/photos/%.2s/%s.%s", data_dir, sha256_hex, sha256_hex, ext);
    return n < 0 || (size_t)n >= outlen ? FB_EINVAL : 0;
}

int fb_fsync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return FB_EIO;
    int rc = fsync(fd) == 0 ? 0 : FB_EIO;
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* Creates dir when missing; a new directory is made durable by syncing the
 * directory that holds it, or a crash could lose the photos stored in it. */
static int ensure_dir(const char *dir, const char *parent) {
    if (mkdir(dir, 0700) == 0)
        return fb_fsync_dir(parent);
    return errno == EEXIST ? 0 : FB_EIO;
}

static int write_all(int fd, const unsigned char *p, size_t len) {
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return FB_EIO;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int fb_store_durably(const char *dir, const char *name, const void *bytes, size_t len) {
    char final[4096], tmp[4096];
    int n1 = snprintf(final, sizeof final, "%s/%s", dir, name);
    int n2 = snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name);
    if (n1 < 0 || (size_t)n1 >= sizeof final || n2 < 0 || (size_t)n2 >= sizeof tmp)
        return FB_EINVAL;
    struct stat st;
    if (stat(final, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len)
        return 0; /* stored before: the name is the content */
    int fd = mkstemp(tmp);
    if (fd < 0)
        return FB_EIO;
    if (write_all(fd, bytes, len) != 0 || fsync(fd) != 0)
        goto fail;
    int closed = close(fd);
    fd = -1;
    if (closed != 0 || rename(tmp, final) != 0)
        goto fail;
    return fb_fsync_dir(dir);
fail : {
    int saved = errno;
    if (fd >= 0)
        close(fd);
    unlink(tmp); /* our own temporary file, never a stored one */
    errno = saved;
    return FB_EIO;
}
}

int fb_photo_store(const char *data_dir, const void *bytes, size_t len, char sha256_hex[65],
                   const char **content_type) {
    const char *type = fb_photo_sniff(bytes, len);
    if (content_type)
        *content_type = type;
    if (!type)
        return FB_EINVAL;
    if (fb_sha256_hex(bytes, len, sha256_hex) != 0)
        return FB_ENOMEM;

    char photos[4096], sub[4096], name[80];
    int n1 = snprintf(photos, sizeof photos, "%s/photos", data_dir);
    int n2 = snprintf(sub, sizeof sub, "%s/%.2s", photos, sha256_hex);
    if (n1 < 0 || (size_t)n1 >= sizeof photos || n2 < 0 || (size_t)n2 >= sizeof sub)
        return FB_EINVAL;
    snprintf(name, sizeof name, "%s.%s", sha256_hex, fb_photo_ext(type));
    int rc;
    if ((rc = ensure_dir(photos, data_dir)) != 0 || (rc = ensure_dir(sub, photos)) != 0 ||
        (rc = fb_store_durably(sub, name, bytes, len)) != 0) {
        fb_log(FB_LOG_ERROR, "event=photo_store_failed sha256=%s error=\"%s\"", sha256_hex,
               strerror(errno));
        return rc;
    }
    fb_log(FB_LOG_DEBUG, "event=photo_stored sha256=%s type=%s bytes=%zu", sha256_hex, type, len);
    return 0;
}
