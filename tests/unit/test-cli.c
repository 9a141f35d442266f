/* Unit tests for common/src/cli.c */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "wf/cli.h"
#include "wf/log.h"

static const struct wf_cli_info info = {
	.name = "wf-test",
	.version = "1.2.3",
	.summary = "Test service.",
	.default_config = "/nonexistent/warnfuse/test.conf",
	.extra_help = "Service options: none.",
};

struct cfg {
	int64_t port;
	char *host;
};

static const struct wf_config_key T[] = {
	{ "mqtt", "port", WF_CONFIG_INT, offsetof(struct cfg, port), 1, 65535, "1883",
	  "Broker port.", NULL },
	{ "mqtt", "host", WF_CONFIG_STRING, offsetof(struct cfg, host), 0, 0, "localhost",
	  "Broker host.", NULL },
};

/* memory streams for OUT and ERR */
static char *out_buf, *err_buf;
static size_t out_len, err_len;
static FILE *out, *err;

static void setup(void)
{
	out = open_memstream(&out_buf, &out_len);
	err = open_memstream(&err_buf, &err_len);
	ck_assert_ptr_nonnull(out);
	ck_assert_ptr_nonnull(err);
}

static void teardown(void)
{
	if (out)
		fclose(out);
	if (err)
		fclose(err);
	free(out_buf);
	free(err_buf);
	out_buf = err_buf = NULL;
}

static void flush(void)
{
	fflush(out);
	fflush(err);
}

static int parse(struct wf_cli *c, char **argv)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	return wf_cli_parse(&info, argc, argv, c, out, err);
}

START_TEST(test_defaults_and_options)
{
	struct wf_cli c;
	char *a0[] = { "wf-test", NULL };
	ck_assert_int_eq(parse(&c, a0), 0);
	ck_assert_str_eq(c.config_path, "/nonexistent/warnfuse/test.conf");
	ck_assert(!c.config_explicit);
	ck_assert(!c.check_config);
	ck_assert(!c.print_config);
	ck_assert_int_eq(c.log_level, -1);
	ck_assert_int_eq(c.nargs, 0);
	wf_cli_free(&c);

	char *a1[] = { "wf-test", "-c", "a.conf", "--check-config", "--log-level", "debug",
		       "spool", "--", "--not-an-option", NULL };
	ck_assert_int_eq(parse(&c, a1), 0);
	ck_assert_str_eq(c.config_path, "a.conf");
	ck_assert(c.config_explicit);
	ck_assert(c.check_config);
	ck_assert_int_eq(c.log_level, LOG_DEBUG);
	ck_assert_int_eq(c.nargs, 2);
	ck_assert_str_eq(c.args[0], "spool");
	ck_assert_str_eq(c.args[1], "--not-an-option");
	ck_assert_ptr_null(c.args[2]);
	wf_cli_free(&c);
	wf_cli_free(NULL);

	char *a2[] = { "wf-test", "--config=b.conf", "--log-level=warning", "--print-config", NULL };
	ck_assert_int_eq(parse(&c, a2), 0);
	ck_assert_str_eq(c.config_path, "b.conf");
	ck_assert(c.print_config);
	ck_assert_int_eq(c.log_level, LOG_WARNING);
	wf_cli_free(&c);
	flush();
	ck_assert_uint_eq(out_len, 0);
	ck_assert_uint_eq(err_len, 0);
}
END_TEST

START_TEST(test_help_version)
{
	struct wf_cli c;
	memset(&c, 0x5A, sizeof c);
	struct wf_cli before = c;
	char *a1[] = { "wf-test", "--help", NULL };
	ck_assert_int_eq(parse(&c, a1), 1);
	flush();
	ck_assert_ptr_nonnull(strstr(out_buf, "Usage: wf-test [OPTIONS]\nTest service.\n"));
	ck_assert_ptr_nonnull(strstr(out_buf, "(default: /nonexistent/warnfuse/test.conf)"));
	ck_assert_ptr_nonnull(strstr(out_buf, "--check-config"));
	ck_assert_ptr_nonnull(strstr(out_buf, "Service options: none."));
	ck_assert(memcmp(&c, &before, sizeof c) == 0);

	char *a2[] = { "wf-test", "-V", NULL };
	ck_assert_int_eq(parse(&c, a2), 1);
	flush();
	ck_assert_ptr_nonnull(strstr(out_buf, "wf-test 1.2.3\n"));
	ck_assert_uint_eq(err_len, 0);
}
END_TEST

