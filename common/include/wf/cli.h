/* cli: the command line every warnfuse service shares.
 *
 *	-c, --config FILE     configuration file
 *	    --check-config    load the configuration, report the first error, exit
 *	    --print-config    print the defaults as a commented config file, exit
 *	    --log-level LEVEL emerg..debug (see wf_log_level_from_string)
 *	-h, --help            usage, exit 0
 *	-V, --version         version, exit 0
 *	--                    end of options
 * Anything else starting with '-' is a usage error; other words are
 * positional arguments, left for the service.
 *
 * Output goes to the FILE*s the caller passes (stdout/stderr in services,
 * memory streams in tests); nothing here logs. */
#ifndef WF_CLI_H
#define WF_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "wf/config.h"

/* Exit codes of every warnfuse program (docs/service-runtime.md). */
#define WF_EXIT_OK      0 /* success */
#define WF_EXIT_FAILURE 1 /* runtime failure */
#define WF_EXIT_USAGE   2 /* bad command line or configuration */
#define WF_EXIT_PARTIAL 3 /* some input rejected (agency adapters) */

/* wf_cli_load_config's "keep going" result. */
#define WF_CLI_RUN (-1)

struct wf_cli_info {
	const char *name;           /* program name in messages, e.g. "wf-fusion" */
	const char *version;        /* e.g. WF_VERSION */
	const char *summary;        /* one line for --help, or NULL */
	const char *default_config; /* used when --config is not given, or NULL */
	const char *extra_help;     /* more --help text (service options), or NULL */
};

struct wf_cli {
	const char *config_path; /* from argv or info->default_config, may be NULL */
	bool config_explicit;    /* --config was given */
	bool check_config;
	bool print_config;
	int log_level;           /* -1 when --log-level was not given */
	int nargs;               /* positional arguments, borrowed from argv */
	char **args;             /* nargs entries, NULL-terminated copy of the pointers */
};

/* Parses ARGV (ARGC entries, argv[0] is skipped). Returns:
 *   0        run the service; *ret is filled (free with wf_cli_free)
 *   1        --help or --version was printed to OUT; exit WF_EXIT_OK
 *   -EINVAL  a usage error was printed to ERR; exit WF_EXIT_USAGE
 *   -ENOMEM
 * Strings in *ret are borrowed from ARGV and INFO. On a non-zero return
 * *ret is untouched. */
int wf_cli_parse(const struct wf_cli_info *info, int argc, char **argv, struct wf_cli *ret,
		 FILE *out, FILE *err);

/* Frees what wf_cli_parse allocated in CLI (not CLI itself). Accepts NULL. */
void wf_cli_free(struct wf_cli *cli);

/* Acts on the configuration options:
 *   --print-config: prints the defaults to OUT, returns WF_EXIT_OK;
 *   otherwise loads cli->config_path (or only the defaults when there is
 *   no path, or when the path is the default one and does not exist) into
 *   TARGET with wf_config_load. A load error is printed to ERR as
 *   "<name>: <path:line: message>" and WF_EXIT_USAGE is returned (TARGET
 *   untouched). With --check-config, success prints "<path>: OK" to OUT
 *   and returns WF_EXIT_OK (TARGET is loaded; the caller frees it).
 *   Otherwise returns WF_CLI_RUN with TARGET loaded.
 * The caller exits with the returned code unless it is WF_CLI_RUN. */
int wf_cli_load_config(const struct wf_cli_info *info, const struct wf_cli *cli,
		       const struct wf_config_key *table, size_t n, void *target,
		       FILE *out, FILE *err);

#endif
