/* runtime: the daemon skeleton (see runtime.h). */
#include "runtime.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <ev.h>

#include "wf-config.h"
#include "wf/bus.h"
#include "wf/cli.h"
#include "wf/daemon.h"
#include "wf/log.h"

#define MAX_KEYS 256u

struct wf_runtime {
	const struct wf_runtime_spec *spec;
	struct wf_cli cli;
	struct wf_cli_info info;
	struct wf_config_key keys[MAX_KEYS];
	size_t nkeys;
	void *config;
	struct wf_region_table *regions;
	struct ev_loop *loop;
	struct wf_daemon *daemon;
	struct wf_node *node;
	void *state;
	int exit_status;
	bool stopping;
	char password[256];
	struct wf_ratelimit rl_reject;
	struct wf_ratelimit rl_conn;
	int64_t clock_offset_ms;
	struct wf_clock clock;
	/* after a stop: ends the loop once the node is disconnected, even if a
	 * service watcher is still armed (e.g. a timer re-armed by a batch that
	 * the node's stop ran after spec->stop) */
	ev_timer quit_timer;
	ev_tstamp quit_since;
	ev_prepare log_flush; /* buffered info lines go out before the loop waits */
};

static void log_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	wf_log_flush();
}

static struct wf_node_config *nodecfg(struct wf_runtime *rt, void *config)
{
	return (struct wf_node_config *)(void *)((char *)config + rt->spec->node_offset);
}

static void on_notice(void *ud, enum wf_node_notice what, int code, const char *detail)
{
	struct wf_runtime *rt = ud;
	int64_t now = wf_clock_now_ms(NULL);

	switch (what) {
	case WF_NODE_CONNECTED:
		wf_log(LOG_INFO, "mqtt", "connected (%s)", detail);
		break;
	case WF_NODE_DISCONNECTED:
		wf_log_ratelimited(&rt->rl_conn, now, LOG_WARNING, "mqtt", "connection lost or refused: %s",
				   code < 0 ? strerror(-code) : wf_bus_reason_string(code));
		break;
	case WF_NODE_REJECTED:
		wf_log_ratelimited(&rt->rl_reject, now, LOG_WARNING, "input", "dead-lettered: %s",
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
		wf_log(LOG_WARNING, "input", "not applied now (%s), will be resent: %s",
		       strerror(-code), detail);
		break;
	}
}

static int load_regions(struct wf_runtime *rt, const char *path, struct wf_region_table **ret)
{
	struct wf_region_error e;
	int r;

	memset(&e, 0, sizeof e);
	if (path == NULL) {
		*ret = NULL;
		return 0;
	}
	r = wf_region_table_load(path, ret, &e);
	if (r < 0)
		wf_log(LOG_ERR, "config", "service.regions %s: %s", path, strerror(-r));
	return r;
}

static void stop_cb(struct wf_daemon *d, void *ud, int signo)
{
	struct wf_runtime *rt = ud;

	if (rt->stopping)
		return;
	wf_log(LOG_NOTICE, NULL, "signal %d: stopping", signo);
	wf_runtime_quit(rt, WF_EXIT_OK);
}

static int reload_cb(struct wf_daemon *d, void *ud, char *msg, size_t msglen)
{
	struct wf_runtime *rt = ud;
	void *tmp = calloc(1, rt->spec->config_size);
	char err[512];
	int r;

	if (tmp == NULL)
		return -ENOMEM;
	if (rt->cli.config_path == NULL) {
		free(tmp);
		snprintf(msg, msglen, "no config file to reload");
		return -ENOENT;
	}
	r = wf_config_load(rt->cli.config_path, rt->keys, rt->nkeys, tmp, err, sizeof err);
	if (r < 0) {
		snprintf(msg, msglen, "%s", err);
		wf_log(LOG_ERR, "config", "reload failed, keeping the running config: %s", err);
		free(tmp);
		return r;
	}
	if (rt->spec->reload != NULL) {
		r = rt->spec->reload(rt, rt->state, tmp, msg, msglen);
		if (r < 0) {
			wf_log(LOG_ERR, "config", "reload refused, keeping the running config: %s", msg);
			wf_config_free(rt->keys, rt->nkeys, tmp);
			free(tmp);
			return r;
		}
	}
	/* [service] and [mqtt] changes need a restart: the connection and store stay. */
	wf_config_free(rt->keys, rt->nkeys, rt->config);
	free(rt->config);
	rt->config = tmp;
	wf_log(LOG_NOTICE, "config", "reloaded %s", rt->cli.config_path);
	return 0;
}

/* Once the node's connection is closed (its DISCONNECT written, or the
 * bus gave up after its own stop timeout), or after QUIT_GRACE_S, the loop
 * ends: nothing a service still has armed can be delivered without it. */
#define QUIT_GRACE_S 5.0

static void quit_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wf_runtime *rt = w->data;
	(void)revents;
	if (wf_bus_get_state(wf_node_bus(rt->node)) == WF_BUS_STATE_IDLE ||
	    ev_now(loop) - rt->quit_since > QUIT_GRACE_S)
		ev_break(loop, EVBREAK_ALL);
}

