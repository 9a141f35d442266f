/* Unit tests for the CAP spool (services/dispatch/spool.c): atomic writes,
 * the outgoing/ POST queue, a failed POST kept and retried, a 2xx removing
 * it, against a minimal HTTP server in a child process on a loopback port
 * the kernel picks; the queue's order (write order, not name order, also
 * after a reopen and a rewrite), links removed by hand skipped, writes and
 * POSTs from two threads; and the POST worker (poster.c): the loop runs on
 * while a POST hangs, and stopping gives the hanging POST up. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "poster.h"
#include "platform.h" /* tests/harness: wf_test_http_read */
#include "spool.h"

static char dir[64];

static void mk(void)
{
	snprintf(dir, sizeof dir, "/tmp/wf-spool-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void rm(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char *buf = calloc(1, 65536);
	fread(buf, 1, 65535, f);
	fclose(f);
	return buf;
}

START_TEST(test_write_atomic_no_post)
{
	struct dsp_spool *s = NULL;
	char path[4096], sub[128];
	mk();
	snprintf(sub, sizeof sub, "%s/a/b", dir);
	ck_assert_int_eq(dsp_spool_open(sub, NULL, 0, &s), 0); /* parents created */
	ck_assert_int_eq(dsp_spool_write(s, "w1.v1.xml", "<alert/>", 8), 0);
	ck_assert_int_eq(dsp_spool_write(s, "w1.v1.xml", "<alert>2</alert>", 16), 0);
	snprintf(path, sizeof path, "%s/w1.v1.xml", sub);
	char *t = slurp(path);
	ck_assert_str_eq(t, "<alert>2</alert>");
	free(t);
	snprintf(path, sizeof path, "%s/.w1.v1.xml.tmp", sub);
	ck_assert_int_ne(access(path, F_OK), 0); /* no temporary left */
	ck_assert_int_eq(dsp_spool_write(s, "../x", "x", 1), -EINVAL);
	ck_assert_int_eq(dsp_spool_write(s, ".hidden", "x", 1), -EINVAL);
	char detail[128];
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), 0);
	ck_assert_uint_eq(dsp_spool_queued(s), 0);
	dsp_spool_free(s);
	rm();
}
END_TEST

/* Child: answers each of STATUS[0..n) to one request, checking the body
 * holds a CAP alert; exits 0 if every body did. */
static void serve(int lfd, const int *status, int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			_exit(2);
		char req[65536];
		long cl;
		(void)wf_test_http_read(c, req, sizeof req, &cl);
		if (!strstr(req, "POST /cap ") || !strstr(req, "<alert") ||
		    !strcasestr(req, "Content-Type: application/xml"))
			bad++;
		char resp[128];
		int len = snprintf(resp, sizeof resp,
				   "HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
				   status[i]);
		(void)!write(c, resp, (size_t)len);
		close(c);
	}
	_exit(bad ? 1 : 0);
}

/* A listening socket on 127.0.0.1 and a port the kernel picks (in *A). */
static int listen_loopback(struct sockaddr_in *a)
{
	socklen_t al = sizeof *a;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	ck_assert_int_ge(lfd, 0);
	memset(a, 0, sizeof *a);
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)a, sizeof *a), 0);
	ck_assert_int_eq(listen(lfd, 4), 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)a, &al), 0);
	return lfd;
}

