/* inject: drills (docs/wfctl.md, "inject"). Reads events from JSON lines
 * (one Event each, the format `wf-fusion --replay` reads), checks every
 * line first (path:line: reason; any error sends nothing), then puts them
 * into a durable outbox of its own in batches and waits until every one
 * is acknowledged by its consumer (fusion), printing a progress line.
 * Status EXERCISE and TEST are kept as they are; ACTUAL needs
 * --allow-actual. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ev.h>

#include "event.pb-c.h"
#include "help.h"
#include "wf/cli.h"
#include "wf/codec.h"
#include "wf/node.h"
#include "wf/pbjson.h"
#include "wf/topic.h"
#include "wfctl.h"

#define INJECT_LINE_MAX 65536u        /* bytes of one line (the contract's payload limit) */
#define INJECT_DEFAULT_MAX 100000ul
#define INJECT_HARD_MAX 1000000ul
#define INJECT_BATCH 256u             /* events per outbox transaction */
#define INJECT_ERRORS_MAX 20          /* errors printed before giving up */

struct inject {
	Wf__V1__Event **ev;
	unsigned long *line;     /* the line number of each event */
	unsigned long n, cap, max, sent;
	struct wf_node *node;
	struct ev_loop *loop;
	bool tty;
	int64_t started;
};

static int emit_batch(struct wf_txn *t, void *ud)
{
	struct inject *in = ud;
	unsigned long end = in->sent + INJECT_BATCH < in->n ? in->sent + INJECT_BATCH : in->n;
	for (unsigned long i = in->sent; i < end; i++) {
		struct wf_codec_error why = { 0 };
		int r = wf_node_emit_event(in->node, t, in->ev[i], &why);
		if (r < 0) {
			if (r == -EBADMSG)
				fprintf(stderr, "wfctl: event %lu: %s %s: %s\n", i + 1,
					wf_reason_to_string(why.reason), why.field, why.detail);
			return r;
		}
	}
	return 0;
}

static void progress(struct inject *in, bool last)
{
	int64_t pending = wf_node_pending(in->node);
	unsigned long acked = pending >= 0 && (unsigned long)pending <= in->sent
				      ? in->sent - (unsigned long)pending : 0;
	fprintf(stderr, "%sinject: %lu/%lu sent, %lu acknowledged%s", in->tty ? "\r" : "",
		in->sent, in->n, acked, in->tty && !last ? "" : "\n");
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct inject *in = t->data;
	/* top up the outbox while the consumer keeps up (-ENOBUFS: it is full) */
	while (in->sent < in->n) {
		int64_t pending = wf_node_pending(in->node);
		if (pending < 0 || pending > 4 * (int64_t)INJECT_BATCH)
			break;
		int r = wf_node_update(in->node, emit_batch, in);
		if (r == -ENOBUFS)
			break;
		if (r < 0) {
			fprintf(stderr, "wfctl: cannot queue events: %s\n", strerror(-r));
			ev_break(loop, EVBREAK_ALL);
			return;
		}
		in->sent = in->sent + INJECT_BATCH < in->n ? in->sent + INJECT_BATCH : in->n;
	}
	if (in->sent == in->n && wf_node_pending(in->node) == 0)
		ev_break(loop, EVBREAK_ALL);
}

static void progress_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct inject *in = t->data;
	if (in->tty)
		progress(in, false);
}

static void stop_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

