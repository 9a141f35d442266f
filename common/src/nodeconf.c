/* nodeconf: the shared [service] and [mqtt] configuration (wf/nodeconf.h). */
#include "wf/nodeconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define OFF(f) offsetof(struct wf_node_config, f)

static const struct wf_config_key keys[WF_NODECONF_NKEYS] = {
	{ "service", "id", WF_CONFIG_STRING, OFF(id), 1, 64, NULL,
	  "Service instance id ([A-Za-z0-9._-], at most 64): the MQTT client id, the\n"
	  "producer id of its outbox, and its state topic wf/v1/state/<id>.", NULL },
	{ "service", "state_dir", WF_CONFIG_STRING, OFF(state_dir), 1, 0, NULL,
	  "Directory of the service's LMDB store (outbox, dedupe and its own state).\n"
	  "Under systemd: StateDirectory=, i.e. /var/lib/warnfuse/<service>.", NULL },
	{ "service", "regions", WF_CONFIG_STRING, OFF(regions), 1, 0, NULL,
	  "The administrative division table (CSV, data/regions.csv of the source tree);\n"
	  "every region code in the service's input must be in it.", NULL },
	{ "service", "heartbeat", WF_CONFIG_DURATION, OFF(heartbeat_ms), 1000, 3600000, "10s",
	  "Interval of the retained ONLINE heartbeat on wf/v1/state/<id>.", NULL },
	{ "service", "resend", WF_CONFIG_DURATION, OFF(resend_ms), 100, 3600000, "5s",
	  "Unacknowledged outbox entries are published again after this long.", NULL },
	{ "service", "map_size", WF_CONFIG_SIZE, OFF(map_size), 65536, INT64_C(1) << 40, "16M",
	  "Initial size of the LMDB map; it doubles when full (up to 4 GiB), so this\n"
	  "only saves the first growths on a busy store.", NULL },
	{ "mqtt", "host", WF_CONFIG_STRING, OFF(host), 1, 0, "127.0.0.1",
	  "Broker host name or address.", NULL },
	{ "mqtt", "port", WF_CONFIG_INT, OFF(port), 1, 65535, "1883", "Broker TCP port.", NULL },
	{ "mqtt", "username", WF_CONFIG_STRING, OFF(username), 1, 0, NULL,
	  "User name for the broker (unset: anonymous, loopback development only).", NULL },
	{ "mqtt", "password_file", WF_CONFIG_STRING, OFF(password_file), 1, 0, NULL,
	  "File whose first line is the password (mode 0600 or 0640; never world-readable).",
	  NULL },
	{ "mqtt", "cafile", WF_CONFIG_STRING, OFF(cafile), 1, 0, NULL,
	  "CA certificate (PEM): turns TLS on. Required for any broker off loopback.", NULL },
	{ "mqtt", "certfile", WF_CONFIG_STRING, OFF(certfile), 1, 0, NULL,
	  "Client certificate (PEM) for TLS client authentication.", NULL },
	{ "mqtt", "keyfile", WF_CONFIG_STRING, OFF(keyfile), 1, 0, NULL,
	  "Client private key (PEM) for certfile.", NULL },
	{ "mqtt", "keepalive", WF_CONFIG_DURATION, OFF(keepalive_ms), 5000, 3600000, "30s",
	  "MQTT keepalive.", NULL },
	{ "mqtt", "bundle", WF_CONFIG_INT, OFF(bundle), 1, 1024, "128",
	  "Most messages one MQTT publish carries as a bundle (docs/protocol.md, \"Bundles\"): "
	  "consecutive events of one agency and county, warnings of one county, duty notices of "
	  "one station. 1 publishes every message alone, for consumers that cannot open bundles.",
	  NULL },
};

size_t wf_nodeconf_keys(size_t base, const char *default_id, const char *default_state_dir,
			const char *default_regions, struct wf_config_key *out)
{
	for (size_t i = 0; i < WF_NODECONF_NKEYS; i++) {
		out[i] = keys[i];
		out[i].offset += base;
		if (keys[i].offset == OFF(id))
			out[i].default_value = default_id;
		else if (keys[i].offset == OFF(state_dir))
			out[i].default_value = default_state_dir;
		else if (keys[i].offset == OFF(regions))
			out[i].default_value = default_regions;
	}
	return WF_NODECONF_NKEYS;
}

int wf_nodeconf_read_password(const char *path, char *buf, size_t size, char *err,
			      size_t err_size)
{
	struct stat st;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0) {
		int e = errno;
		snprintf(err, err_size, "mqtt.password_file %s: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, err_size, "mqtt.password_file %s: not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & S_IROTH) {
		close(fd);
		snprintf(err, err_size, "mqtt.password_file %s: readable by others (chmod 0600)", path);
		return -EACCES;
	}
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0) {
		int e = errno;
		snprintf(err, err_size, "mqtt.password_file %s: %s", path, strerror(e));
		return -e;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	if (buf[0] == '\0') {
		snprintf(err, err_size, "mqtt.password_file %s: empty first line", path);
		return -EINVAL;
	}
	return 0;
}

int wf_nodeconf_apply(const struct wf_node_config *c, struct wf_node_options *o,
		      char *password, size_t password_size, char *err, size_t err_size)
{
	int r;

	if (err_size > 0)
		err[0] = '\0';
	if (c->id == NULL || !wf_topic_id_valid(c->id)) {
		snprintf(err, err_size, "service.id %s: must be 1..64 of [A-Za-z0-9._-]",
			 c->id != NULL ? c->id : "(unset)");
		return -EINVAL;
	}
	if (c->state_dir == NULL) {
		snprintf(err, err_size, "service.state_dir: unset");
		return -EINVAL;
	}
	if (c->password_file != NULL && c->username == NULL) {
		snprintf(err, err_size, "mqtt.password_file needs mqtt.username");
		return -EINVAL;
	}
	if ((c->certfile != NULL) != (c->keyfile != NULL) ||
	    (c->certfile != NULL && c->cafile == NULL)) {
		snprintf(err, err_size, "mqtt.certfile and mqtt.keyfile go together, with mqtt.cafile");
		return -EINVAL;
	}
	o->service = c->id;
	o->state_dir = c->state_dir;
	o->heartbeat_ms = c->heartbeat_ms;
	o->map_size = (size_t)c->map_size;
	o->resend_ms = c->resend_ms;
	o->bus.host = c->host;
	o->bus.port = (int)c->port;
	o->bus.username = c->username;
	o->bus.password = NULL;
	o->bus.tls_cafile = c->cafile;
	o->bus.tls_certfile = c->certfile;
	o->bus.tls_keyfile = c->keyfile;
	o->bus.keepalive_s = (int)(c->keepalive_ms / 1000);
	o->bundle_max = (unsigned)c->bundle;
	if (c->password_file != NULL) {
		if (password == NULL || password_size < 2)
			return -EINVAL;
		r = wf_nodeconf_read_password(c->password_file, password, password_size, err, err_size);
		if (r < 0)
			return r;
		o->bus.password = password;
	}
	return 0;
}