START_TEST(test_post_retry)
{
	struct sockaddr_in a;
	int lfd = listen_loopback(&a);
	static const int status[] = { 503, 200, 204 };
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		serve(lfd, status, 3);
	close(lfd);

	struct dsp_spool *s = NULL;
	char url[64], detail[256], path[256];
	mk();
	snprintf(url, sizeof url, "http://127.0.0.1:%d/cap", ntohs(a.sin_port));
	ck_assert_int_eq(dsp_spool_open(dir, url, 5000, &s), 0);
	ck_assert_int_eq(dsp_spool_write(s, "w1.v1.xml", "<alert>1</alert>", 16), 0);
	ck_assert_uint_eq(dsp_spool_queued(s), 1);
	/* 503: kept for a retry */
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), -EAGAIN);
	ck_assert_msg(strstr(detail, "HTTP 503") != NULL, "%s", detail);
	ck_assert_uint_eq(dsp_spool_queued(s), 1);
	/* 200: gone from the queue, the file itself stays */
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), 1);
	ck_assert_uint_eq(dsp_spool_queued(s), 0);
	snprintf(path, sizeof path, "%s/w1.v1.xml", dir);
	ck_assert_int_eq(access(path, F_OK), 0);
	/* a queue survives a restart: a new spool on the same directory */
	ck_assert_int_eq(dsp_spool_write(s, "w1.v2.xml", "<alert>2</alert>", 16), 0);
	dsp_spool_free(s);
	ck_assert_int_eq(dsp_spool_open(dir, url, 5000, &s), 0);
	ck_assert_uint_eq(dsp_spool_queued(s), 1);
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), 1); /* 204 */
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), 0);
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	/* nobody listening: a transport error, still queued */
	ck_assert_int_eq(dsp_spool_write(s, "w1.v3.xml", "<alert>3</alert>", 16), 0);
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), -EAGAIN);
	ck_assert_uint_eq(dsp_spool_queued(s), 1);
	dsp_spool_free(s);
	rm();
}
END_TEST

/* Child: takes ONE connection and answers N requests on it with 200 and
 * keep-alive; exits 0 when all N came on it, 3 when the client closed it
 * before (it opened a new connection per POST), 1 on a bad request. */
static void serve_keepalive(int lfd, int n)
{
	int c = accept(lfd, NULL, NULL);
	if (c < 0)
		_exit(2);
	for (int i = 0; i < n; i++) {
		char req[65536];
		long cl;
		if (!wf_test_http_read(c, req, sizeof req, &cl))
			_exit(3);
		if (!strstr(req, "POST /cap ") || !strstr(req, "<alert"))
			_exit(1);
		static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
		(void)!write(c, ok, sizeof ok - 1);
	}
	close(c);
	_exit(0);
}

/* The POSTs keep their connection to the platform (libcurl keep-alive
 * through one kept handle): three files, three POSTs, one connection. Each
 * POST once made a handle and a connection of its own. */
START_TEST(test_post_keepalive)
{
	struct sockaddr_in a;
	int lfd = listen_loopback(&a);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		serve_keepalive(lfd, 3);
	close(lfd);

	struct dsp_spool *s = NULL;
	char url[64], detail[256], name[32], body[64];
	mk();
	snprintf(url, sizeof url, "http://127.0.0.1:%d/cap", ntohs(a.sin_port));
	ck_assert_int_eq(dsp_spool_open(dir, url, 5000, &s), 0);
	for (int i = 1; i <= 3; i++) {
		snprintf(name, sizeof name, "w%d.v1.xml", i);
		int bl = snprintf(body, sizeof body, "<alert>%d</alert>", i);
		ck_assert_int_eq(dsp_spool_write(s, name, body, (size_t)bl), 0);
	}
	for (int i = 1; i <= 3; i++)
		ck_assert_msg(dsp_spool_post_next(s, detail, sizeof detail) == 1, "POST %d: %s", i,
			      detail);
	ck_assert_uint_eq(dsp_spool_queued(s), 0);
	dsp_spool_free(s);
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_msg(WEXITSTATUS(st) == 0, "platform exit %d (3: a new connection per POST)",
		      WEXITSTATUS(st));
	rm();
}
END_TEST

/* A file too large to POST (put into outgoing/ by hand) once blocked the
 * queue for good: it is moved to rejected/ and the file behind it goes. */