/* Reads and checks every line; errors as PATH:LINE: reason. */
static int load(struct inject *in, const char *path, FILE *f, bool allow_actual, bool rebase,
		int64_t now, const struct wf_codec_limits *lim)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	unsigned long lineno = 0;
	int errors = 0;
	int64_t latest = 0;
	bool first = true;

	while ((len = getline(&line, &cap, f)) >= 0) {
		lineno++;
		size_t n = (size_t)len;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		size_t sp = strspn(line, " \t");
		if (sp >= n || line[sp] == '#')
			continue;
		char err[256];
		if (n > INJECT_LINE_MAX) {
			fprintf(stderr, "%s:%lu: line longer than %u bytes\n", path, lineno,
				INJECT_LINE_MAX);
			goto bad;
		}
		if (in->n >= in->max) {
			fprintf(stderr, "%s:%lu: more than --max %lu events\n", path, lineno, in->max);
			errors = INJECT_ERRORS_MAX;
			goto bad;
		}
		ProtobufCMessage *m = NULL;
		if (wf_pbjson_parse(&wf__v1__event__descriptor, line, n, &m, err, sizeof err) < 0) {
			fprintf(stderr, "%s:%lu: %s\n", path, lineno, err);
			goto bad;
		}
		Wf__V1__Event *ev = (Wf__V1__Event *)m;
		if (ev->status == WF__V1__STATUS__STATUS_ACTUAL && !allow_actual) {
			fprintf(stderr, "%s:%lu: status STATUS_ACTUAL could reach the public: refused "
					"without --allow-actual (drills use STATUS_EXERCISE)\n",
				path, lineno);
			protobuf_c_message_free_unpacked(m, NULL);
			goto bad;
		}
		if (first || ev->observed_ms > latest)
			latest = ev->observed_ms;
		first = false;
		if (in->n == in->cap) {
			unsigned long nc = in->cap ? in->cap * 2 : 256;
			void *p = realloc(in->ev, nc * sizeof *in->ev);
			if (p)
				in->ev = p;
			void *q = p ? realloc(in->line, nc * sizeof *in->line) : NULL;
			if (q)
				in->line = q;
			if (!p || !q) {
				protobuf_c_message_free_unpacked(m, NULL);
				free(line);
				return -ENOMEM;
			}
			in->cap = nc;
		}
		in->line[in->n] = lineno;
		in->ev[in->n++] = ev;
		continue;
bad:
		if (++errors >= INJECT_ERRORS_MAX)
			break;
	}
	free(line);
	if (ferror(f)) {
		fprintf(stderr, "%s: read error\n", path);
		return -EIO;
	}
	/* --rebase: the latest event is observed now, the others as long
	 * before as in the file */
	int64_t shift = rebase && !first ? now - latest : 0;
	for (unsigned long i = 0; i < in->n && errors < INJECT_ERRORS_MAX; i++) {
		Wf__V1__Event *ev = in->ev[i];
		ev->observed_ms += shift;
		if (ev->issued_ms)
			ev->issued_ms += shift;
		if (ev->expires_ms)
			ev->expires_ms += shift;
		/* what the consumer will check, the producer stamp aside */
		struct wf_codec_error why;
		char *producer = ev->producer;
		uint64_t seq = ev->seq;
		ev->producer = (char *)"wfctl-inject";
		ev->seq = 1;
		int r = wf_codec_event_validate(ev, lim, now, &why);
		ev->producer = producer;
		ev->seq = seq;
		if (r < 0) {
			fprintf(stderr, "%s:%lu: rejected (%s): %s: %s\n", path, in->line[i],
				wf_reason_to_string(why.reason), why.field, why.detail);
			errors++;
		}
	}
	return errors ? -EINVAL : 0;
}

