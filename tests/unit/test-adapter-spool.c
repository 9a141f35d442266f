/* adapter skeleton: spool protocol (done/, rejected/ + .reason, dotfiles),
 * duplicate files, a crash between commit and rename (same outbox
 * content), size limit, and the real `wf-met --dry-run` binary. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "met.h"
#include "wf/clock.h"
#include "wf/outbox.h"
#include "wf/region.h"
#include "wf/store.h"

static struct wf_region_table *regions;
static void *state;
static char dir[256], spool[300], statedir[300];
static struct wf_store *store;
static struct wf_outbox *outbox;
static struct wf_adapter_spool sp;
static int64_t now_ms = 1626800000000LL;
static struct wf_clock clk;

static const struct wf_adapter_ops ops = {
	.kind = "met", .agency = WF__V1__AGENCY__AGENCY_MET,
	.config_load = met_config_load, .config_free = met_config_free,
};

static int parse_any(void *st, const char *name, const uint8_t *buf, size_t len, int64_t now,
		     struct wf_adapter_sink *sink)
{
	if (met_cap_sniff(buf, len))
		return met_cap_parse(st, name, buf, len, now, sink);
	return met_aws_parse(st, name, buf, len, now, sink);
}

static int no_publish(void *ud, const char *t, const void *p, size_t l)
{
	return -ENOTCONN;
}

static void put_file(const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", spool, name);
	FILE *f = fopen(p, "wb");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static bool exists(const char *rel)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", spool, rel);
	return access(p, F_OK) == 0;
}

static void open_all(void)
{
	struct wf_store_options so = { .path = statedir, .nosync = true };
	struct wf_outbox_options oo = { .publish = no_publish, .clock = &clk };
	ck_assert_int_eq(wf_store_open(&so, &store), 0);
	ck_assert_int_eq(wf_outbox_open(store, "wf-met-test", &oo, &outbox), 0);
	memset(&sp, 0, sizeof sp);
	static struct wf_adapter_ops o;
	o = ops;
	o.parse = parse_any;
	sp.ops = &o;
	sp.state = state;
	sp.store = store;
	sp.outbox = outbox;
	sp.dir = spool;
	sp.clock = &clk;
	ck_assert_int_eq(wf_adapter_spool_init(&sp), 0);
}

static void close_all(void)
{
	outbox = wf_outbox_close(outbox);
	store = wf_store_close(store);
}

static void setup(void)
{
	char err[256];
	clk = wf_clock_manual(&now_ms);
	snprintf(dir, sizeof dir, "/tmp/wf-adapter-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(spool, sizeof spool, "%s/spool", dir);
	snprintf(statedir, sizeof statedir, "%s/state", dir);
	ck_assert_int_eq(mkdir(spool, 0700), 0);
	ck_assert_int_eq(wf_region_table_load(getenv("WF_REGIONS"), &regions, NULL), 0);
	char conf[300];
	snprintf(conf, sizeof conf, "%s/met.conf", dir);
	FILE *f = fopen(conf, "w");
	fputs("[met.stations]\n57083 = 410102000000\n", f);
	fclose(f);
	ck_assert_int_eq(met_config_load(conf, regions, &state, err, sizeof err), 0);
	open_all();
}

static void teardown(void)
{
	char cmd[300];
	close_all();
	met_config_free(state);
	wf_region_table_free(regions);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

#define HDR "station,time,rain_mm,wind_mean_ms,wind_gust_ms,temp_c,visibility_m\n"
static const char *GOOD = HDR "57083,2021-07-20T08:00:00Z,120,,,,\n57083,2021-07-20T09:00:00Z,1,,,,\n";

static uint64_t pending(uint64_t *bytes)
{
	uint64_t n = 0;
	ck_assert_int_eq(wf_outbox_pending(outbox, &n, bytes), 0);
	return n;
}

START_TEST(spool_protocol)
{
	put_file("a.csv", GOOD);
	put_file(".b.csv.tmp", GOOD);                             /* being written */
	put_file("c.csv", HDR "99999,2021-07-20T08:00:00Z,1,,,,\n"); /* unknown station */
	put_file("d.csv", GOOD);                                  /* same bytes as a.csv */
	ck_assert_int_eq(wf_adapter_spool_scan(&sp), 3);
	ck_assert(exists("done/a.csv"));
	ck_assert(exists("done/d.csv"));
	ck_assert(exists("rejected/c.csv"));
	ck_assert(exists("rejected/c.csv.reason"));
	ck_assert(exists(".b.csv.tmp"));
	ck_assert_uint_eq(sp.stats.files_done, 1);
	ck_assert_uint_eq(sp.stats.files_duplicate, 1);
	ck_assert_uint_eq(sp.stats.files_rejected, 1);
	ck_assert_uint_eq(sp.stats.events, 2);
	ck_assert_uint_eq(pending(NULL), 2);
	char p[512], reason[256] = "";
	snprintf(p, sizeof p, "%s/rejected/c.csv.reason", spool);
	FILE *f = fopen(p, "r");
	ck_assert_ptr_nonnull(fgets(reason, sizeof reason, f));
	fclose(f);
	ck_assert_ptr_nonnull(strstr(reason, "unknown station"));
	/* nothing left: a second scan does nothing */
	ck_assert_int_eq(wf_adapter_spool_scan(&sp), 0);
}
END_TEST