START_TEST(test_post_too_large_moved_aside)
{
	struct sockaddr_in a;
	int lfd = listen_loopback(&a);
	static const int status[] = { 200 };
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		serve(lfd, status, 1);
	close(lfd);

	struct dsp_spool *s = NULL;
	char url[64], detail[512], path[4096];
	mk();
	snprintf(url, sizeof url, "http://127.0.0.1:%d/cap", ntohs(a.sin_port));
	/* a 17 MiB "CAP file" queued first, by hand (sparse: no 17 MiB written) */
	snprintf(path, sizeof path, "%s/outgoing", dir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/outgoing/huge.v1.xml", dir);
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_int_eq(fputs("<alert>", f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
	ck_assert_int_eq(truncate(path, 17 << 20), 0);
	ck_assert_int_eq(dsp_spool_open(dir, url, 5000, &s), 0);
	ck_assert_int_eq(dsp_spool_write(s, "w1.v1.xml", "<alert>1</alert>", 16), 0);
	ck_assert_uint_eq(dsp_spool_queued(s), 2);
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), -EFBIG);
	ck_assert_msg(strstr(detail, "huge.v1.xml: larger than 16 MiB") != NULL, "%s", detail);
	ck_assert_uint_eq(dsp_spool_queued(s), 1);
	ck_assert_int_ne(access(path, F_OK), 0);
	snprintf(path, sizeof path, "%s/rejected/huge.v1.xml", dir);
	ck_assert_int_eq(access(path, F_OK), 0);
	/* the next goes */
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), 1);
	ck_assert_uint_eq(dsp_spool_queued(s), 0);
	dsp_spool_free(s);
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	rm();
}
END_TEST

/* Child: answers 200 to each of N requests and writes each body and a
 * newline to OUT, in the order received; with GOT >= 0, the first answer
 * waits (after a byte on GOT: "received") for a byte on GO. Exits 0 if
 * every request was a CAP POST. */
static void serve_record(int lfd, int n, int out, int got_fd, int go_fd)
{
	int bad = 0;
	for (int i = 0; i < n; i++) {
		int c = accept(lfd, NULL, NULL);
		if (c < 0)
			_exit(2);
		char req[65536];
		long cl = -1;
		char *body = wf_test_http_read(c, req, sizeof req, &cl);
		if (!body || !strstr(req, "POST /cap ") ||
		    !strcasestr(req, "Content-Type: application/xml")) {
			bad++;
		} else {
			(void)!write(out, body, (size_t)cl);
			(void)!write(out, "\n", 1);
		}
		char b;
		if (i == 0 && got_fd >= 0 && (write(got_fd, "r", 1) != 1 || read(go_fd, &b, 1) != 1))
			_exit(3);
		static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		(void)!write(c, ok, sizeof ok - 1);
		close(c);
	}
	_exit(bad ? 1 : 0);
}

/* A recording server (serve_record) for N requests and the spool's URL;
 * GOT and GO are the parent's ends of the held first answer, or -1. */
struct recorder {
	pid_t pid;
	int out; /* read end of the bodies */
	int got, go;
	char url[64];
};

static void recorder_start_held(struct recorder *rec, int n, bool hold)
{
	struct sockaddr_in a;
	int lfd = listen_loopback(&a), p[2], got[2] = { -1, -1 }, go[2] = { -1, -1 };
	ck_assert_int_eq(pipe(p), 0);
	if (hold)
		ck_assert(pipe(got) == 0 && pipe(go) == 0);
	rec->pid = fork();
	ck_assert_int_ge(rec->pid, 0);
	if (rec->pid == 0) {
		close(p[0]);
		serve_record(lfd, n, p[1], got[1], go[0]);
	}
	close(lfd);
	close(p[1]);
	if (hold) {
		close(got[1]);
		close(go[0]);
	}
	rec->out = p[0];
	rec->got = got[0];
	rec->go = go[1];
	snprintf(rec->url, sizeof rec->url, "http://127.0.0.1:%d/cap", ntohs(a.sin_port));
}

static void recorder_start(struct recorder *rec, int n)
{
	recorder_start_held(rec, n, false);
}

/* Waits for the server (killed first unless it got all it waits for: OK)
 * and returns the bodies it received, one a line (malloc'ed). */
static char *recorder_finish(struct recorder *rec, bool ok)
{
	if (!ok)
		kill(rec->pid, SIGKILL);
	size_t cap = 1 << 16, got = 0;
	char *buf = calloc(1, cap);
	ck_assert_ptr_nonnull(buf);
	ssize_t k;
	while ((k = read(rec->out, buf + got, cap - 1 - got)) > 0)
		got += (size_t)k;
	close(rec->out);
	if (rec->got >= 0) {
		close(rec->got);
		close(rec->go);
	}
	int st = 0;
	ck_assert_int_eq(waitpid(rec->pid, &st, 0), rec->pid);
	ck_assert_msg(ok, "the server did not get every POST");
	ck_assert(WIFEXITED(st));
	ck_assert_int_eq(WEXITSTATUS(st), 0);
	return buf;
}

