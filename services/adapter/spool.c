/* spool: the spool directory protocol and the one-transaction commit of a
 * file's events into the outbox (adapter.h, "Spool processing"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "adapter-int.h"
#include "wf/clock.h"
#include "wf/codec.h"
#include "wf/outbox.h"
#include "wf/store.h"
#include "wf/topic.h"

#define SPOOL_FILES_DB "adapter.files"

int wf_adapter_spool_init(struct wf_adapter_spool *sp)
{
	int r;

	if (!sp || !sp->ops || !sp->store || !sp->outbox)
		return -EINVAL;
	r = wf_store_dbi(sp->store, SPOOL_FILES_DB, 0, &sp->files_dbi);
	if (r < 0)
		return r;
	if (sp->dir) {
		char path[4096];
		const char *subs[] = { "done", "rejected" };
		for (size_t i = 0; i < 2; i++) {
			if (snprintf(path, sizeof path, "%s/%s", sp->dir, subs[i]) >= (int)sizeof path)
				return -ENAMETOOLONG;
			if (mkdir(path, 0750) < 0 && errno != EEXIST)
				return -errno;
		}
	}
	return 0;
}

static void notice(struct wf_adapter_spool *sp, const char *kind, const char *name,
		   const char *detail)
{
	if (sp->notice)
		sp->notice(sp->notice_ud, kind, name, detail);
}

struct commit_ctx {
	struct wf_adapter_spool *sp;
	struct wf_adapter_sink *sink;
	const char *name;
	const uint8_t *digest;
	int64_t now_ms;
	bool duplicate;
	char reason[WF_ADAPTER_REASON_MAX];
};

static int commit_fn(struct wf_txn *t, void *ud)
{
	struct commit_ctx *c = ud;
	struct wf_adapter_spool *sp = c->sp;
	size_t n = wf_adapter_sink_count(c->sink);
	char topic[WF_TOPIC_MAX];
	char val[512];
	int r;

	c->duplicate = false;
	r = wf_store_exists(t, sp->files_dbi, c->digest, 32);
	if (r < 0)
		return r;
	if (r == 1) {
		c->duplicate = true;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		Wf__V1__Event *ev = adapter_sink_event_mut(c->sink, i);
		struct wf_codec_error why = { 0 };
		uint8_t *buf = NULL;
		size_t len = 0;
		uint64_t seq;

		r = wf_outbox_next_seq(sp->outbox, t, &seq);
		if (r < 0)
			return r;
		if (wf_adapter_set_str(&ev->producer, wf_outbox_producer(sp->outbox)) < 0)
			return -ENOMEM;
		ev->seq = seq;
		r = wf_codec_event_pack(ev, sp->limits, c->now_ms, &buf, &len, &why);
		if (r == -EBADMSG) {
			snprintf(c->reason, sizeof c->reason, "event %zu (%s): %s: %s: %s", i + 1,
				 ev->id && *ev->id ? ev->id : "?", wf_reason_to_string(why.reason),
				 why.field, why.detail);
			return -EBADMSG;
		}
		if (r < 0)
			return r;
		r = wf_topic_event(topic, sizeof topic, ev->agency, ev->region);
		if (r < 0) {
			free(buf);
			snprintf(c->reason, sizeof c->reason, "event %zu: no topic for region '%s'",
				 i + 1, ev->region ? ev->region : "");
			return -EBADMSG;
		}
		r = wf_outbox_put(sp->outbox, t, seq, topic, buf, len);
		free(buf);
		if (r < 0)
			return r;
	}
	snprintf(val, sizeof val, "%lld %zu %s", (long long)c->now_ms, n, c->name);
	r = wf_store_put(t, sp->files_dbi, c->digest, 32, val, strlen(val), 0);
	if (r < 0)
		return r;
	return (int)(n > (size_t)INT32_MAX ? INT32_MAX : n);
}

static int seen_fn(struct wf_txn *t, void *ud)
{
	struct commit_ctx *c = ud;

	return wf_store_exists(t, c->sp->files_dbi, c->digest, 32);
}

/* 1 accepted (c->duplicate says how), 0 rejected (c->reason), < 0 error. */
static int process(struct wf_adapter_spool *sp, struct commit_ctx *c, const uint8_t *buf,
		   size_t len)
{
	uint8_t digest[32];
	int r;

	c->now_ms = wf_clock_now_ms(sp->clock);
	c->reason[0] = '\0';
	c->digest = digest;
	c->duplicate = false;
	r = adapter_sha256(buf, len, digest);
	if (r < 0)
		return r;
	/* A file seen before (a re-drop, or a crash between commit and rename)
	 * is not parsed again: stateful grading must not see it twice. */
	r = wf_store_view(sp->store, seen_fn, c);
	if (r < 0)
		return r;
	if (r == 1) {
		c->duplicate = true;
		return 1;
	}
	c->sink = wf_adapter_sink_new();
	if (!c->sink)
		return -ENOMEM;
	r = sp->ops->parse(sp->state, c->name, buf, len, c->now_ms, c->sink);
	if (r < 0) {
		const char *why = wf_adapter_sink_reason_text(c->sink);
		snprintf(c->reason, sizeof c->reason, "%s", *why ? why : strerror(-r));
		c->sink = wf_adapter_sink_free(c->sink);
		return 0;
	}
	r = wf_store_update(sp->store, commit_fn, c);
	if (r >= 0)
		sp->stats.events += c->duplicate ? 0 : wf_adapter_sink_count(c->sink);
	c->sink = wf_adapter_sink_free(c->sink);
	if (r == -EBADMSG)
		return 0;
	return r < 0 ? r : 1;
}

