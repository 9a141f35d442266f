/* Integration tests for services/dispatch/sms against a real Kannel
 * (bearerbox + smsbox) with fakesmsc as the SMSC, on loopback ports the
 * harness picks. What fakesmsc prints is what the handsets would get. No
 * sleeps for readiness: every wait polls a condition with a deadline. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <ev.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broker.h"
#include "kannel-harness.h"
#include "sms-util.h"
#include "sms.h"
#include "wf/clock.h"
#include "wf/store.h"

#define ZH "\xe4\xb8\xad"        /* 中 */
#define EMOJI "\xf0\x9f\x98\x80" /* 😀 */
/* 【登封市应急管理局】暴雨红色预警：... 150 characters, 3 parts */
#define HEAD "\xe3\x80\x90\xe7\x99\xbb\xe5\xb0\x81\xe5\xb8\x82\xe5\xba\x94\xe6\x80\xa5" \
	     "\xe7\xae\xa1\xe7\x90\x86\xe5\xb1\x80\xe3\x80\x91\xe6\x9a\xb4\xe9\x9b\xa8"     \
	     "\xe7\xba\xa2\xe8\x89\xb2\xe9\xa2\x84\xe8\xad\xa6"

struct fix {
	struct wf_test_kannel *k;
	char *dir;
	char subs[600];
	struct ev_loop *loop;
	struct wf_store *store;
	struct wf_sms *sms;
	int notices;
};

static void on_notice(void *ud, int err, const char *what)
{
	struct fix *f = ud;
	f->notices++;
	if (getenv("WF_SMS_TEST_VERBOSE"))
		fprintf(stderr, "notice %d: %s\n", err, what);
}

static void write_subs(struct fix *f, const char *text)
{
	snprintf(f->subs, sizeof(f->subs), "%s/subscribers.csv", f->dir);
	FILE *fp = fopen(f->subs, "we");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	fclose(fp);
}

static void open_store(struct fix *f, bool nosync)
{
	char path[600];
	snprintf(path, sizeof(path), "%s/state", f->dir);
	struct wf_store_options so = { .path = path, .nosync = nosync, .max_dbs = 16 };
	ck_assert_int_eq(wf_store_open(&so, &f->store), 0);
}

static void sms_config(struct fix *f, struct wf_sms_config *c)
{
	wf_sms_config_init(c);
	c->sendsms_url = wf_test_kannel_sendsms_url(f->k);
	c->username = wf_test_kannel_username(f->k);
	c->password = wf_test_kannel_password(f->k);
	c->from = "12379";
	c->subscribers_path = f->subs;
	c->on_notice = on_notice;
	c->ud = f;
}

static void open_sms(struct fix *f, const struct wf_sms_config *c)
{
	char err[256];
	int r = wf_sms_open(f->loop, f->store, c, &f->sms, err, sizeof(err));
	ck_assert_msg(r == 0, "wf_sms_open: %d %s", r, err);
}

static void fix_init(struct fix *f, const struct wf_test_kannel_options *ko, bool start)
{
	memset(f, 0, sizeof(*f));
	f->dir = wf_test_mkdtemp("sms");
	ck_assert_ptr_nonnull(f->dir);
	ck_assert_int_eq(wf_test_kannel_create(ko, &f->k), 0);
	if (start)
		ck_assert_int_eq(wf_test_kannel_start(f->k), 0);
	f->loop = ev_loop_new(EVFLAG_AUTO);
}

static void fix_free(struct fix *f)
{
	f->sms = wf_sms_close(f->sms);
	f->store = wf_store_close(f->store);
	if (f->loop)
		ev_loop_destroy(f->loop);
	f->k = wf_test_kannel_free(f->k);
	wf_test_rmtree(f->dir);
	free(f->dir);
}

struct enq {
	struct wf_sms *sms;
	const char *key, *region, *text;
	size_t planned;
};

static int enq_fn(struct wf_txn *t, void *ud)
{
	struct enq *e = ud;
	return wf_sms_enqueue(e->sms, t, e->key, e->region, e->text, 0, &e->planned);
}

static int enqueue(struct fix *f, const char *key, const char *region, const char *text, size_t *planned)
{
	struct enq e = { .sms = f->sms, .key = key, .region = region, .text = text };
	int r = wf_store_update(f->store, enq_fn, &e);
	if (r >= 0) {
		ck_assert_int_eq(wf_sms_kick(f->sms), 0);
		if (planned)
			*planned = e.planned;
	}
	return r;
}

static bool sms_idle(void *ud)
{
	return wf_sms_idle(((struct fix *)ud)->sms);
}

static char *repeat(const char *s, unsigned n, const char *head, const char *tail)
{
	size_t l = strlen(s), hl = head ? strlen(head) : 0, tl = tail ? strlen(tail) : 0;
	char *out = malloc(hl + l * n + tl + 1);
	ck_assert_ptr_nonnull(out);
	memcpy(out, head ? head : "", hl);
	for (unsigned i = 0; i < n; i++)
		memcpy(out + hl + i * l, s, l);
	memcpy(out + hl + l * n, tail ? tail : "", tl);
	out[hl + l * n + tl] = '\0';
	return out;
}

