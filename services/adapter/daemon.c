/* daemon: an adapter's MQTT daemon mode (the default mode of wf-<kind>).
 *
 * One wf_node (wf/node.h) carries the adapter onto the bus: its store holds
 * the outbox and the spool's file digests, it publishes the retained
 * ONLINE/OFFLINE state and the heartbeats, and it resends every event until
 * fusion acknowledges it. The spool is scanned when the directory changes
 * (libev ev_stat: inotify where available) and every SCAN_INTERVAL_MS as a
 * safety net; each scan commits, then the node publishes what it put into
 * the outbox. A full outbox (-ENOBUFS) leaves the file in the spool until
 * acks drain it. SIGHUP reloads the agency's thresholds and station tables
 * (a bad file keeps the running ones); SIGTERM stops taking files, applies
 * what is committed, publishes OFFLINE and exits 0.
 *
 * With --stdin, all of stdin is one input file; the daemon exits once every
 * event from it has been acknowledged (nothing is lost by exiting early). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>

#include "adapter-int.h"
#include "wf-config.h"
#include "wf/cli.h"
#include "wf/codec.h"
#include "wf/daemon.h"
#include "wf/log.h"
#include "wf/node.h"

/* ev_stat compares whole-second mtimes: a drop in the same second as the
 * last change is seen by this scan */
#define SCAN_INTERVAL_MS 250
#define FILES_PER_TURN 8 /* then the loop turns: publish, acks, heartbeats */
#define DRAIN_POLL_MS 50
#define DRAIN_LOG_MS 10000

struct adapter_daemon {
	const struct wf_adapter_ops *ops;
	const char *config_path;
	const struct wf_region_table *regions;
	void **state;
	struct ev_loop *loop;
	struct wf_daemon *daemon;
	struct wf_node *node;
	struct wf_adapter_spool sp;
	ev_stat dir_watch;
	ev_timer scan_timer;
	ev_timer drain_timer;
	ev_idle more_idle;      /* the backlog continues next turn */
	int64_t drain_logged_ms;
	bool use_stdin;
	bool stopping;
	const char *spool_dir;
	int64_t history_ms;
	int status;
	struct wf_ratelimit rl_conn;
	struct wf_ratelimit rl_reject;
	struct wf_ratelimit rl_scan;
};

static void node_notice(void *ud, enum wf_node_notice what, int code, const char *detail)
{
	struct adapter_daemon *d = ud;
	int64_t now = wf_clock_mono_ms();

	switch (what) {
	case WF_NODE_CONNECTED:
		wf_log(LOG_INFO, "mqtt", "connected (%s)", detail);
		break;
	case WF_NODE_DISCONNECTED:
		wf_log_ratelimited(&d->rl_conn, now, LOG_WARNING, "mqtt",
				   "connection lost or refused: %s",
				   code < 0 ? strerror(-code) : wf_bus_reason_string(code));
		break;
	case WF_NODE_REJECTED:
		wf_log_ratelimited(&d->rl_reject, now, LOG_WARNING, "input", "dead-lettered: %s",
				   detail);
		break;
	case WF_NODE_PUBLISH_REFUSED:
		wf_log(LOG_ERR, "mqtt", "broker refused: %s (%s); check the ACL", detail,
		       strerror(-code));
		break;
	case WF_NODE_STORE_ERROR:
		wf_log(LOG_ERR, "store", "%s: %s", detail, strerror(-code));
		break;
	case WF_NODE_TRANSIENT:
		wf_log(LOG_WARNING, "input", "%s: %s", detail, strerror(-code));
		break;
	}
}

static void rebuild_history(struct adapter_daemon *d);

static void spool_notice(void *ud, const char *kind, const char *name, const char *detail)
{
	const char *group = ud;
	int prio = strcmp(kind, "rejected") == 0 ? LOG_WARNING
		   : strcmp(kind, "error") == 0  ? LOG_ERR
						 : LOG_INFO;

	wf_log(prio, group, "%s: %s: %s", name, kind, detail);
}