START_TEST(crash_between_commit_and_rename)
{
	uint64_t b1 = 0, b2 = 0;
	put_file("a.csv", GOOD);
	ck_assert_int_eq(wf_adapter_spool_scan(&sp), 1);
	uint64_t n1 = pending(&b1);
	ck_assert_uint_eq(n1, 2);
	/* the crash: committed, but the file is still in the spool; restart */
	close_all();
	put_file("a.csv", GOOD);
	char p[512];
	snprintf(p, sizeof p, "%s/done/a.csv", spool);
	unlink(p);
	open_all();
	ck_assert_int_eq(wf_adapter_spool_scan(&sp), 1);
	ck_assert_uint_eq(sp.stats.files_duplicate, 1);
	ck_assert_uint_eq(sp.stats.events, 0);
	ck_assert_uint_eq(pending(&b2), n1);
	ck_assert_uint_eq(b2, b1);
	ck_assert(exists("done/a.csv"));
	ck_assert(!exists("a.csv"));
}
END_TEST

START_TEST(oversized_and_stdin_buffer)
{
	sp.max_file = 64;
	put_file("big.csv", GOOD);
	ck_assert_int_eq(wf_adapter_spool_scan(&sp), 1);
	ck_assert(exists("rejected/big.csv"));
	char reason[256];
	ck_assert_int_eq(wf_adapter_spool_buffer(&sp, "-", (const uint8_t *)GOOD, strlen(GOOD),
						 reason, sizeof reason), 0);
	ck_assert_ptr_nonnull(strstr(reason, "too large"));
	sp.max_file = 0;
	ck_assert_int_eq(wf_adapter_spool_buffer(&sp, "-", (const uint8_t *)GOOD, strlen(GOOD),
						 reason, sizeof reason), 1);
	ck_assert_uint_eq(pending(NULL), 2);
	/* the same bytes again: a duplicate */
	ck_assert_int_eq(wf_adapter_spool_buffer(&sp, "-", (const uint8_t *)GOOD, strlen(GOOD),
						 reason, sizeof reason), 1);
	ck_assert_uint_eq(pending(NULL), 2);
}
END_TEST

static int run(const char *args, char *out, size_t size)
{
	char cmd[2048];
	const char *b = getenv("WF_BUILD_ROOT");
	snprintf(cmd, sizeof cmd, "%s/services/met/wf-met %s", b ? b : ".", args);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	size_t n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(dry_run_binary)
{
	static char out[65536];
	char args[1024];
	const char *src = getenv("WF_SOURCE_ROOT");
	put_file("bad.csv", HDR "57083,2021-07-20T08:00:00Z,1,,,,"); /* truncated */
	snprintf(args, sizeof args,
		 "--config %s/deploy/examples/met/met.conf --now 2021-07-20T18:00:00+08:00 --dry-run "
		 "%s/deploy/examples/met/aws-20210720T1700.csv %s/deploy/examples/met/cap-rainstorm-red.xml",
		 src, src, src);
	ck_assert_int_eq(run(args, out, sizeof out), 0);
	ck_assert_ptr_nonnull(strstr(out, "\"hazard\":\"HAZARD_RAINSTORM\""));
	ck_assert_ptr_nonnull(strstr(out, "\"level\":\"LEVEL_I\""));
	ck_assert_ptr_nonnull(strstr(out, "\"id\":\"met-aws-57083-20210720T080000Z-rainstorm\""));
	snprintf(args, sizeof args,
		 "--config %s/deploy/examples/met/met.conf --now 2021-07-20T18:00:00+08:00 --dry-run "
		 "%s/deploy/examples/met/aws-20210720T1700.csv %s/bad.csv 2>/dev/null", src, src, spool);
	ck_assert_int_eq(run(args, out, sizeof out), 3);
	ck_assert_ptr_nonnull(strstr(out, "{\"rejected\":"));
	ck_assert_ptr_nonnull(strstr(out, "\"reason\":\"truncated"));
	ck_assert_int_eq(run("--dry-run 2>/dev/null", out, sizeof out), 2);
	ck_assert_int_eq(run("--bogus 2>/dev/null", out, sizeof out), 2);
	ck_assert_int_eq(run("--help", out, sizeof out), 0);
	ck_assert_ptr_nonnull(strstr(out, "--dry-run"));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("adapter-spool");
	TCase *tc = tcase_create("spool");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, spool_protocol);
	tcase_add_test(tc, crash_between_commit_and_rename);
	tcase_add_test(tc, oversized_and_stdin_buffer);
	tcase_add_test(tc, dry_run_binary);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