/* The UTF-16BE bytes fakesmsc got for TO, parts reassembled by UDH seq.
 * Returns the number of parts (0: none) and checks the UDH. */
static int reassemble(const struct wf_test_sms *v, long n, const char *to, unsigned char *out,
		      size_t *ret_len, size_t *part_units)
{
	int parts = 0, total = -1;
	const struct wf_test_sms *by_seq[16] = { 0 };
	for (long i = 0; i < n; i++) {
		if (strcmp(v[i].to, to) != 0)
			continue;
		ck_assert_msg(v[i].ucs2, "message to %s is not UCS-2", to);
		if (!v[i].has_udh) {
			ck_assert_int_eq(parts, 0);
			ck_assert_int_eq(total, -1);
			memcpy(out, v[i].data, v[i].len);
			*ret_len = v[i].len;
			part_units[0] = v[i].len / 2;
			total = 1;
			parts = 1;
			continue;
		}
		/* 05 00 03 ref total seq: 8-bit reference concatenation */
		ck_assert_uint_eq(v[i].udh_len, 6);
		ck_assert_int_eq(v[i].udh[0], 5);
		ck_assert_int_eq(v[i].udh[1], 0);
		ck_assert_int_eq(v[i].udh[2], 3);
		if (total < 0)
			total = v[i].udh[4];
		ck_assert_int_eq(v[i].udh[4], total);
		int seq = v[i].udh[5];
		ck_assert_int_ge(seq, 1);
		ck_assert_int_le(seq, total);
		ck_assert_msg(!by_seq[seq], "part %d to %s twice", seq, to);
		by_seq[seq] = &v[i];
		parts++;
	}
	if (parts && by_seq[1]) {
		size_t len = 0;
		for (int s = 1; s <= total; s++) {
			ck_assert_msg(by_seq[s], "part %d of %d to %s missing", s, total, to);
			memcpy(out + len, by_seq[s]->data, by_seq[s]->len);
			part_units[s - 1] = by_seq[s]->len / 2;
			len += by_seq[s]->len;
		}
		*ret_len = len;
	}
	return parts;
}

static void expect_received(const struct wf_test_sms *v, long n, const char *to, const char *text,
			    int want_parts, const size_t *want_units)
{
	unsigned char want[4096], got[4096];
	size_t got_len = 0, units[16] = { 0 };
	long wu = wf_sms_utf16_units(text, strlen(text), want);
	ck_assert_int_gt(wu, 0);
	int parts = reassemble(v, n, to, got, &got_len, units);
	ck_assert_msg(parts == want_parts, "%s: %d parts, want %d", to, parts, want_parts);
	ck_assert_uint_eq(got_len, (size_t)wu * 2);
	ck_assert_msg(memcmp(got, want, got_len) == 0, "%s: content differs", to);
	for (int i = 0; want_units && i < want_parts; i++)
		ck_assert_msg(units[i] == want_units[i], "%s part %d: %zu units, want %zu", to, i + 1,
			      units[i], want_units[i]);
}

static void expect_state(struct fix *f, const char *key, const char *msisdn, enum wf_sms_state s)
{
	struct wf_sms_recipient r;
	ck_assert_int_eq(wf_sms_recipient_get(f->sms, key, msisdn, &r), 0);
	ck_assert_msg(r.state == s, "%s/%s: %s, want %s (dlr %d mask %u attempts %u)", key, msisdn,
		      wf_sms_state_to_string(r.state), wf_sms_state_to_string(s), r.last_dlr,
		      r.dlr_mask_seen, r.attempts);
}

/* A Chinese red warning to a county's recipients: fakesmsc gets the right
 * parts (count, UDH, UTF-16BE content) for each one and nobody else gets
 * anything; the DLRs are recorded; a refused number ends FAILED; planning
 * the same key again plans nobody. */