static void scan(struct adapter_daemon *d)
{
	int r;

	if (d->stopping || d->use_stdin)
		return;
	r = wf_adapter_spool_scan(&d->sp);
	if (r == -ENOBUFS)
		wf_log_ratelimited(&d->rl_scan, wf_clock_mono_ms(), LOG_WARNING, "spool",
				   "outbox full: files wait in %s until fusion acknowledges",
				   d->sp.dir);
	else if (r < 0)
		wf_log_ratelimited(&d->rl_scan, wf_clock_mono_ms(), LOG_ERR, "spool",
				   "scan of %s failed (retrying): %s", d->sp.dir, strerror(-r));
	if (r == FILES_PER_TURN && !ev_is_active(&d->more_idle))
		ev_idle_start(d->loop, &d->more_idle);
	if (r != 0)
		wf_daemon_status(d->daemon, "%llu files done, %llu duplicate, %llu rejected, "
					    "%llu events",
				 (unsigned long long)d->sp.stats.files_done,
				 (unsigned long long)d->sp.stats.files_duplicate,
				 (unsigned long long)d->sp.stats.files_rejected,
				 (unsigned long long)d->sp.stats.events);
	wf_node_flush(d->node);
}

static void dir_cb(struct ev_loop *loop, ev_stat *w, int revents)
{
	scan(w->data);
}

static void scan_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	scan(w->data);
}

static void more_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	ev_idle_stop(loop, w);
	scan(w->data);
}

static void stop(struct adapter_daemon *d, int status)
{
	if (d->stopping)
		return;
	d->stopping = true;
	d->status = status;
	wf_daemon_stopping(d->daemon);
	ev_stat_stop(d->loop, &d->dir_watch);
	ev_timer_stop(d->loop, &d->scan_timer);
	ev_timer_stop(d->loop, &d->drain_timer);
	ev_idle_stop(d->loop, &d->more_idle);
	wf_node_stop(d->node);
}

static void drain_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct adapter_daemon *d = w->data;
	int64_t pending = wf_node_pending(d->node), now = wf_clock_mono_ms();

	if (pending == 0) {
		wf_log(LOG_INFO, d->ops->kind, "every event acknowledged; exiting");
		stop(d, d->sp.stats.files_rejected ? WF_EXIT_PARTIAL : WF_EXIT_OK);
		return;
	}
	if (now - d->drain_logged_ms >= DRAIN_LOG_MS) {
		d->drain_logged_ms = now;
		wf_log(LOG_NOTICE, d->ops->kind, "waiting for %lld event(s) to be acknowledged",
		       (long long)pending);
	}
}

static void stop_cb(struct wf_daemon *wd, void *ud, int signo)
{
	struct adapter_daemon *d = ud;

	if (d->stopping)
		return;
	wf_log(LOG_NOTICE, NULL, "signal %d: stopping", signo);
	stop(d, WF_EXIT_OK);
}