int inject_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },      { "port", required_argument, NULL, 'p' },
		{ "username", required_argument, NULL, 'u' },  { "password-file", required_argument, NULL, 'P' },
		{ "state", required_argument, NULL, 's' },     { "timeout", required_argument, NULL, 't' },
		{ "max", required_argument, NULL, 'm' },       { "rebase", no_argument, NULL, 'b' },
		{ "allow-actual", no_argument, NULL, 'A' },    { "help", no_argument, NULL, 'h' },
		WFCTL_TLS_OPTIONS, { 0 },
	};
	struct inject in = { .max = INJECT_DEFAULT_MAX };
	struct creds cr = { 0 };
	const char *host = "127.0.0.1", *state = NULL;
	long port = 1883, timeout_s = 60;
	bool rebase = false, allow_actual = false;
	char service[80], dir[1024];
	int c;

	optind = 2;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		char *end = NULL;
		int r;
		switch (c) {
		case 's': state = optarg; break;
		case 'b': rebase = true; break;
		case 'A': allow_actual = true; break;
		case 'm':
			in.max = strtoul(optarg, &end, 10);
			if (*end || !*optarg || in.max == 0 || in.max > INJECT_HARD_MAX) {
				fprintf(stderr, "wfctl: --max: not a count in 1..%lu: %s\n", INJECT_HARD_MAX,
					optarg);
				return WFCTL_EXIT_USAGE;
			}
			break;
		case 't':
			if (parse_timeout(optarg, &timeout_s) < 0)
				return WFCTL_EXIT_USAGE;
			break;
		case 'h': wfctl_usage(stdout, "inject"); return WFCTL_EXIT_OK;
		default:
			r = conn_option(c, optarg, &host, &port, &cr);
			if (r <= 0) {
				if (r == 0)
					wfctl_usage(stderr, "inject");
				return WFCTL_EXIT_USAGE;
			}
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "wfctl: inject needs exactly one FILE ('-': standard input)\n");
		return WFCTL_EXIT_USAGE;
	}
	if (creds_load(&cr) < 0)
		return WFCTL_EXIT_USAGE;
	const char *path = argv[optind];
	struct wf_clock clock;
	int64_t offset = 0;
	if (wfctl_clock(&clock, &offset) < 0)
		return WFCTL_EXIT_USAGE;
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (f == NULL) {
		fprintf(stderr, "wfctl: %s: %s\n", path, strerror(errno));
		return WFCTL_EXIT_USAGE;
	}
	struct wf_codec_limits lim;
	wf_codec_limits_init(&lim);
	int r = load(&in, path, f, allow_actual, rebase, wf_clock_now_ms(&clock), &lim);
	if (f != stdin)
		fclose(f);
	int status = WFCTL_EXIT_OK;
	if (r < 0 || in.n == 0) {
		if (r == 0)
			fprintf(stderr, "wfctl: %s: no events\n", path);
		else
			fprintf(stderr, "wfctl: %s: nothing sent\n", path);
		status = r == -ENOMEM || r == -EIO ? WFCTL_EXIT_FAILURE : WFCTL_EXIT_USAGE;
		goto out;
	}
	/* the producer id: the broker user (the ACL lets it read only its own
	 * acks), else wfctl-inject */
	snprintf(service, sizeof service, "%s", cr.username ? cr.username : "wfctl-inject");
	in.loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_node_options o;
	struct wf_node_callbacks cb = { 0 };
	wfctl_node_options(&o, service, state, dir, sizeof dir, host, port, &cr, &clock, 2000);
	r = in.loop ? wf_node_new(in.loop, &o, &cb, NULL, &in.node) : -ENOMEM;
	if (r < 0) {
		fprintf(stderr, "wfctl: %s: cannot open the outbox: %s\n", state, strerror(-r));
		status = WFCTL_EXIT_FAILURE;
		goto out;
	}
	in.tty = isatty(2);
	wf_node_start(in.node);
	ev_timer tick, prog, limit;
	ev_timer_init(&tick, tick_cb, 0.01, 0.02);
	ev_timer_init(&prog, progress_cb, 0.5, 0.5);
	ev_timer_init(&limit, stop_cb, (double)timeout_s, 0.);
	tick.data = prog.data = &in;
	ev_timer_start(in.loop, &tick);
	ev_timer_start(in.loop, &prog);
	ev_timer_start(in.loop, &limit);
	ev_run(in.loop, 0);
	ev_timer_stop(in.loop, &tick);
	ev_timer_stop(in.loop, &prog);
	ev_timer_stop(in.loop, &limit);
	progress(&in, true);
	if (in.sent < in.n || wf_node_pending(in.node) != 0) {
		fprintf(stderr, "wfctl: not all acknowledged within %ld s; what was sent stays in %s "
				"and goes out with the next wfctl run from it (the rest was not sent)\n",
			timeout_s, state);
		status = WFCTL_EXIT_FAILURE;
	}
	wf_node_stop(in.node);
	ev_timer_init(&limit, stop_cb, 1.0, 0.);
	ev_timer_start(in.loop, &limit);
	ev_run(in.loop, 0);
	wf_node_free(in.node);
out:
	if (in.loop)
		ev_loop_destroy(in.loop);
	for (unsigned long i = 0; i < in.n; i++)
		protobuf_c_message_free_unpacked(&in.ev[i]->base, NULL);
	free(in.ev);
	free(in.line);
	return status;
}
