/* spool: CAP files and their POST queue (see spool.h). */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#define NS_PER_S INT64_C(1000000000)

/* One queued file: its name in outgoing/, the mtime of its link in ns (the
 * order after a restart), and a number unique in this spool (a POST finds
 * its entry again by it when it is done). */
struct entry {
	int64_t mtime_ns;
	uint64_t seq;
	char *name;
};

struct dsp_spool {
	char *dir;
	char *outgoing;
	char *url;
	int64_t timeout_ms;
	/* The POST queue, only with OUTGOING: q[head..n) in POST order, the
	 * oldest at q[head], the newest (greatest mtime_ns) at q[n - 1]. Built
	 * by one scan of outgoing/ at open, then kept by dsp_spool_write and
	 * the POSTs, all behind LOCK. */
	pthread_mutex_t lock;
	bool lock_ok;
	struct entry *q;
	size_t head, n, cap;
	uint64_t next_seq;
	/* the POSTs' handle, kept: libcurl keeps its connection to the
	 * platform open between POSTs (HTTP keep-alive), unless the platform
	 * closes it. Used by one thread at a time (the poster's). */
	CURL *curl;
};

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * NS_PER_S + t->tv_nsec;
}

static int mkdir_p(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = '\0';
			if (mkdir(buf, 0750) < 0 && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	if (mkdir(buf, 0750) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

static bool name_ok(const char *name)
{
	return name && *name && name[0] != '.' && !strchr(name, '/') && strlen(name) < 200;
}

/* Room for one more entry at q[n]: the consumed front is reclaimed once it
 * is at least half of the array, otherwise the array doubles; either way
 * an entry costs O(1) amortized. */
static int reserve(struct dsp_spool *s)
{
	if (s->n < s->cap)
		return 0;
	if (s->head > 0 && s->head >= s->cap / 2) {
		memmove(s->q, s->q + s->head, (s->n - s->head) * sizeof *s->q);
		s->n -= s->head;
		s->head = 0;
		return 0;
	}
	size_t cap = s->cap ? s->cap * 2 : 64;
	struct entry *q = realloc(s->q, cap * sizeof *q);
	if (!q)
		return -ENOMEM;
	s->q = q;
	s->cap = cap;
	return 0;
}

/* Appends NAME (malloc'ed, now the queue's); reserve() made room. */
static void push(struct dsp_spool *s, int64_t mtime_ns, char *name)
{
	s->q[s->n++] = (struct entry){ mtime_ns, s->next_seq++, name };
}

/* Removes q[I]: O(1) for the oldest, O(n) otherwise (a rewrite). */
static void drop(struct dsp_spool *s, size_t i)
{
	free(s->q[i].name);
	if (i == s->head) {
		s->head++;
	} else {
		memmove(s->q + i, s->q + i + 1, (s->n - i - 1) * sizeof *s->q);
		s->n--;
	}
	if (s->head == s->n)
		s->head = s->n = 0;
}

static int by_mtime_name(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->mtime_ns != y->mtime_ns)
		return x->mtime_ns < y->mtime_ns ? -1 : 1;
	return strcmp(x->name, y->name);
}

/* The queue from outgoing/: its regular files by mtime (ns), then name. */
static int scan(struct dsp_spool *s)
{
	DIR *d = opendir(s->outgoing);
	struct dirent *de;
	int r = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		if (!name_ok(de->d_name))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
			continue;
		char *name = strdup(de->d_name);
		if (!name || reserve(s) < 0) {
			free(name);
			r = -ENOMEM;
			break;
		}
		push(s, ts_ns(&st.st_mtim), name);
	}
	closedir(d);
	if (r < 0)
		return r;
	if (s->n > 1) /* qsort's array may not be NULL, even for 0 elements */
		qsort(s->q, s->n, sizeof *s->q, by_mtime_name);
	for (size_t i = 0; i < s->n; i++)
		s->q[i].seq = i;
	return 0;
}

int dsp_spool_open(const char *dir, const char *post_url, int64_t timeout_ms,
		   struct dsp_spool **ret)
{
	if (!dir || !*dir || !ret)
		return -EINVAL;
	struct dsp_spool *s = calloc(1, sizeof *s);
	if (!s)
		return -ENOMEM;
	s->dir = strdup(dir);
	s->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	int r = s->dir ? mkdir_p(dir) : -ENOMEM;
	if (r == 0 && post_url && *post_url) {
		s->url = strdup(post_url);
		if (s->url && asprintf(&s->outgoing, "%s/outgoing", dir) < 0)
			s->outgoing = NULL;
		r = s->url && s->outgoing ? mkdir_p(s->outgoing) : -ENOMEM;
		if (r == 0) {
			r = -pthread_mutex_init(&s->lock, NULL);
			s->lock_ok = r == 0;
		}
		if (r == 0)
			r = scan(s);
		if (r == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
			r = -EIO;
	}
	if (r < 0) {
		dsp_spool_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

struct dsp_spool *dsp_spool_free(struct dsp_spool *s)
{
	if (!s)
		return NULL;
	for (size_t i = s->head; i < s->n; i++)
		free(s->q[i].name);
	free(s->q);
	if (s->curl)
		curl_easy_cleanup(s->curl);
	if (s->lock_ok)
		pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s->outgoing);
	free(s->url);
	free(s);
	return NULL;
}

/* The order key of the file open at FD, about to be queued: its mtime,
 * moved to 1 ns after the newest queued one when it would not sort after
 * it (file times advance by the kernel's tick, a few ms, so a burst of
 * writes shares one mtime; the clock may also step back). The queue after
 * a restart is then the write order, not the name order. Best effort: a
 * file system with coarser times keeps its own (ties go by name). */
static int64_t stamp(struct dsp_spool *s, int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return 0;
	int64_t t = ts_ns(&st.st_mtim);
	if (s->n == s->head || t > s->q[s->n - 1].mtime_ns || s->q[s->n - 1].mtime_ns < 0)
		return t;
	int64_t k = s->q[s->n - 1].mtime_ns + 1;
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { (time_t)(k / NS_PER_S), (long)(k % NS_PER_S) } };
	if (futimens(fd, ts) < 0 || fstat(fd, &st) < 0)
		return t;
	return ts_ns(&st.st_mtim);
}

/* fsync, close and rename the temporary file at FD to PATH; with a queue,
 * link it into outgoing/ (replacing a link of the same name, whose entry
 * leaves the queue: a rewrite is posted again, as the newest) and append
 * it. Called with the lock held when queued; takes QNAME. */
/* fsync of the directory DIR: its entries (a rename, a link) are on disk. */
static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int finish(struct dsp_spool *s, int fd, const char *tmp, const char *path,
		  const char *link_path, char *qname)
{
	int64_t mtime_ns = 0;
	int r = qname ? reserve(s) : 0;
	if (r == 0 && qname)
		mtime_ns = stamp(s, fd);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, path) < 0)
		r = -errno;
	if (r == 0)
		r = fsync_dir(s->dir); /* the rename survives a power loss too */
	if (r < 0) {
		unlink(tmp);
		free(qname);
		return r;
	}
	if (!qname)
		return 0;
	if (unlink(link_path) == 0) /* queued already: its entry goes */
		for (size_t i = s->n; i-- > s->head;)
			if (strcmp(s->q[i].name, qname) == 0) {
				drop(s, i);
				break;
			}
	if (link(path, link_path) < 0 || (r = fsync_dir(s->outgoing)) < 0) {
		r = r < 0 ? r : -errno;
		free(qname);
		return r;
	}
	push(s, mtime_ns, qname);
	return 0;
}

