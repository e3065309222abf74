/* fb_spool.h — intake's durable spool: an append-only log of checksummed
 * records in segment files.
 *
 * A record is durable once fb_spool_sync() returned 0 after its append: one
 * fdatasync covers every record appended since the last one (group commit).
 * Acknowledgements are recorded beside each segment (without fsync: a lost
 * acknowledgement only means a harmless resend, which the dispatcher's
 * idempotent insert absorbs); a segment whose records are all acknowledged is
 * removed. Reopening replays every unacknowledged record, and cuts off a torn
 * record at the end of the last segment (a crash during an append that was
 * never synced, hence never answered). */
#ifndef FB_SPOOL_H
#define FB_SPOOL_H

#include <stddef.h>
#include <stdint.h>

typedef struct fb_spool fb_spool_t;

/* Opens (creating) the spool in dir. *out is the caller's: fb_spool_close(). */
int fb_spool_open(const char *dir, size_t segment_bytes, fb_spool_t **out);
void fb_spool_close(fb_spool_t **s);

/* Appends data as the next record; *seq receives its sequence number (unique
 * for the life of the spool directory). Not durable until fb_spool_sync(). */
int fb_spool_append(fb_spool_t *s, const void *data, size_t len, uint64_t *seq);
/* Makes everything appended so far durable. */
int fb_spool_sync(fb_spool_t *s);
/* fb_spool_sync() of two spools at once (a and b on one disk wait for one
 * journal commit together rather than for two in a row). The caller must
 * not touch either spool meanwhile: it returns when both are done. Returns
 * 0 or the first failure. */
int fb_spool_sync_pair(fb_spool_t *a, fb_spool_t *b);

/* Marks seq acknowledged. Unknown or already acknowledged seqs are ignored
 * (acknowledgements may repeat). Returns 1 when seq was pending, else 0. */
int fb_spool_ack(fb_spool_t *s, uint64_t seq);

/* Reads record seq into *data (caller's, free()). FB_ENOTFOUND when it is
 * acknowledged or unknown. */
int fb_spool_read(fb_spool_t *s, uint64_t seq, char **data, size_t *len);

/* Calls cb for every unacknowledged record, in order. cb returning non-zero
 * stops the walk and is returned. */
typedef int (*fb_spool_cb)(void *ud, uint64_t seq, const char *data, size_t len);
int fb_spool_foreach_pending(fb_spool_t *s, fb_spool_cb cb, void *ud);

size_t fb_spool_pending(const fb_spool_t *s);
size_t fb_spool_segments(const fb_spool_t *s);

#endif
