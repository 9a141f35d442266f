/* cli: see wf/cli.h */
#include "wf/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "wf/log.h"

static const char *prog(const struct wf_cli_info *info)
{
	return info && info->name ? info->name : "warnfuse";
}

static void usage(const struct wf_cli_info *info, FILE *out)
{
	fprintf(out, "Usage: %s [OPTIONS]\n", prog(info));
	if (info && info->summary)
		fprintf(out, "%s\n", info->summary);
	fprintf(out, "\n"
		"  -c, --config FILE      configuration file");
	if (info && info->default_config)
		fprintf(out, " (default: %s)", info->default_config);
	fprintf(out, "\n"
		"      --check-config     check the configuration and exit\n"
		"      --print-config     print the default configuration and exit\n"
		"      --log-level LEVEL  emerg, alert, crit, err, warning, notice, info, debug\n"
		"  -h, --help             show this help and exit\n"
		"  -V, --version          show the version and exit\n");
	if (info && info->extra_help)
		fprintf(out, "\n%s\n", info->extra_help);
	fprintf(out, "\nExit status: 0 ok, 1 runtime failure, 2 usage or configuration error,\n"
		"3 some input rejected.\n");
}

static int usage_error(const struct wf_cli_info *info, FILE *err, const char *what,
		       const char *arg)
{
	if (err)
		fprintf(err, "%s: %s '%s'\nTry '%s --help'.\n", prog(info), what, arg, prog(info));
	return -EINVAL;
}

/* Matches "--NAME VALUE", "--NAME=VALUE" or "-S VALUE" at argv[*i]. Returns
 * 1 and sets *value (advancing *i past a separate value), 0 if not this
 * option, -EINVAL if the value is missing. */
static int option_value(int argc, char **argv, int *i, const char *name, const char *shortopt,
			const char **value)
{
	const char *a = argv[*i];
	size_t nl = strlen(name);
	if (strncmp(a, name, nl) == 0 && a[nl] == '=') {
		*value = a + nl + 1;
		return 1;
	}
	if (strcmp(a, name) != 0 && !(shortopt && strcmp(a, shortopt) == 0))
		return 0;
	if (*i + 1 >= argc)
		return -EINVAL;
	*value = argv[++*i];
	return 1;
}

int wf_cli_parse(const struct wf_cli_info *info, int argc, char **argv, struct wf_cli *ret,
		 FILE *out, FILE *err)
{
	struct wf_cli c = {
		.config_path = info ? info->default_config : NULL,
		.log_level = -1,
	};
	bool options_done = false;
	int r;

	if (!ret || argc < 0 || (argc > 0 && !argv))
		return -EINVAL;
	c.args = calloc((size_t)argc + 1, sizeof *c.args);
	if (!c.args)
		return -ENOMEM;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = NULL;
		if (!a)
			break;
		if (options_done || a[0] != '-' || strcmp(a, "-") == 0) {
			c.args[c.nargs++] = argv[i];
			continue;
		}
		if (strcmp(a, "--") == 0) {
			options_done = true;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			if (out)
				usage(info, out);
			free(c.args);
			return 1;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			if (out)
				fprintf(out, "%s %s\n", prog(info),
					info && info->version ? info->version : "");
			free(c.args);
			return 1;
		} else if (strcmp(a, "--check-config") == 0) {
			c.check_config = true;
		} else if (strcmp(a, "--print-config") == 0) {
			c.print_config = true;
		} else if ((r = option_value(argc, argv, &i, "--config", "-c", &v)) != 0) {
			if (r < 0 || !*v) {
				free(c.args);
				return usage_error(info, err, "missing file name after", a);
			}
			c.config_path = v;
			c.config_explicit = true;
		} else if ((r = option_value(argc, argv, &i, "--log-level", NULL, &v)) != 0) {
			if (r < 0) {
				free(c.args);
				return usage_error(info, err, "missing level after", a);
			}
			if (wf_log_level_from_string(v, &c.log_level) < 0) {
				free(c.args);
				return usage_error(info, err, "invalid log level", v);
			}
		} else {
			free(c.args);
			return usage_error(info, err, "unknown option", a);
		}
	}
	*ret = c;
	return 0;
}

void wf_cli_free(struct wf_cli *cli)
{
	if (!cli)
		return;
	free(cli->args);
	cli->args = NULL;
	cli->nargs = 0;
}

int wf_cli_load_config(const struct wf_cli_info *info, const struct wf_cli *cli,
		       const struct wf_config_key *table, size_t n, void *target,
		       FILE *out, FILE *err)
{
	char msg[1024];
	int r;

	if (!cli)
		return WF_EXIT_FAILURE;
	if (cli->print_config) {
		r = wf_config_print_defaults(out, table, n);
		return r < 0 ? WF_EXIT_FAILURE : WF_EXIT_OK;
	}
	const char *path = cli->config_path;
	if (path) {
		r = wf_config_load(path, table, n, target, msg, sizeof msg);
		if (r == -ENOENT && !cli->config_explicit) {
			path = NULL;
		} else if (r < 0) {
			if (err)
				fprintf(err, "%s: %s\n", prog(info), msg);
			return WF_EXIT_USAGE;
		}
	}
	if (!path) {
		r = wf_config_defaults(table, n, target, msg, sizeof msg);
		if (r < 0) {
			if (err)
				fprintf(err, "%s: %s\n", prog(info), msg);
			return WF_EXIT_FAILURE;
		}
	}
	if (cli->check_config) {
		if (out)
			fprintf(out, "%s: OK\n", path ? path : "built-in defaults");
		return WF_EXIT_OK;
	}
	return WF_CLI_RUN;
}
