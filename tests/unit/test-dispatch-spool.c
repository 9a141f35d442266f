/* Unit tests for the CAP spool (services/dispatch/spool.c): atomic writes,
 * the outgoing/ POST queue, a failed POST kept and retried, a 2xx removing
 * it, against a minimal HTTP server in a child process on a loopback port
 * the kernel picks; and the POST worker (poster.c): the loop runs on while
 * a POST hangs, and stopping gives the hanging POST up. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ev.h>

#include "poster.h"
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
	char path[256], sub[128];
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
		size_t got = 0;
		/* read headers and the body (Content-Length) */
		for (;;) {
			ssize_t k = read(c, req + got, sizeof req - 1 - got);
			if (k <= 0)
				break;
			got += (size_t)k;
			req[got] = '\0';
			char *end = strstr(req, "\r\n\r\n");
			char *cl = strcasestr(req, "Content-Length:");
			if (end && cl && got >= (size_t)(end + 4 - req) + (size_t)atol(cl + 15))
				break;
		}
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
	tcase_add_test(tc, test_poster);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
