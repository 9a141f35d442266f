/* poster: POSTs the CAP spool's queue to the broadcast platform off the
 * event loop. One worker thread at a time runs
 * dsp_spool_post_next_abortable() on the oldest queued file (a blocking
 * libcurl call bounded by [cap] post_timeout); its result comes back on the
 * loop through an ev_async and is handed to DONE there. While a POST is in
 * flight the loop goes on (notices, acks, deadlines, the watchdog), so a
 * slow or hanging platform delays only the CAP queue. Nothing here logs. */
#ifndef DSP_POSTER_H
#define DSP_POSTER_H

#include <stdbool.h>

#include "spool.h"

struct ev_loop;
struct dsp_poster;

/* On the loop, after a POST: R and DETAIL as dsp_spool_post_next returned
 * them (1 posted, 0 nothing queued, -EAGAIN failed and kept, ...). */
typedef void (*dsp_poster_done_fn)(void *ud, int r, const char *detail);

/* SPOOL is borrowed (it must outlive the poster). Returns 0 and *RET, or
 * -ENOMEM. */
int dsp_poster_new(struct ev_loop *loop, struct dsp_spool *spool, dsp_poster_done_fn done,
		   void *ud, struct dsp_poster **ret);

/* Starts a POST of the oldest queued file in the worker. Returns 1 if it
 * started, 0 if one is still in flight (its DONE comes first), or -errno
 * (the thread could not be created). */
int dsp_poster_start(struct dsp_poster *p);

bool dsp_poster_busy(const struct dsp_poster *p);

/* Gives up a POST in flight (libcurl's progress callback sees the abort at
 * once; the file stays queued for the next start), waits for the worker,
 * and frees. DONE is not called. Accepts NULL; returns NULL. */
struct dsp_poster *dsp_poster_free(struct dsp_poster *p);

#endif
