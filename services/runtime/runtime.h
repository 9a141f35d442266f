/* runtime: the daemon skeleton every warnfuse service runs in.
 *
 * wf_runtime_main() does, in order: the shared command line (wf/cli.h:
 * --config, --check-config, --print-config, --log-level, --help,
 * --version); the config file (the service's keys plus the shared
 * [service]/[mqtt] sections of wf/nodeconf.h); the region table; a libev
 * loop with signals and sd_notify (wf/daemon.h); the wf_node (wf/node.h)
 * with the service's inputs and callbacks; spec->start; READY=1 once the
 * store is open; then the loop until SIGTERM/SIGINT, when it applies what
 * it has, publishes OFFLINE, disconnects and exits 0. SIGHUP reloads the
 * config (a bad file keeps the old one) and calls spec->reload. Node
 * notices (connects, rejections, refusals) are logged here, rate-limited.
 *
 * Services give one struct wf_runtime_spec and keep their own logic in
 * their callbacks; the skeleton logs, common/ does not. */
#ifndef WF_RUNTIME_H
#define WF_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>

#include "wf/config.h"
#include "wf/node.h"
#include "wf/nodeconf.h"
#include "wf/region.h"

struct ev_loop;
struct wf_runtime;

struct wf_runtime_spec {
	const char *name;             /* "wf-fusion": messages, --help */
	const char *kind;             /* ServiceState.kind: "fusion" */
	Wf__V1__Agency agency;        /* adapters: their agency */
	const char *summary;          /* one line for --help */
	const char *extra_help;       /* more --help text, or NULL */
	const char *default_config;   /* e.g. "/etc/warnfuse/fusion.conf" */
	const char *default_id;       /* e.g. "wf-fusion-1" */
	const char *default_state_dir; /* e.g. "/var/lib/warnfuse/fusion" */
	/* The service's config: KEYS (NKEYS) into a struct of CONFIG_SIZE
	 * bytes that embeds a struct wf_node_config at NODE_OFFSET. */
	const struct wf_config_key *keys;
	size_t nkeys;
	size_t config_size;
	size_t node_offset;
	/* MQTT input filters for the loaded config (borrowed until the next
	 * reload); NULL: none (a pure producer). */
	const char *const *(*inputs)(const void *config, size_t *ret_n);
	/* Checks what the config points at (a rule file, a routing file...)
	 * after it loaded, for --check-config and before start. REGIONS may be
	 * NULL. Returns 0, or a negative errno with "path:line: message" in ERR
	 * (exit 2). May be NULL. */
	int (*validate)(const void *config, const struct wf_region_table *regions, char *err,
			size_t errlen);
	/* Adjusts the node options from the loaded config (e.g. ordered
	 * inputs) before the node is made. Returns 0 or a negative errno (exit
	 * 2). May be NULL. */
	int (*node_options)(const void *config, struct wf_node_options *o);
	/* Called after the node exists, before it starts: set up the service
	 * (open its databases in wf_node_store(), watch its spool, ...).
	 * Returns 0 and *ret_state (the callbacks' UD), or a negative errno
	 * after logging why (exit 1). */
	int (*start)(struct wf_runtime *rt, const void *config, void **ret_state);
	/* SIGHUP after the config file loaded fine: take the new config (the
	 * old one is freed after this returns 0). Return a negative errno to
	 * refuse it (the old one stays), with MSG set. NULL: accepted. */
	int (*reload)(struct wf_runtime *rt, void *state, const void *new_config, char *msg,
		      size_t msglen);
	/* Before the node stops (SIGTERM): stop taking input. May be NULL. */
	void (*stop)(struct wf_runtime *rt, void *state);
	/* Frees the state, after the node is gone. May be NULL. */
	void (*destroy)(void *state);
	/* The node's input callbacks (UD = the state from start). on_notice is
	 * the runtime's own (it logs). */
	int (*on_event)(void *ud, struct wf_txn *t, const Wf__V1__Event *ev,
			const struct wf_node_msg *m, struct wf_codec_error *why);
	int (*on_warning)(void *ud, struct wf_txn *t, const Wf__V1__Warning *w,
			  const struct wf_node_msg *m, struct wf_codec_error *why);
	void (*on_batch_begin)(void *ud);
	void (*on_batch_done)(void *ud, bool committed);
	void (*on_state)(void *ud, const Wf__V1__ServiceState *st, bool retained);
	/* Control messages (approvals, duty acks, ...): see wf/node.h. NULL:
	 * the service takes none. */
	int (*on_control)(void *ud, struct wf_txn *t, enum wf_topic_kind kind,
			  const ProtobufCMessage *msg, const struct wf_node_msg *m,
			  struct wf_codec_error *why);
};

/* The whole program. Returns the exit status (wf/cli.h WF_EXIT_*). */
int wf_runtime_main(int argc, char **argv, const struct wf_runtime_spec *spec);

struct ev_loop *wf_runtime_loop(struct wf_runtime *rt);
struct wf_node *wf_runtime_node(struct wf_runtime *rt);
const struct wf_region_table *wf_runtime_regions(struct wf_runtime *rt);
/* The service's clock (the node's too): the system clock, or, when the
 * environment has WF_NOW=TIME (RFC 3339), a clock that started at TIME and
 * runs on (rehearsals of a past scenario, tests). */
struct wf_clock wf_runtime_clock(struct wf_runtime *rt);
/* Positional command-line arguments (after the options). */
int wf_runtime_nargs(const struct wf_runtime *rt);
char *const *wf_runtime_args(const struct wf_runtime *rt);
/* Ends the loop as SIGTERM would (e.g. a --once run that is done). */
void wf_runtime_quit(struct wf_runtime *rt, int exit_status);

#endif