/* POSTs one file and checks it was NAME. */
static void post_expect(struct dsp_spool *s, const char *name)
{
	char detail[256] = "";
	int r = dsp_spool_post_next(s, detail, sizeof detail);
	ck_assert_msg(r == 1, "%s: %d %s", name, r, detail);
	size_t l = strlen(name);
	ck_assert_msg(strncmp(detail, name, l) == 0 && detail[l] == ':', "expected %s, posted %s",
		      name, detail);
}

static void write_cap(struct dsp_spool *s, const char *name, const char *text)
{
	char body[256];
	int len = snprintf(body, sizeof body, "<alert>%s</alert>", text);
	ck_assert_int_eq(dsp_spool_write(s, name, body, (size_t)len), 0);
}

static struct timespec link_mtime(const char *name)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof path, "%s/outgoing/%s", dir, name);
	ck_assert_int_eq(stat(path, &st), 0);
	return st.st_mtim;
}

/* Sets the mtimes of the N links in NAMES to one second, the nanoseconds
 * rising in NAMES' order: files written within the same second. */
static void same_second(const char names[][32], int n)
{
	struct timespec t0 = link_mtime(names[0]);
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct timespec ts[2] = { { 0, UTIME_OMIT }, { t0.tv_sec, 1000L * (i + 1) } };
		snprintf(path, sizeof path, "%s/outgoing/%s", dir, names[i]);
		ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
		struct timespec t = link_mtime(names[i]);
		ck_assert(t.tv_sec == t0.tv_sec && t.tv_nsec == 1000L * (i + 1));
	}
}

#define N_ORDER 12

/* ID.v1.xml ... ID.vN.xml in version (write) order; by name, v10, v11 and
 * v12 come between v1 and v2. */
static void version_names(char names[][32], const char *id, int n)
{
	for (int i = 0; i < n; i++)
		snprintf(names[i], 32, "%s.v%d.xml", id, i + 1);
}

/* The bodies write_cap(…, names[i], names[i]) gives, one a line. */
static void expect_bodies(const char *got, const char names[][32], int n)
{
	char want[16384];
	size_t off = 0;
	for (int i = 0; i < n; i++)
		off += (size_t)snprintf(want + off, sizeof want - off, "<alert>%s</alert>\n", names[i]);
	ck_assert_str_eq(got, want);
}

START_TEST(test_post_order_same_second)
{
	struct recorder rec;
	struct dsp_spool *s = NULL;
	char names[N_ORDER][32];
	version_names(names, "w7", N_ORDER);
	ck_assert_int_lt(strcmp(names[9], names[8]), 0); /* "w7.v10.xml" < "w7.v9.xml" */
	recorder_start(&rec, N_ORDER);
	mk();
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &s), 0);
	for (int i = 0; i < N_ORDER; i++)
		write_cap(s, names[i], names[i]);
	/* whatever the clock did, within one second: by whole seconds and
	 * then names, v10 would go before v2 and v9 */
	same_second((const char(*)[32])names, N_ORDER);
	ck_assert_uint_eq(dsp_spool_queued(s), N_ORDER);
	for (int i = 0; i < N_ORDER; i++) {
		post_expect(s, names[i]);
		ck_assert_uint_eq(dsp_spool_queued(s), (size_t)(N_ORDER - 1 - i));
	}
	char detail[128];
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), 0);
	char *got = recorder_finish(&rec, true);
	expect_bodies(got, (const char(*)[32])names, N_ORDER);
	free(got);
	dsp_spool_free(s);
	rm();
}
END_TEST

