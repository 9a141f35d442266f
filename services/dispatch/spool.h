/* spool: the CAP spool directory of wf-dispatch (docs/dispatch.md, "CAP").
 * Each released version's CAP file is written atomically (temporary file,
 * fsync, rename) as <dir>/<name>. With a broadcast platform URL, a hard
 * link in <dir>/outgoing/ marks it for POSTing; dsp_spool_post_next()
 * POSTs the oldest (libcurl, blocking with a short timeout: wf-dispatch
 * runs it in poster.c's worker thread) and removes the link on a 2xx, so
 * retries survive a restart. Nothing here logs. */
#ifndef DSP_SPOOL_H
#define DSP_SPOOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct dsp_spool;

/* Creates DIR (and DIR/outgoing when POST_URL is set) if needed. POST_URL
 * may be NULL (no POST). TIMEOUT_MS bounds one POST. */
int dsp_spool_open(const char *dir, const char *post_url, int64_t timeout_ms,
		   struct dsp_spool **ret);
struct dsp_spool *dsp_spool_free(struct dsp_spool *s);

/* Writes NAME (a plain file name) atomically; queues it for POST. */
int dsp_spool_write(struct dsp_spool *s, const char *name, const void *data, size_t len);

/* POSTs the oldest queued file. Returns 1 when one was posted, 0 when
 * nothing is queued, -EAGAIN when the POST failed (it stays queued; the
 * HTTP status or curl error is in DETAIL), or another negative errno. */
int dsp_spool_post_next(struct dsp_spool *s, char *detail, size_t detail_size);
/* The same, given up (-ECANCELED, still queued) as soon as *ABORT is set
 * (may be NULL). May run in another thread than the one writing the spool:
 * it only reads the spool's settings, and the queue is the directory. */
int dsp_spool_post_next_abortable(struct dsp_spool *s, char *detail, size_t detail_size,
				  const atomic_bool *abort);

/* Files waiting to be POSTed. */
size_t dsp_spool_queued(struct dsp_spool *s);

#endif
