/* fb_photo.h — the photo store, shared by whoever takes pictures (intake's
 * mini-program, grid and mailbox channels; the worker's verifications):
 * photos are recognised by their content (never by a declared type or file
 * name) and stored once per content under
 * data_dir/photos/<first 2 hex of sha256>/<sha256>.jpg|.png. A stored photo
 * is on disk before the call returns (file and directory fsync'd), so a
 * record that names it may be acknowledged. */
#ifndef FB_PHOTO_H
#define FB_PHOTO_H

#include <stddef.h>

/* The content type that bytes' magic number says: "image/jpeg" (FF D8 FF),
 * "image/png" (89 50 4E 47 0D 0A 1A 0A), or NULL for anything else. The
 * string is static. */
const char *fb_photo_sniff(const void *bytes, size_t len);

/* The file name extension for a content type from fb_photo_sniff
 * ("jpg" or "png"), NULL for others. Static. */
const char *fb_photo_ext(const char *content_type);

/* Writes the path of a stored photo into out ("<data_dir>/photos/ab/<sha>.jpg").
 * Returns 0, or FB_EINVAL when the type is unknown or out is too small. */
int fb_photo_path(const char *data_dir, const char *sha256_hex, const char *content_type, char *out,
                  size_t outlen);

/* Stores a photo: sniffs it (FB_EINVAL and nothing written unless it is a
 * JPEG or PNG), hashes it with SHA-256 into sha256_hex (lower-case, NUL
 * terminated) and sets *content_type (static string, may be NULL when not
 * wanted). A photo already stored is left as it is; otherwise it is written to
 * a temporary file, fsync'd, renamed into place, and its directory fsync'd.
 * Returns 0, FB_EINVAL, FB_ENOMEM or FB_EIO (errno tells more). */
/* Writes bytes to dir/name durably and once: nothing is written when a file
 * of that size is there already (names are content digests); otherwise a
 * temporary file in dir, fsync, rename, fsync of dir. FB_EIO (errno set). */
int fb_store_durably(const char *dir, const char *name, const void *bytes, size_t len);
/* fsyncs the directory path, so that the names made in it last: 0 or FB_EIO
 * (errno set). */
int fb_fsync_dir(const char *path);

int fb_photo_store(const char *data_dir, const void *bytes, size_t len, char sha256_hex[65],
                   const char **content_type);

#endif