START_TEST(test_order_after_reopen)
{
	struct recorder rec;
	struct dsp_spool *s = NULL;
	char a[N_ORDER][32], b[N_ORDER][32];
	version_names(a, "w8", N_ORDER);
	version_names(b, "w9", N_ORDER);
	recorder_start(&rec, 2 * N_ORDER);
	mk();
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &s), 0);
	/* a burst: the file times of one kernel tick would be equal; each
	 * link's mtime is after the one before */
	for (int i = 0; i < N_ORDER; i++)
		write_cap(s, a[i], a[i]);
	for (int i = 1; i < N_ORDER; i++) {
		struct timespec p = link_mtime(a[i - 1]), t = link_mtime(a[i]);
		ck_assert_msg(t.tv_sec > p.tv_sec || (t.tv_sec == p.tv_sec && t.tv_nsec > p.tv_nsec),
			      "%s not after %s", a[i], a[i - 1]);
	}
	dsp_spool_free(s);
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &s), 0);
	ck_assert_uint_eq(dsp_spool_queued(s), N_ORDER);
	for (int i = 0; i < N_ORDER; i++)
		post_expect(s, a[i]);
	ck_assert_uint_eq(dsp_spool_queued(s), 0);
	/* the same second, nanoseconds in write order: the rebuilt queue goes
	 * by the nanoseconds, not by the names */
	for (int i = 0; i < N_ORDER; i++)
		write_cap(s, b[i], b[i]);
	same_second((const char(*)[32])b, N_ORDER);
	dsp_spool_free(s);
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &s), 0);
	ck_assert_uint_eq(dsp_spool_queued(s), N_ORDER);
	for (int i = 0; i < N_ORDER; i++)
		post_expect(s, b[i]);
	char detail[128];
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), 0);
	ck_assert_uint_eq(dsp_spool_queued(s), 0);
	char *got = recorder_finish(&rec, true);
	char all[2 * N_ORDER][32];
	memcpy(all, a, sizeof a);
	memcpy(all + N_ORDER, b, sizeof b);
	expect_bodies(got, (const char(*)[32])all, 2 * N_ORDER);
	free(got);
	dsp_spool_free(s);
	rm();
}
END_TEST

/* The newest queued file's mtime ahead of the clock (a step back of the
 * clock, or one kernel tick for a whole burst): the next file is stamped
 * after it, so the queue rebuilt from the directory keeps the write order. */
START_TEST(test_order_clock_step_back)
{
	struct recorder rec;
	struct dsp_spool *s = NULL;
	char path[4096];
	recorder_start(&rec, 3);
	mk();
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &s), 0);
	write_cap(s, "z.v1.xml", "z1");
	struct timespec t1 = link_mtime("z.v1.xml");
	struct timespec ts[2] = { { 0, UTIME_OMIT }, { t1.tv_sec + 3600, 5 } };
	snprintf(path, sizeof path, "%s/outgoing/z.v1.xml", dir);
	ck_assert_int_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
	dsp_spool_free(s); /* the queue now holds z.v1 an hour ahead */
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &s), 0);
	write_cap(s, "z.v2.xml", "z2");
	write_cap(s, "z.v10.xml", "z10");
	struct timespec t2 = link_mtime("z.v2.xml"), t10 = link_mtime("z.v10.xml");
	ck_assert_msg(t2.tv_sec == t1.tv_sec + 3600 && t2.tv_nsec == 6, "z.v2.xml at %lld.%09ld",
		      (long long)t2.tv_sec, t2.tv_nsec);
	ck_assert_msg(t10.tv_sec == t1.tv_sec + 3600 && t10.tv_nsec == 7, "z.v10.xml at %lld.%09ld",
		      (long long)t10.tv_sec, t10.tv_nsec);
	dsp_spool_free(s);
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &s), 0);
	ck_assert_uint_eq(dsp_spool_queued(s), 3);
	post_expect(s, "z.v1.xml");
	post_expect(s, "z.v2.xml");
	post_expect(s, "z.v10.xml");
	char *got = recorder_finish(&rec, true);
	ck_assert_str_eq(got, "<alert>z1</alert>\n<alert>z2</alert>\n<alert>z10</alert>\n");
	free(got);
	/* an empty queue: no stamping, a file keeps its own mtime */
	write_cap(s, "z.v11.xml", "z11");
	struct timespec t11 = link_mtime("z.v11.xml");
	ck_assert_int_lt(t11.tv_sec, t1.tv_sec + 3600);
	dsp_spool_free(s);
	rm();
}
END_TEST

/* A rewrite of a queued name is queued once, as the newest, in memory and
 * after a reopen, and its new content is what is POSTed. */
