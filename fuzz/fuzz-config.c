/* fuzz-config: the table-driven INI loader (wf_config_load_string) on
 * arbitrary text, with a key table that has every key type (string with
 * and without length bounds, bounded and unbounded int, bool, double,
 * duration, size, enum) in two sections; and the value parsers it exports
 * (wf_config_parse_bool/duration/size) on the same text. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include "fuzz.h"
#include "wf/config.h"

struct cfg {
	char *host;
	int64_t port;
	bool tls;
	int64_t keepalive_ms;
	double ratio;
	int64_t max_size;
	int mode;
	char *name;
	char *label;
	int64_t offset;
	int64_t window_ms;
	double scale;
};

static const char *const modes[] = { "fast", "safe", "paranoid", NULL };

static const struct wf_config_key T[] = {
	{ "mqtt", "host", WF_CONFIG_STRING, offsetof(struct cfg, host), 0, 0, "127.0.0.1",
	  "Broker host.", NULL },
	{ "mqtt", "port", WF_CONFIG_INT, offsetof(struct cfg, port), 1, 65535, "1883", "Port.",
	  NULL },
	{ "mqtt", "tls", WF_CONFIG_BOOL, offsetof(struct cfg, tls), 0, 0, "false", "TLS.", NULL },
	{ "mqtt", "keepalive", WF_CONFIG_DURATION, offsetof(struct cfg, keepalive_ms), 1000,
	  3600000, "30s", "Keepalive.", NULL },
	{ "engine", "ratio", WF_CONFIG_DOUBLE, offsetof(struct cfg, ratio), 0, 1, "0.5", "Ratio.",
	  NULL },
	{ "engine", "max_size", WF_CONFIG_SIZE, offsetof(struct cfg, max_size), 1024, 1 << 30,
	  "64K", "Largest.", NULL },
	{ "engine", "mode", WF_CONFIG_ENUM, offsetof(struct cfg, mode), 0, 0, "safe", "Mode.",
	  modes },
	{ "engine", "name", WF_CONFIG_STRING, offsetof(struct cfg, name), 0, 0, NULL, "Name.",
	  NULL },
	{ "engine", "label", WF_CONFIG_STRING, offsetof(struct cfg, label), 1, 16, "main",
	  "Label.", NULL },
	{ "engine", "offset", WF_CONFIG_INT, offsetof(struct cfg, offset), 0, 0, "-5", "Offset.",
	  NULL },
	{ "engine", "window", WF_CONFIG_DURATION, offsetof(struct cfg, window_ms), 0, 0, "1h",
	  "Window.", NULL },
	{ "engine", "scale", WF_CONFIG_DOUBLE, offsetof(struct cfg, scale), 0, 0, "1", "Scale.",
	  NULL },
};
#define N (sizeof T / sizeof T[0])

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[256];
	(void)argc;
	(void)argv;
	if (wf_config_table_check(T, N, err, sizeof err) < 0)
		fuzz_die("bad key table: %s", err);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	char err[512];
	struct cfg c;
	bool b;
	int64_t v;

	memset(&c, 0x5a, sizeof c); /* untouched on failure: nothing to free */
	int r = wf_config_load_string("fuzz.conf", text, T, N, &c, err, sizeof err);
	if (r == 0) {
		if (c.label && (strlen(c.label) < 1 || strlen(c.label) > 16))
			fuzz_die("label out of its bounds: %zu bytes", strlen(c.label));
		if (c.port < 1 || c.port > 65535)
			fuzz_die("port out of its bounds: %lld", (long long)c.port);
		if (c.mode < 0 || c.mode > 2)
			fuzz_die("enum index out of range: %d", c.mode);
		wf_config_free(T, N, &c);
	}
	(void)wf_config_parse_bool(text, &b);
	(void)wf_config_parse_duration(text, &v);
	(void)wf_config_parse_size(text, &v);
	free(text);
	return 0;
}
