/* wf-runtime-probe: the smallest service on the runtime skeleton, for
 * tests/integration/test-runtime.c. It consumes events and applies each
 * by storing its id; [probe] reject_id names an event id it rejects. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <ev.h>

#include "runtime.h"
#include "wf/store.h"

struct probe_config {
	char *reject_id;
	char *input;
	bool linger;
	struct wf_node_config node;
};

static const struct wf_config_key keys[] = {
	{ "probe", "reject_id", WF_CONFIG_STRING, offsetof(struct probe_config, reject_id), 1, 0,
	  NULL, "An event id to reject permanently.", NULL },
	{ "probe", "input", WF_CONFIG_STRING, offsetof(struct probe_config, input), 1, 0,
	  "wf/v1/event/#", "Input filter.", NULL },
	{ "probe", "linger", WF_CONFIG_BOOL, offsetof(struct probe_config, linger), 0, 0, "false",
	  "Arm a one-hour timer when stopping (a service watcher left armed after its stop "
	  "callback, as wf-dispatch's deadline timer can be).", NULL },
};

struct probe {
	struct wf_runtime *rt;
	unsigned dbi;
	char reject[129];
	bool linger;
	ev_timer linger_timer;
};

static const char *input_list[1];

static const char *const *inputs(const void *config, size_t *n)
{
	input_list[0] = ((const struct probe_config *)config)->input;
	*n = 1;
	return input_list;
}

static int start(struct wf_runtime *rt, const void *config, void **ret)
{
	const struct probe_config *c = config;
	struct probe *p = calloc(1, sizeof *p);

	if (p == NULL)
		return -1;
	p->rt = rt;
	if (c->reject_id != NULL)
		strncpy(p->reject, c->reject_id, sizeof p->reject - 1);
	p->linger = c->linger;
	int r = wf_store_dbi(wf_node_store(wf_runtime_node(rt)), "applied", 0, &p->dbi);
	if (r < 0) {
		free(p);
		return r;
	}
	*ret = p;
	return 0;
}

static int reload(struct wf_runtime *rt, void *state, const void *config, char *msg, size_t len)
{
	struct probe *p = state;
	const struct probe_config *c = config;

	memset(p->reject, 0, sizeof p->reject);
	if (c->reject_id != NULL)
		strncpy(p->reject, c->reject_id, sizeof p->reject - 1);
	return 0;
}

static int on_event(void *ud, struct wf_txn *t, const Wf__V1__Event *ev,
		    const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct probe *p = ud;

	if (p->reject[0] != '\0' && strcmp(ev->id, p->reject) == 0) {
		why->reason = WF_REASON_BAD_ID;
		strcpy(why->detail, "rejected by probe config");
		return WF_NODE_REJECT;
	}
	return wf_store_put(t, p->dbi, ev->id, strlen(ev->id), "1", 1, 0);
}

static void linger_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

static void stop(struct wf_runtime *rt, void *state)
{
	struct probe *p = state;
	if (!p->linger)
		return;
	ev_timer_init(&p->linger_timer, linger_cb, 3600., 0.);
	ev_timer_start(wf_runtime_loop(rt), &p->linger_timer);
}

static void destroy(void *state)
{
	free(state);
}

int main(int argc, char **argv)
{
	static const struct wf_runtime_spec spec = {
		.name = "wf-runtime-probe",
		.kind = "fusion",
		.summary = "test service on the runtime skeleton",
		.default_id = "wf-probe-1",
		.default_state_dir = "/nonexistent/probe",
		.keys = keys,
		.nkeys = sizeof keys / sizeof keys[0],
		.config_size = sizeof(struct probe_config),
		.node_offset = offsetof(struct probe_config, node),
		.inputs = inputs,
		.start = start,
		.reload = reload,
		.stop = stop,
		.destroy = destroy,
		.on_event = on_event,
	};
	return wf_runtime_main(argc, argv, &spec);
}
