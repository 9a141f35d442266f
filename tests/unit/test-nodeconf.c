/* Unit tests for common/src/nodeconf.c */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wf/nodeconf.h"

struct svc {
	int64_t own;
	struct wf_node_config node;
};

static size_t table(struct wf_config_key *t)
{
	t[0] = (struct wf_config_key){ "svc", "own", WF_CONFIG_INT, offsetof(struct svc, own), 0, 9,
				       "3", "own key", NULL };
	return 1 + wf_nodeconf_keys(offsetof(struct svc, node), "wf-x-1", "/var/lib/warnfuse/x",
				    "/usr/share/r.csv", t + 1);
}

START_TEST(test_defaults_and_table)
{
	struct wf_config_key t[1 + WF_NODECONF_NKEYS];
	size_t n = table(t);
	char err[256];
	struct svc s = { 0 };
	struct wf_node_options o;

	ck_assert_uint_eq(n, 1 + WF_NODECONF_NKEYS);
	ck_assert_msg(wf_config_table_check(t, n, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(wf_config_load_string("t.conf", "", t, n, &s, err, sizeof err), 0);
	ck_assert_str_eq(s.node.id, "wf-x-1");
	ck_assert_str_eq(s.node.state_dir, "/var/lib/warnfuse/x");
	ck_assert_str_eq(s.node.regions, "/usr/share/r.csv");
	ck_assert_int_eq(s.node.port, 1883);
	ck_assert_int_eq(s.node.heartbeat_ms, 10000);
	wf_node_options_init(&o);
	ck_assert_int_eq(wf_nodeconf_apply(&s.node, &o, NULL, 0, err, sizeof err), 0);
	ck_assert_str_eq(o.service, "wf-x-1");
	ck_assert_str_eq(o.bus.host, "127.0.0.1");
	ck_assert_int_eq(o.bus.port, 1883);
	ck_assert_int_eq(o.bus.keepalive_s, 30);
	ck_assert_ptr_null(o.bus.password);
	wf_config_free(t, n, &s);
}
END_TEST

START_TEST(test_file_errors)
{
	struct wf_config_key t[1 + WF_NODECONF_NKEYS];
	size_t n = table(t);
	char err[256];
	struct svc s = { 0 };

	ck_assert_int_eq(wf_config_load_string("t.conf", "[mqtt]\nport = 70000\n", t, n, &s, err,
					       sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "t.conf:2:"));
	ck_assert_int_eq(wf_config_load_string("t.conf", "[service]\nid = a/b\nstate_dir=/x\n", t, n,
					       &s, err, sizeof err), 0);
	struct wf_node_options o;
	wf_node_options_init(&o);
	ck_assert_int_eq(wf_nodeconf_apply(&s.node, &o, NULL, 0, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "service.id a/b"));
	wf_config_free(t, n, &s);

	ck_assert_int_eq(wf_config_load_string("t.conf", "[mqtt]\ncertfile = /c.pem\n", t, n, &s, err,
					       sizeof err), 0);
	ck_assert_int_eq(wf_nodeconf_apply(&s.node, &o, NULL, 0, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "certfile"));
	wf_config_free(t, n, &s);
}
END_TEST

START_TEST(test_password_file)
{
	struct wf_config_key t[1 + WF_NODECONF_NKEYS];
	size_t n = table(t);
	char err[256], pw[128], path[] = "/tmp/wf-nodeconf-XXXXXX", text[512];
	struct svc s = { 0 };
	struct wf_node_options o;
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "s3cret\nignored\n", 15), 15);
	close(fd);
	snprintf(text, sizeof text, "[mqtt]\nusername = u\npassword_file = %s\n", path);
	ck_assert_int_eq(wf_config_load_string("t.conf", text, t, n, &s, err, sizeof err), 0);

	ck_assert_int_eq(chmod(path, 0600), 0);
	wf_node_options_init(&o);
	ck_assert_msg(wf_nodeconf_apply(&s.node, &o, pw, sizeof pw, err, sizeof err) == 0, "%s", err);
	ck_assert_str_eq(o.bus.password, "s3cret");
	ck_assert_str_eq(o.bus.username, "u");

	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(wf_nodeconf_apply(&s.node, &o, pw, sizeof pw, err, sizeof err), -EACCES);
	ck_assert_ptr_nonnull(strstr(err, "readable by others"));

	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(wf_nodeconf_apply(&s.node, &o, pw, sizeof pw, err, sizeof err), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "No such file"));
	wf_config_free(t, n, &s);

	/* a password file without a user name */
	snprintf(text, sizeof text, "[mqtt]\npassword_file = /nonexistent\n");
	ck_assert_int_eq(wf_config_load_string("t.conf", text, t, n, &s, err, sizeof err), 0);
	ck_assert_int_eq(wf_nodeconf_apply(&s.node, &o, pw, sizeof pw, err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "needs mqtt.username"));
	wf_config_free(t, n, &s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("nodeconf");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_defaults_and_table);
	tcase_add_test(tc, test_file_errors);
	tcase_add_test(tc, test_password_file);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