START_TEST(test_chinese_segments_and_dlrs)
{
	struct fix f;
	struct wf_test_kannel_options ko = { .denied_prefix = "1390009" };
	fix_init(&f, &ko, true);
	write_subs(&f, "msisdn,region\n"
		       "13800000001,410185100000\n"
		       "13800000002,410185101000\n"
		       "13800000003,410185\n"
		       "13800000004,410185102000\n"
		       "13800000004,410185100000\n" /* one person, two townships: one SMS */
		       "13900090001,410185\n"       /* Kannel refuses it (denied-prefix) */
		       "13800000009,420100\n"       /* elsewhere: nothing */
		       "13800000010,410102\n");
	open_store(&f, true);
	struct wf_sms_config c;
	sms_config(&f, &c);
	open_sms(&f, &c);
	ck_assert_uint_eq(wf_sms_subscriber_count(f.sms), 8);

	char *red = repeat(ZH, 150 - 16, HEAD, NULL); /* 16 + 134 = 150 chars */
	ck_assert_int_eq(wf_sms_utf16_units(red, strlen(red), NULL), 150);
	size_t planned = 0;
	ck_assert_int_eq(enqueue(&f, "w-410185-rain@1", "410185", red, &planned), 0);
	ck_assert_uint_eq(planned, 5);
	ck_assert_int_eq(enqueue(&f, "w-410185-rain@1", "410185", red, &planned), 0);
	ck_assert_uint_eq(planned, 0); /* idempotent */

	/* exactly 70 units: one SMS without UDH; 71: two parts (67 + 4) */
	char *t70 = repeat(ZH, 70, NULL, NULL), *t71 = repeat(ZH, 71, NULL, NULL);
	ck_assert_int_eq(enqueue(&f, "w-70@1", "410185100000", t70, &planned), 0);
	ck_assert_uint_eq(planned, 2); /* 13800000001 and 13800000004 */
	ck_assert_int_eq(enqueue(&f, "w-71@1", "410185101000", t71, &planned), 0);
	ck_assert_uint_eq(planned, 1);
	/* an emoji where Kannel would cut it in half: we pad one space */
	char *emo = repeat(ZH, 66, NULL, EMOJI ZH ZH ZH ZH ZH ZH ZH ZH ZH ZH);
	ck_assert_int_eq(enqueue(&f, "w-emoji@1", "410102", emo, &planned), 0);
	ck_assert_uint_eq(planned, 1);
	/* too long for max_parts (6 * 67 = 402) */
	char *huge = repeat(ZH, 403, NULL, NULL);
	ck_assert_int_eq(enqueue(&f, "w-huge@1", "410185", huge, &planned), -EMSGSIZE);
	ck_assert_int_eq(enqueue(&f, "bad key", "410185", red, &planned), -EINVAL);
	ck_assert_int_eq(enqueue(&f, "w-x@1", "41018", red, &planned), -EINVAL);
	ck_assert_int_eq(enqueue(&f, "w-x@1", "410185", "\xe4\xb8", &planned), -EINVAL);

	ck_assert(wf_test_run_until(f.loop, sms_idle, &f, 20000));

	struct wf_test_sms *v;
	long n = wf_test_kannel_received(f.k, &v);
	ck_assert_int_ge(n, 0);
	size_t red_units[] = { 67, 67, 16 };
	const char *county[] = { "13800000001", "13800000002", "13800000003", "13800000004" };
	for (int i = 0; i < 4; i++) {
		/* each of them got the red warning in 3 parts... */
		struct wf_test_sms *only = calloc((size_t)n + 1, sizeof(*only));
		long m = 0;
		for (long j = 0; j < n; j++)
			if (v[j].has_udh && v[j].udh[4] == 3)
				only[m++] = v[j];
		expect_received(only, m, county[i], red, 3, red_units);
		free(only);
		expect_state(&f, "w-410185-rain@1", county[i], WF_SMS_DELIVERED);
		struct wf_sms_recipient r;
		ck_assert_int_eq(wf_sms_recipient_get(f.sms, "w-410185-rain@1", county[i], &r), 0);
		ck_assert_msg(r.dlr_mask_seen & 1, "no DLR 1 for %s", county[i]);
		ck_assert_int_eq(r.attempts, 1);
	}
	/* 13800000001: red (3) + 70-unit (1) = 4 messages; 13800000002: red + 71 (2) */
	int c1 = 0, c2 = 0, c4 = 0;
	for (long j = 0; j < n; j++) {
		c1 += strcmp(v[j].to, "13800000001") == 0;
		c2 += strcmp(v[j].to, "13800000002") == 0;
		c4 += strcmp(v[j].to, "13800000004") == 0;
		ck_assert_str_eq(v[j].from, "12379");
		ck_assert_str_ne(v[j].to, "13800000009");
		ck_assert_str_ne(v[j].to, "13900090001");
	}
	ck_assert_int_eq(c1, 4);
	ck_assert_int_eq(c2, 5);
	ck_assert_int_eq(c4, 4);
	{
		struct wf_test_sms *only = calloc((size_t)n + 1, sizeof(*only));
		long m = 0;
		for (long j = 0; j < n; j++)
			if (!v[j].has_udh)
				only[m++] = v[j];
		size_t u70[] = { 70 };
		expect_received(only, m, "13800000001", t70, 1, u70);
		m = 0;
		for (long j = 0; j < n; j++)
			if (v[j].has_udh && v[j].udh[4] == 2 && strcmp(v[j].to, "13800000002") == 0)
				only[m++] = v[j];
		size_t u71[] = { 67, 4 };
		expect_received(only, m, "13800000002", t71, 2, u71);
		free(only);
	}
	/* the emoji: part 1 ends with the padding space, part 2 starts with the pair */
	char *padded;
	size_t pu;
	ck_assert_int_eq(wf_sms_prepare_text(emo, strlen(emo), &padded, &pu), 0);
	ck_assert_uint_eq(pu, 79);
	size_t uemo[] = { 67, 12 };
	expect_received(v, n, "13800000010", padded, 2, uemo);
	free(padded);
	expect_state(&f, "w-emoji@1", "13800000010", WF_SMS_DELIVERED);
	expect_state(&f, "w-70@1", "13800000004", WF_SMS_DELIVERED);
	expect_state(&f, "w-410185-rain@1", "13900090001", WF_SMS_FAILED);
	struct wf_sms_recipient r;
	ck_assert_int_eq(wf_sms_recipient_get(f.sms, "w-410185-rain@1", "13800000009", &r), -ENOENT);

	uint64_t counts[WF_SMS_STATE_MAX];
	ck_assert_int_eq(wf_sms_count_states(f.sms, "w-410185-rain@1", counts), 0);
	ck_assert_uint_eq(counts[WF_SMS_DELIVERED], 4);
	ck_assert_uint_eq(counts[WF_SMS_FAILED], 1);
	ck_assert_int_eq(wf_sms_count_states(f.sms, NULL, counts), 0);
	ck_assert_uint_eq(counts[WF_SMS_DELIVERED], 8);
	struct wf_sms_stats st;
	wf_sms_get_stats(f.sms, &st);
	ck_assert_uint_eq(st.planned, 9);
	ck_assert_uint_eq(st.accepted, 8);
	ck_assert_uint_eq(st.refused, 1);
	ck_assert_uint_eq(st.delivered, 8);
	ck_assert_uint_eq(st.failed, 1);
	ck_assert_uint_eq(st.parts_sent, 4 * 3 + 2 * 1 + 2 + 2);
	ck_assert_uint_eq(st.dlr_unknown, 0);
	fprintf(stderr, "segments: %ld messages at fakesmsc, %" PRIu64 " DLRs\n", n, st.dlrs);

	wf_test_sms_free(v, (size_t)n);
	free(red);
	free(t70);
	free(t71);
	free(emo);
	free(huge);
	fix_free(&f);
}
END_TEST

