/* wf-fusion: the fusion engine's command line.
 *
 *   wf-fusion [--config FILE] ...    the daemon (daemon.c, on the service runtime)
 *   wf-fusion --replay FILE --rules FILE [--regions FILE] [--owned P,...] [--drain]
 *   wf-fusion --check-rules FILE
 *
 * Replay exit codes: 0 success; 1 replay finished but some lines were
 * rejected; 2 usage error, bad rule file or region table; 3 runtime error.
 * The daemon's are the runtime's (wf/cli.h). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "engine.h"
#include "replay.h"
#include "wf/region.h"

enum { EXIT_REJECTS = 1, EXIT_USAGE = 2, EXIT_RUNTIME = 3 };

static void usage(FILE *f)
{
	fputs("Usage: wf-fusion --replay FILE --rules FILE [--regions FILE] [--owned PREFIX,...]\n"
	      "                 [--drain] [--store DIR] [--batch N] [--quiet]\n"
	      "       wf-fusion --check-rules FILE\n"
	      "       wf-fusion [--config FILE]          (the daemon: wf-fusion --help)\n"
	      "\n"
	      "Replay mode reads Events as JSON lines (.proto field names, enums by name),\n"
	      "runs the fusion engine on virtual time taken from the events and prints every\n"
	      "warning version as one JSON line on stdout; a summary goes to stderr.\n"
	      "\n"
	      "  --replay FILE     events, one JSON object per line ('-' = stdin)\n"
	      "  --rules FILE      rule file (docs/fusion.md; e.g. deploy/fusion-rules.conf)\n"
	      "  --regions FILE    region table (data/regions.csv); unknown regions are rejected\n"
	      "  --owned LIST      comma-separated region prefixes this instance owns\n"
	      "  --drain           after the last event, run time on until every warning ended\n"
	      "  --store DIR       keep the engine state in DIR (default: a temporary store)\n"
	      "  --batch N         events per LMDB commit (default 10000)\n"
	      "  --quiet           do not print warnings (benchmarks)\n"
	      "  --check-rules F   validate a rule file and exit\n"
	      "  --help            this text\n"
	      "\n"
	      "Exit status: 0 success, 1 some input lines rejected, 2 usage or configuration\n"
	      "error, 3 runtime error.\n", f);
}

static bool offline_mode(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			break;
		if (strncmp(argv[i], "--replay", 8) == 0 || strncmp(argv[i], "--check-rules", 13) == 0)
			return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	if (!offline_mode(argc, argv))
		return wf_fusion_daemon_main(argc, argv);
	static const struct option opts[] = {
		{ "replay", required_argument, NULL, 'r' },
		{ "rules", required_argument, NULL, 'R' },
		{ "regions", required_argument, NULL, 'g' },
		{ "owned", required_argument, NULL, 'o' },
		{ "drain", no_argument, NULL, 'd' },
		{ "store", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "check-rules", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *replay = NULL, *rules_path = NULL, *regions_path = NULL, *owned = NULL;
	const char *store = NULL, *check = NULL;
	bool drain = false, quiet = false;
	unsigned long batch = 0;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'r': replay = optarg; break;
		case 'R': rules_path = optarg; break;
		case 'g': regions_path = optarg; break;
		case 'o': owned = optarg; break;
		case 'd': drain = true; break;
		case 's': store = optarg; break;
		case 'q': quiet = true; break;
		case 'c': check = optarg; break;
		case 'b': {
			char *end = NULL;
			batch = strtoul(optarg, &end, 10);
			if (!*optarg || *end || batch == 0 || batch > 10000000) {
				fprintf(stderr, "wf-fusion: --batch: bad number '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "wf-fusion: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	char err[512];
	if (check) {
		struct wf_fusion_rules *r = NULL;
		if (wf_fusion_rules_load(check, &r, err, sizeof err) < 0) {
			fprintf(stderr, "%s\n", err);
			return EXIT_USAGE;
		}
		printf("%s: %zu rules OK\n", check, wf_fusion_rules_count(r));
		wf_fusion_rules_free(r);
		return 0;
	}
	if (!replay || !rules_path) {
		fprintf(stderr, "wf-fusion: --replay FILE and --rules FILE are required "
				"(or --check-rules); see --replay --help\n");
		return EXIT_USAGE;
	}
	struct wf_fusion_rules *rules = NULL;
	if (wf_fusion_rules_load(rules_path, &rules, err, sizeof err) < 0) {
		fprintf(stderr, "%s\n", err);
		return EXIT_USAGE;
	}
	struct wf_region_table *regions = NULL;
	if (regions_path) {
		struct wf_region_error re = { 0 };
		int r = wf_region_table_load(regions_path, &regions, &re);
		if (r < 0) {
			fprintf(stderr, "%s:%u: %s\n", regions_path, re.line,
				re.message[0] ? re.message : strerror(-r));
			wf_fusion_rules_free(rules);
			return EXIT_USAGE;
		}
	}
	char *owned_copy = owned ? strdup(owned) : NULL;
	const char *prefixes[256];
	size_t n_owned = 0;
	if (owned_copy) {
		char *save = NULL;
		for (char *p = strtok_r(owned_copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
			if (n_owned == 256) {
				fprintf(stderr, "wf-fusion: --owned: more than 256 prefixes\n");
				return EXIT_USAGE;
			}
			size_t l = strlen(p);
			if (l < 2 || l > 12 || strspn(p, "0123456789") != l) {
				fprintf(stderr, "wf-fusion: --owned: bad prefix '%s' (2..12 digits)\n", p);
				return EXIT_USAGE;
			}
			prefixes[n_owned++] = p;
		}
	}
	FILE *in = strcmp(replay, "-") == 0 ? stdin : fopen(replay, "r");
	if (!in) {
		fprintf(stderr, "wf-fusion: %s: %s\n", replay, strerror(errno));
		wf_fusion_rules_free(rules);
		wf_region_table_free(regions);
		free(owned_copy);
		return EXIT_USAGE;
	}
	struct wf_fusion_replay_options o = {
		.store_dir = store, .regions = regions, .owned = prefixes, .n_owned = n_owned,
		.drain = drain, .batch = (unsigned)batch, .out = quiet ? NULL : stdout,
		.err = stderr,
	};
	struct wf_fusion_replay_stats st;
	int r = wf_fusion_replay(in, replay, rules, &o, &st, err, sizeof err);
	if (in != stdin)
		fclose(in);
	fflush(stdout);
	wf_region_table_free(regions);
	free(owned_copy);
	if (r < 0) {
		fprintf(stderr, "wf-fusion: %s\n", err);
		return EXIT_RUNTIME;
	}
	fprintf(stderr,
		"wf-fusion: replay %s: %llu lines, %llu events (%llu applied, %llu duplicate, "
		"%llu expired, %llu superseded, %llu cancels, %llu not owned), %llu rejected; "
		"%llu warning versions (%llu alert, %llu update, %llu cancel), %llu active; "
		"%.3f s, %.0f events/s\n",
		replay, (unsigned long long)st.lines, (unsigned long long)st.events,
		(unsigned long long)st.results[WF_FUSION_APPLIED],
		(unsigned long long)st.results[WF_FUSION_DUPLICATE],
		(unsigned long long)st.results[WF_FUSION_EXPIRED],
		(unsigned long long)st.results[WF_FUSION_SUPERSEDED],
		(unsigned long long)st.results[WF_FUSION_CANCEL_APPLIED],
		(unsigned long long)st.results[WF_FUSION_NOT_OWNED],
		(unsigned long long)st.rejected, (unsigned long long)st.versions,
		(unsigned long long)st.alerts, (unsigned long long)st.updates,
		(unsigned long long)st.cancels, (unsigned long long)st.active_incidents, st.seconds,
		st.seconds > 0 ? (double)st.events / st.seconds : 0.0);
	if (st.invalid_out) {
		fprintf(stderr, "wf-fusion: %llu warning versions failed validation\n",
			(unsigned long long)st.invalid_out);
		return EXIT_RUNTIME;
	}
	return st.rejected ? EXIT_REJECTS : 0;
}
