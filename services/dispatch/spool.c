/* spool: CAP files and their POST queue (see spool.h). */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

struct dsp_spool {
	char *dir;
	char *outgoing;
	char *url;
	int64_t timeout_ms;
};

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
	free(s->dir);
	free(s->outgoing);
	free(s->url);
	free(s);
	return NULL;
}

static bool name_ok(const char *name)
{
	return name && *name && name[0] != '.' && !strchr(name, '/') && strlen(name) < 200;
}

int dsp_spool_write(struct dsp_spool *s, const char *name, const void *data, size_t len)
{
	char path[4096], tmp[4096];
	if (!name_ok(name))
		return -EINVAL;
	snprintf(path, sizeof path, "%s/%s", s->dir, name);
	snprintf(tmp, sizeof tmp, "%s/.%s.tmp", s->dir, name);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
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
			return e;
		}
		off += (size_t)n;
	}
	if (fsync(fd) < 0 || close(fd) < 0) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	if (rename(tmp, path) < 0) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	if (s->outgoing) {
		char link_path[4096];
		snprintf(link_path, sizeof link_path, "%s/%s", s->outgoing, name);
		unlink(link_path); /* a rewrite (replay) is posted again */
		if (link(path, link_path) < 0)
			return -errno;
	}
	return 0;
}

/* The oldest (mtime, then name) queued file into NAME. */
static int oldest(struct dsp_spool *s, char *name, size_t size, size_t *count)
{
	DIR *d = opendir(s->outgoing);
	struct dirent *de;
	time_t best_t = 0;
	bool found = false;
	*count = 0;
	if (!d)
		return -errno;
	while ((de = readdir(d)) != NULL) {
		struct stat st;
		char p[4096];
		if (!name_ok(de->d_name))
			continue;
		snprintf(p, sizeof p, "%s/%s", s->outgoing, de->d_name);
		if (stat(p, &st) < 0 || !S_ISREG(st.st_mode))
			continue;
		(*count)++;
		if (!found || st.st_mtime < best_t ||
		    (st.st_mtime == best_t && strcmp(de->d_name, name) < 0)) {
			best_t = st.st_mtime;
			snprintf(name, size, "%s", de->d_name);
			found = true;
		}
	}
	closedir(d);
	return found ? 1 : 0;
}

size_t dsp_spool_queued(struct dsp_spool *s)
{
	char name[256] = "";
	size_t n = 0;
	if (!s->outgoing)
		return 0;
	(void)oldest(s, name, sizeof name, &n);
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

int dsp_spool_post_next_abortable(struct dsp_spool *s, char *detail, size_t detail_size,
				  const atomic_bool *abort)
{
	char name[256] = "", path[4096];
	size_t n = 0;
	if (!s->outgoing)
		return 0;
	int r = oldest(s, name, sizeof name, &n);
	if (r <= 0)
		return r;
	snprintf(path, sizeof path, "%s/%s", s->outgoing, name);
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	struct stat st;
	if (fstat(fileno(f), &st) < 0 || st.st_size > 16 * 1024 * 1024) {
		fclose(f);
		return -EFBIG;
	}
	char *body = malloc((size_t)st.st_size + 1);
	size_t len = body ? fread(body, 1, (size_t)st.st_size, f) : 0;
	fclose(f);
	if (!body)
		return -ENOMEM;
	CURL *c = curl_easy_init();
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
	curl_easy_cleanup(c);
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
	return unlink(path) < 0 ? -errno : 1;
}