/* Our token bucket (SMS parts per second) paces the requests: 40 single
 * messages at 20/s with a burst of 1 take at least 39/20 s. */
START_TEST(test_rate_limit)
{
	struct fix f;
	fix_init(&f, NULL, true);
	char subs[40 * 32 + 32] = "";
	for (int i = 0; i < 40; i++)
		snprintf(subs + strlen(subs), sizeof(subs) - strlen(subs), "1380010%04d,410185\n", i);
	write_subs(&f, subs);
	open_store(&f, true);
	struct wf_sms_config c;
	sms_config(&f, &c);
	c.rate_parts_per_s = 20;
	c.burst_parts = 1;
	open_sms(&f, &c);
	int64_t t0 = wf_clock_mono_ms();
	ck_assert_int_eq(enqueue(&f, "w-rate@1", "410185", HEAD, NULL), 0);
	ck_assert(wf_test_run_until(f.loop, sms_idle, &f, 20000));
	int64_t dt = wf_clock_mono_ms() - t0;
	struct wf_sms_stats st;
	wf_sms_get_stats(f.sms, &st);
	ck_assert_uint_eq(st.delivered, 40);
	ck_assert_uint_eq(st.requests, 40);
	fprintf(stderr, "rate: 40 messages at 20/s took %" PRId64 " ms (>= 1950 expected)\n", dt);
	ck_assert_int_ge(dt, 1900);
	ck_assert_int_le(dt, 10000 * wf_test_time_factor()); /* only a hang guard */
	ck_assert_int_eq(wf_test_kannel_received_count(f.k), 40);
	fix_free(&f);
}
END_TEST

static bool retried(void *ud)
{
	struct fix *f = ud;
	struct wf_sms_stats st;
	wf_sms_get_stats(f->sms, &st);
	return st.retries >= 6; /* every recipient failed at least twice */
}

/* smsbox not running: requests fail (connection refused) and are retried
 * with backoff; once Kannel is up, each recipient gets exactly one SMS. */