static int reload_cb(struct wf_daemon *wd, void *ud, char *msg, size_t msglen)
{
	struct adapter_daemon *d = ud;
	void *fresh = NULL;
	char err[512] = "";
	int r;

	r = d->ops->config_load(d->config_path, d->regions, &fresh, err, sizeof err);
	if (r < 0) {
		snprintf(msg, msglen, "%s", *err ? err : strerror(-r));
		wf_log(LOG_ERR, "config", "reload failed, keeping the running thresholds: %s", msg);
		return r;
	}
	if (d->ops->config_free)
		d->ops->config_free(*d->state);
	*d->state = fresh;
	d->sp.state = fresh;
	rebuild_history(d); /* the new state starts without history */
	wf_log(LOG_NOTICE, "config",
	       "reloaded the %s thresholds from %s ([service], [mqtt] and [adapter] changes "
	       "take effect at restart)",
	       d->ops->kind, d->config_path ? d->config_path : "(defaults)");
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

struct committed_ctx {
	unsigned dbi;
	const uint8_t *digest;
	char val[512];
	size_t len;
};

static int committed_fn(struct wf_txn *t, void *ud)
{
	struct committed_ctx *c = ud;
	return wf_store_get_buf(t, c->dbi, c->digest, 32, c->val, sizeof c->val - 1, &c->len);
}

/* Whether spool file NAME (contents BUF) was committed under this name and
 * is not in done/: the daemon died between its commit and its rename. Its
 * digest record is "<ms> <events> <name>". */
static bool committed_not_moved(struct adapter_daemon *d, const char *name, const uint8_t *buf,
				size_t len)
{
	uint8_t digest[32];
	struct committed_ctx c = { d->sp.files_dbi, digest, "", 0 };
	char done[4096];
	const char *p;

	if (adapter_sha256(buf, len, digest) < 0 || wf_store_view(d->sp.store, committed_fn, &c) < 0)
		return false;
	c.val[c.len] = '\0';
	p = strchr(c.val, ' ');
	p = p ? strchr(p + 1, ' ') : NULL;
	if (p == NULL || strcmp(p + 1, name) != 0)
		return false; /* a re-drop of bytes seen under another name */
	snprintf(done, sizeof done, "%s/done/%s", d->spool_dir, name);
	return access(done, F_OK) != 0;
}

/* The regular files of directory PATH (not dot files) modified at or after
 * CUTOFF, in name order, into *RET (free each and the array); their count.
 * A directory that cannot be read lists nothing. */
static size_t list_files(const char *path, time_t cutoff, char ***ret)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	DIR *dir = opendir(path);
	struct dirent *e;

	*ret = NULL;
	if (dir == NULL)
		return 0;
	while ((e = readdir(dir)) != NULL) {
		struct stat st;
		if (e->d_name[0] == '.' || fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(st.st_mode) || st.st_mtime < cutoff)
			continue;
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			char **q = realloc(names, nc * sizeof *q);
			if (q == NULL)
				break;
			names = q;
			cap = nc;
		}
		if ((names[n] = strdup(e->d_name)) == NULL)
			break;
		n++;
	}
	closedir(dir);
	if (n > 1)
		qsort(names, n, sizeof *names, cmp_str);
	*ret = names;
	return n;
}

/* Parses, for the history only, the spool files that were committed but
 * not moved to done/ (the scan moves them as already processed, without
 * parsing them): they come after every file of done/. Returns how many. */
