/* adapter-int: private helpers of the adapter skeleton (not for agencies). */
#ifndef WF_ADAPTER_INT_H
#define WF_ADAPTER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "adapter.h"
#include "wf/nodeconf.h"

/* Reads all of FD (at most MAX bytes) into a malloc'd *ret_buf (NUL
 * appended, not counted). -EFBIG when larger than MAX, -ENOMEM, -errno. */
int adapter_read_fd(int fd, size_t max, uint8_t **ret_buf, size_t *ret_len);

/* Reads PATH ("-" is stdin) as above; a non-regular file is -EINVAL. */
int adapter_read_path(const char *path, size_t max, uint8_t **ret_buf, size_t *ret_len);

/* SHA-256 of BUF. Returns 0 or -EIO. */
int adapter_sha256(const uint8_t *buf, size_t len, uint8_t out[32]);

/* The shared sections of an agency's config file: [adapter] and the
 * [service]/[mqtt] sections every daemon has (wf/nodeconf.h). */
struct adapter_conf {
	char *spool;      /* [adapter] spool: spool directory */
	size_t max_file;  /* [adapter] max_file_size: bytes */
	int64_t history_ms; /* [adapter] history: done/ files this recent are re-read at start */
	/* [service] id (producer id, MQTT client id), state_dir (LMDB of the
	 * outbox), regions (region table), heartbeat, resend; [mqtt] ... */
	struct wf_node_config node;
	/* private: the key table of node (its defaults point into the strings below) */
	struct wf_config_key keys[WF_NODECONF_NKEYS];
	size_t nkeys;
	char default_id[64], default_state_dir[256], default_regions[4096];
};

/* Loads [adapter], [service] and [mqtt] from PATH (NULL: defaults only),
 * ignoring the agency's sections. Returns 0 or a negative errno with
 * "path:line: message" in ERR. */
int adapter_conf_load(const char *path, const char *kind, struct adapter_conf *ret, char *err,
		      size_t err_size);
void adapter_conf_free(struct adapter_conf *c);

/* Dry run of FILES: prints JSON lines to OUT; returns the exit status. */
int adapter_dry_run(const struct wf_adapter_ops *ops, void *state,
		    const struct wf_region_table *regions, int64_t now_ms, size_t max_file,
		    char **files, int nfiles, FILE *out, FILE *err);

/* --check FILES: "FILE: OK" / "FILE: INVALID: reason"; the exit status. */
int adapter_check(const struct wf_adapter_ops *ops, void *state, int64_t now_ms,
		  size_t max_file, char **files, int nfiles, FILE *out, FILE *err);

/* The MQTT daemon (daemon.c): watches SPOOL_DIR (or reads stdin once when
 * USE_STDIN, then waits until every event is acknowledged) and publishes
 * through a wf_node. *STATE is the agency state, replaced on SIGHUP.
 * Returns the exit status. */
struct wf_clock;
int adapter_daemon_run(const struct wf_adapter_ops *ops, void **state,
		       const struct wf_region_table *regions, const struct adapter_conf *conf,
		       const char *config_path, const char *spool_dir, bool use_stdin,
		       const struct wf_clock *clock);

/* The I-th event of SINK, writable (the skeleton stamps producer and seq). */
Wf__V1__Event *adapter_sink_event_mut(struct wf_adapter_sink *sink, size_t i);

#endif
