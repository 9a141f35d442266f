/* Runs the wf-fusion binary in replay mode on tests/fixtures/fusion/ and
 * checks its output, stderr and exit status. */
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char exe[512], fixture[512], rules[512], regions[512], tmpdir[256];

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

static void tc_setup(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/wf-test-freplay-XXXXXX", base && *base ? base : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tc_teardown(void)
{
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	char *buf = calloc(1, 1 << 20);
	size_t n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* runs wf-fusion ARGV; returns the exit status, output in *out / *err */
static int run(char *const argv[], char **out, char **err)
{
	char po[600], pe[600];
	snprintf(po, sizeof po, "%s/out", tmpdir);
	snprintf(pe, sizeof pe, "%s/err", tmpdir);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fo = open(po, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(pe, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		if (fo < 0 || fe < 0)
			_exit(127);
		dup2(fo, 1);
		dup2(fe, 2);
		setenv("TMPDIR", tmpdir, 1);
		execv(exe, argv);
		_exit(127);
	}
	int st = 0;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	*out = slurp(po);
	*err = slurp(pe);
	return WEXITSTATUS(st);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

START_TEST(replay_fixture)
{
	char *argv[] = { exe, (char *)"--replay", fixture, (char *)"--rules", rules,
			 (char *)"--regions", regions, (char *)"--drain", NULL };
	char *out, *err;
	int rc = run(argv, &out, &err);
	ck_assert_msg(rc == 1, "exit %d (1: lines rejected); stderr: %s", rc, err);
	ck_assert_uint_eq(count(out, "\n"), 6);
	ck_assert_uint_eq(count(out, "\"msg_type\":\"MSG_TYPE_ALERT\""), 3);
	ck_assert_uint_eq(count(out, "\"msg_type\":\"MSG_TYPE_CANCEL\""), 3);
	ck_assert_ptr_nonnull(strstr(out, "\"hazard\":\"HAZARD_FLOOD\",\"level\":\"LEVEL_II\""));
	ck_assert_ptr_nonnull(strstr(out, "\"rule_ids\":[\"direct\",\"flood-chain\"]"));
	ck_assert_ptr_nonnull(strstr(out, "\"event_ids\":[\"met:met-1\",\"water:wat-1\"]"));
	ck_assert_ptr_nonnull(strstr(out, "\"status\":\"STATUS_EXERCISE\""));
	ck_assert_ptr_nonnull(strstr(err, "chain.jsonl:6: rejected (unknown_region)"));
	ck_assert_ptr_nonnull(strstr(err, "chain.jsonl:7: "));
	ck_assert_ptr_nonnull(strstr(err, "4 events (3 applied, 1 duplicate"));
	ck_assert_ptr_nonnull(strstr(err, "2 rejected"));
	/* the same input gives byte-identical output */
	char *out2, *err2;
	ck_assert_int_eq(run(argv, &out2, &err2), 1);
	ck_assert_str_eq(out, out2);
	free(out); free(err); free(out2); free(err2);
}
END_TEST

START_TEST(usage_and_errors)
{
	char *out, *err;
	char *help[] = { exe, (char *)"--help", NULL };
	ck_assert_int_eq(run(help, &out, &err), 0);
	ck_assert_ptr_nonnull(strstr(out, "--replay FILE"));
	free(out); free(err);
	char *norules[] = { exe, (char *)"--replay", fixture, NULL };
	ck_assert_int_eq(run(norules, &out, &err), 2);
	ck_assert_ptr_nonnull(strstr(err, "--replay FILE and --rules FILE are required"));
	free(out); free(err);
	/* without --replay / --check-rules it is the daemon: a missing config
	 * file is a usage error naming it */
	char *daemon[] = { exe, (char *)"--config", (char *)"x.conf", NULL };
	ck_assert_int_eq(run(daemon, &out, &err), 2);
	ck_assert_ptr_nonnull(strstr(err, "x.conf"));
	free(out); free(err);
	char *replay_help[] = { exe, (char *)"--replay", (char *)"-", (char *)"--help", NULL };
	ck_assert_int_eq(run(replay_help, &out, &err), 0);
	ck_assert_ptr_nonnull(strstr(out, "--drain"));
	free(out); free(err);
	char badrules[600];
	snprintf(badrules, sizeof badrules, "%s/bad.conf", tmpdir);
	FILE *f = fopen(badrules, "w");
	fputs("[fusion]\n\ndwell = forever\n", f);
	fclose(f);
	char *bad[] = { exe, (char *)"--replay", fixture, (char *)"--rules", badrules, NULL };
	ck_assert_int_eq(run(bad, &out, &err), 2);
	char want[700];
	snprintf(want, sizeof want, "%s:3: bad duration 'forever'", badrules);
	ck_assert_ptr_nonnull(strstr(err, want));
	free(out); free(err);
	char *check[] = { exe, (char *)"--check-rules", rules, NULL };
	ck_assert_int_eq(run(check, &out, &err), 0);
	ck_assert_ptr_nonnull(strstr(out, "12 rules OK"));
	free(out); free(err);
}
END_TEST

int main(void)
{
	const char *src = getenv("WF_SOURCE_ROOT"), *bld = getenv("WF_BUILD_ROOT");
	const char *reg = getenv("WF_REGIONS");
	if (!src || !bld || !reg) {
		fprintf(stderr, "WF_SOURCE_ROOT, WF_BUILD_ROOT and WF_REGIONS must be set\n");
		return 1;
	}
	snprintf(exe, sizeof exe, "%s/services/fusion/wf-fusion", bld);
	snprintf(fixture, sizeof fixture, "%s/tests/fixtures/fusion/chain.jsonl", src);
	snprintf(rules, sizeof rules, "%s/deploy/fusion-rules.conf", src);
	snprintf(regions, sizeof regions, "%s", reg);
	Suite *s = suite_create("fusion-replay");
	TCase *tc = tcase_create("replay");
	tcase_add_checked_fixture(tc, tc_setup, tc_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, replay_fixture);
	tcase_add_test(tc, usage_and_errors);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