static size_t reread_committed(struct adapter_daemon *d, struct wf_adapter_sink *sink)
{
	char path[4096];
	char **names = NULL;
	size_t reread = 0, n = list_files(d->spool_dir, 0, &names);

	for (size_t i = 0; i < n; i++) {
		uint8_t *buf = NULL;
		size_t len = 0;
		snprintf(path, sizeof path, "%s/%s", d->spool_dir, names[i]);
		if (adapter_read_path(path, d->sp.max_file ? d->sp.max_file : WF_ADAPTER_MAX_FILE, &buf,
				      &len) == 0 &&
		    committed_not_moved(d, names[i], buf, len)) {
			(void)d->ops->parse(d->sp.state, names[i], buf, len,
					    wf_clock_now_ms(d->sp.clock), sink);
			wf_adapter_sink_reset(sink);
			reread++;
		}
		free(buf);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return reread;
}

/* The agency's rolling history (accumulations, trends, rates) lives in
 * memory: rebuild it by parsing again, in name order and without emitting
 * anything, the files of done/ that were processed within [adapter]
 * history, then the spool's files that were committed but not yet moved
 * (a crash between commit and rename: tests/integration/test-adapter-crash.c,
 * found by tests/chaos). Parsing is deterministic, so the state is what it
 * was. */
static void rebuild_history(struct adapter_daemon *d)
{
	char path[4096];
	char **names = NULL;
	size_t n, reread = 0;
	time_t cutoff = time(NULL) - (time_t)(d->history_ms / 1000);
	struct wf_adapter_sink *sink;

	if (d->history_ms <= 0 || d->spool_dir == NULL)
		return;
	snprintf(path, sizeof path, "%s/done", d->spool_dir);
	n = list_files(path, cutoff, &names);
	sink = wf_adapter_sink_new();
	for (size_t i = 0; i < n && sink != NULL; i++) {
		uint8_t *buf = NULL;
		size_t len = 0;
		snprintf(path, sizeof path, "%s/done/%s", d->spool_dir, names[i]);
		if (adapter_read_path(path, d->sp.max_file ? d->sp.max_file : WF_ADAPTER_MAX_FILE, &buf,
				      &len) == 0) {
			(void)d->ops->parse(d->sp.state, names[i], buf, len,
					    wf_clock_now_ms(d->sp.clock), sink);
			wf_adapter_sink_reset(sink);
			reread++;
		}
		free(buf);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	size_t pending = sink != NULL ? reread_committed(d, sink) : 0;
	wf_adapter_sink_free(sink);
	if (reread)
		wf_log(LOG_INFO, d->ops->kind, "history: re-read %zu file(s) of done/ from the last %lld s",
		       reread, (long long)(d->history_ms / 1000));
	if (pending)
		wf_log(LOG_INFO, d->ops->kind,
		       "history: re-read %zu file(s) committed but not yet moved to done/", pending);
}

static int run_stdin(struct adapter_daemon *d)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	char reason[WF_ADAPTER_REASON_MAX] = "";
	int r;

	r = adapter_read_fd(STDIN_FILENO, d->sp.max_file, &buf, &len);
	if (r == -EFBIG) {
		d->sp.stats.files_rejected++;
		spool_notice((void *)d->ops->kind, "rejected", "-", "too large");
		return 0;
	}
	if (r < 0)
		return r;
	r = wf_adapter_spool_buffer(&d->sp, "-", buf, len, reason, sizeof reason);
	free(buf);
	if (r < 0)
		return r;
	if (r == 0)
		spool_notice((void *)d->ops->kind, "rejected", "-", reason);
	wf_node_flush(d->node);
	return 0;
}

int adapter_daemon_run(const struct wf_adapter_ops *ops, void **state,
		       const struct wf_region_table *regions, const struct adapter_conf *conf,
		       const char *config_path, const char *spool_dir, bool use_stdin,
		       const struct wf_clock *clock)
{
	struct adapter_daemon d;
	struct wf_node_options no;
	struct wf_node_callbacks ncb = { .on_notice = node_notice };
	struct wf_daemon_callbacks dcb = { stop_cb, reload_cb, NULL };
	struct wf_codec_limits lim;
	char password[256] = "", err[512] = "";
	int r, status = WF_EXIT_FAILURE;

	memset(&d, 0, sizeof d);
	d.ops = ops;
	d.config_path = config_path;
	d.regions = regions;
	d.state = state;
	d.use_stdin = use_stdin;
	d.spool_dir = use_stdin ? NULL : spool_dir;
	d.history_ms = conf->history_ms;
	d.status = WF_EXIT_OK;
	d.rl_conn = (struct wf_ratelimit)WF_RATELIMIT_INIT(60000, 5);
	d.rl_reject = (struct wf_ratelimit)WF_RATELIMIT_INIT(10000, 20);
	d.rl_scan = (struct wf_ratelimit)WF_RATELIMIT_INIT(60000, 5);

	wf_node_options_init(&no);
	no.kind = ops->kind;
	/* A one-shot --stdin run does not claim to be its agency's live source:
	 * its exit is not the agency going silent (fusion's monitoring gaps
	 * follow the spool daemons' states). */
	no.agency = use_stdin ? WF__V1__AGENCY__AGENCY_UNSPECIFIED : ops->agency;
	no.version = WF_VERSION;
	no.clock = clock;
	r = wf_nodeconf_apply(&conf->node, &no, password, sizeof password, err, sizeof err);
	if (r < 0) {
		fprintf(stderr, "wf-%s: %s\n", ops->kind, err);
		return WF_EXIT_USAGE;
	}
	wf_codec_limits_init(&lim);
	lim.regions = regions;
	no.limits = &lim;

	d.loop = ev_loop_new(EVFLAG_AUTO);
	if (d.loop == NULL)
		return WF_EXIT_FAILURE;
	r = wf_daemon_new(d.loop, &dcb, &d, &d.daemon);
	if (r < 0) {
		wf_log(LOG_ERR, NULL, "systemd integration: %s", strerror(-r));
		goto out;
	}
	r = wf_node_new(d.loop, &no, &ncb, &d, &d.node);
	if (r < 0) {
		wf_log(LOG_ERR, "store", "cannot open %s: %s", no.state_dir, strerror(-r));
		goto out;
	}
	d.sp.ops = ops;
	d.sp.state = *state;
	d.sp.store = wf_node_store(d.node);
	d.sp.outbox = wf_node_outbox(d.node);
	d.sp.dir = use_stdin ? NULL : spool_dir;
	d.sp.max_file = conf->max_file;
	d.sp.limits = &lim;
	d.sp.clock = clock;
	d.sp.notice = spool_notice;
	d.sp.notice_ud = (void *)ops->kind;
	d.sp.max_files = FILES_PER_TURN;
	ev_idle_init(&d.more_idle, more_cb);
	d.more_idle.data = &d;
	r = wf_adapter_spool_init(&d.sp);
	if (r < 0) {
		wf_log(LOG_ERR, "spool", "%s: %s", d.sp.dir ? d.sp.dir : no.state_dir, strerror(-r));
		goto out;
	}
	rebuild_history(&d);
	r = wf_node_start(d.node);
	if (r < 0) {
		wf_log(LOG_ERR, "mqtt", "cannot start: %s", strerror(-r));
		goto out;
	}
	if (use_stdin) {
		r = run_stdin(&d);
		if (r < 0) {
			wf_log(LOG_ERR, "stdin", "%s", strerror(-r));
			goto out;
		}
		ev_timer_init(&d.drain_timer, drain_cb, DRAIN_POLL_MS / 1000.0,
			      DRAIN_POLL_MS / 1000.0);
		d.drain_timer.data = &d;
		ev_timer_start(d.loop, &d.drain_timer);
	} else {
		ev_stat_init(&d.dir_watch, dir_cb, spool_dir, 0.);
		d.dir_watch.data = &d;
		ev_stat_start(d.loop, &d.dir_watch);
		ev_timer_init(&d.scan_timer, scan_timer_cb, 0., SCAN_INTERVAL_MS / 1000.0);
		d.scan_timer.data = &d;
		ev_timer_start(d.loop, &d.scan_timer);
	}
	wf_log(LOG_NOTICE, NULL, "wf-%s %s started as %s (broker %s:%d, state %s, %s %s)",
	       ops->kind, WF_VERSION, no.service, no.bus.host, no.bus.port, no.state_dir,
	       use_stdin ? "input" : "spool", use_stdin ? "stdin" : spool_dir);
	wf_daemon_ready(d.daemon, "running");
	ev_run(d.loop, 0);
	status = d.status;
	wf_log(LOG_NOTICE, NULL,
	       "stopped: %llu files done, %llu duplicate, %llu rejected, %llu events",
	       (unsigned long long)d.sp.stats.files_done,
	       (unsigned long long)d.sp.stats.files_duplicate,
	       (unsigned long long)d.sp.stats.files_rejected,
	       (unsigned long long)d.sp.stats.events);
out:
	d.node = wf_node_free(d.node);
	wf_daemon_free(d.daemon);
	ev_loop_destroy(d.loop);
	return status;
}
