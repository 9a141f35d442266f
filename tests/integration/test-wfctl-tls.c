/* Integration: wfctl over the broker's TLS listener with client
 * certificates (docs/operations.md 4a, the documented option off
 * loopback). The test makes a CA, a server and a client certificate with
 * the openssl command, starts a private mosquitto with a second listener
 * (TLS, require_certificate true) on a free 127.0.0.1 port, and checks:
 *
 *   - wfctl list --cafile/--cert/--key through it: answered (exit 0);
 *   - the same without a client certificate: refused by the broker, so no
 *     answer (exit 1);
 *   - --cert without --key, or a missing file: a usage error (exit 2). */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "broker.h"
#include "proc.h"

static char dir[512], ca[600], cert[600], key[600], tls_port[16];
static char *wfctl;
static struct wf_test_broker *broker;

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	close(fd);
	return ntohs(sa.sin_port);
}

static void run_ok(char *const argv[])
{
	char *out = NULL;
	int st = wf_test_capture(argv, NULL, NULL, &out, 60000);
	ck_assert_msg(st == 0, "%s %s exited %d: %s", argv[0], argv[1], st, out ? out : "");
	free(out);
}

/* an EC key and a certificate for CN, signed by the test CA (or self-signed
 * when CN is the CA) */
static void make_cert(const char *name, const char *cn, bool is_ca)
{
	char k[640], c[640], csr[640], subj[128], ext[640];
	snprintf(k, sizeof k, "%s/%s.key", dir, name);
	snprintf(c, sizeof c, "%s/%s.crt", dir, name);
	snprintf(csr, sizeof csr, "%s/%s.csr", dir, name);
	snprintf(subj, sizeof subj, "/CN=%s", cn);
	if (is_ca) {
		char *argv[] = { "/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
				 "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", k, "-out", c,
				 "-subj", subj, "-days", "2", NULL };
		run_ok(argv);
		return;
	}
	snprintf(ext, sizeof ext, "%s/%s.ext", dir, name);
	FILE *f = fopen(ext, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "subjectAltName=IP:127.0.0.1\n");
	fclose(f);
	char *req[] = { "/usr/bin/openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
			"-nodes", "-keyout", k, "-out", csr, "-subj", subj, NULL };
	run_ok(req);
	char *sign[] = { "/usr/bin/openssl", "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", key,
			 "-CAcreateserial", "-out", c, "-days", "2", "-extfile", ext, NULL };
	run_ok(sign);
}

static void setup(void)
{
	char *tmp = wf_test_mkdtemp("wfctl-tls");
	ck_assert_ptr_nonnull(tmp);
	snprintf(dir, sizeof dir, "%s", tmp);
	free(tmp);
	snprintf(ca, sizeof ca, "%s/ca.crt", dir);
	snprintf(key, sizeof key, "%s/ca.key", dir); /* the CA's, for signing */
	make_cert("ca", "wf-test-ca", true);
	make_cert("server", "127.0.0.1", false);
	make_cert("client", "op-zhang", false);
	snprintf(cert, sizeof cert, "%s/client.crt", dir);
	snprintf(key, sizeof key, "%s/client.key", dir);
	snprintf(tls_port, sizeof tls_port, "%d", free_port());
	char extra[2048];
	snprintf(extra, sizeof extra,
		 "listener %s 127.0.0.1\ncafile %s\ncertfile %s/server.crt\nkeyfile %s/server.key\n"
		 "require_certificate true\n",
		 tls_port, ca, dir, dir);
	struct wf_test_broker_options o;
	wf_test_broker_options_init(&o);
	o.extra_config = extra;
	ck_assert_int_eq(wf_test_broker_start(&o, &broker), 0);
	wfctl = wf_test_build_path("services/wfctl/wfctl");
}

static void teardown(void)
{
	broker = wf_test_broker_free(broker);
	wf_test_rmtree(dir);
	free(wfctl);
}

/* runs wfctl: *OUT is its stdout followed by its stderr */
static int wfctl_run(char *const argv[], char **out)
{
	char log[640];
	snprintf(log, sizeof log, "%s/wfctl.log", dir);
	unlink(log);
	char *so = NULL;
	int st = wf_test_capture(argv, NULL, log, &so, 60000);
	FILE *f = fopen(log, "r");
	char err[4096] = "";
	size_t n = f ? fread(err, 1, sizeof err - 1, f) : 0;
	err[n] = '\0';
	if (f)
		fclose(f);
	ck_assert_int_ge(asprintf(out, "%s%s", so ? so : "", err), 0);
	free(so);
	return st;
}

START_TEST(list_over_tls_with_client_certificate)
{
	char *out = NULL;
	char *ok[] = { wfctl, "list", "--json", "--port", tls_port, "--cafile", ca, "--cert", cert,
		       "--key", key, "--timeout", "10", NULL };
	int st = wfctl_run(ok, &out);
	ck_assert_msg(st == 0, "with a client certificate: exit %d: %s", st, out ? out : "");
	free(out);
	out = NULL;
	char *nocert[] = { wfctl, "list", "--port", tls_port, "--cafile", ca, "--timeout", "3", NULL };
	st = wfctl_run(nocert, &out);
	ck_assert_msg(st == 1, "without a client certificate: exit %d: %s", st, out ? out : "");
	free(out);
	out = NULL;
	char *half[] = { wfctl, "list", "--port", tls_port, "--cafile", ca, "--cert", cert, NULL };
	ck_assert_int_eq(wfctl_run(half, &out), 2);
	ck_assert_ptr_nonnull(strstr(out, "--cert and --key go together"));
	free(out);
	out = NULL;
	char *missing[] = { wfctl, "list", "--port", tls_port, "--cafile", "/nonexistent/ca.crt", NULL };
	ck_assert_int_eq(wfctl_run(missing, &out), 2);
	ck_assert_ptr_nonnull(strstr(out, "/nonexistent/ca.crt"));
	free(out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("wfctl-tls");
	TCase *tc = tcase_create("tls");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, list_over_tls_with_client_certificate);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