START_TEST(test_rewrite_requeued)
{
	struct recorder rec;
	struct dsp_spool *s = NULL;
	recorder_start(&rec, 5);
	mk();
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &s), 0);
	write_cap(s, "a.v1.xml", "a1");
	write_cap(s, "b.v1.xml", "b1");
	write_cap(s, "c.v1.xml", "c1");
	write_cap(s, "a.v1.xml", "a2");
	ck_assert_uint_eq(dsp_spool_queued(s), 3);
	dsp_spool_free(s);
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &s), 0);
	ck_assert_uint_eq(dsp_spool_queued(s), 3);
	post_expect(s, "b.v1.xml");
	post_expect(s, "c.v1.xml");
	post_expect(s, "a.v1.xml");
	ck_assert_uint_eq(dsp_spool_queued(s), 0);
	write_cap(s, "d.v1.xml", "d1");
	write_cap(s, "e.v1.xml", "e1");
	write_cap(s, "d.v1.xml", "d2");
	ck_assert_uint_eq(dsp_spool_queued(s), 2);
	post_expect(s, "e.v1.xml");
	post_expect(s, "d.v1.xml");
	char detail[128];
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), 0);
	char *got = recorder_finish(&rec, true);
	ck_assert_str_eq(got, "<alert>b1</alert>\n<alert>c1</alert>\n<alert>a2</alert>\n"
			      "<alert>e1</alert>\n<alert>d2</alert>\n");
	free(got);
	dsp_spool_free(s);
	rm();
}
END_TEST

struct post_thread {
	struct dsp_spool *s;
	int r;
	char detail[256];
};

static void *post_one(void *ud)
{
	struct post_thread *p = ud;
	p->r = dsp_spool_post_next(p->s, p->detail, sizeof p->detail);
	return NULL;
}

/* A rewrite while the old content's POST is in flight (in another thread,
 * the queue not locked meanwhile): the 2xx for the old content leaves the
 * new link and entry alone, and the new content is POSTed next. */
START_TEST(test_rewrite_during_post)
{
	struct recorder rec;
	struct post_thread p = { NULL, 0, "" };
	pthread_t th;
	char path[4096], b;
	recorder_start_held(&rec, 2, true);
	mk();
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &p.s), 0);
	write_cap(p.s, "r.v1.xml", "r1");
	ck_assert_int_eq(pthread_create(&th, NULL, post_one, &p), 0);
	ck_assert_int_eq(read(rec.got, &b, 1), 1); /* the server has "r1", holds its answer */
	write_cap(p.s, "r.v1.xml", "r2");
	ck_assert_uint_eq(dsp_spool_queued(p.s), 1);
	ck_assert_int_eq(write(rec.go, "g", 1), 1);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	ck_assert_msg(p.r == 1, "%d %s", p.r, p.detail);
	ck_assert_uint_eq(dsp_spool_queued(p.s), 1);
	snprintf(path, sizeof path, "%s/outgoing/r.v1.xml", dir);
	ck_assert_int_eq(access(path, F_OK), 0);
	post_expect(p.s, "r.v1.xml");
	ck_assert_uint_eq(dsp_spool_queued(p.s), 0);
	ck_assert_int_ne(access(path, F_OK), 0);
	char *got = recorder_finish(&rec, true);
	ck_assert_str_eq(got, "<alert>r1</alert>\n<alert>r2</alert>\n");
	free(got);
	dsp_spool_free(p.s);
	rm();
}
END_TEST

/* Links removed from outgoing/ by hand are skipped (the oldest and one in
 * the middle; in a queue from a reopen too); the spool files stay. */