START_TEST(test_usage_errors)
{
	struct wf_cli c;
	memset(&c, 0x5A, sizeof c);
	struct wf_cli before = c;
	char *a1[] = { "wf-test", "--bogus", NULL };
	ck_assert_int_eq(parse(&c, a1), -EINVAL);
	flush();
	ck_assert_str_eq(err_buf, "wf-test: unknown option '--bogus'\nTry 'wf-test --help'.\n");

	char *a2[] = { "wf-test", "--config", NULL };
	ck_assert_int_eq(parse(&c, a2), -EINVAL);
	char *a3[] = { "wf-test", "--log-level", "loud", NULL };
	ck_assert_int_eq(parse(&c, a3), -EINVAL);
	char *a4[] = { "wf-test", "--config=", NULL };
	ck_assert_int_eq(parse(&c, a4), -EINVAL);
	flush();
	ck_assert_ptr_nonnull(strstr(err_buf, "wf-test: invalid log level 'loud'\n"));
	ck_assert(memcmp(&c, &before, sizeof c) == 0);
	ck_assert_uint_eq(out_len, 0);
}
END_TEST

START_TEST(test_load_config)
{
	char dir[] = "/tmp/wf-test-cli-XXXXXX";
	char good[64], bad[64];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(good, sizeof good, "%s/good.conf", dir);
	snprintf(bad, sizeof bad, "%s/bad.conf", dir);
	FILE *f = fopen(good, "w");
	ck_assert_ptr_nonnull(f);
	fputs("[mqtt]\nport = 8883\n", f);
	fclose(f);
	f = fopen(bad, "w");
	ck_assert_ptr_nonnull(f);
	fputs("[mqtt]\nport = 0\n", f);
	fclose(f);

	struct wf_cli c;
	struct cfg cfg = { 0 };

	/* the default path does not exist: built-in defaults */
	char *a0[] = { "wf-test", NULL };
	ck_assert_int_eq(parse(&c, a0), 0);
	ck_assert_int_eq(wf_cli_load_config(&info, &c, T, 2, &cfg, out, err), WF_CLI_RUN);
	ck_assert_int_eq(cfg.port, 1883);
	ck_assert_str_eq(cfg.host, "localhost");
	wf_config_free(T, 2, &cfg);
	wf_cli_free(&c);

	/* an explicit missing path is an error */
	char *a1[] = { "wf-test", "-c", "/nonexistent/x.conf", NULL };
	ck_assert_int_eq(parse(&c, a1), 0);
	ck_assert_int_eq(wf_cli_load_config(&info, &c, T, 2, &cfg, out, err), WF_EXIT_USAGE);
	flush();
	ck_assert_str_eq(err_buf, "wf-test: /nonexistent/x.conf: No such file or directory\n");
	ck_assert_ptr_null(cfg.host);
	wf_cli_free(&c);

	/* --check-config on a good and a bad file */
	char *a2[] = { "wf-test", "--check-config", "-c", good, NULL };
	ck_assert_int_eq(parse(&c, a2), 0);
	ck_assert_int_eq(wf_cli_load_config(&info, &c, T, 2, &cfg, out, err), WF_EXIT_OK);
	ck_assert_int_eq(cfg.port, 8883);
	wf_config_free(T, 2, &cfg);
	wf_cli_free(&c);
	flush();
	char want[256];
	snprintf(want, sizeof want, "%s: OK\n", good);
	ck_assert_str_eq(out_buf, want);

	char *a3[] = { "wf-test", "--check-config", "-c", bad, NULL };
	ck_assert_int_eq(parse(&c, a3), 0);
	ck_assert_int_eq(wf_cli_load_config(&info, &c, T, 2, &cfg, out, err), WF_EXIT_USAGE);
	wf_cli_free(&c);
	flush();
	snprintf(want, sizeof want,
		 "%s:2: invalid value '0' for 'port' in [mqtt]: out of range [1, 65535]\n", bad);
	ck_assert_ptr_nonnull(strstr(err_buf, want));

	/* --print-config prints the defaults and does not load anything */
	char *a4[] = { "wf-test", "--print-config", "-c", bad, NULL };
	ck_assert_int_eq(parse(&c, a4), 0);
	ck_assert_int_eq(wf_cli_load_config(&info, &c, T, 2, &cfg, out, err), WF_EXIT_OK);
	wf_cli_free(&c);
	flush();
	ck_assert_ptr_nonnull(strstr(out_buf, "[mqtt]\n"));
	ck_assert_ptr_nonnull(strstr(out_buf, "port = 1883\n"));
	ck_assert_ptr_null(cfg.host);

	unlink(good);
	unlink(bad);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults_and_options);
	tcase_add_test(tc, test_help_version);
	tcase_add_test(tc, test_usage_errors);
	tcase_add_test(tc, test_load_config);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