START_TEST(test_retry_while_kannel_down)
{
	struct fix f;
	fix_init(&f, NULL, false);
	write_subs(&f, "13800000021,410185\n13800000022,410185\n13800000023,410185\n");
	open_store(&f, true);
	struct wf_sms_config c;
	sms_config(&f, &c);
	c.backoff_base_ms = 100;
	c.backoff_max_ms = 400;
	c.max_attempts = 50;
	open_sms(&f, &c);
	ck_assert_int_eq(enqueue(&f, "w-retry@1", "410185", HEAD, NULL), 0);
	ck_assert(wf_test_run_until(f.loop, retried, &f, 10000));
	uint64_t counts[WF_SMS_STATE_MAX];
	ck_assert_int_eq(wf_sms_count_states(f.sms, "w-retry@1", counts), 0);
	ck_assert_uint_eq(counts[WF_SMS_DELIVERED], 0);

	ck_assert_int_eq(wf_test_kannel_start(f.k), 0);
	ck_assert(wf_test_run_until(f.loop, sms_idle, &f, 20000));
	ck_assert_int_eq(wf_sms_count_states(f.sms, "w-retry@1", counts), 0);
	ck_assert_uint_eq(counts[WF_SMS_DELIVERED], 3);
	const char *who[] = { "13800000021", "13800000022", "13800000023" };
	struct wf_test_sms *v;
	long n = wf_test_kannel_received(f.k, &v);
	ck_assert_int_eq(n, 3);
	for (int i = 0; i < 3; i++) {
		struct wf_sms_recipient r;
		ck_assert_int_eq(wf_sms_recipient_get(f.sms, "w-retry@1", who[i], &r), 0);
		ck_assert_uint_ge(r.attempts, 3);
		expect_received(v, n, who[i], HEAD, 1, NULL);
	}
	struct wf_sms_stats st;
	wf_sms_get_stats(f.sms, &st);
	fprintf(stderr, "retry: %" PRIu64 " retries, %" PRIu64 " transport errors before Kannel came up\n",
		st.retries, st.http_errors);
	wf_test_sms_free(v, (size_t)n);
	fix_free(&f);
}
END_TEST

struct until_state {
	struct fix *f;
	const char *key, *msisdn;
	enum wf_sms_state want;
};

static bool reached(void *ud)
{
	struct until_state *u = ud;
	struct wf_sms_recipient r;
	return wf_sms_recipient_get(u->f->sms, u->key, u->msisdn, &r) == 0 && r.state == u->want;
}

struct enq_exp {
	struct wf_sms *sms;
	int64_t expires_ms;
};

static int enq_exp_fn(struct wf_txn *t, void *ud)
{
	struct enq_exp *e = ud;
	return wf_sms_enqueue(e->sms, t, "w-exp@1", "410185100000", HEAD, e->expires_ms, NULL);
}

/* Both ways to EXPIRED: (a) not sent before the delivery's expiry (smsbox
 * down the whole time); (b) accepted by Kannel ("3: Queued", fakesmsc
 * away) but no final DLR within dlr_timeout. A DLR 1 that arrives later
 * (fakesmsc back) is recorded but does not change the final state. */
