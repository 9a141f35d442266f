/* replay: the engine on virtual time over JSON lines (see replay.h). */
#include "replay.h"

#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wf/codec.h"
#include "wf/pbjson.h"
#include "wf/store.h"

#define REPLAY_PRODUCER "wf-fusion-replay"

struct ctx {
	const struct wf_fusion_replay_options *o;
	struct wf_fusion_replay_stats *st;
	struct wf_codec_limits lim;
};

static int on_warning(void *ud, const Wf__V1__Warning *w)
{
	struct ctx *c = ud;
	Wf__V1__Warning copy = *w;
	copy.producer = (char *)REPLAY_PRODUCER;
	copy.seq = ++c->st->versions;
	struct wf_codec_error ce;
	if (wf_codec_warning_validate(&copy, &c->lim, copy.sent_ms, &ce) < 0) {
		c->st->invalid_out++;
		if (c->o->err)
			fprintf(c->o->err, "wf-fusion: internal error: warning %s@%u invalid: %s: %s\n",
				w->id, w->version, ce.field, ce.detail);
	}
	if (w->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_ALERT)
		c->st->alerts++;
	else if (w->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_UPDATE)
		c->st->updates++;
	else
		c->st->cancels++;
	if (c->o->out) {
		char *js = wf_pbjson_print(&copy.base);
		if (!js)
			return -ENOMEM;
		fputs(js, c->o->out);
		fputc('\n', c->o->out);
		free(js);
	}
	return 0;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
	(void)sb;
	(void)flag;
	(void)f;
	return remove(p);
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int wf_fusion_replay(FILE *in, const char *name, struct wf_fusion_rules *rules,
		     const struct wf_fusion_replay_options *o, struct wf_fusion_replay_stats *st,
		     char *err, size_t errlen)
{
	memset(st, 0, sizeof *st);
	struct ctx c = { .o = o, .st = st };
	wf_codec_limits_init(&c.lim);
	c.lim.regions = o->regions;
	char tmp[512] = "";
	const char *dir = o->store_dir;
	if (!dir) {
		const char *base = getenv("TMPDIR");
		snprintf(tmp, sizeof tmp, "%s/wf-fusion-replay-XXXXXX", base && *base ? base : "/tmp");
		if (!mkdtemp(tmp)) {
			int e = errno;
			snprintf(err, errlen, "%s: %s", tmp, strerror(e));
			wf_fusion_rules_free(rules);
			return -e;
		}
		dir = tmp;
	}
	struct wf_store_options so = {
		.path = dir, .map_size = (size_t)1 << 30, .max_map_size = (size_t)8 << 30,
		.nosync = true,
	};
	struct wf_store *s = NULL;
	struct wf_fusion *e = NULL;
	struct wf_txn *t = NULL;
	char *line = NULL;
	size_t cap = 0;
	int r = wf_store_open(&so, &s);
	if (r < 0) {
		snprintf(err, errlen, "%s: cannot open store: %s", dir, strerror(-r));
		wf_fusion_rules_free(rules);
		goto out;
	}
	struct wf_fusion_options fo = { .regions = o->regions, .owned = o->owned,
					.n_owned = o->n_owned };
	r = wf_fusion_open(s, rules, &fo, &e);
	if (r < 0) {
		snprintf(err, errlen, "cannot open the engine: %s", strerror(-r));
		wf_fusion_rules_free(rules);
		goto out;
	}
	unsigned batch = o->batch ? o->batch : 10000, in_batch = 0;
	int64_t vnow = 0;
	double t0 = mono_s();
	ssize_t n;
	while ((n = getline(&line, &cap, in)) >= 0) {
		st->lines++;
		size_t len = (size_t)n;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			len--;
		size_t sp = strspn(line, " \t");
		if (sp >= len || line[sp] == '#')
			continue;
		ProtobufCMessage *m = NULL;
		char perr[256];
		if (wf_pbjson_parse(&wf__v1__event__descriptor, line, len, &m, perr, sizeof perr) < 0) {
			st->rejected++;
			if (o->err)
				fprintf(o->err, "%s:%llu: %s\n", name, (unsigned long long)st->lines, perr);
			continue;
		}
		Wf__V1__Event *ev = (Wf__V1__Event *)m;
		int64_t now = ev->observed_ms > vnow ? ev->observed_ms : vnow;
		struct wf_codec_error ce;
		if (wf_codec_event_validate(ev, &c.lim, now, &ce) < 0) {
			st->rejected++;
			if (o->err)
				fprintf(o->err, "%s:%llu: rejected (%s): %s: %s\n", name,
					(unsigned long long)st->lines, wf_reason_to_string(ce.reason),
					ce.field, ce.detail);
			protobuf_c_message_free_unpacked(m, NULL);
			continue;
		}
		vnow = now;
		if (!t && (r = wf_store_txn_begin(s, true, &t)) < 0) {
			protobuf_c_message_free_unpacked(m, NULL);
			goto fail;
		}
		r = wf_fusion_advance(e, t, vnow, on_warning, &c);
		if (r >= 0)
			r = wf_fusion_ingest(e, t, ev, vnow, on_warning, &c);
		if (r == -EXDEV) {
			st->rejected++;
			if (o->err)
				fprintf(o->err, "%s:%llu: rejected (BAD_REFERENCE): references: names an "
						"event of another status\n",
					name, (unsigned long long)st->lines);
			protobuf_c_message_free_unpacked(m, NULL);
			continue;
		}
		protobuf_c_message_free_unpacked(m, NULL);
		if (r < 0)
			goto fail;
		st->events++;
		st->results[r]++;
		if (++in_batch >= batch) {
			r = wf_store_txn_commit(t);
			t = NULL;
			in_batch = 0;
			if (r < 0)
				goto fail;
		}
	}
	if (o->drain) {
		if (!t && (r = wf_store_txn_begin(s, true, &t)) < 0)
			goto fail;
		struct wf_fusion_stats fs;
		for (;;) {
			wf_fusion_get_stats(e, &fs);
			int64_t d = wf_fusion_next_deadline(e);
			if (!fs.incidents || d == INT64_MAX)
				break;
			if ((r = wf_fusion_tick(e, t, d, on_warning, &c)) < 0)
				goto fail;
		}
	}
	if (t) {
		r = wf_store_txn_commit(t);
		t = NULL;
		if (r < 0)
			goto fail;
	}
	st->seconds = mono_s() - t0;
	struct wf_fusion_stats fs;
	wf_fusion_get_stats(e, &fs);
	st->active_incidents = fs.incidents;
	r = 0;
	goto out;
fail:
	snprintf(err, errlen, "%s: engine error after line %llu: %s", name,
		 (unsigned long long)st->lines, strerror(-r));
out:
	wf_store_txn_abort(t);
	wf_fusion_close(e);
	wf_store_close(s);
	free(line);
	if (tmp[0])
		nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return r;
}