int dsp_spool_write(struct dsp_spool *s, const char *name, const void *data, size_t len)
{
	char path[4096], tmp[4096], link_path[4096];
	char *qname = NULL;
	if (!name_ok(name))
		return -EINVAL;
	snprintf(path, sizeof path, "%s/%s", s->dir, name);
	snprintf(tmp, sizeof tmp, "%s/.%s.tmp", s->dir, name);
	if (s->outgoing) {
		snprintf(link_path, sizeof link_path, "%s/%s", s->outgoing, name);
		if (!(qname = strdup(name)))
			return -ENOMEM;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0) {
		int e = -errno;
		free(qname);
		return e;
	}
	const char *p = data;
	size_t off = 0;
	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			int e = n < 0 ? -errno : -EIO;
			close(fd);
			unlink(tmp);
			free(qname);
			return e;
		}
		off += (size_t)n;
	}
	if (!qname)
		return finish(s, fd, tmp, path, NULL, NULL);
	/* held over the fsync (the POST worker may wait for it); a POST never
	 * holds it over its HTTP transfer, so this never waits for one */
	pthread_mutex_lock(&s->lock);
	int r = finish(s, fd, tmp, path, link_path, qname);
	pthread_mutex_unlock(&s->lock);
	return r;
}

size_t dsp_spool_queued(struct dsp_spool *s)
{
	if (!s->outgoing)
		return 0;
	pthread_mutex_lock(&s->lock);
	size_t n = s->n - s->head;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static size_t discard(void *p, size_t size, size_t n, void *ud)
{
	return size * n;
}

/* libcurl's progress callback: non-zero ends the transfer */
static int progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	const atomic_bool *abort = ud;
	return atomic_load(abort) ? 1 : 0;
}

