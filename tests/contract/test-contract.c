/* Contract test: what the codec packs, the STOCK protoc decodes with the
 * published .proto files, showing the expected field values.
 *
 * The messages are packed in this process (contract_emit(), the code of the
 * contract-emit tool), then for each one
 *   protoc --decode=wf.v1.<Type> --proto_path=<src>/proto <file>.proto
 * runs via posix_spawn with the packed file on stdin. protoc prints
 * non-ASCII bytes as octal escapes; they are unescaped so that Chinese text
 * is compared byte for byte.
 *
 * Usage: test-contract PROTOC   (env: WF_SOURCE_ROOT) */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "contract-emit.h"

extern char **environ;

static char dir[64];
static const char *protoc;

static void mk_dir(void)
{
	snprintf(dir, sizeof dir, "/tmp/wf-contract-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(contract_emit(dir), 0);
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static void rm_dir(void)
{
	ck_assert_int_eq(nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS), 0);
}

/* Runs protoc on DIR/NAME.bin; returns its stdout (malloc'd, raw). */
static char *protoc_decode(const char *type, const char *name, const char *proto)
{
	const char *src = getenv("WF_SOURCE_ROOT");
	ck_assert_msg(src != NULL, "WF_SOURCE_ROOT must be set");
	char in[128], out[128], decode[64], path[4096];
	snprintf(in, sizeof in, "%s/%s.bin", dir, name);
	snprintf(out, sizeof out, "%s/%s.txt", dir, name);
	snprintf(decode, sizeof decode, "--decode=wf.v1.%s", type);
	snprintf(path, sizeof path, "--proto_path=%s/proto", src);

	posix_spawn_file_actions_t fa;
	ck_assert_int_eq(posix_spawn_file_actions_init(&fa), 0);
	ck_assert_int_eq(posix_spawn_file_actions_addopen(&fa, 0, in, O_RDONLY, 0), 0);
	ck_assert_int_eq(posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC,
							  0600), 0);
	char *argv[] = { (char *)protoc, decode, path, (char *)proto, NULL };
	pid_t pid;
	int r = posix_spawn(&pid, protoc, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	ck_assert_msg(r == 0, "spawn %s: %s", protoc, strerror(r));

	/* bounded wait: protoc takes milliseconds */
	int status = 0;
	struct timespec start, now, tick = { 0, 10 * 1000 * 1000 };
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		pid_t w = waitpid(pid, &status, WNOHANG);
		ck_assert_int_ge(w, 0);
		if (w == pid)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec > 30) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			ck_abort_msg("protoc did not finish in 30 s");
		}
		nanosleep(&tick, NULL);
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "protoc %s failed (status %d)",
		      type, status);

	FILE *f = fopen(out, "rb");
	ck_assert_ptr_nonnull(f);
	char *text = calloc(1, 65536);
	ck_assert_ptr_nonnull(text);
	size_t n = fread(text, 1, 65535, f);
	fclose(f);
	ck_assert_uint_gt(n, 0);
	ck_assert_uint_lt(n, 65535);
	return text;
}

/* Undoes protoc's C escapes (\NNN octal, \" \\ \' \n \t \r) in place;
 * returns the resulting length (the text may now hold NUL bytes). */
static size_t unescape(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] != '\\' || !r[1]) {
			*w++ = *r++;
			continue;
		}
		if (r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
		    r[3] <= '7') {
			*w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
			continue;
		}
		char c = r[1];
		*w++ = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
		r += 2;
	}
	*w = '\0';
	return (size_t)(w - s);
}

/* TEXT has LINE as one whole line. */
static void expect_line(const char *what, const char *text, const char *line)
{
	size_t n = strlen(line);
	for (const char *p = text; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t l = nl ? (size_t)(nl - p) : strlen(p);
		if (l == n && memcmp(p, line, n) == 0)
			return;
		p = nl ? nl + 1 : NULL;
	}
	ck_abort_msg("%s: no line '%s' in:\n%s", what, line, text);
}

