/* main: wf_adapter_main, the command line every agency adapter shares. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapter-int.h"
#include "wf-config.h"
#include "wf/cli.h"
#include "wf/clock.h"
#include "wf/codec.h"
#include "wf/log.h"
#include "wf/outbox.h"
#include "wf/region.h"
#include "wf/store.h"

enum mode { MODE_NONE, MODE_DRY_RUN, MODE_CHECK, MODE_SPOOL };

struct opts {
	const char *config;
	bool check_config;
	enum mode mode;
	const char *spool;
	bool once;
	bool use_stdin;
	bool have_now;
	int64_t now_ms;
};

static void usage(FILE *out, const struct wf_adapter_ops *ops)
{
	fprintf(out,
		"Usage: wf-%s [--config FILE] [--spool DIR] [--now TIME]   (the daemon)\n"
		"  or:  wf-%s [--config FILE] --stdin [--now TIME]\n"
		"  or:  wf-%s [--config FILE] --once [--spool DIR | --stdin]\n"
		"  or:  wf-%s [--config FILE] --dry-run FILE...\n"
		"  or:  wf-%s [--config FILE] --check FILE...\n"
		"\n"
		"The %s agency adapter: reads native feed files, grades them and publishes\n"
		"wf.v1.Event messages to MQTT through its outbox, resending each until fusion\n"
		"acknowledges it (docs/adapters.md). Without a mode option it runs as a daemon:\n"
		"it watches the spool directory, moves each file to done/ or rejected/ (with a\n"
		".reason file), publishes its ONLINE state and heartbeats, and stops cleanly on\n"
		"SIGTERM; SIGHUP reloads the thresholds.\n"
		"\n"
		"  -c, --config FILE   configuration file ([service], [mqtt], [adapter] and the\n"
		"                      agency's sections; default: built-in defaults)\n"
		"      --check-config  load the configuration (and region table), report, exit\n"
		"      --spool DIR     the spool directory (default: [adapter] spool)\n"
		"      --stdin         all of stdin is one input file; with the broker, exit once\n"
		"                      every event from it is acknowledged\n"
		"      --once          process the spool (or stdin) into the outbox without the\n"
		"                      broker, print counts as JSON, exit (the daemon sends them)\n"
		"      --dry-run       parse and grade FILE... ('-' = stdin); one JSON line per\n"
		"                      event, {\"rejected\": FILE, \"reason\": ...} per rejected file\n"
		"      --check         validate FILE... only: 'FILE: OK' or 'FILE: INVALID: reason'\n"
		"      --now TIME      the current time is TIME (RFC 3339); in the daemon the clock\n"
		"                      starts at TIME and runs on (rehearsals, tests); default:\n"
		"                      the environment's WF_NOW, as for every warnfuse daemon\n"
		"  -h, --help          this text\n"
		"  -V, --version       version\n"
		"\n"
		"Exit status: 0 all accepted, 3 some input rejected, 2 usage or configuration\n"
		"error, 1 other failure.\n",
		ops->kind, ops->kind, ops->kind, ops->kind, ops->kind, ops->kind);
	if (ops->formats_help)
		fprintf(out, "\nInput formats:\n%s\n", ops->formats_help);
}

static int parse_args(int argc, char **argv, const struct wf_adapter_ops *ops, struct opts *o)
{
	enum { OPT_CHECK_CONFIG = 256, OPT_DRY_RUN, OPT_CHECK, OPT_SPOOL, OPT_ONCE, OPT_STDIN,
	       OPT_NOW };
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "check", no_argument, NULL, OPT_CHECK },
		{ "spool", required_argument, NULL, OPT_SPOOL },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ "stdin", no_argument, NULL, OPT_STDIN },
		{ "now", required_argument, NULL, OPT_NOW },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	/* '+': stop at the first file name? No: files may be mixed with options. */
	while ((c = getopt_long(argc, argv, ":c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case OPT_CHECK_CONFIG:
			o->check_config = true;
			break;
		case OPT_DRY_RUN:
		case OPT_CHECK:
			if (o->mode != MODE_NONE) {
				fprintf(stderr, "wf-%s: --dry-run, --check and --spool exclude each other\n",
					ops->kind);
				return -EINVAL;
			}
			o->mode = c == OPT_DRY_RUN ? MODE_DRY_RUN : MODE_CHECK;
			break;
		case OPT_SPOOL:
			if (o->mode != MODE_NONE && o->mode != MODE_SPOOL) {
				fprintf(stderr, "wf-%s: --dry-run, --check and --spool exclude each other\n",
					ops->kind);
				return -EINVAL;
			}
			o->mode = MODE_SPOOL;
			o->spool = optarg;
			break;
		case OPT_ONCE:
			o->once = true;
			break;
		case OPT_STDIN:
			o->use_stdin = true;
			break;
		case OPT_NOW:
			if (wf_clock_parse(optarg, &o->now_ms) < 0) {
				fprintf(stderr, "wf-%s: --now: not an RFC 3339 time: %s\n", ops->kind,
					optarg);
				return -EINVAL;
			}
			o->have_now = true;
			break;
		case 'h':
			usage(stdout, ops);
			return 1;
		case 'V':
			printf("wf-%s %s\n", ops->kind, WF_VERSION);
			return 1;
		case ':':
			fprintf(stderr, "wf-%s: option '%s' needs an argument\n", ops->kind,
				argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(stderr, "wf-%s: unknown option '%s' (try --help)\n", ops->kind,
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if ((o->mode == MODE_DRY_RUN || o->mode == MODE_CHECK) && optind >= argc) {
		fprintf(stderr, "wf-%s: %s needs at least one FILE\n", ops->kind,
			o->mode == MODE_DRY_RUN ? "--dry-run" : "--check");
		return -EINVAL;
	}
	if (o->mode != MODE_DRY_RUN && o->mode != MODE_CHECK && optind < argc) {
		fprintf(stderr, "wf-%s: unexpected argument '%s' (try --help)\n", ops->kind,
			argv[optind]);
		return -EINVAL;
	}
	if ((o->once || o->use_stdin) && o->mode != MODE_SPOOL && o->mode != MODE_NONE) {
		fprintf(stderr, "wf-%s: --once and --stdin exclude --dry-run and --check\n",
			ops->kind);
		return -EINVAL;
	}
	if (o->mode == MODE_CHECK && !ops->check) {
		fprintf(stderr, "wf-%s: --check is not supported by this adapter\n", ops->kind);
		return -EINVAL;
	}
	if (o->mode == MODE_NONE && !o->check_config)
		o->mode = MODE_SPOOL;
	/* WF_NOW, as for every daemon (services/runtime), when --now is not given */
	const char *now_env = getenv("WF_NOW");
	if (!o->have_now && now_env && *now_env) {
		if (wf_clock_parse(now_env, &o->now_ms) < 0) {
			fprintf(stderr, "wf-%s: WF_NOW: not an RFC 3339 time: %s\n", ops->kind,
				now_env);
			return -EINVAL;
		}
		o->have_now = true;
	}
	return 0;
}

static void spool_notice(void *ud, const char *kind, const char *name, const char *detail)
{
	const char *group = ud;
	int prio = strcmp(kind, "rejected") == 0 ? 4 : strcmp(kind, "error") == 0 ? 3 : 6;

	wf_log(prio, group, "%s: %s: %s", name, kind, detail);
}

/* --once: the outbox is filled offline; the daemon publishes it later */
static int no_broker_publish(void *ud, const char *topic, const void *payload, size_t len)
{
	return -ENOTCONN;
}

static int run_spool(const struct wf_adapter_ops *ops, void *state,
		     const struct wf_region_table *regions, const struct adapter_conf *conf,
		     const struct opts *o, const struct wf_clock *clock)
{
	struct wf_store_options so = { .path = conf->node.state_dir };
	struct wf_outbox_options oo = { .publish = no_broker_publish, .clock = clock };
	struct wf_codec_limits lim;
	struct wf_store *store = NULL;
	struct wf_outbox *outbox = NULL;
	struct wf_adapter_spool sp = { 0 };
	int status = WF_EXIT_FAILURE, r;
	uint64_t pending = 0;

	wf_codec_limits_init(&lim);
	lim.regions = regions;
	r = wf_store_open(&so, &store);
	if (r < 0) {
		fprintf(stderr, "wf-%s: %s: cannot open the store: %s\n", ops->kind, conf->node.state_dir,
			strerror(-r));
		return WF_EXIT_FAILURE;
	}
	r = wf_outbox_open(store, conf->node.id, &oo, &outbox);
	if (r < 0) {
		fprintf(stderr, "wf-%s: cannot open the outbox of '%s': %s\n", ops->kind,
			conf->node.id, strerror(-r));
		goto out;
	}
	sp.ops = ops;
	sp.state = state;
	sp.store = store;
	sp.outbox = outbox;
	sp.dir = o->use_stdin ? NULL : (o->spool ? o->spool : conf->spool);
	sp.max_file = conf->max_file;
	sp.limits = &lim;
	sp.clock = clock;
	sp.notice = spool_notice;
	sp.notice_ud = (void *)ops->kind;
	r = wf_adapter_spool_init(&sp);
	if (r < 0) {
		fprintf(stderr, "wf-%s: %s: %s\n", ops->kind, sp.dir ? sp.dir : conf->node.state_dir,
			strerror(-r));
		goto out;
	}
	if (o->use_stdin) {
		uint8_t *buf = NULL;
		size_t len = 0;
		r = adapter_read_fd(STDIN_FILENO, sp.max_file, &buf, &len);
		if (r == -EFBIG) {
			sp.stats.files_rejected++;
			spool_notice((void *)ops->kind, "rejected", "-", "too large");
			r = 0;
		} else if (r == 0) {
			r = wf_adapter_spool_buffer(&sp, "-", buf, len, NULL, 0);
			free(buf);
		}
	} else {
		r = wf_adapter_spool_scan(&sp);
	}
	if (r < 0) {
		fprintf(stderr, "wf-%s: spool: %s\n", ops->kind, strerror(-r));
		goto out;
	}
	wf_outbox_pending(outbox, &pending, NULL);
	printf("{\"files_done\":%llu,\"files_duplicate\":%llu,\"files_rejected\":%llu,"
	       "\"events\":%llu,\"outbox_pending\":%llu}\n",
	       (unsigned long long)sp.stats.files_done, (unsigned long long)sp.stats.files_duplicate,
	       (unsigned long long)sp.stats.files_rejected, (unsigned long long)sp.stats.events,
	       (unsigned long long)pending);
	status = sp.stats.files_rejected ? WF_EXIT_PARTIAL : WF_EXIT_OK;
out:
	wf_outbox_close(outbox);
	wf_store_close(store);
	return status;
}

int wf_adapter_main(int argc, char **argv, const struct wf_adapter_ops *ops)
{
	struct opts o = { 0 };
	struct adapter_conf conf = { 0 };
	struct wf_region_table *regions = NULL;
	struct wf_region_error rerr;
	struct wf_clock clock;
	int64_t offset_ms = 0;
	void *state = NULL;
	char err[512] = "";
	int status, r;

	if (!ops || !ops->kind || !ops->parse || !ops->config_load)
		return WF_EXIT_FAILURE;
	r = parse_args(argc, argv, ops, &o);
	if (r != 0)
		return r > 0 ? WF_EXIT_OK : WF_EXIT_USAGE;
	r = adapter_conf_load(o.config, ops->kind, &conf, err, sizeof err);
	if (r < 0) {
		fprintf(stderr, "wf-%s: %s\n", ops->kind, err);
		return WF_EXIT_USAGE;
	}
	memset(&rerr, 0, sizeof rerr);
	r = wf_region_table_load(conf.node.regions, &regions, &rerr);
	if (r < 0) {
		fprintf(stderr, "wf-%s: %s: cannot load the region table: %s\n", ops->kind,
			conf.node.regions, strerror(-r));
		status = WF_EXIT_USAGE;
		goto out;
	}
	r = ops->config_load(o.config, regions, &state, err, sizeof err);
	if (r < 0) {
		fprintf(stderr, "wf-%s: %s\n", ops->kind, *err ? err : strerror(-r));
		status = WF_EXIT_USAGE;
		goto out;
	}
	if (o.check_config) {
		printf("%s: OK\n", o.config ? o.config : "(defaults)");
		status = WF_EXIT_OK;
		goto out;
	}
	clock = o.have_now ? wf_clock_manual(&o.now_ms) : wf_clock_system();
	switch (o.mode) {
	case MODE_DRY_RUN:
		status = adapter_dry_run(ops, state, regions, wf_clock_now_ms(&clock), conf.max_file,
					 argv + optind, argc - optind, stdout, stderr);
		break;
	case MODE_CHECK:
		status = adapter_check(ops, state, wf_clock_now_ms(&clock), conf.max_file,
				       argv + optind, argc - optind, stdout, stderr);
		break;
	default:
		if (o.once) {
			status = run_spool(ops, state, regions, &conf, &o, &clock);
			break;
		}
		/* daemon mode: a running clock (shifted to --now when given) */
		offset_ms = o.have_now ? o.now_ms - wf_clock_now_ms(NULL) : 0;
		clock = wf_clock_shifted(&offset_ms);
		status = adapter_daemon_run(ops, &state, regions, &conf, o.config,
					    o.spool ? o.spool : conf.spool, o.use_stdin, &clock);
		break;
	}
out:
	if (state && ops->config_free)
		ops->config_free(state);
	wf_region_table_free(regions);
	adapter_conf_free(&conf);
	return status;
}