START_TEST(test_removed_by_hand)
{
	struct recorder rec;
	struct dsp_spool *s = NULL;
	char path[4096], detail[128];
	recorder_start(&rec, 3);
	mk();
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &s), 0);
	write_cap(s, "x.v1.xml", "x1");
	write_cap(s, "x.v2.xml", "x2");
	write_cap(s, "x.v3.xml", "x3");
	write_cap(s, "x.v4.xml", "x4");
	snprintf(path, sizeof path, "%s/outgoing/x.v1.xml", dir);
	ck_assert_int_eq(unlink(path), 0);
	snprintf(path, sizeof path, "%s/outgoing/x.v3.xml", dir);
	ck_assert_int_eq(unlink(path), 0);
	post_expect(s, "x.v2.xml");
	post_expect(s, "x.v4.xml");
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), 0);
	ck_assert_uint_eq(dsp_spool_queued(s), 0);
	/* after a reopen: the queue holds y.v1 until a POST finds it gone */
	write_cap(s, "y.v1.xml", "y1");
	write_cap(s, "y.v2.xml", "y2");
	dsp_spool_free(s);
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &s), 0);
	ck_assert_uint_eq(dsp_spool_queued(s), 2);
	snprintf(path, sizeof path, "%s/outgoing/y.v1.xml", dir);
	ck_assert_int_eq(unlink(path), 0);
	post_expect(s, "y.v2.xml");
	ck_assert_int_eq(dsp_spool_post_next(s, detail, sizeof detail), 0);
	ck_assert_uint_eq(dsp_spool_queued(s), 0);
	const char *kept[] = { "x.v1.xml", "x.v3.xml", "y.v1.xml" };
	for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, kept[i]);
		ck_assert_int_eq(access(path, F_OK), 0);
	}
	char *got = recorder_finish(&rec, true);
	ck_assert_str_eq(got, "<alert>x2</alert>\n<alert>x4</alert>\n<alert>y2</alert>\n");
	free(got);
	dsp_spool_free(s);
	rm();
}
END_TEST

#define N_THREADS_FILES 200

struct drain {
	struct dsp_spool *s;
	atomic_bool written; /* the writer is done */
	int posted, err;
	char names[N_THREADS_FILES][32];
	char detail[256];
};

/* Another thread: POSTs until the queue is empty after the writer is done. */
static void *drain_thread(void *ud)
{
	struct drain *d = ud;
	for (;;) {
		bool done = atomic_load(&d->written);
		int r = dsp_spool_post_next(d->s, d->detail, sizeof d->detail);
		if (r == 1 && d->posted < N_THREADS_FILES) {
			char *colon = strchr(d->detail, ':');
			if (colon)
				*colon = '\0';
			snprintf(d->names[d->posted++], 32, "%.31s", d->detail);
		} else if (r == 0 && done) {
			break;
		} else if (r == 0) {
			sched_yield();
		} else {
			d->err = r;
			break;
		}
	}
	return NULL;
}

/* Writes in this thread, POSTs in another: each file once, in write order. */
START_TEST(test_write_post_threads)
{
	struct recorder rec;
	static struct drain d;
	char names[N_THREADS_FILES][32];
	pthread_t th;
	memset(&d, 0, sizeof d);
	atomic_init(&d.written, false);
	for (int i = 0; i < N_THREADS_FILES; i++)
		snprintf(names[i], 32, "t%d.v%d.xml", i / 20, i % 20 + 1);
	recorder_start(&rec, N_THREADS_FILES);
	mk();
	ck_assert_int_eq(dsp_spool_open(dir, rec.url, 5000, &d.s), 0);
	ck_assert_int_eq(pthread_create(&th, NULL, drain_thread, &d), 0);
	for (int i = 0; i < N_THREADS_FILES; i++)
		write_cap(d.s, names[i], names[i]);
	atomic_store(&d.written, true);
	ck_assert_int_eq(pthread_join(th, NULL), 0);
	bool all = d.err == 0 && d.posted == N_THREADS_FILES;
	char *got = recorder_finish(&rec, all);
	ck_assert_int_eq(d.err, 0);
	for (int i = 0; i < N_THREADS_FILES; i++)
		ck_assert_str_eq(d.names[i], names[i]);
	expect_bodies(got, (const char(*)[32])names, N_THREADS_FILES);
	free(got);
	ck_assert_uint_eq(dsp_spool_queued(d.s), 0);
	dsp_spool_free(d.s);
	rm();
}
END_TEST

/* Child of test_poster: reads one request, answers 200 only after a byte
 * on GO; then takes a second request and never answers it. */
