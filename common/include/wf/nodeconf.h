/* nodeconf: the configuration sections every warnfuse daemon shares,
 * [service] and [mqtt], as wf_config keys (wf/config.h), and their
 * translation into struct wf_node_options (wf/node.h).
 *
 * A service embeds a struct wf_node_config in its own config struct and
 * appends wf_nodeconf_keys(offsetof(svc_config, node), ...) to its table:
 *
 *	[service]
 *	id = wf-met-1                 ; MQTT client id, producer id, state topic
 *	state_dir = /var/lib/warnfuse/met
 *	regions = /usr/local/share/warnfuse/regions.csv
 *	heartbeat = 10s
 *	resend = 5s
 *	map_size = 16M                ; initial LMDB map (it grows by doubling)
 *	[mqtt]
 *	host = 127.0.0.1
 *	port = 1883
 *	username = wf-met-1
 *	password_file = /etc/warnfuse/secrets/wf-met-1   ; first line is the password
 *	cafile = ...  certfile = ...  keyfile = ...        ; TLS (off loopback)
 *	keepalive = 30s
 *
 * Nothing here logs. */
#ifndef WF_NODECONF_H
#define WF_NODECONF_H

#include <stddef.h>
#include <stdint.h>

#include "wf/config.h"
#include "wf/node.h"

struct wf_node_config {
	char *id;
	char *state_dir;
	char *regions;
	int64_t heartbeat_ms;
	int64_t resend_ms;
	int64_t map_size;
	char *host;
	int64_t port;
	char *username;
	char *password_file;
	char *cafile;
	char *certfile;
	char *keyfile;
	int64_t keepalive_ms;
	int64_t bundle;   /* [mqtt] bundle: wf_node_options.bundle_max */
};

/* Number of keys wf_nodeconf_keys() writes. */
#define WF_NODECONF_NKEYS 15u

/* Writes the shared keys into OUT (room for at least WF_NODECONF_NKEYS),
 * their offsets shifted by BASE (offsetof the struct wf_node_config in the
 * service's config struct). DEFAULT_ID, DEFAULT_STATE_DIR and
 * DEFAULT_REGIONS (the installed region table) are the service's defaults
 * (static strings). Returns the number written. */
size_t wf_nodeconf_keys(size_t base, const char *default_id, const char *default_state_dir,
			const char *default_regions, struct wf_config_key *out);

/* Fills the node options' service, state_dir, heartbeat, resend and bus
 * fields from C (strings borrowed from C, except the password, which is
 * read from password_file into PASSWORD (PASSWORD_SIZE bytes)). Returns 0,
 * or -EINVAL / -errno with a one-line message in ERR (e.g. the password
 * file is unreadable, empty, or readable by others). */
int wf_nodeconf_apply(const struct wf_node_config *c, struct wf_node_options *o,
		      char *password, size_t password_size, char *err, size_t err_size);

/* Reads the first line of PATH (a password file: a regular file not
 * readable by group or others) into BUF (SIZE bytes). Returns 0, or a
 * negative errno with a one-line message in ERR. For tools (wfctl) that take
 * --password-file like the services' mqtt.password_file. */
int wf_nodeconf_read_password(const char *path, char *buf, size_t size, char *err,
			      size_t err_size);

#endif
