/* platform: a broadcast platform for CAP POSTs (see platform.h). */
#include "platform.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

#define REQ_MAX (1u << 20) /* a CAP file is a few KB; the spool takes up to 16 MiB */

struct wf_test_platform {
	int lfd, port;
	unsigned fail_every;
	pthread_t thread;
	pthread_mutex_t mu;
	char **ids;
	size_t n, cap;
	uint64_t requests, refused, bad;
	char *req;
};

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The text between <identifier> and </identifier>, or NULL. */
static char *identifier(const char *text)
{
	const char *b = text ? strstr(text, "<identifier>") : NULL;
	const char *e = b ? strstr(b, "</identifier>") : NULL;
	return e ? strndup(b + 12, (size_t)(e - b - 12)) : NULL;
}

char *wf_test_http_read(int fd, char *req, size_t size, long *len)
{
	size_t got = 0;
	req[0] = '\0';
	*len = -1;
	for (;;) {
		ssize_t k = read(fd, req + got, size - 1 - got);
		if (k <= 0)
			return NULL;
		got += (size_t)k;
		req[got] = '\0';
		char *end = strstr(req, "\r\n\r\n"), *h = strcasestr(req, "Content-Length:");
		*len = h ? atol(h + 15) : -1;
		if (end && *len >= 0 && got >= (size_t)(end + 4 - req) + (size_t)*len)
			return end + 4;
		if (got == size - 1)
			return NULL;
	}
}

static void *serve(void *ud)
{
	struct wf_test_platform *p = ud;
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	static const char no[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
				 "Connection: close\r\n\r\n";
	static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
				  "Connection: close\r\n\r\n";
	for (;;) {
		int c = accept(p->lfd, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL; /* shut down by wf_test_platform_stop */
		}
		long len;
		bool whole = wf_test_http_read(c, p->req, REQ_MAX, &len) != NULL;
		char *id = whole ? identifier(p->req) : NULL;
		const char *answer = ok;
		pthread_mutex_lock(&p->mu);
		p->requests++;
		if (!id) {
			p->bad++;
			answer = bad;
		} else if (p->fail_every && p->requests % p->fail_every == 0) {
			p->refused++;
			answer = no;
			free(id);
		} else {
			if (p->n == p->cap) {
				p->cap = p->cap ? p->cap * 2 : 4096;
				p->ids = realloc(p->ids, p->cap * sizeof *p->ids);
				if (!p->ids)
					wf_test_die("platform");
			}
			p->ids[p->n++] = id;
		}
		pthread_mutex_unlock(&p->mu);
		(void)!write(c, answer, strlen(answer));
		close(c);
	}
}

struct wf_test_platform *wf_test_platform_start(unsigned fail_every)
{
	struct wf_test_platform *p = calloc(1, sizeof *p);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof a;
	if (!p || !(p->req = malloc(REQ_MAX)))
		wf_test_die("platform");
	p->fail_every = fail_every;
	pthread_mutex_init(&p->mu, NULL);
	p->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p->lfd < 0 || bind(p->lfd, (struct sockaddr *)&a, sizeof a) < 0 ||
	    listen(p->lfd, 16) < 0 || getsockname(p->lfd, (struct sockaddr *)&a, &al) < 0)
		wf_test_die("platform socket");
	p->port = ntohs(a.sin_port);
	if (pthread_create(&p->thread, NULL, serve, p) != 0)
		wf_test_die("platform thread");
	return p;
}

int wf_test_platform_port(const struct wf_test_platform *p)
{
	return p->port;
}

void wf_test_platform_counts(struct wf_test_platform *p, struct wf_test_platform_counts *ret)
{
	pthread_mutex_lock(&p->mu);
	ret->requests = p->requests;
	ret->refused = p->refused;
	ret->bad = p->bad;
	ret->ok = p->n;
	pthread_mutex_unlock(&p->mu);
}

void wf_test_platform_stop(struct wf_test_platform *p, char ***ids, size_t *n)
{
	shutdown(p->lfd, SHUT_RDWR); /* accept() fails: the thread ends */
	pthread_join(p->thread, NULL);
	close(p->lfd);
	qsort(p->ids, p->n, sizeof *p->ids, cmp_str);
	*ids = p->ids;
	*n = p->n;
	pthread_mutex_destroy(&p->mu);
	free(p->req);
	free(p);
}

long wf_test_cap_identifiers(const char *dir, char ***ids)
{
	DIR *d = opendir(dir);
	size_t n = 0, cap = 0;
	*ids = NULL;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		size_t l = strlen(e->d_name);
		if (e->d_name[0] == '.' || l < 4 || strcmp(e->d_name + l - 4, ".xml") != 0)
			continue;
		char *path = wf_test_xasprintf("%s/%s", dir, e->d_name);
		FILE *f = fopen(path, "rb");
		char *text = NULL;
		size_t tl = 0;
		if (f) {
			text = malloc(REQ_MAX);
			tl = text ? fread(text, 1, REQ_MAX - 1, f) : 0;
			if (text)
				text[tl] = '\0';
			fclose(f);
		}
		char *id = identifier(text);
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			*ids = realloc(*ids, cap * sizeof **ids);
			if (!*ids)
				wf_test_die("cap identifiers");
		}
		(*ids)[n++] = id ? id : strdup(e->d_name);
		free(text);
		free(path);
	}
	closedir(d);
	qsort(*ids, n, sizeof **ids, cmp_str);
	return (long)n;
}