int wf_adapter_spool_buffer(struct wf_adapter_spool *sp, const char *name, const uint8_t *buf,
			    size_t len, char *reason, size_t reason_size)
{
	struct commit_ctx c = { .sp = sp, .name = name };
	size_t max = sp->max_file ? sp->max_file : WF_ADAPTER_MAX_FILE;
	int r;

	if (len > max) {
		snprintf(c.reason, sizeof c.reason, "too large (%zu bytes, limit %zu)", len, max);
		r = 0;
	} else {
		r = process(sp, &c, buf, len);
	}
	if (r == 0) {
		sp->stats.files_rejected++;
		if (reason && reason_size)
			snprintf(reason, reason_size, "%s", c.reason);
		notice(sp, "rejected", name, c.reason);
	} else if (r == 1) {
		if (c.duplicate) {
			sp->stats.files_duplicate++;
			notice(sp, "duplicate", name, "already processed (same SHA-256)");
		} else {
			sp->stats.files_done++;
			notice(sp, "done", name, "accepted");
		}
	}
	return r;
}

static bool ready_name(const char *n)
{
	size_t l = strlen(n);

	if (l == 0 || n[0] == '.')
		return false;
	if (l >= 4 && strcmp(n + l - 4, ".tmp") == 0)
		return false;
	if (l >= 5 && strcmp(n + l - 5, ".part") == 0)
		return false;
	return true;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Writes rejected/NAME.reason (via a temporary name) then moves NAME. */
static int move_rejected(int dfd, const char *name, const char *reason)
{
	char rpath[4096], tpath[4096], dst[4096];
	int fd, r = 0;

	if (snprintf(rpath, sizeof rpath, "rejected/%s.reason", name) >= (int)sizeof rpath ||
	    snprintf(tpath, sizeof tpath, "rejected/.%s.reason.tmp", name) >= (int)sizeof tpath ||
	    snprintf(dst, sizeof dst, "rejected/%s", name) >= (int)sizeof dst)
		return -ENAMETOOLONG;
	fd = openat(dfd, tpath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	size_t l = strlen(reason);
	if (write(fd, reason, l) != (ssize_t)l || write(fd, "\n", 1) != 1)
		r = -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && renameat(dfd, tpath, dfd, rpath) < 0)
		r = -errno;
	if (r == 0 && renameat(dfd, name, dfd, dst) < 0)
		r = -errno;
	return r;
}

static int handle_one(struct wf_adapter_spool *sp, int dfd, const char *name)
{
	size_t max = sp->max_file ? sp->max_file : WF_ADAPTER_MAX_FILE;
	struct commit_ctx c = { .sp = sp, .name = name };
	char dst[4096];
	struct stat st;
	uint8_t *buf = NULL;
	size_t len = 0;
	int fd, r;

	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* gone meanwhile: fine */
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 0;
	}
	if ((uint64_t)st.st_size > max) {
		r = -EFBIG;
	} else {
		r = adapter_read_fd(fd, max, &buf, &len);
	}
	close(fd);
	if (r == -EFBIG) {
		snprintf(c.reason, sizeof c.reason, "too large (%lld bytes, limit %zu)",
			 (long long)st.st_size, max);
		r = 0;
	} else if (r < 0) {
		return r;
	} else {
		r = process(sp, &c, buf, len);
		free(buf);
	}
	if (r < 0) {
		notice(sp, "error", name, strerror(-r));
		return r;
	}
	if (r == 0) {
		sp->stats.files_rejected++;
		notice(sp, "rejected", name, c.reason);
		r = move_rejected(dfd, name, c.reason);
		if (r < 0)
			notice(sp, "error", name, strerror(-r));
		return r;
	}
	if (c.duplicate) {
		sp->stats.files_duplicate++;
		notice(sp, "duplicate", name, "already processed (same SHA-256), moved to done/");
	} else {
		sp->stats.files_done++;
		notice(sp, "done", name, "accepted");
	}
	if (snprintf(dst, sizeof dst, "done/%s", name) >= (int)sizeof dst)
		return -ENAMETOOLONG;
	if (renameat(dfd, name, dfd, dst) < 0) {
		r = -errno;
		notice(sp, "error", name, strerror(-r));
		return r;
	}
	/* its time in done/ is when it was processed (the daemon re-reads the
	 * recent ones at start to rebuild the agency's history) */
	(void)utimensat(dfd, dst, NULL, 0);
	return 0;
}

int wf_adapter_spool_scan(struct wf_adapter_spool *sp)
{
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	int dfd, r = 0, handled = 0;

	if (!sp || !sp->dir)
		return -EINVAL;
	d = opendir(sp->dir);
	if (!d)
		return -errno;
	dfd = dirfd(d);
	while ((de = readdir(d))) {
		struct stat st;
		if (!ready_name(de->d_name))
			continue;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			char **p = realloc(names, ncap * sizeof(*p));
			if (!p) {
				r = -ENOMEM;
				goto out;
			}
			names = p;
			cap = ncap;
		}
		names[n] = strdup(de->d_name);
		if (!names[n]) {
			r = -ENOMEM;
			goto out;
		}
		n++;
	}
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n; i++) {
		if (sp->max_files && (unsigned)handled >= sp->max_files)
			break;
		r = handle_one(sp, dfd, names[i]);
		if (r < 0)
			goto out;
		handled++;
	}
	r = handled;
out:
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	closedir(d);
	return r;
}
