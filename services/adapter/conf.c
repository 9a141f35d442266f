/* conf: the shared [adapter] section of an agency's config file (inih; the
 * other sections belong to the agency and to [service]/[mqtt]). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "adapter-int.h"
#include "wf-config.h"
#include "wf/config.h"

struct conf_parse {
	struct adapter_conf *c;
	const char *path;
	char *err;
	size_t err_size;
	int r;
	char msg[256];
};

static int set_string(char **field, const char *v)
{
	char *s = strdup(v);

	if (!s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

static int conf_handler(void *ud, const char *section, const char *name, const char *value)
{
	struct conf_parse *p = ud;
	struct adapter_conf *c = p->c;
	int64_t size;
	int r = 0;

	if (strcmp(section, "adapter") != 0)
		return 1;
	if (!name) /* section header only */
		return 1;
	if (strcmp(name, "spool") == 0)
		r = set_string(&c->spool, value);
	else if (strcmp(name, "state_dir") == 0 || strcmp(name, "producer") == 0 ||
		 strcmp(name, "regions") == 0) {
		snprintf(p->msg, sizeof p->msg, "'%s' belongs in [service] (as '%s') since 0.2",
			 name, strcmp(name, "producer") == 0 ? "id" : name);
		p->r = -EINVAL;
		return 0;
	} else if (strcmp(name, "history") == 0) {
		int64_t ms;
		if (wf_config_parse_duration(value, &ms) < 0 || ms < 0 || ms > 7 * 86400000LL) {
			snprintf(p->msg, sizeof p->msg, "history: not a duration in 0..7d");
			p->r = -EINVAL;
			return 0;
		}
		c->history_ms = ms;
	} else if (strcmp(name, "max_file_size") == 0) {
		if (wf_config_parse_size(value, &size) < 0 || size <= 0 ||
		    (uint64_t)size > WF_ADAPTER_MAX_FILE) {
			snprintf(p->msg, sizeof p->msg, "max_file_size: not a size in 1..%u",
				 WF_ADAPTER_MAX_FILE);
			p->r = -EINVAL;
			return 0;
		}
		c->max_file = (size_t)size;
	} else {
		snprintf(p->msg, sizeof p->msg, "unknown key '%s' in [adapter]", name);
		p->r = -EINVAL;
		return 0;
	}
	if (r < 0) {
		p->r = r;
		snprintf(p->msg, sizeof p->msg, "out of memory");
		return 0;
	}
	if (*value == '\0') {
		snprintf(p->msg, sizeof p->msg, "%s: empty value", name);
		p->r = -EINVAL;
		return 0;
	}
	return 1;
}

void adapter_conf_free(struct adapter_conf *c)
{
	if (!c)
		return;
	free(c->spool);
	wf_config_free(c->keys, c->nkeys, c);
	memset(c, 0, sizeof(*c));
}

int adapter_conf_load(const char *path, const char *kind, struct adapter_conf *c, char *err,
		      size_t err_size)
{
	struct conf_parse p = { .c = c, .path = path, .err = err, .err_size = err_size };
	char buf[512];
	const char *env_regions = getenv("WF_REGIONS");
	int r;

	memset(c, 0, sizeof *c);
	snprintf(c->default_id, sizeof c->default_id, "wf-%s-1", kind);
	snprintf(c->default_state_dir, sizeof c->default_state_dir, "/var/lib/warnfuse/%s", kind);
	/* WF_REGIONS (tests, the demo) replaces the default; the file wins */
	snprintf(c->default_regions, sizeof c->default_regions, "%s",
		 env_regions && *env_regions ? env_regions : WF_DATADIR "/regions.csv");
	c->nkeys = wf_nodeconf_keys(offsetof(struct adapter_conf, node), c->default_id,
				    c->default_state_dir, c->default_regions, c->keys);
	snprintf(buf, sizeof buf, "/var/spool/warnfuse/%s", kind);
	c->spool = strdup(buf);
	c->max_file = WF_ADAPTER_MAX_FILE;
	c->history_ms = 24 * 3600000LL;
	if (!c->spool) {
		snprintf(err, err_size, "out of memory");
		return -ENOMEM;
	}
	/* [service] and [mqtt]: the shared daemon keys (wf/nodeconf.h) */
	r = path ? wf_config_load_sections(path, c->keys, c->nkeys, c, err, err_size)
		 : wf_config_defaults(c->keys, c->nkeys, c, err, err_size);
	if (r < 0) {
		free(c->spool);
		memset(c, 0, sizeof *c);
		return r;
	}
	if (path) {
		FILE *f = fopen(path, "re");
		if (!f) {
			r = -errno;
			snprintf(err, err_size, "%s: %s", path, strerror(errno));
			adapter_conf_free(c);
			return r;
		}
		r = ini_parse_file(f, conf_handler, &p);
		fclose(f);
		if (p.r < 0) {
			snprintf(err, err_size, "%s:%d: %s", path, r, p.msg);
			adapter_conf_free(c);
			return p.r;
		}
		if (r != 0) {
			snprintf(err, err_size, "%s:%d: syntax error", path, r);
			adapter_conf_free(c);
			return -EINVAL;
		}
	}
	return 0;
}