#define DECODED(var, type, name, proto)                         \
	char *var = protoc_decode(type, name, proto);            \
	char *var##_raw = strdup(var);                           \
	ck_assert_ptr_nonnull(var##_raw);                        \
	unescape(var)

START_TEST(test_event_decodes)
{
	DECODED(t, "Event", "event", "event.proto");
	expect_line("event", t, "id: \"met-20250615-0001\"");
	expect_line("event", t, "agency: AGENCY_MET");
	expect_line("event", t, "hazard: HAZARD_RAINSTORM");
	expect_line("event", t, "region: \"410102000000\""); /* 6 digits given, 12 on the wire */
	expect_line("event", t, "level: LEVEL_II");
	expect_line("event", t, "  value: 62.5");
	expect_line("event", t, "  unit: \"mm\"");
	expect_line("event", t, "  lat: 34.7472");
	expect_line("event", t, "certainty: CERTAINTY_OBSERVED");
	expect_line("event", t, "observed_ms: 1749999940000");
	expect_line("event", t, "expires_ms: 1750021600000");
	expect_line("event", t, "status: STATUS_ACTUAL");
	expect_line("event", t, "text: \"郑州市气象台发布暴雨橙色预警信号\"");
	expect_line("event", t, "producer: \"wf-met-1\"");
	expect_line("event", t, "seq: 42");
	expect_line("event", t, "msg_type: MSG_TYPE_ALERT");
	/* protoc escapes the UTF-8 bytes: 郑 = e9 83 91 */
	ck_assert_ptr_nonnull(strstr(t_raw, "text: \"\\351\\203\\221"));
	free(t);
	free(t_raw);
}
END_TEST

START_TEST(test_warning_decodes)
{
	DECODED(t, "Warning", "warning", "warning.proto");
	expect_line("warning", t, "id: \"w-4101-rainstorm-20250615\"");
	expect_line("warning", t, "version: 1");
	expect_line("warning", t, "msg_type: MSG_TYPE_ALERT");
	expect_line("warning", t, "hazard: HAZARD_RAINSTORM");
	expect_line("warning", t, "level: LEVEL_II");
	expect_line("warning", t, "regions: \"410102000000\"");
	expect_line("warning", t, "regions: \"410103000000\"");
	expect_line("warning", t, "headline: \"中原区、二七区暴雨橙色预警\"");
	expect_line("warning", t, "event_ids: \"met:met-20250615-0001\"");
	expect_line("warning", t, "review: REVIEW_PENDING");
	expect_line("warning", t, "epoch: 3");
	free(t);
	free(t_raw);
}
END_TEST

START_TEST(test_control_decodes)
{
	DECODED(a, "Ack", "ack", "control.proto");
	expect_line("ack", a, "producer: \"wf-met-1\"");
	expect_line("ack", a, "consumer: \"wf-fusion\"");
	expect_line("ack", a, "  first: 1");
	expect_line("ack", a, "  last: 10");
	expect_line("ack", a, "  first: 12");
	free(a);
	free(a_raw);

	DECODED(s, "ServiceState", "state", "control.proto");
	expect_line("state", s, "service: \"wf-met-1\"");
	expect_line("state", s, "status: SERVICE_ONLINE");
	expect_line("state", s, "heartbeat_interval_s: 30");
	expect_line("state", s, "agency: AGENCY_MET");
	free(s);
	free(s_raw);

	/* all ASCII: compared as printed; the digest holds a NUL byte once
	 * unescaped, so it is unescaped on its own */
	char *d = protoc_decode("DeadLetter", "deadletter", "control.proto");
	expect_line("deadletter", d, "service: \"wf-fusion\"");
	expect_line("deadletter", d, "topic: \"wf/v1/event/met/41/4101/410102\"");
	expect_line("deadletter", d, "size: 3");
	expect_line("deadletter", d, "reason: REASON_BAD_REGION");
	expect_line("deadletter", d, "detail: \"region: \\'4101\\' is not a 6 or 12-digit code\"");
	expect_line("deadletter", d, "producer: \"wf-met-1\"");
	expect_line("deadletter", d, "seq: 43");
	expect_line("deadletter", d, "received_ms: 1750000000000");
	/* SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 96177a9c b410ff61 f20015ad */
	static const unsigned char abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	char *dg = strstr(d, "\ndigest: \"");
	ck_assert_ptr_nonnull(dg);
	dg += strlen("\ndigest: \"");
	char *end = strchr(dg, '\n');
	ck_assert_ptr_nonnull(end);
	*end = '\0';
	size_t n = unescape(dg);
	ck_assert_uint_eq(n, 33); /* 32 bytes and the closing quote */
	ck_assert_int_eq(memcmp(dg, abc, 32), 0);
	ck_assert_int_eq(dg[32], '"');
	free(d);
}
END_TEST

START_TEST(test_dispatch_decodes)
{
	DECODED(a, "Approval", "approval", "dispatch.proto");
	expect_line("approval", a, "operator: \"op-zhang\"");
	expect_line("approval", a, "warning_id: \"410185-rainstorm-1\"");
	expect_line("approval", a, "version: 2");
	expect_line("approval", a, "decision: DECISION_APPROVE");
	expect_line("approval", a, "reason: \"同意发布\"");
	expect_line("approval", a, "seq: 5");
	free(a);
	free(a_raw);

	DECODED(n, "DutyNotice", "notice", "dispatch.proto");
	expect_line("notice", n, "station: \"duty-410185\"");
	expect_line("notice", n, "level: LEVEL_II");
	expect_line("notice", n, "hazard: HAZARD_RAINSTORM");
	expect_line("notice", n, "regions: \"410185001000\"");
	expect_line("notice", n, "text: \"嵩阳街道暴雨橙色预警\"");
	expect_line("notice", n, "pending_review: true");
	expect_line("notice", n, "kind: NOTICE_KIND_ESCALATION");
	expect_line("notice", n, "escalated_from: \"duty-410185001\"");
	free(n);
	free(n_raw);

	/* a bundle (docs/protocol.md, "Bundles"): two entries with their topic */
	DECODED(b, "Bundle", "bundle", "bundle.proto");
	expect_line("bundle", b, "entries {");
	expect_line("bundle", b, "  topic: \"wf/v1/duty/duty-410185/inbox\"");
	char *second = strstr(b, "entries {");
	ck_assert_ptr_nonnull(second);
	ck_assert_ptr_nonnull(strstr(second + 1, "entries {"));
	ck_assert_ptr_nonnull(strstr(b, "嵩阳街道暴雨橙色预警")); /* the notice, inside */
	free(b);
	free(b_raw);
}
END_TEST

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: test-contract PROTOC\n");
		return 2;
	}
	protoc = argv[1];
	Suite *s = suite_create("contract");
	TCase *tc = tcase_create("protoc");
	tcase_add_checked_fixture(tc, mk_dir, rm_dir);
	tcase_add_test(tc, test_event_decodes);
	tcase_add_test(tc, test_warning_decodes);
	tcase_add_test(tc, test_control_decodes);
	tcase_add_test(tc, test_dispatch_decodes);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
