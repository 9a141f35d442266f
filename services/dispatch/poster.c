/* poster: the CAP POST queue's worker thread (see poster.h). */
#include "poster.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

struct dsp_poster {
	struct ev_loop *loop;
	struct dsp_spool *spool;
	dsp_poster_done_fn done;
	void *ud;
	ev_async async;     /* active only while a POST is in flight */
	pthread_t thread;
	bool busy;          /* a worker was started and not joined yet (loop thread only) */
	atomic_bool abort;  /* set by dsp_poster_free: give the POST up */
	/* written by the worker before ev_async_send, read after the join */
	int r;
	char detail[256];
};

static void *worker(void *ud)
{
	struct dsp_poster *p = ud;
	p->detail[0] = '\0';
	p->r = dsp_spool_post_next_abortable(p->spool, p->detail, sizeof p->detail, &p->abort);
	ev_async_send(p->loop, &p->async);
	return NULL;
}

static void finished(struct ev_loop *loop, ev_async *w, int revents)
{
	struct dsp_poster *p = w->data;
	if (!p->busy)
		return;
	pthread_join(p->thread, NULL);
	p->busy = false;
	ev_async_stop(loop, &p->async); /* an idle poster keeps no loop alive */
	p->done(p->ud, p->r, p->detail);
}

int dsp_poster_new(struct ev_loop *loop, struct dsp_spool *spool, dsp_poster_done_fn done,
		   void *ud, struct dsp_poster **ret)
{
	struct dsp_poster *p = calloc(1, sizeof *p);
	if (!p)
		return -ENOMEM;
	p->loop = loop;
	p->spool = spool;
	p->done = done;
	p->ud = ud;
	atomic_init(&p->abort, false);
	ev_async_init(&p->async, finished);
	p->async.data = p;
	*ret = p;
	return 0;
}

int dsp_poster_start(struct dsp_poster *p)
{
	if (p->busy)
		return 0;
	ev_async_start(p->loop, &p->async);
	int r = pthread_create(&p->thread, NULL, worker, p);
	if (r != 0) {
		ev_async_stop(p->loop, &p->async);
		return -r;
	}
	p->busy = true;
	return 1;
}

bool dsp_poster_busy(const struct dsp_poster *p)
{
	return p && p->busy;
}

struct dsp_poster *dsp_poster_free(struct dsp_poster *p)
{
	if (!p)
		return NULL;
	if (p->busy) {
		atomic_store(&p->abort, true);
		pthread_join(p->thread, NULL);
		p->busy = false;
	}
	ev_async_stop(p->loop, &p->async);
	free(p);
	return NULL;
}
