/* Integration: an adapter that died between committing a file and moving
 * it to done/ keeps that file's rows in its history (found by tests/chaos:
 * wf-met graded the next hours' rain without the file's rows, so fusion's
 * warnings differed from an uninterrupted run).
 *
 * The met adapter's 3-hour accumulation spans two files. The first file is
 * processed by the daemon, which then stops; the file is put back from
 * done/ into the spool, which is exactly the state a kill between the
 * commit and the rename leaves (its digest recorded, the file in the spool,
 * not in done/). The second file is dropped and the daemon started again:
 * the first is moved as already processed (no events again) and the second
 * must grade with the first one's rain, i.e. the consumer ends with the
 * events of one dry run over both files, each once. */
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "broker.h"
#include "proc.h"
#include "wf/clock.h"
#include "wf/node.h"

#define MAX_IDS 256

static char *tmp;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_int_ge(fputs(text, f), 0);
	ck_assert_int_eq(fclose(f), 0);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static char *path_in(const char *dir, const char *name)
{
	char *p;
	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

struct sink {
	struct wf_node *node;
	int64_t offset_ms;
	struct wf_clock clock;
	char *ids[MAX_IDS];
	size_t n;
};

static int sink_event(void *ud, struct wf_txn *t, const Wf__V1__Event *ev,
		      const struct wf_node_msg *m, struct wf_codec_error *why)
{
	struct sink *s = ud;
	(void)t;
	(void)m;
	(void)why;
	ck_assert_uint_lt(s->n, MAX_IDS);
	s->ids[s->n++] = strdup(ev->id);
	return 0;
}

struct count_wait {
	struct sink *s;
	size_t want;
};

static bool sink_has(void *ud)
{
	struct count_wait *w = ud;
	return w->s->n >= w->want;
}

static bool sink_ready(void *ud) { return wf_node_ready(((struct sink *)ud)->node); }
static bool node_gone(void *ud) { return !wf_node_connected(ud); }

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The ids of EXE --dry-run over FILES, sorted; returns how many. */
static size_t dry_run(const char *exe, const char *conf, const char *now, char **files, int n,
		      char **ids)
{
	char *argv[16] = { (char *)exe, (char *)"--config", (char *)conf, (char *)"--now",
			   (char *)now, (char *)"--dry-run" };
	char *out = NULL;
	size_t k = 0;
	for (int i = 0; i < n; i++)
		argv[6 + i] = files[i];
	ck_assert_int_eq(wf_test_capture(argv, NULL, NULL, &out, 60000), 0);
	for (char *save = NULL, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		cJSON *j = cJSON_Parse(l);
		ck_assert_ptr_nonnull(j);
		cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
		ck_assert(cJSON_IsString(id));
		ck_assert_uint_lt(k, MAX_IDS);
		ids[k++] = strdup(id->valuestring);
		cJSON_Delete(j);
	}
	free(out);
	qsort(ids, k, sizeof *ids, cmp_str);
	return k;
}

START_TEST(test_history_keeps_a_committed_unmoved_file)
{
	const char *now = "2026-07-20T10:30:00+08:00";
	const char *hdr = "station,time,rain_mm,wind_mean_ms,wind_gust_ms,temp_c,visibility_m\n";
	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	struct wf_test_broker *br = NULL;
	char text[2048], *want[MAX_IDS], *only_b[MAX_IDS], *only_a[MAX_IDS];

	ck_assert_int_eq(wf_test_broker_start(NULL, &br), 0);
	char *spool = path_in(tmp, "spool"), *gen = path_in(tmp, "gen");
	ck_assert_int_eq(mkdir(spool, 0700), 0);
	ck_assert_int_eq(mkdir(gen, 0700), 0);
	/* the example's agency sections, our [service]/[mqtt]/[adapter] */
	char *example = wf_test_source_path("deploy/examples/met/met.conf");
	char *ex = read_file(example), *conf = path_in(tmp, "met.conf");
	char *body = strstr(ex, "\n[met]");
	ck_assert_ptr_nonnull(body);
	snprintf(text, sizeof text,
		 "[service]\nid = wf-met-crash\nstate_dir = %s/state\nheartbeat = 1s\nresend = 1s\n"
		 "[mqtt]\nhost = 127.0.0.1\nport = %d\n[adapter]\nspool = %s\n",
		 tmp, wf_test_broker_port(br), spool);
	char *full;
	ck_assert_int_ge(asprintf(&full, "%s%s\n", text, body), 0);
	write_file(conf, full);

	char *a = path_in(gen, "aws-20260720T0800.csv"), *b = path_in(gen, "aws-20260720T0900.csv");
	snprintf(text, sizeof text, "%s57180,2026-07-20T07:00:00+08:00,22.4,3.1,7.5,24.6,4000\n"
				    "57180,2026-07-20T08:00:00+08:00,31.0,3.4,8.2,24.2,3000\n", hdr);
	write_file(a, text);
	snprintf(text, sizeof text, "%s57180,2026-07-20T09:00:00+08:00,28.6,3.0,7.9,24.0,3500\n", hdr);
	write_file(b, text);
	char *exe = wf_test_build_path("services/met/wf-met");
	char *both[] = { a, b };
	size_t n_want = dry_run(exe, conf, now, both, 2, want);
	size_t n_b = dry_run(exe, conf, now, both + 1, 1, only_b);
	size_t n_a = dry_run(exe, conf, now, both, 1, only_a);
	ck_assert_uint_gt(n_want, n_b + 1); /* the second file needs the first's rain */

	struct sink *s = calloc(1, sizeof *s);
	struct wf_node_options o;
	struct wf_node_callbacks cb = { .on_event = sink_event };
	const char *filter = "wf/v1/event/#";
	char *sd = path_in(tmp, "sink");
	int64_t at;
	ck_assert_int_eq(wf_clock_parse(now, &at), 0);
	s->offset_ms = at - wf_clock_now_ms(NULL); /* it validates event times on its clock */
	s->clock = wf_clock_shifted(&s->offset_ms);
	wf_node_options_init(&o);
	o.service = "wf-fusion-sink";
	o.kind = "fusion";
	o.state_dir = sd;
	o.nosync = true;
	o.bus.port = wf_test_broker_port(br);
	o.inputs = &filter;
	o.n_inputs = 1;
	o.clock = &s->clock;
	ck_assert_int_eq(wf_node_new(loop, &o, &cb, s, &s->node), 0);
	ck_assert_int_eq(wf_node_start(s->node), 0);
	ck_assert(wf_test_run_until(loop, sink_ready, s, 10000));

	char *log = path_in(tmp, "met.log");
	char *argv[] = { exe, (char *)"--config", conf, (char *)"--now", (char *)now, NULL };
	pid_t pid = wf_test_spawn(argv, NULL, log);
	ck_assert_int_gt(pid, 0);
	char *sa = path_in(spool, "aws-20260720T0800.csv"), *sb = path_in(spool, "aws-20260720T0900.csv");
	char *da = path_in(spool, "done/aws-20260720T0800.csv");
	char *ta = read_file(a);
	write_file(sa, ta);
	struct count_wait first = { s, n_a };
	ck_assert_uint_gt(n_a, 0);
	ck_assert_msg(wf_test_run_until(loop, sink_has, &first, 20000), "%zu events (log %s)", s->n,
		      log);
	ck_assert_int_eq(wf_test_stop(pid, SIGTERM, 10000), 0);

	/* the state a kill between commit and rename leaves */
	ck_assert_int_eq(rename(da, sa), 0);
	char *tb = read_file(b);
	write_file(sb, tb);
	pid = wf_test_spawn(argv, NULL, log);
	ck_assert_int_gt(pid, 0);
	struct count_wait all = { s, n_want };
	ck_assert_msg(wf_test_run_until(loop, sink_has, &all, 20000),
		      "%zu of %zu events after the restart: the second file graded without the "
		      "first one's rain (log %s)",
		      s->n, n_want, log);
	ck_assert_int_eq(wf_test_stop(pid, SIGTERM, 10000), 0);
	wf_test_run_for(loop, 300); /* late duplicates would show here */
	qsort(s->ids, s->n, sizeof *s->ids, cmp_str);
	ck_assert_uint_eq(s->n, n_want);
	for (size_t i = 0; i < n_want; i++)
		ck_assert_str_eq(s->ids[i], want[i]);
	char *lt = read_file(log);
	ck_assert_ptr_nonnull(strstr(lt, "history: re-read 1 file(s) committed but not yet moved"));
	ck_assert_ptr_nonnull(strstr(lt, "duplicate: already processed"));
	ck_assert_int_eq(access(da, F_OK), 0);

	wf_node_stop(s->node);
	(void)wf_test_run_until(loop, node_gone, s->node, 5000);
	wf_node_free(s->node);
	for (size_t i = 0; i < s->n; i++)
		free(s->ids[i]);
	free(s);
	for (size_t i = 0; i < n_want; i++)
		free(want[i]);
	for (size_t i = 0; i < n_b; i++)
		free(only_b[i]);
	for (size_t i = 0; i < n_a; i++)
		free(only_a[i]);
	free(lt);
	free(ta);
	free(tb);
	free(sa);
	free(sb);
	free(da);
	free(log);
	free(sd);
	free(exe);
	free(a);
	free(b);
	free(full);
	free(conf);
	free(ex);
	free(example);
	free(spool);
	free(gen);
	wf_test_broker_free(br);
	ev_loop_destroy(loop);
}
END_TEST

static void setup(void)
{
	tmp = wf_test_mkdtemp("adapter-crash");
	ck_assert_ptr_nonnull(tmp);
}

static void teardown(void)
{
	if (getenv("WF_TEST_KEEP") == NULL)
		wf_test_rmtree(tmp);
	free(tmp);
}

int main(void)
{
	Suite *s = suite_create("adapter-crash");
	TCase *tc = tcase_create("crash");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_history_keeps_a_committed_unmoved_file);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
