/* spool: the CAP spool directory of wf-dispatch (docs/dispatch.md, "CAP").
 * Each released version's CAP file is written atomically (temporary file,
 * fsync, rename) as <dir>/<name>. With a broadcast platform URL, a hard
 * link in <dir>/outgoing/ marks it for POSTing; dsp_spool_post_next()
 * POSTs the oldest (libcurl, blocking with a short timeout: wf-dispatch
 * runs it in poster.c's worker thread) and removes the link on a 2xx, so
 * retries survive a restart.
 *
 * The order is the write order. The queue is held in memory (a FIFO of the
 * links' names, O(1) amortized per write and per POST; only a rewrite of a
 * name still queued searches it) behind a mutex;
 * outgoing/ stays the durable truth: dsp_spool_open rebuilds the queue by
 * one scan, ordered by the links' mtime in nanoseconds, then name. For that
 * order to be the write order, a file is stamped 1 ns after the newest
 * queued one when its mtime would not sort after it (the kernel's file
 * times advance by its tick, a few ms, so a burst shares one mtime). A
 * rewrite of a name still queued is queued again as the newest (the same
 * after a restart: its mtime is the new write's). A link removed from
 * outgoing/ by hand leaves the queue when a POST reaches it; one added by
 * hand is seen at the next open. Nothing here logs. */
#ifndef DSP_SPOOL_H
#define DSP_SPOOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dsp_spool;

/* Creates DIR (and DIR/outgoing when POST_URL is set) if needed and reads
 * the queue from DIR/outgoing. POST_URL may be NULL (no POST). TIMEOUT_MS
 * bounds one POST. */
int dsp_spool_open(const char *dir, const char *post_url, int64_t timeout_ms,
		   struct dsp_spool **ret);
struct dsp_spool *dsp_spool_free(struct dsp_spool *s);

/* Writes NAME (a plain file name) atomically; queues it for POST as the
 * newest (a rewrite of a queued NAME moves it there). */
int dsp_spool_write(struct dsp_spool *s, const char *name, const void *data, size_t len);

/* POSTs the oldest queued file. Returns 1 when one was posted, 0 when
 * nothing is queued, -EAGAIN when the POST failed (it stays queued; the
 * HTTP status or curl error is in DETAIL), -EFBIG for a file larger than
 * 16 MiB (never sendable: its link is moved to <dir>/rejected/ and it
 * leaves the queue, so the next goes; DETAIL says where), or another
 * negative errno. */
int dsp_spool_post_next(struct dsp_spool *s, char *detail, size_t detail_size);
/* The same, given up (-ECANCELED, still queued) as soon as *ABORT is set
 * (may be NULL). May run in another thread than the one writing the spool
 * (the queue's mutex is not held during the HTTP transfer); one POST at a
 * time (poster.c). Queued links that are gone are skipped and dropped. */
int dsp_spool_post_next_abortable(struct dsp_spool *s, char *detail, size_t detail_size,
				  const atomic_bool *abort);

/* Files waiting to be POSTed: the in-memory queue's length, O(1). */
size_t dsp_spool_queued(struct dsp_spool *s);

#endif