void wf_runtime_quit(struct wf_runtime *rt, int exit_status)
{
	if (rt->stopping)
		return;
	rt->stopping = true;
	rt->exit_status = exit_status;
	wf_daemon_stopping(rt->daemon);
	if (rt->spec->stop != NULL)
		rt->spec->stop(rt, rt->state);
	wf_node_stop(rt->node);
	/* the node's watchers end within a second; then ev_run returns (the
	 * quit timer does not keep the loop alive, it only ends it) */
	rt->quit_since = ev_now(rt->loop);
	ev_timer_init(&rt->quit_timer, quit_cb, 0.05, 0.05);
	rt->quit_timer.data = rt;
	ev_timer_start(rt->loop, &rt->quit_timer);
	ev_unref(rt->loop);
}

int wf_runtime_main(int argc, char **argv, const struct wf_runtime_spec *spec)
{
	struct wf_runtime rt_storage, *rt = &rt_storage;
	struct wf_node_options no;
	struct wf_node_callbacks ncb;
	/* healthy NULL: the watchdog timer firing means the loop turns */
	struct wf_daemon_callbacks dcb = { stop_cb, reload_cb, NULL };
	char err[512];
	int r, status = WF_EXIT_FAILURE;
	size_t n_inputs = 0;
	const char *const *inputs = NULL;

	memset(rt, 0, sizeof *rt);
	rt->spec = spec;
	rt->rl_reject = (struct wf_ratelimit)WF_RATELIMIT_INIT(10000, 20);
	rt->rl_conn = (struct wf_ratelimit)WF_RATELIMIT_INIT(60000, 5);
	rt->info = (struct wf_cli_info){ spec->name, WF_VERSION, spec->summary, spec->default_config,
					 spec->extra_help };
	if (spec->nkeys + WF_NODECONF_NKEYS > MAX_KEYS)
		return WF_EXIT_FAILURE;
	memcpy(rt->keys, spec->keys, spec->nkeys * sizeof *spec->keys);
	/* WF_REGIONS (tests, the demo) replaces the installed table as the
	 * default; a config file's [service] regions wins */
	const char *env_regions = getenv("WF_REGIONS");
	rt->nkeys = spec->nkeys +
		    wf_nodeconf_keys(spec->node_offset, spec->default_id, spec->default_state_dir,
				     env_regions != NULL && *env_regions != '\0'
					     ? env_regions
					     : WF_DATADIR "/regions.csv",
				     rt->keys + spec->nkeys);

	r = wf_cli_parse(&rt->info, argc, argv, &rt->cli, stdout, stderr);
	if (r == 1)
		return WF_EXIT_OK;
	if (r < 0)
		return r == -EINVAL ? WF_EXIT_USAGE : WF_EXIT_FAILURE;
	if (rt->cli.log_level >= 0)
		wf_log_set_level(rt->cli.log_level);
	rt->config = calloc(1, spec->config_size);
	if (rt->config == NULL)
		goto out;
	/* --check-config also checks what the service's own files say (rule
	 * file, routing file: spec->validate) and the region table */
	bool check = rt->cli.check_config;
	rt->cli.check_config = false;
	r = wf_cli_load_config(&rt->info, &rt->cli, rt->keys, rt->nkeys, rt->config, stdout, stderr);
	rt->cli.check_config = check;
	if (r != WF_CLI_RUN) {
		status = r;
		goto out;
	}
	if (load_regions(rt, nodecfg(rt, rt->config)->regions, &rt->regions) < 0) {
		status = WF_EXIT_USAGE;
		goto out;
	}
	if (spec->validate != NULL &&
	    spec->validate(rt->config, rt->regions, err, sizeof err) < 0) {
		fprintf(stderr, "%s: %s\n", spec->name, err);
		status = WF_EXIT_USAGE;
		goto out;
	}
	if (check) {
		const char *path = rt->cli.config_path;
		if (path != NULL && !rt->cli.config_explicit && access(path, F_OK) < 0)
			path = NULL;
		printf("%s: OK\n", path ? path : "built-in defaults");
		status = WF_EXIT_OK;
		goto out;
	}

	rt->clock = wf_clock_system();
	{
		const char *now_env = getenv("WF_NOW");
		int64_t at;
		if (now_env != NULL && *now_env != '\0') {
			if (wf_clock_parse(now_env, &at) < 0) {
				fprintf(stderr, "%s: WF_NOW: not an RFC 3339 time: %s\n", spec->name,
					now_env);
				status = WF_EXIT_USAGE;
				goto out;
			}
			rt->clock_offset_ms = at - wf_clock_now_ms(NULL);
			rt->clock = wf_clock_shifted(&rt->clock_offset_ms);
		}
	}
	wf_node_options_init(&no);
	no.clock = &rt->clock;
	no.kind = spec->kind;
	no.agency = spec->agency;
	no.version = WF_VERSION;
	r = wf_nodeconf_apply(nodecfg(rt, rt->config), &no, rt->password, sizeof rt->password, err,
			      sizeof err);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", spec->name, err);
		status = WF_EXIT_USAGE;
		goto out;
	}
	struct wf_codec_limits lim;
	wf_codec_limits_init(&lim);
	lim.regions = rt->regions;
	no.limits = &lim;
	if (spec->inputs != NULL)
		inputs = spec->inputs(rt->config, &n_inputs);
	if (spec->node_options != NULL && spec->node_options(rt->config, &no) < 0) {
		status = WF_EXIT_USAGE;
		goto out;
	}
	no.inputs = inputs;
	no.n_inputs = n_inputs;

	rt->loop = ev_loop_new(EVFLAG_AUTO);
	if (rt->loop == NULL)
		goto out;
	r = wf_daemon_new(rt->loop, &dcb, rt, &rt->daemon);
	if (r < 0) {
		wf_log(LOG_ERR, NULL, "systemd integration: %s", strerror(-r));
		goto out;
	}
	memset(&ncb, 0, sizeof ncb);
	ncb.on_event = spec->on_event;
	ncb.on_warning = spec->on_warning;
	ncb.on_batch_begin = spec->on_batch_begin;
	ncb.on_batch_done = spec->on_batch_done;
	ncb.on_state = spec->on_state;
	ncb.on_control = spec->on_control;
	ncb.on_notice = on_notice;
	/* The node's callbacks get the service's state; on_notice needs the
	 * runtime: the runtime is the UD, and forwards. */
	r = wf_node_new(rt->loop, &no, &ncb, NULL, &rt->node);
	if (r < 0) {
		wf_log(LOG_ERR, "store", "cannot open %s: %s", no.state_dir, strerror(-r));
		goto out;
	}
	if (spec->start != NULL) {
		r = spec->start(rt, rt->config, &rt->state);
		if (r < 0)
			goto out;
	}
	wf_node_set_ud(rt->node, rt->state, rt);
	r = wf_node_start(rt->node);
	if (r < 0)
		goto out;
	wf_log(LOG_NOTICE, NULL, "%s %s started as %s (broker %s:%d, state %s)", spec->name,
	       WF_VERSION, no.service, no.bus.host, no.bus.port, no.state_dir);
	wf_daemon_ready(rt->daemon, "running");
	ev_prepare_init(&rt->log_flush, log_flush_cb);
	ev_prepare_start(rt->loop, &rt->log_flush);
	ev_unref(rt->loop); /* it never keeps the loop running */
	wf_log_set_buffered(true);
	ev_run(rt->loop, 0);
	ev_ref(rt->loop);
	ev_prepare_stop(rt->loop, &rt->log_flush);
	wf_log_set_buffered(false); /* flushes */
	if (ev_is_active(&rt->quit_timer)) {
		ev_ref(rt->loop);
		ev_timer_stop(rt->loop, &rt->quit_timer);
	}
	status = rt->exit_status;
	{
		struct wf_node_stats ns;
		wf_node_get_stats(rt->node, &ns);
		wf_log(LOG_NOTICE, NULL,
		       "stopped: %llu received, %llu applied (in %llu transactions), %llu duplicate, "
		       "%llu rejected, %llu deferred for order; %llu emitted, %llu acks received",
		       (unsigned long long)ns.received, (unsigned long long)ns.applied,
		       (unsigned long long)ns.batches,
		       (unsigned long long)ns.duplicates, (unsigned long long)ns.rejected,
		       (unsigned long long)ns.deferred, (unsigned long long)ns.emitted,
		       (unsigned long long)ns.acks_received);
	}
out:
	rt->node = wf_node_free(rt->node);
	if (spec->destroy != NULL && rt->state != NULL)
		spec->destroy(rt->state);
	wf_daemon_free(rt->daemon);
	if (rt->loop != NULL)
		ev_loop_destroy(rt->loop);
	wf_region_table_free(rt->regions);
	if (rt->config != NULL) {
		wf_config_free(rt->keys, rt->nkeys, rt->config);
		free(rt->config);
	}
	wf_cli_free(&rt->cli);
	return status;
}

struct ev_loop *wf_runtime_loop(struct wf_runtime *rt) { return rt->loop; }
struct wf_node *wf_runtime_node(struct wf_runtime *rt) { return rt->node; }
const struct wf_region_table *wf_runtime_regions(struct wf_runtime *rt) { return rt->regions; }
struct wf_clock wf_runtime_clock(struct wf_runtime *rt) { return rt->clock; }
int wf_runtime_nargs(const struct wf_runtime *rt) { return rt->cli.nargs; }
char *const *wf_runtime_args(const struct wf_runtime *rt) { return rt->cli.args; }