int dsp_spool_post_next(struct dsp_spool *s, char *detail, size_t detail_size)
{
	return dsp_spool_post_next_abortable(s, detail, detail_size, NULL);
}

/* Under the lock: opens the oldest queued file into *FD, its name into
 * NAME, its path into PATH and its entry's number into *SEQ; entries whose
 * link is gone (removed by hand) leave the queue on the way. Returns 1, 0
 * (nothing queued) or -errno (the oldest stays queued). */
static int open_oldest(struct dsp_spool *s, int *fd, char *name, size_t name_size, char *path,
		       size_t path_size, uint64_t *seq)
{
	while (s->n > s->head) {
		const struct entry *e = &s->q[s->head];
		snprintf(path, path_size, "%s/%s", s->outgoing, e->name);
		*fd = open(path, O_RDONLY | O_CLOEXEC);
		if (*fd < 0 && errno == ENOENT) {
			drop(s, s->head);
			continue;
		}
		if (*fd < 0)
			return -errno;
		snprintf(name, name_size, "%s", e->name);
		*seq = e->seq;
		return 1;
	}
	return 0;
}

/* The file at FD into a malloc'ed *BODY and *LEN (at most 16 MiB). */
static int slurp(int fd, char **body, size_t *len)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_size > 16 * 1024 * 1024)
		return -EFBIG;
	char *b = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	if (!b)
		return -ENOMEM;
	while (got < (size_t)st.st_size) {
		ssize_t k = read(fd, b + got, (size_t)st.st_size - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break; /* shorter than it was: POSTed as read */
		got += (size_t)k;
	}
	*body = b;
	*len = got;
	return 0;
}

int dsp_spool_post_next_abortable(struct dsp_spool *s, char *detail, size_t detail_size,
				  const atomic_bool *abort)
{
	char name[256] = "", path[4096];
	uint64_t seq = 0;
	int fd = -1;
	if (!s->outgoing)
		return 0;
	pthread_mutex_lock(&s->lock);
	int r = open_oldest(s, &fd, name, sizeof name, path, sizeof path, &seq);
	pthread_mutex_unlock(&s->lock);
	if (r <= 0)
		return r;
	char *body = NULL;
	size_t len = 0;
	r = slurp(fd, &body, &len);
	close(fd);
	if (r == -EFBIG) {
		/* never sendable: out of the way, so that the queue behind it
		 * goes on (a CAP file of ours is a few KiB; this one was put
		 * there by hand) */
		char rej[4096], dst[4096 + 256];
		snprintf(rej, sizeof rej, "%s/rejected", s->dir);
		snprintf(dst, sizeof dst, "%s/%s", rej, name);
		int m = mkdir_p(rej);
		if (m == 0 && rename(path, dst) < 0 && errno != ENOENT)
			m = -errno;
		if (m < 0) {
			snprintf(detail, detail_size, "%s: larger than 16 MiB, cannot move it to %s: %s",
				 name, rej, strerror(-m));
			return m;
		}
		pthread_mutex_lock(&s->lock);
		if (s->n > s->head && s->q[s->head].seq == seq)
			drop(s, s->head);
		pthread_mutex_unlock(&s->lock);
		snprintf(detail, detail_size, "%s: larger than 16 MiB, never POSTed: moved to %s", name,
			 dst);
		return -EFBIG;
	}
	if (r < 0)
		return r;
	if (!s->curl)
		s->curl = curl_easy_init();
	else
		curl_easy_reset(s->curl); /* the options go; the open connection stays */
	CURL *c = s->curl;
	if (!c) {
		free(body);
		return -ENOMEM;
	}
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/xml; charset=utf-8");
	curl_easy_setopt(c, CURLOPT_URL, s->url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)s->timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	if (abort) {
		curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
		curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)abort);
		curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	}
	CURLcode cr = curl_easy_perform(c);
	long status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	free(body);
	if (cr == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(detail, detail_size, "%s: given up (stopping)", name);
		return -ECANCELED;
	}
	if (cr != CURLE_OK) {
		snprintf(detail, detail_size, "%s: %s", name, curl_easy_strerror(cr));
		return -EAGAIN;
	}
	if (status < 200 || status > 299) {
		snprintf(detail, detail_size, "%s: HTTP %ld", name, status);
		return -EAGAIN;
	}
	snprintf(detail, detail_size, "%s: HTTP %ld", name, status);
	/* posted: its link and entry go, unless a rewrite of the same name
	 * replaced both meanwhile (that one is posted again) */
	r = 1;
	pthread_mutex_lock(&s->lock);
	if (s->n > s->head && s->q[s->head].seq == seq) {
		if (unlink(path) < 0 && errno != ENOENT)
			r = -errno;
		else
			drop(s, s->head);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}