START_TEST(test_expiry)
{
	struct fix f;
	fix_init(&f, NULL, false);
	open_store(&f, true);
	struct wf_sms_config c;
	/* a bad subscriber file fails the open with path:line */
	write_subs(&f, "13800000031,410185100000\n13800000032,41018x\n");
	sms_config(&f, &c);
	char err[512], want[700];
	ck_assert_int_eq(wf_sms_open(f.loop, f.store, &c, &f.sms, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_null(f.sms);
	snprintf(want, sizeof(want), "%s:2: bad region \"41018x\" (6 or 12 digits)", f.subs);
	ck_assert_str_eq(err, want);
	write_subs(&f, "13800000031,410185100000\n13800000032,410185200000\n");
	c.backoff_base_ms = 100;
	c.backoff_max_ms = 100;
	c.max_attempts = 1000;
	c.dlr_timeout_ms = 1000;
	open_sms(&f, &c);
	/* (a) */
	struct enq_exp e = { .sms = f.sms, .expires_ms = wf_clock_now_ms(NULL) + 400 };
	ck_assert_int_eq(wf_store_update(f.store, enq_exp_fn, &e), 0);
	ck_assert_int_eq(wf_sms_kick(f.sms), 0);
	struct until_state u = { &f, "w-exp@1", "13800000031", WF_SMS_EXPIRED };
	ck_assert(wf_test_run_until(f.loop, reached, &u, 5000));
	ck_assert(wf_sms_idle(f.sms));

	/* (b) */
	ck_assert_int_eq(wf_test_kannel_start(f.k), 0);
	ck_assert_int_eq(wf_test_kannel_stop_fakesmsc(f.k), 0);
	ck_assert_int_eq(enqueue(&f, "w-dlr-timeout@1", "410185200000", HEAD, NULL), 0);
	u = (struct until_state){ &f, "w-dlr-timeout@1", "13800000032", WF_SMS_SENT };
	ck_assert(wf_test_run_until(f.loop, reached, &u, 5000));
	u.want = WF_SMS_EXPIRED;
	ck_assert(wf_test_run_until(f.loop, reached, &u, 5000));
	ck_assert(wf_sms_idle(f.sms));
	/* fakesmsc back: Kannel sends the queued message and its DLRs */
	ck_assert_int_eq(wf_test_kannel_start(f.k), 0);
	int64_t end = wf_clock_mono_ms() + 10000;
	struct wf_sms_recipient r = { 0 };
	while (wf_clock_mono_ms() < end) {
		wf_test_run_for(f.loop, 50);
		ck_assert_int_eq(wf_sms_recipient_get(f.sms, "w-dlr-timeout@1", "13800000032", &r), 0);
		if (r.dlr_mask_seen & 1)
			break;
	}
	ck_assert_msg(r.dlr_mask_seen & 1, "late DLR 1 not recorded (mask %u)", r.dlr_mask_seen);
	ck_assert_int_eq(r.state, WF_SMS_EXPIRED);
	ck_assert_int_eq(wf_test_kannel_received_count(f.k), 1);
	struct wf_sms_stats st;
	wf_sms_get_stats(f.sms, &st);
	ck_assert_uint_eq(st.expired, 2);
	ck_assert_uint_eq(st.delivered, 0);
	fix_free(&f);
}
END_TEST

/* ---- kill -9 mid fan-out ---- */

#define KILL_N 10000
#define KILL_AT 3000

static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void sender_child(struct fix *f, int dlr_port)
{
	/* a fresh process: its own loop, store and channel */
	f->loop = ev_loop_new(EVFLAG_AUTO);
	open_store(f, false);
	struct wf_sms_config c;
	sms_config(f, &c);
	c.dlr_port = dlr_port;
	c.on_notice = NULL;
	char err[256];
	if (wf_sms_open(f->loop, f->store, &c, &f->sms, err, sizeof(err)) < 0)
		_exit(3);
	struct enq e = { .sms = f->sms, .key = "w-kill@1", .region = "410185", .text = HEAD };
	if (wf_store_update(f->store, enq_fn, &e) < 0 || e.planned != KILL_N || wf_sms_kick(f->sms) < 0)
		_exit(4);
	ev_run(f->loop, 0); /* until killed */
	_exit(5);
}

/* The sender is killed with SIGKILL after ~3,000 of 10,000 messages reached
 * fakesmsc; a new process on the same state resumes. Afterwards every
 * recipient has its message, none twice except recipients that were
 * SUBMITTING at the kill (at most max_inflight), and all are DELIVERED.
 * THROUGHPUT 0: Kannel unthrottled, the kill lands while requests are in
 * flight (the SUBMITTING window). THROUGHPUT 1000: Kannel accepts far
 * faster than its SMSC sends, so at the kill thousands are SENT (accepted,
 * queued in bearerbox, DLR pending): none of them may be sent again, and
 * their DLRs, some retried by smsbox while no process listened, must land. */
static void kill_mid_fanout(double throughput)
{
	struct fix f;
	/* Kannel throttled below our send rate: at the kill, many recipients
	 * are SENT (accepted, queued in bearerbox) and must not be sent again */
	struct wf_test_kannel_options ko = { .dlr_retry = true, .throughput = throughput };
	fix_init(&f, &ko, true);
	ev_loop_destroy(f.loop);
	f.loop = NULL;
	size_t cap = KILL_N * 32 + 64;
	char *subs = malloc(cap);
	ck_assert_ptr_nonnull(subs);
	subs[0] = '\0';
	size_t len = 0;
	for (int i = 0; i < KILL_N; i++)
		len += (size_t)snprintf(subs + len, cap - len, "1381%07d,4101851%02d000\n", i, i % 20);
	write_subs(&f, subs);
	free(subs);
	int dlr_port = free_port();

	int64_t t0 = wf_clock_mono_ms();
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		sender_child(&f, dlr_port);
	long got = 0;
	int64_t end = wf_clock_mono_ms() + 60000L * wf_test_time_factor();
	while ((got = wf_test_kannel_received_count(f.k)) < KILL_AT && wf_clock_mono_ms() < end) {
		int st;
		ck_assert_msg(waitpid(pid, &st, WNOHANG) == 0, "sender exited early (status %d)", st);
		usleep(2000);
	}
	kill(pid, SIGKILL);
	int st;
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	long at_kill = wf_test_kannel_received_count(f.k);
	ck_assert_int_ge(got, KILL_AT);

	/* restart on the same state, same DLR port */
	f.loop = ev_loop_new(EVFLAG_AUTO);
	open_store(&f, false);
	struct wf_sms_config c;
	sms_config(&f, &c);
	c.dlr_port = dlr_port;
	open_sms(&f, &c);
	struct wf_sms_stats s0;
	wf_sms_get_stats(f.sms, &s0);
	uint64_t at_open[WF_SMS_STATE_MAX];
	ck_assert_int_eq(wf_sms_count_states(f.sms, "w-kill@1", at_open), 0);
	size_t planned = 99;
	ck_assert_int_eq(enqueue(&f, "w-kill@1", "410185", HEAD, &planned), 0);
	ck_assert_uint_eq(planned, 0);
	ck_assert(wf_test_run_until(f.loop, sms_idle, &f, 60000));
	int64_t dt = wf_clock_mono_ms() - t0;

	uint64_t counts[WF_SMS_STATE_MAX];
	ck_assert_int_eq(wf_sms_count_states(f.sms, "w-kill@1", counts), 0);
	/* DLRs sent to the dead process are retried by smsbox (http-request-retry) */
	ck_assert_uint_eq(counts[WF_SMS_DELIVERED], KILL_N);

	struct wf_test_sms *v;
	long n = wf_test_kannel_received(f.k, &v);
	ck_assert_int_ge(n, KILL_N);
	unsigned char *seen = calloc(KILL_N, 1);
	long dups = 0;
	for (long i = 0; i < n; i++) {
		int idx = atoi(v[i].to + 4);
		ck_assert_int_ge(idx, 0);
		ck_assert_int_lt(idx, KILL_N);
		if (seen[idx]++)
			dups++;
	}
	long missing = 0, twice_more = 0;
	for (int i = 0; i < KILL_N; i++) {
		missing += seen[i] == 0;
		twice_more += seen[i] > 2;
	}
	fprintf(stderr, "kill (Kannel throughput %g): killed after %ld of %d at fakesmsc; resumed %" PRIu64 " recipients, "
			"%" PRIu64 " were SUBMITTING; duplicates at fakesmsc %ld (bound: %" PRIu64 "); "
			"missing %ld; total %" PRId64 " ms; at the kill: %" PRIu64 " queued, %" PRIu64
			" sent (awaiting DLR), %" PRIu64 " delivered\n",
		throughput, at_kill, KILL_N, s0.resumed, s0.resent_submitting, dups, s0.resent_submitting, missing, dt,
		at_open[WF_SMS_QUEUED], at_open[WF_SMS_SENT], at_open[WF_SMS_DELIVERED]);
	ck_assert_int_eq(missing, 0);
	ck_assert_int_eq(twice_more, 0);
	ck_assert_int_le(dups, (long)s0.resent_submitting);
	ck_assert_uint_le(s0.resent_submitting, c.max_inflight);
	if (throughput > 0)
		ck_assert_uint_ge(at_open[WF_SMS_SENT], 1000); /* it tested what it claims */
	else
		ck_assert_uint_gt(s0.resent_submitting, 0);
	free(seen);
	wf_test_sms_free(v, (size_t)n);
	fix_free(&f);
}

START_TEST(test_kill_mid_fanout)
{
	kill_mid_fanout(0);
}
END_TEST

START_TEST(test_kill_while_sent)
{
	kill_mid_fanout(1000);
}
END_TEST

struct enq_key {
	struct wf_sms *sms;
	const char *key, *region;
	int64_t expires_ms;
	size_t planned;
};

static int enq_key_fn(struct wf_txn *t, void *ud)
{
	struct enq_key *e = ud;
	return wf_sms_enqueue(e->sms, t, e->key, e->region, HEAD, e->expires_ms, &e->planned);
}

static size_t enqueue_until(struct fix *f, const char *key, const char *region, int64_t expires_ms)
{
	struct enq_key e = { f->sms, key, region, expires_ms, 0 };
	ck_assert_int_eq(wf_store_update(f->store, enq_key_fn, &e), 0);
	ck_assert_int_eq(wf_sms_kick(f->sms), 0);
	return e.planned;
}

static uint64_t total_recipients(struct fix *f)
{
	uint64_t c[WF_SMS_STATE_MAX] = { 0 }, n = 0;
	ck_assert_int_eq(wf_sms_count_states(f->sms, NULL, c), 0);
	for (int i = 0; i < WF_SMS_STATE_MAX; i++)
		n += c[i];
	return n;
}

struct gone {
	struct fix *f;
	const char *key, *msisdn;
};

static bool purged(void *ud)
{
	struct gone *g = ud;
	struct wf_sms_recipient r;
	return wf_sms_recipient_get(g->f->sms, g->key, g->msisdn, &r) == -ENOENT;
}

/* Retention: recipients final and expired before the cut-off go, in
 * batches of MAX, with their idempotence keys and, with the last one, the
 * delivery's record (so planning the key again plans everyone anew);
 * unfinished ones and those of a still-valid delivery stay; with
 * retain_ms the channel's timer does it by itself. Kannel is down the
 * whole time, so recipients end EXPIRED or stay QUEUED. */
/* a recipient still being retried: queued, or submitting while its request runs */
static void expect_unfinished(struct fix *f, const char *key, const char *msisdn)
{
	struct wf_sms_recipient r;
	ck_assert_int_eq(wf_sms_recipient_get(f->sms, key, msisdn, &r), 0);
	ck_assert_msg(r.state == WF_SMS_QUEUED || r.state == WF_SMS_SUBMITTING,
		      "%s/%s: %s, want queued or submitting", key, msisdn,
		      wf_sms_state_to_string(r.state));
}

START_TEST(test_retention)
{
	struct fix f;
	fix_init(&f, NULL, false);
	open_store(&f, true);
	write_subs(&f, "13800000041,410185100000\n13800000042,410185100000\n"
		       "13800000043,410185100000\n13800000044,410185200000\n");
	struct wf_sms_config c;
	sms_config(&f, &c);
	c.backoff_base_ms = 100;
	c.backoff_max_ms = 100;
	c.max_attempts = 1000;
	open_sms(&f, &c);
	int64_t now = wf_clock_now_ms(NULL);
	ck_assert_uint_eq(enqueue_until(&f, "w-old@1", "410185100000", now + 300), 3);
	ck_assert_uint_eq(enqueue_until(&f, "w-live@1", "410185200000", now + 3600000), 1);
	struct until_state u = { &f, "w-old@1", "13800000043", WF_SMS_EXPIRED };
	ck_assert(wf_test_run_until(f.loop, reached, &u, 5000));
	u.msisdn = "13800000041";
	ck_assert(wf_test_run_until(f.loop, reached, &u, 5000));
	u.msisdn = "13800000042";
	ck_assert(wf_test_run_until(f.loop, reached, &u, 5000));
	expect_unfinished(&f, "w-live@1", "13800000044");
	ck_assert_uint_eq(total_recipients(&f), 4);

	size_t n = 99;
	bool more = false;
	ck_assert_int_eq(wf_sms_purge(f.sms, 0, 0, &n, &more), -EINVAL);
	/* a cut-off before the expiry takes nothing */
	ck_assert_int_eq(wf_sms_purge(f.sms, now + 100, 10, &n, &more), 0);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(total_recipients(&f), 4);
	/* two at a time */
	int64_t cut = wf_clock_now_ms(NULL) + 1;
	ck_assert_int_eq(wf_sms_purge(f.sms, cut, 2, &n, &more), 0);
	ck_assert_uint_eq(n, 2);
	ck_assert(more);
	ck_assert_uint_eq(total_recipients(&f), 2);
	ck_assert_int_eq(wf_sms_purge(f.sms, cut, 10, &n, &more), 0);
	ck_assert_uint_eq(n, 1);
	ck_assert(!more);
	ck_assert_int_eq(wf_sms_purge(f.sms, cut, 10, &n, &more), 0);
	ck_assert_uint_eq(n, 0);
	const char *old[] = { "13800000041", "13800000042", "13800000043" };
	for (int i = 0; i < 3; i++) {
		struct wf_sms_recipient r;
		ck_assert_int_eq(wf_sms_recipient_get(f.sms, "w-old@1", old[i], &r), -ENOENT);
	}
	/* the unfinished recipient of the valid delivery stays */
	expect_unfinished(&f, "w-live@1", "13800000044");
	ck_assert_uint_eq(total_recipients(&f), 1);
	struct wf_sms_stats st;
	wf_sms_get_stats(f.sms, &st);
	ck_assert_uint_eq(st.purged, 3);
	/* nothing of the delivery is left: its key plans everyone again */
	ck_assert_uint_eq(enqueue_until(&f, "w-old@1", "410185100000", now + 300), 3);
	u.msisdn = "13800000043";
	ck_assert(wf_test_run_until(f.loop, reached, &u, 5000));

	/* with retain_ms, the timer purges by itself (reopened) */
	f.sms = wf_sms_close(f.sms);
	c.retain_ms = 300;
	open_sms(&f, &c);
	ck_assert_uint_eq(enqueue_until(&f, "w-auto@1", "410185100000",
					wf_clock_now_ms(NULL) + 200), 3);
	struct gone g = { &f, "w-auto@1", "13800000042" };
	ck_assert(wf_test_run_until(f.loop, purged, &g, 10000));
	g.key = "w-old@1";
	ck_assert(wf_test_run_until(f.loop, purged, &g, 10000));
	ck_assert(wf_test_run_until(f.loop, purged, &(struct gone){ &f, "w-auto@1", "13800000041" },
				    10000));
	expect_unfinished(&f, "w-live@1", "13800000044");
	wf_sms_get_stats(f.sms, &st);
	ck_assert_uint_ge(st.purged, 3);
	fix_free(&f);
}
END_TEST

int main(void)
{
	char *tmp = wf_test_mkdtemp("itest-sms");
	if (!tmp || setenv("TMPDIR", tmp, 1) < 0) {
		fprintf(stderr, "cannot make a temp directory\n");
		return EXIT_FAILURE;
	}
	Suite *s = suite_create("sms-kannel");
	/* one case per test, so CK_RUN_CASE=kill runs one of them */
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "segments", test_chinese_segments_and_dlrs },
		{ "rate", test_rate_limit },
		{ "retry", test_retry_while_kannel_down },
		{ "expiry", test_expiry },
		{ "retain", test_retention },
		{ "kill", test_kill_mid_fanout },
		{ "kill-sent", test_kill_while_sent },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);
		tcase_set_timeout(tc, 120);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	wf_test_rmtree(tmp);
	free(tmp);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