static void serve_slow(int lfd, int go)
{
	char req[65536], b;
	int c = accept(lfd, NULL, NULL);
	if (c < 0)
		_exit(2);
	(void)!read(c, req, sizeof req);
	if (read(go, &b, 1) != 1)
		_exit(3);
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
	(void)!write(c, ok, sizeof ok - 1);
	close(c);
	c = accept(lfd, NULL, NULL);
	for (;;)
		pause(); /* killed by the test */
}

struct poster_t {
	int ticks, done, r;
};

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	((struct poster_t *)w->data)->ticks++;
}

static void done_cb(void *ud, int r, const char *detail)
{
	struct poster_t *t = ud;
	t->done++;
	t->r = r;
}

/* Runs LOOP until *COUNTER reaches AT (bounded: 30 s of 10 ms ticks). */
static void run_until(struct ev_loop *loop, const int *counter, int at)
{
	for (int i = 0; i < 3000 && *counter < at; i++)
		ev_run(loop, EVRUN_ONCE);
	ck_assert_int_ge(*counter, at);
}

START_TEST(test_poster)
{
	struct sockaddr_in a;
	int lfd = listen_loopback(&a), go[2];
	ck_assert_int_eq(pipe(go), 0);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		close(go[1]);
		serve_slow(lfd, go[0]);
	}
	close(lfd);
	close(go[0]);

	struct dsp_spool *s = NULL;
	struct dsp_poster *p = NULL;
	char url[64];
	mk();
	snprintf(url, sizeof url, "http://127.0.0.1:%d/cap", ntohs(a.sin_port));
	/* a minute per POST: only the abort can end the second one in time */
	ck_assert_int_eq(dsp_spool_open(dir, url, 60000, &s), 0);
	ck_assert_int_eq(dsp_spool_write(s, "w1.v1.xml", "<alert>1</alert>", 16), 0);
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct poster_t t = { 0, 0, 0 };
	ev_timer tick;
	ev_timer_init(&tick, tick_cb, 0.01, 0.01);
	tick.data = &t;
	ev_timer_start(loop, &tick);
	ck_assert_int_eq(dsp_poster_new(loop, s, done_cb, &t, &p), 0);
	ck_assert(!dsp_poster_busy(p));
	ck_assert_int_eq(dsp_poster_start(p), 1);
	ck_assert_int_eq(dsp_poster_start(p), 0); /* one at a time */
	/* the server holds the answer back: the loop runs on meanwhile */
	run_until(loop, &t.ticks, 20);
	ck_assert(dsp_poster_busy(p));
	ck_assert_int_eq(t.done, 0);
	ck_assert_int_eq(write(go[1], "g", 1), 1);
	run_until(loop, &t.done, 1);
	ck_assert_int_eq(t.r, 1);
	ck_assert(!dsp_poster_busy(p));
	ck_assert_uint_eq(dsp_spool_queued(s), 0);
	/* the second POST is never answered; freeing the poster gives it up */
	ck_assert_int_eq(dsp_spool_write(s, "w1.v2.xml", "<alert>2</alert>", 16), 0);
	ck_assert_int_eq(dsp_poster_start(p), 1);
	run_until(loop, &t.ticks, t.ticks + 20);
	ck_assert(dsp_poster_busy(p));
	p = dsp_poster_free(p);
	ck_assert_int_eq(t.done, 1); /* no DONE for the given-up one */
	ck_assert_uint_eq(dsp_spool_queued(s), 1); /* still queued for the next run */
	ev_timer_stop(loop, &tick);
	ev_loop_destroy(loop);
	kill(pid, SIGKILL);
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	close(go[1]);
	dsp_spool_free(s);
	rm();
}
END_TEST

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	Suite *s = suite_create("dispatch-spool");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_write_atomic_no_post);
	tcase_add_test(tc, test_post_retry);
	tcase_add_test(tc, test_post_keepalive);
	tcase_add_test(tc, test_post_too_large_moved_aside);
	tcase_add_test(tc, test_post_order_same_second);
	tcase_add_test(tc, test_order_after_reopen);
	tcase_add_test(tc, test_order_clock_step_back);
	tcase_add_test(tc, test_rewrite_requeued);
	tcase_add_test(tc, test_rewrite_during_post);
	tcase_add_test(tc, test_removed_by_hand);
	tcase_add_test(tc, test_write_post_threads);
	tcase_add_test(tc, test_poster);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
