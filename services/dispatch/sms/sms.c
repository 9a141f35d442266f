/* sms: SMS channel through Kannel. See sms.h and docs/sms.md.
 *
 * LMDB (all in the dispatcher's store):
 *   sms-deliv  delivery key                    -> struct deliv_rec + UTF-8 text
 *              "\001next_id" (not a valid key)  -> u64 BE, next recipient id
 *   sms-rcpt   recipient id (u64 BE, ordered)  -> struct rcpt_rec + key + msisdn
 *   sms-idem   delivery key \0 msisdn          -> recipient id (u64 BE)
 * Records are in host byte order (LMDB files are not portable anyway).
 *
 * In memory: one struct item per unfinished recipient, in exactly one of
 * the lists READY (due), WAITING (backoff), AWAITING (sent, DLR pending) or
 * none (in flight, or its update not committed yet), and in a hash by id.
 *
 * Group commit: HTTP results, DLRs and expiries are collected as updates;
 * an ev_prepare watcher (just before the loop blocks) applies them and marks
 * the next batch of recipients SUBMITTING in ONE write transaction, and only
 * after that commit starts those requests and answers the DLR callbacks
 * (suspended until then, so a DLR Kannel saw acknowledged is durable).
 *
 * Retention (retain_ms > 0): a timer purges recipients that are final and
 * whose delivery expired, both longer than retain_ms ago, with their
 * sms-idem keys, and a delivery's record with its last recipient. */
#include "sms.h"
#include "sms-util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ev.h>
#include <stdarg.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf/region.h"
#include "wf/store.h"

#define KEY_MAX 200u
#define NEXT_ID_KEY "\001next_id" /* in sms-deliv; no delivery key has \001 */
#define TICK_MS 1000
#define BODY_MAX 128u
#define DLR_MASK 31 /* 1 delivered, 2 undelivered, 4 buffered, 8 smsc ack, 16 smsc nack */

struct deliv_rec {
	uint8_t version;
	uint8_t parts;
	uint16_t units;
	uint32_t text_len;
	int64_t created_ms;
	int64_t expires_ms;
	char region[12];
};

struct rcpt_rec {
	uint8_t state;
	uint8_t attempts;
	uint8_t last_dlr;
	uint8_t dlr_mask;
	uint8_t klen;
	uint8_t mlen;
	uint8_t pad[2];
	int64_t next_ms;
	int64_t updated_ms;
};

enum list_id { L_NONE = 0, L_READY, L_WAITING, L_AWAITING };

struct deliv {
	char *key;       /* NULL: a free slot */
	char *text_q;    /* URL-encoded UTF-8 text */
	unsigned parts;
	int64_t expires_ms;
	size_t refs;     /* in-memory recipients; at 0 the slot is freed */
};

struct item {
	uint64_t id;
	struct item *prev, *next; /* list */
	struct item *hnext;       /* hash chain */
	int64_t next_ms;          /* WAITING: due; AWAITING: sent at */
	uint32_t deliv;
	uint8_t state;
	uint8_t attempts;
	uint8_t list;
	uint8_t inflight;
	char msisdn[WF_SMS_MSISDN_MAX + 2];
};

struct list {
	struct item *head, *tail;
	size_t n;
};

enum upd_kind { U_ACCEPTED = 1, U_RETRY, U_REFUSED, U_DLR, U_EXPIRE };

struct dlr_wait {
	struct MHD_Connection *conn;
	struct dlr_wait *next;
	int state; /* 0 waiting for the commit, 1 committed (answer), 2 bad request */
};

struct upd {
	uint64_t id;
	uint8_t kind;
	uint8_t dlr;
	int64_t next_ms;
	int out_state; /* after the txn: new state, or -1 unknown id */
};

struct req {
	struct req *prev, *next; /* sms->reqs */
	struct wf_sms *sms;
	struct item *it;
	CURL *easy;
	char *url;
	char body[BODY_MAX];
	size_t blen;
};

struct sockinfo {
	ev_io io;
	struct wf_sms *sms;
	curl_socket_t fd;
};

struct wf_sms {
	struct ev_loop *loop;
	struct wf_store *store;
	struct wf_sms_config c;
	char *sendsms_url, *user_q, *pass_q, *from_q, *dlr_host;
	struct wf_clock sysclock;
	struct wf_sms_subs *subs;
	unsigned dbi_deliv, dbi_rcpt, dbi_idem;
	uint64_t loaded_id; /* highest recipient id loaded into memory */

	struct deliv *delivs;
	size_t n_delivs, cap_delivs;

	struct item **hash;
	size_t hash_n, hash_cap;
	struct list ready, waiting, awaiting;

	struct upd *upds;
	size_t n_upds, cap_upds;
	struct item **batch;
	size_t n_batch;
	struct dlr_wait *dlr_pending; /* waiting for the next commit */

	struct wf_sms_bucket bucket;
	CURLM *multi;
	struct req *reqs;
	size_t inflight;
	ev_timer curl_timer;
	ev_timer tick;
	int64_t tick_at;
	ev_prepare prepare;
	ev_idle wake; /* one more loop iteration after a commit made in prepare */
	ev_timer commit_timer; /* the next group commit, when the last was too recent */
	ev_timer purge_timer;  /* retention (retain_ms > 0) */
	int64_t last_commit_mono;
	bool commit_failed;

	struct MHD_Daemon *mhd;
	struct MHD_Response *ok_resp, *bad_resp;
	int dlr_port;
	ev_io mhd_io;
	ev_timer mhd_timer;

	struct wf_sms_stats st;
};

static const char *const state_names[WF_SMS_STATE_MAX] = {
	"queued", "submitting", "sent", "delivered", "failed", "expired",
};

const char *wf_sms_state_to_string(enum wf_sms_state s)
{
	return (int)s >= 0 && s < WF_SMS_STATE_MAX ? state_names[s] : NULL;
}

static bool is_final(int s)
{
	return s == WF_SMS_DELIVERED || s == WF_SMS_FAILED || s == WF_SMS_EXPIRED;
}

void wf_sms_config_init(struct wf_sms_config *c)
{
	*c = (struct wf_sms_config){
		.dlr_host = "127.0.0.1",
		.max_inflight = 64,
		.max_connections = 64,
		.max_attempts = 8,
		.backoff_base_ms = 1000,
		.backoff_max_ms = 300000,
		.http_timeout_ms = 10000,
		.dlr_timeout_ms = 48LL * 3600 * 1000,
		.default_validity_ms = 24LL * 3600 * 1000,
		.max_parts = 6,
		.commit_interval_ms = 5,
	};
}

static int64_t now_ms(const struct wf_sms *sms)
{
	return wf_clock_now_ms(&sms->c.clock[0]);
}

static void notice(struct wf_sms *sms, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void notice(struct wf_sms *sms, int err, const char *fmt, ...)
{
	if (!sms->c.on_notice)
		return;
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	sms->c.on_notice(sms->c.ud, err, buf);
}

/* ---------- lists and hash ---------- */

static struct list *list_of(struct wf_sms *sms, int l)
{
	switch (l) {
	case L_READY: return &sms->ready;
	case L_WAITING: return &sms->waiting;
	case L_AWAITING: return &sms->awaiting;
	default: return NULL;
	}
}

static void unlink_item(struct wf_sms *sms, struct item *it)
{
	struct list *l = list_of(sms, it->list);
	if (!l)
		return;
	if (it->prev)
		it->prev->next = it->next;
	else
		l->head = it->next;
	if (it->next)
		it->next->prev = it->prev;
	else
		l->tail = it->prev;
	it->prev = it->next = NULL;
	l->n--;
	it->list = L_NONE;
}

static void push_item(struct wf_sms *sms, struct item *it, int lid, bool front)
{
	unlink_item(sms, it);
	struct list *l = list_of(sms, lid);
	if (front) {
		it->next = l->head;
		it->prev = NULL;
		if (l->head)
			l->head->prev = it;
		else
			l->tail = it;
		l->head = it;
	} else {
		it->prev = l->tail;
		it->next = NULL;
		if (l->tail)
			l->tail->next = it;
		else
			l->head = it;
		l->tail = it;
	}
	l->n++;
	it->list = (uint8_t)lid;
}

static size_t hslot(const struct wf_sms *sms, uint64_t id)
{
	uint64_t h = id * 0x9e3779b97f4a7c15ULL;
	return (size_t)(h >> 20) & (sms->hash_cap - 1);
}

static int hash_add(struct wf_sms *sms, struct item *it)
{
	if (sms->hash_n + 1 > sms->hash_cap) {
		size_t cap = sms->hash_cap ? sms->hash_cap * 2 : 1024;
		struct item **nh = calloc(cap, sizeof(*nh));
		if (!nh)
			return -ENOMEM;
		struct item **old = sms->hash;
		size_t ocap = sms->hash_cap;
		sms->hash = nh;
		sms->hash_cap = cap;
		for (size_t i = 0; i < ocap; i++)
			for (struct item *x = old[i], *nx; x; x = nx) {
				nx = x->hnext;
				size_t s = hslot(sms, x->id);
				x->hnext = nh[s];
				nh[s] = x;
			}
		free(old);
	}
	size_t s = hslot(sms, it->id);
	it->hnext = sms->hash[s];
	sms->hash[s] = it;
	sms->hash_n++;
	return 0;
}

static struct item *hash_find(const struct wf_sms *sms, uint64_t id)
{
	if (!sms->hash_cap)
		return NULL;
	for (struct item *x = sms->hash[hslot(sms, id)]; x; x = x->hnext)
		if (x->id == id)
			return x;
	return NULL;
}

static void hash_del(struct wf_sms *sms, struct item *it)
{
	struct item **pp = &sms->hash[hslot(sms, it->id)];
	for (; *pp; pp = &(*pp)->hnext)
		if (*pp == it) {
			*pp = it->hnext;
			sms->hash_n--;
			return;
		}
}

/* A delivery stays in memory while one of its recipients does; then its
 * slot is reused (loaded again from sms-deliv if more are planned). */
static void deliv_unref(struct wf_sms *sms, uint32_t di)
{
	struct deliv *d = &sms->delivs[di];
	if (d->refs > 0 && --d->refs == 0) {
		free(d->key);
		free(d->text_q);
		d->key = d->text_q = NULL;
	}
}

static void free_item(struct wf_sms *sms, struct item *it)
{
	unlink_item(sms, it);
	hash_del(sms, it);
	deliv_unref(sms, it->deliv);
	free(it);
}

/* ---------- records ---------- */

static int upd_push(struct wf_sms *sms, uint64_t id, int kind, int dlr, int64_t next)
{
	if (sms->n_upds == sms->cap_upds) {
		size_t cap = sms->cap_upds ? sms->cap_upds * 2 : 256;
		void *nv = realloc(sms->upds, cap * sizeof(*sms->upds));
		if (!nv)
			return -ENOMEM;
		sms->upds = nv;
		sms->cap_upds = cap;
	}
	sms->upds[sms->n_upds++] = (struct upd){ .id = id, .kind = (uint8_t)kind,
						 .dlr = (uint8_t)dlr, .next_ms = next };
	return 0;
}

static bool key_ok(const char *k)
{
	size_t n = 0;
	for (; k[n]; n++) {
		char ch = k[n];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '@' || ch == ':' || ch == '-'))
			return false;
	}
	return n >= 1 && n <= KEY_MAX;
}

static char *escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	if (!e)
		return NULL;
	char *r = strdup(e);
	curl_free(e);
	return r;
}

/* Finds or loads the in-memory delivery for KEY (text read through T). */
static int deliv_get(struct wf_sms *sms, struct wf_txn *t, const char *key, size_t klen, uint32_t *ret)
{
	size_t slot = sms->n_delivs;
	for (size_t i = sms->n_delivs; i-- > 0;) {
		if (!sms->delivs[i].key) {
			slot = i;
			continue;
		}
		if (strlen(sms->delivs[i].key) == klen && memcmp(sms->delivs[i].key, key, klen) == 0) {
			*ret = (uint32_t)i;
			return 0;
		}
	}
	void *v = NULL;
	size_t vlen = 0;
	int r = wf_store_get(t, sms->dbi_deliv, key, klen, &v, &vlen);
	if (r < 0)
		return r;
	struct deliv_rec dr;
	if (vlen < sizeof(dr)) {
		free(v);
		return -EIO;
	}
	memcpy(&dr, v, sizeof(dr));
	if (vlen < sizeof(dr) + dr.text_len) {
		free(v);
		return -EIO;
	}
	if (slot == sms->n_delivs && sms->n_delivs == sms->cap_delivs) {
		size_t cap = sms->cap_delivs ? sms->cap_delivs * 2 : 16;
		void *nv = realloc(sms->delivs, cap * sizeof(*sms->delivs));
		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		sms->delivs = nv;
		sms->cap_delivs = cap;
	}
	struct deliv *d = &sms->delivs[slot];
	d->key = strndup(key, klen);
	char *e = curl_easy_escape(NULL, (const char *)v + sizeof(dr), (int)dr.text_len);
	d->text_q = e ? strdup(e) : NULL;
	curl_free(e);
	free(v);
	if (!d->key || !d->text_q) {
		free(d->key);
		free(d->text_q);
		d->key = d->text_q = NULL;
		return -ENOMEM;
	}
	d->parts = dr.parts;
	d->expires_ms = dr.expires_ms;
	d->refs = 0;
	if (slot == sms->n_delivs)
		sms->n_delivs++;
	*ret = (uint32_t)slot;
	return 0;
}

static int meta_next_id(struct wf_sms *sms, struct wf_txn *t, uint64_t *ret)
{
	unsigned char b[8];
	size_t len;
	int r = wf_store_get_buf(t, sms->dbi_deliv, NEXT_ID_KEY, sizeof(NEXT_ID_KEY) - 1, b,
				 sizeof(b), &len);
	if (r == -ENOENT) {
		*ret = 1;
		return 0;
	}
	if (r < 0)
		return r;
	if (len != 8)
		return -EIO;
	*ret = wf_store_key_to_u64(b);
	return 0;
}

/* ---------- enqueue ---------- */

int wf_sms_enqueue(struct wf_sms *sms, struct wf_txn *t, const char *delivery_key,
		   const char *region_code, const char *text_utf8, int64_t expires_ms,
		   size_t *ret_planned)
{
	char region[13];
	if (!sms || !t || !delivery_key || !region_code || !text_utf8)
		return -EINVAL;
	if (!key_ok(delivery_key) || wf_region_normalize(region_code, region) < 0 ||
	    wf_region_level_of_code(region) == WF_REGION_LEVEL_INVALID)
		return -EINVAL;
	char *text = NULL;
	size_t units = 0;
	int r = wf_sms_prepare_text(text_utf8, strlen(text_utf8), &text, &units);
	if (r < 0)
		return r;
	if (units == 0 || units > UINT16_MAX) {
		free(text);
		return units == 0 ? -EINVAL : -EMSGSIZE;
	}
	unsigned parts = wf_sms_parts_for_units(units);
	if (parts > sms->c.max_parts) {
		free(text);
		return -EMSGSIZE;
	}
	size_t tlen = strlen(text);
	int64_t now = now_ms(sms);
	size_t klen = strlen(delivery_key);

	r = wf_store_exists(t, sms->dbi_deliv, delivery_key, klen);
	if (r < 0) {
		free(text);
		return r;
	}
	if (r == 0) {
		struct deliv_rec dr = {
			.version = 1, .parts = (uint8_t)parts, .units = (uint16_t)units,
			.text_len = (uint32_t)tlen, .created_ms = now,
			.expires_ms = expires_ms > 0 ? expires_ms : now + sms->c.default_validity_ms,
		};
		memcpy(dr.region, region, 12);
		size_t vlen = sizeof(dr) + tlen;
		unsigned char *v = malloc(vlen);
		if (!v) {
			free(text);
			return -ENOMEM;
		}
		memcpy(v, &dr, sizeof(dr));
		memcpy(v + sizeof(dr), text, tlen);
		r = wf_store_put(t, sms->dbi_deliv, delivery_key, klen, v, vlen, 0);
		free(v);
		if (r < 0) {
			free(text);
			return r;
		}
	}
	free(text);

	const struct wf_sms_subscriber *first;
	size_t n = wf_sms_subs_in_region(sms->subs, region, &first);
	uint64_t id;
	r = meta_next_id(sms, t, &id);
	if (r < 0)
		return r;
	size_t planned = 0;
	unsigned char ikey[KEY_MAX + 1 + WF_SMS_MSISDN_MAX + 2];
	unsigned char val[sizeof(struct rcpt_rec) + KEY_MAX + WF_SMS_MSISDN_MAX + 2];
	memcpy(ikey, delivery_key, klen);
	ikey[klen] = '\0';
	struct rcpt_rec rr = { .state = WF_SMS_QUEUED, .klen = (uint8_t)klen, .updated_ms = now };
	memcpy(val + sizeof(rr), delivery_key, klen);
	for (size_t i = 0; i < n; i++) {
		const char *m = first[i].msisdn;
		size_t mlen = strlen(m);
		memcpy(ikey + klen + 1, m, mlen);
		unsigned char idb[8];
		wf_store_u64_to_key(id, idb);
		r = wf_store_put(t, sms->dbi_idem, ikey, klen + 1 + mlen, idb, 8, WF_STORE_PUT_NOOVERWRITE);
		if (r == -EEXIST)
			continue; /* planned before, or the same msisdn in another sub-region */
		if (r < 0)
			return r;
		rr.mlen = (uint8_t)mlen;
		memcpy(val, &rr, sizeof(rr));
		memcpy(val + sizeof(rr) + klen, m, mlen);
		r = wf_store_put(t, sms->dbi_rcpt, idb, 8, val, sizeof(rr) + klen + mlen, WF_STORE_PUT_APPEND);
		if (r < 0)
			return r;
		id++;
		planned++;
	}
	if (planned) {
		unsigned char b[8];
		wf_store_u64_to_key(id, b);
		r = wf_store_put(t, sms->dbi_deliv, NEXT_ID_KEY, sizeof(NEXT_ID_KEY) - 1, b, 8, 0);
		if (r < 0)
			return r;
	}
	if (ret_planned)
		*ret_planned = planned;
	return 0;
}

/* ---------- loading recipients into memory ---------- */

struct load_ctx {
	struct wf_sms *sms;
	struct wf_txn *t;
	bool at_open;
	int64_t now;
	int err;
};

static int load_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct load_ctx *lc = ud;
	struct wf_sms *sms = lc->sms;
	struct rcpt_rec rr;
	if (klen != 8 || vlen < sizeof(rr))
		return -EIO;
	memcpy(&rr, val, sizeof(rr));
	if (vlen != sizeof(rr) + rr.klen + rr.mlen || rr.mlen > WF_SMS_MSISDN_MAX + 1)
		return -EIO;
	uint64_t id = wf_store_key_to_u64(key);
	if (id > sms->loaded_id)
		sms->loaded_id = id;
	if (is_final(rr.state) || hash_find(sms, id))
		return 0;
	uint32_t di;
	int r = deliv_get(sms, lc->t, (const char *)val + sizeof(rr), rr.klen, &di);
	if (r < 0)
		return r;
	struct item *it = calloc(1, sizeof(*it));
	if (!it)
		return -ENOMEM;
	it->id = id;
	it->deliv = di;
	it->state = rr.state;
	it->attempts = rr.attempts;
	memcpy(it->msisdn, (const char *)val + sizeof(rr) + rr.klen, rr.mlen);
	if (hash_add(sms, it) < 0) {
		free(it);
		return -ENOMEM;
	}
	sms->delivs[di].refs++;
	if (lc->at_open)
		sms->st.resumed++;
	else
		sms->st.planned++;
	switch (rr.state) {
	case WF_SMS_SUBMITTING:
		/* the kill window: it may or may not have reached Kannel */
		sms->st.resent_submitting++;
		it->state = WF_SMS_QUEUED;
		push_item(sms, it, L_READY, false);
		break;
	case WF_SMS_SENT:
		it->next_ms = rr.updated_ms;
		push_item(sms, it, L_AWAITING, false);
		break;
	default:
		if (rr.next_ms > lc->now) {
			it->next_ms = rr.next_ms;
			push_item(sms, it, L_WAITING, false);
		} else {
			push_item(sms, it, L_READY, false);
		}
	}
	return 0;
}

static int load_fn(struct wf_txn *t, void *ud)
{
	struct load_ctx *lc = ud;
	unsigned char from[8];
	lc->t = t;
	wf_store_u64_to_key(lc->sms->loaded_id + 1, from);
	return wf_store_foreach(t, lc->sms->dbi_rcpt, lc->at_open ? NULL : from,
				lc->at_open ? 0 : 8, load_one, lc);
}

static void arm_tick(struct wf_sms *sms, int64_t at_ms);

int wf_sms_kick(struct wf_sms *sms)
{
	if (!sms)
		return -EINVAL;
	struct load_ctx lc = { .sms = sms, .now = now_ms(sms) };
	int r = wf_store_view(sms->store, load_fn, &lc);
	if (r < 0)
		return r;
	if (sms->waiting.n || sms->awaiting.n)
		arm_tick(sms, lc.now + TICK_MS);
	return 0;
}

/* ---------- the commit: updates + next batch ---------- */

struct flush_ctx {
	struct wf_sms *sms;
	int64_t now;
};

static int rec_load(struct wf_sms *sms, struct wf_txn *t, uint64_t id, unsigned char *buf,
		    size_t size, size_t *len, struct rcpt_rec *rr)
{
	unsigned char k[8];
	wf_store_u64_to_key(id, k);
	int r = wf_store_get_buf(t, sms->dbi_rcpt, k, 8, buf, size, len);
	if (r < 0)
		return r;
	if (*len < sizeof(*rr))
		return -EIO;
	memcpy(rr, buf, sizeof(*rr));
	return 0;
}

static int rec_store(struct wf_sms *sms, struct wf_txn *t, uint64_t id, unsigned char *buf,
		     size_t len, const struct rcpt_rec *rr)
{
	unsigned char k[8];
	wf_store_u64_to_key(id, k);
	memcpy(buf, rr, sizeof(*rr));
	return wf_store_put(t, sms->dbi_rcpt, k, 8, buf, len, 0);
}

static int flush_fn(struct wf_txn *t, void *ud)
{
	struct flush_ctx *fc = ud;
	struct wf_sms *sms = fc->sms;
	unsigned char buf[sizeof(struct rcpt_rec) + KEY_MAX + WF_SMS_MSISDN_MAX + 2];
	size_t len;
	struct rcpt_rec rr;
	int r;

	for (size_t i = 0; i < sms->n_upds; i++) {
		struct upd *u = &sms->upds[i];
		r = rec_load(sms, t, u->id, buf, sizeof(buf), &len, &rr);
		if (r == -ENOENT) {
			u->out_state = -1;
			continue;
		}
		if (r < 0)
			return r;
		int s = rr.state;
		switch (u->kind) {
		case U_ACCEPTED:
			if (!is_final(s))
				s = WF_SMS_SENT;
			break;
		case U_RETRY:
			if (!is_final(s) && s != WF_SMS_SENT) {
				s = WF_SMS_QUEUED;
				rr.next_ms = u->next_ms;
			}
			break;
		case U_REFUSED:
			if (!is_final(s))
				s = WF_SMS_FAILED;
			break;
		case U_DLR:
			rr.last_dlr = u->dlr;
			rr.dlr_mask |= u->dlr;
			if (!is_final(s)) {
				if (u->dlr & 1)
					s = WF_SMS_DELIVERED;
				else if (u->dlr & (2 | 16))
					s = WF_SMS_FAILED;
				else if (s == WF_SMS_SUBMITTING || s == WF_SMS_QUEUED)
					s = WF_SMS_SENT; /* 4 buffered / 8 smsc ack: Kannel has it */
			}
			break;
		case U_EXPIRE:
			if (!is_final(s))
				s = WF_SMS_EXPIRED;
			break;
		}
		u->out_state = s;
		rr.state = (uint8_t)s;
		rr.updated_ms = fc->now;
		r = rec_store(sms, t, u->id, buf, len, &rr);
		if (r < 0)
			return r;
	}
	for (size_t i = 0; i < sms->n_batch; i++) {
		struct item *it = sms->batch[i];
		r = rec_load(sms, t, it->id, buf, sizeof(buf), &len, &rr);
		if (r < 0)
			return r;
		if (is_final(rr.state) || rr.state == WF_SMS_SENT)
			continue; /* e.g. a DLR above for a request we thought had failed */
		rr.state = WF_SMS_SUBMITTING;
		rr.attempts = (uint8_t)(it->attempts + 1 > 255 ? 255 : it->attempts + 1);
		rr.updated_ms = fc->now;
		r = rec_store(sms, t, it->id, buf, len, &rr);
		if (r < 0)
			return r;
	}
	return 0;
}

static void start_request(struct wf_sms *sms, struct item *it);

static void final_reached(struct wf_sms *sms, struct item *it, int s)
{
	if (s == WF_SMS_DELIVERED)
		sms->st.delivered++;
	else if (s == WF_SMS_FAILED)
		sms->st.failed++;
	else
		sms->st.expired++;
	if (sms->c.on_final)
		sms->c.on_final(sms->c.ud, sms->delivs[it->deliv].key, it->msisdn, (enum wf_sms_state)s);
}

/* Memory follows the committed updates. */
static void sync_updates(struct wf_sms *sms, int64_t now)
{
	for (size_t i = 0; i < sms->n_upds; i++) {
		struct upd *u = &sms->upds[i];
		if (u->out_state < 0) {
			sms->st.dlr_unknown++;
			continue;
		}
		struct item *it = hash_find(sms, u->id);
		if (!it || is_final(it->state))
			continue;
		int s = u->out_state;
		it->state = (uint8_t)s;
		if (is_final(s)) {
			final_reached(sms, it, s);
			if (!it->inflight)
				free_item(sms, it);
			else
				unlink_item(sms, it); /* freed when its request completes */
		} else if (it->inflight) {
			continue; /* the request's own result decides */
		} else if (s == WF_SMS_SENT) {
			if (it->list != L_AWAITING) {
				it->next_ms = now;
				push_item(sms, it, L_AWAITING, false);
				arm_tick(sms, now + TICK_MS); /* DLR timeouts */
			}
		} else if (s == WF_SMS_QUEUED) {
			it->next_ms = u->next_ms;
			push_item(sms, it, u->next_ms > now ? L_WAITING : L_READY, false);
			if (u->next_ms > now)
				arm_tick(sms, u->next_ms);
		}
	}
	sms->n_upds = 0;
}

static void resume_dlrs(struct wf_sms *sms, struct dlr_wait *list)
{
	for (struct dlr_wait *w = list, *nx; w; w = nx) {
		nx = w->next;
		w->next = NULL;
		w->state = 1;
		MHD_resume_connection(w->conn);
	}
}

static void flush(struct wf_sms *sms)
{
	int64_t now = now_ms(sms);
	/* pick the next batch */
	sms->n_batch = 0;
	size_t room = sms->inflight < sms->c.max_inflight ? sms->c.max_inflight - sms->inflight : 0;
	while (room > 0 && sms->ready.head) {
		struct item *it = sms->ready.head;
		struct deliv *d = &sms->delivs[it->deliv];
		if (d->expires_ms <= now) {
			unlink_item(sms, it);
			if (upd_push(sms, it->id, U_EXPIRE, 0, 0) < 0)
				push_item(sms, it, L_READY, true);
			continue;
		}
		if (!wf_sms_bucket_take(&sms->bucket, d->parts, now)) {
			arm_tick(sms, now + wf_sms_bucket_wait_ms(&sms->bucket, d->parts, now));
			break;
		}
		unlink_item(sms, it);
		it->inflight = 1; /* sync_updates must not free it: see below */
		sms->batch[sms->n_batch++] = it;
		room--;
	}
	if (!sms->n_upds && !sms->n_batch && !sms->dlr_pending)
		return;
	struct flush_ctx fc = { .sms = sms, .now = now };
	int r = wf_store_update(sms->store, flush_fn, &fc);
	if (r < 0) {
		/* keep everything and try again on the next tick */
		if (!sms->commit_failed)
			notice(sms, r, "sms: state commit failed: %s", strerror(-r));
		sms->commit_failed = true;
		for (size_t i = sms->n_batch; i-- > 0;) {
			sms->batch[i]->inflight = 0;
			push_item(sms, sms->batch[i], L_READY, true);
		}
		sms->n_batch = 0;
		arm_tick(sms, now + 100);
		return;
	}
	sms->commit_failed = false;
	/* this commit ran just before the loop blocks: let the loop go round
	 * once more, so that callers that check state between iterations (and
	 * the callbacks below) see it without waiting for the next event */
	ev_idle_start(sms->loop, &sms->wake);
	struct dlr_wait *dl = sms->dlr_pending;
	sms->dlr_pending = NULL;
	sync_updates(sms, now);
	resume_dlrs(sms, dl);
	for (size_t i = 0; i < sms->n_batch; i++) {
		struct item *it = sms->batch[i];
		it->inflight = 0;
		if (is_final(it->state)) {
			free_item(sms, it); /* an update in this commit made it final */
			continue;
		}
		if (it->state == WF_SMS_SENT) {
			/* a DLR in this commit says Kannel has it already */
			it->next_ms = now;
			push_item(sms, it, L_AWAITING, false);
			arm_tick(sms, now + TICK_MS);
			continue;
		}
		it->state = WF_SMS_SUBMITTING;
		if (it->attempts < 255)
			it->attempts++;
		start_request(sms, it);
	}
	sms->n_batch = 0;
}

static void wake_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)revents;
	ev_idle_stop(loop, w);
}

static void prepare_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	struct wf_sms *sms = w->data;
	if (sms->commit_failed)
		return; /* the tick retries */
	if (!(sms->n_upds || sms->dlr_pending ||
	      (sms->ready.head && sms->inflight < sms->c.max_inflight)))
		return;
	/* group commit: at most one durable commit per commit_interval_ms */
	int64_t now = wf_clock_mono_ms(), due = sms->last_commit_mono + sms->c.commit_interval_ms;
	if (now < due) {
		if (!ev_is_active(&sms->commit_timer)) {
			ev_timer_set(&sms->commit_timer, (double)(due - now) / 1000.0, 0.);
			ev_timer_start(loop, &sms->commit_timer);
		}
		return;
	}
	sms->last_commit_mono = now;
	flush(sms);
}

static void commit_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	/* nothing: the loop goes round and prepare_cb commits */
}

/* ---------- tick: backoff due, DLR timeouts ---------- */

static void arm_tick(struct wf_sms *sms, int64_t at_ms)
{
	int64_t now = now_ms(sms);
	if (ev_is_active(&sms->tick) && sms->tick_at <= at_ms)
		return;
	if (at_ms < now)
		at_ms = now;
	ev_timer_stop(sms->loop, &sms->tick);
	ev_timer_set(&sms->tick, (double)(at_ms - now) / 1000.0, 0.);
	ev_timer_start(sms->loop, &sms->tick);
	sms->tick_at = at_ms;
}

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct wf_sms *sms = w->data;
	int64_t now = now_ms(sms), next = INT64_MAX;
	sms->commit_failed = false;
	for (struct item *it = sms->waiting.head, *nx; it; it = nx) {
		nx = it->next;
		if (it->next_ms <= now)
			push_item(sms, it, L_READY, false);
		else if (it->next_ms < next)
			next = it->next_ms;
	}
	for (struct item *it = sms->awaiting.head, *nx; it; it = nx) {
		nx = it->next;
		if (it->next_ms + sms->c.dlr_timeout_ms <= now) {
			unlink_item(sms, it);
			if (upd_push(sms, it->id, U_EXPIRE, 0, 0) < 0)
				push_item(sms, it, L_AWAITING, false);
		}
	}
	if (sms->waiting.n || sms->awaiting.n || sms->ready.n)
		arm_tick(sms, next < now + TICK_MS ? next : now + TICK_MS);
}

/* ---------- HTTP to Kannel (curl multi on libev) ---------- */

static void check_multi(struct wf_sms *sms);

static size_t body_cb(char *p, size_t size, size_t n, void *ud)
{
	struct req *q = ud;
	size_t len = size * n, room = BODY_MAX - 1 - q->blen;
	memcpy(q->body + q->blen, p, len < room ? len : room);
	q->blen += len < room ? len : room;
	q->body[q->blen] = '\0';
	return len;
}

static void req_unlink(struct wf_sms *sms, struct req *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		sms->reqs = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
}

static void start_request(struct wf_sms *sms, struct item *it)
{
	struct deliv *d = &sms->delivs[it->deliv];
	struct req *q = calloc(1, sizeof(*q));
	char dlr[256], *dlr_q = NULL;
	snprintf(dlr, sizeof(dlr), "http://%s:%d/dlr?id=%" PRIu64 "&st=%%d", sms->dlr_host,
		 sms->dlr_port, it->id);
	if (q)
		dlr_q = escape(dlr);
	if (!q || !dlr_q ||
	    asprintf(&q->url, "%s?username=%s&password=%s&from=%s&to=%s&coding=2&charset=UTF-8"
			      "&dlr-mask=%d&dlr-url=%s&text=%s",
		     sms->sendsms_url, sms->user_q, sms->pass_q, sms->from_q, it->msisdn, DLR_MASK,
		     dlr_q, d->text_q) < 0 ||
	    !(q->easy = curl_easy_init())) {
		free(dlr_q);
		if (q)
			free(q->url);
		free(q);
		/* no memory: retry later */
		upd_push(sms, it->id, U_RETRY, 0, now_ms(sms) + sms->c.backoff_base_ms);
		return;
	}
	free(dlr_q);
	q->sms = sms;
	q->it = it;
	curl_easy_setopt(q->easy, CURLOPT_URL, q->url);
	curl_easy_setopt(q->easy, CURLOPT_PRIVATE, q);
	curl_easy_setopt(q->easy, CURLOPT_WRITEFUNCTION, body_cb);
	curl_easy_setopt(q->easy, CURLOPT_WRITEDATA, q);
	curl_easy_setopt(q->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(q->easy, CURLOPT_TIMEOUT_MS, (long)sms->c.http_timeout_ms);
	curl_easy_setopt(q->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)sms->c.http_timeout_ms);
	curl_easy_setopt(q->easy, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(q->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	it->inflight = 1;
	sms->inflight++;
	sms->st.requests++;
	q->next = sms->reqs;
	if (sms->reqs)
		sms->reqs->prev = q;
	sms->reqs = q;
	CURLMcode mc = curl_multi_add_handle(sms->multi, q->easy);
	if (mc != CURLM_OK) {
		req_unlink(sms, q);
		it->inflight = 0;
		sms->inflight--;
		curl_easy_cleanup(q->easy);
		free(q->url);
		free(q);
		upd_push(sms, it->id, U_RETRY, 0, now_ms(sms) + sms->c.backoff_base_ms);
	}
}

static void finish_request(struct wf_sms *sms, struct req *q, CURLcode res)
{
	struct item *it = q->it;
	long code = 0;
	curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &code);
	it->inflight = 0;
	sms->inflight--;
	int64_t now = now_ms(sms);
	if (is_final(it->state)) {
		/* a DLR made it final while the request ran (Kannel answers the
		 * sendsms request after the SMSC's report, sometimes): it was
		 * accepted all the same */
		if (res == CURLE_OK && code >= 200 && code < 300) {
			sms->st.accepted++;
			sms->st.parts_sent += sms->delivs[it->deliv].parts;
		}
		free_item(sms, it);
		goto out;
	}
	if (res == CURLE_OK && code >= 200 && code < 300) {
		sms->st.accepted++;
		sms->st.parts_sent += sms->delivs[it->deliv].parts;
		upd_push(sms, it->id, U_ACCEPTED, 0, 0);
		goto out;
	}
	bool permanent = res == CURLE_OK && code >= 400 && code < 500 &&
			 !strstr(q->body, "Authorization failed");
	if (permanent) {
		sms->st.refused++;
		notice(sms, -EPERM, "sms: Kannel refused %s (HTTP %ld: %.80s)", it->msisdn, code, q->body);
		upd_push(sms, it->id, U_REFUSED, 0, 0);
		goto out;
	}
	sms->st.http_errors++;
	if (it->attempts >= sms->c.max_attempts) {
		notice(sms, -ETIMEDOUT, "sms: giving up on %s after %u attempts (%s, HTTP %ld)",
		       it->msisdn, it->attempts, curl_easy_strerror(res), code);
		upd_push(sms, it->id, U_REFUSED, 0, 0);
	} else {
		sms->st.retries++;
		upd_push(sms, it->id, U_RETRY, 0,
			 now + wf_sms_backoff_ms(it->attempts, sms->c.backoff_base_ms, sms->c.backoff_max_ms));
	}
out:
	req_unlink(sms, q);
	curl_multi_remove_handle(sms->multi, q->easy);
	curl_easy_cleanup(q->easy);
	free(q->url);
	free(q);
}

static void check_multi(struct wf_sms *sms)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(sms->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct req *q = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&q);
		finish_request(sms, q, m->data.result);
	}
}

static void sock_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	struct sockinfo *si = w->data;
	int action = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
	int running;
	struct wf_sms *sms = si->sms; /* SI may be freed inside socket_action */
	curl_multi_socket_action(sms->multi, si->fd, action, &running);
	check_multi(sms);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)e;
	struct wf_sms *sms = userp;
	struct sockinfo *si = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (si) {
			ev_io_stop(sms->loop, &si->io);
			free(si);
			curl_multi_assign(sms->multi, s, NULL);
		}
		return 0;
	}
	if (!si) {
		si = calloc(1, sizeof(*si));
		if (!si)
			return -1;
		si->sms = sms;
		si->fd = s;
		curl_multi_assign(sms->multi, s, si);
	} else {
		ev_io_stop(sms->loop, &si->io);
	}
	int ev = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
	ev_io_init(&si->io, sock_io_cb, s, ev);
	si->io.data = si;
	ev_io_start(sms->loop, &si->io);
	return 0;
}

static void curl_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct wf_sms *sms = w->data;
	int running;
	curl_multi_socket_action(sms->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_multi(sms);
}

static int multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct wf_sms *sms = userp;
	ev_timer_stop(sms->loop, &sms->curl_timer);
	if (timeout_ms >= 0) {
		ev_timer_set(&sms->curl_timer, (double)timeout_ms / 1000.0, 0.);
		ev_timer_start(sms->loop, &sms->curl_timer);
	}
	return 0;
}

/* ---------- DLR listener (libmicrohttpd, external epoll on the loop) ---------- */

static void mhd_arm(struct wf_sms *sms)
{
	MHD_UNSIGNED_LONG_LONG to;
	ev_timer_stop(sms->loop, &sms->mhd_timer);
	if (MHD_get_timeout(sms->mhd, &to) == MHD_YES) {
		ev_timer_set(&sms->mhd_timer, (double)to / 1000.0, 0.);
		ev_timer_start(sms->loop, &sms->mhd_timer);
	}
}

static void mhd_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct wf_sms *sms = w->data;
	MHD_run(sms->mhd);
	mhd_arm(sms);
}

static void mhd_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct wf_sms *sms = w->data;
	MHD_run(sms->mhd);
	mhd_arm(sms);
}

static bool parse_u64(const char *s, uint64_t *ret)
{
	if (!s || !*s || strlen(s) > 20)
		return false;
	uint64_t v = 0;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		uint64_t nv = v * 10 + (uint64_t)(*s - '0');
		if (nv < v)
			return false;
		v = nv;
	}
	*ret = v;
	return true;
}

static enum MHD_Result dlr_access(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	(void)version;
	(void)upload;
	struct wf_sms *sms = cls;
	struct dlr_wait *w = *con_cls;
	if (w) {
		if (*upload_size) {
			*upload_size = 0; /* ignore any body */
			return MHD_YES;
		}
		return MHD_queue_response(conn, w->state == 2 ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_OK,
					  w->state == 2 ? sms->bad_resp : sms->ok_resp);
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return MHD_NO;
	w->conn = conn;
	*con_cls = w;
	uint64_t id, st;
	if (strcmp(url, "/dlr") != 0 || (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0) ||
	    !parse_u64(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "id"), &id) ||
	    !parse_u64(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "st"), &st) ||
	    st == 0 || st > 255) {
		sms->st.dlrs++;
		sms->st.dlr_unknown++;
		w->state = 2;
		return MHD_YES; /* answered on the next call */
	}
	sms->st.dlrs++;
	if (upd_push(sms, id, U_DLR, (int)st, 0) < 0)
		return MHD_NO;
	/* answer only after the commit, so Kannel retries a DLR we lost */
	MHD_suspend_connection(conn);
	w->next = sms->dlr_pending;
	sms->dlr_pending = w;
	return MHD_YES;
}

static void dlr_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			  enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	free(*con_cls);
	*con_cls = NULL;
}

static int start_listener(struct wf_sms *sms)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)sms->c.dlr_port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sms->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, (uint16_t)sms->c.dlr_port,
				    NULL, NULL, dlr_access, sms,
				    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				    MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024,
				    MHD_OPTION_CONNECTION_LIMIT, (unsigned)2048,
				    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
				    MHD_OPTION_NOTIFY_COMPLETED, dlr_completed, sms,
				    MHD_OPTION_END);
	if (!sms->mhd)
		return -EADDRINUSE;
	const union MHD_DaemonInfo *pi = MHD_get_daemon_info(sms->mhd, MHD_DAEMON_INFO_BIND_PORT);
	const union MHD_DaemonInfo *ei = MHD_get_daemon_info(sms->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	if (!pi || !ei)
		return -EIO;
	sms->dlr_port = pi->port;
	sms->ok_resp = MHD_create_response_from_buffer(2, (void *)"ok", MHD_RESPMEM_PERSISTENT);
	sms->bad_resp = MHD_create_response_from_buffer(11, (void *)"bad request", MHD_RESPMEM_PERSISTENT);
	if (!sms->ok_resp || !sms->bad_resp)
		return -ENOMEM;
	ev_io_init(&sms->mhd_io, mhd_io_cb, ei->epoll_fd, EV_READ);
	sms->mhd_io.data = sms;
	ev_io_start(sms->loop, &sms->mhd_io);
	ev_timer_init(&sms->mhd_timer, mhd_timer_cb, 0., 0.);
	sms->mhd_timer.data = sms;
	mhd_arm(sms);
	return 0;
}

/* ---------- open / close ---------- */

/* ---------- retention ---------- */

#define PURGE_MAX 1000u /* recipients per timer run (one transaction) */

struct purged {
	uint64_t id;
	char key[KEY_MAX + 1];
	char msisdn[WF_SMS_MSISDN_MAX + 2];
};

struct purge_ctx {
	struct wf_sms *sms;
	struct wf_txn *t;
	int64_t before;
	size_t max, visited;
	struct purged *v;
	size_t n;
	bool more;
	/* the delivery of the last recipient seen (they come in runs) */
	char key[KEY_MAX + 1];
	int64_t key_expires;
};

/* A recipient is purged when it is final, not in memory, and both its last
 * change and its delivery's expiry are older than BEFORE. The walk (in id
 * order, i.e. planning order; at most 4 x MAX records) steps over
 * unfinished recipients and those of a delivery still valid, and stops at
 * the first final one changed too recently: the later ones were planned
 * after it, so they are most likely younger too (a purge never takes one
 * early; it may take one late, at a later run). */
static int purge_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct purge_ctx *pc = ud;
	struct rcpt_rec rr;
	if (pc->visited++ >= 4 * pc->max) {
		pc->more = true;
		return 1;
	}
	if (klen != 8 || vlen < sizeof(rr))
		return -EIO;
	memcpy(&rr, val, sizeof(rr));
	if (vlen != sizeof(rr) + rr.klen + rr.mlen || rr.klen > KEY_MAX ||
	    rr.mlen > WF_SMS_MSISDN_MAX + 1)
		return -EIO;
	uint64_t id = wf_store_key_to_u64(key);
	if (!is_final(rr.state) || hash_find(pc->sms, id))
		return 0;
	if (rr.updated_ms >= pc->before)
		return 1;
	const char *k = (const char *)val + sizeof(rr);
	if (strlen(pc->key) != rr.klen || memcmp(pc->key, k, rr.klen) != 0) {
		struct deliv_rec dr;
		void *v = NULL;
		size_t dl = 0;
		memcpy(pc->key, k, rr.klen);
		pc->key[rr.klen] = '\0';
		int r = wf_store_get(pc->t, pc->sms->dbi_deliv, k, rr.klen, &v, &dl);
		if (r == -ENOENT) {
			pc->key_expires = INT64_MIN; /* no delivery record left: nothing to wait for */
		} else if (r < 0) {
			return r;
		} else {
			bool ok = dl >= sizeof(dr);
			if (ok)
				memcpy(&dr, v, sizeof(dr));
			free(v);
			if (!ok)
				return -EIO;
			pc->key_expires = dr.expires_ms;
		}
	}
	if (pc->key_expires >= pc->before)
		return 0; /* its delivery is still valid (or too recently expired) */
	if (pc->n == pc->max) {
		pc->more = true;
		return 1;
	}
	struct purged *p = &pc->v[pc->n++];
	p->id = id;
	memcpy(p->key, k, rr.klen);
	p->key[rr.klen] = '\0';
	memcpy(p->msisdn, k + rr.klen, rr.mlen);
	p->msisdn[rr.mlen] = '\0';
	return 0;
}

static int idem_any(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	const char *prefix = ud; /* "<key>\0" */
	size_t plen = strlen(prefix) + 1;
	(void)val;
	(void)vlen;
	return klen > plen && memcmp(key, prefix, plen) == 0 ? 1 : 2;
}

static int purge_fn(struct wf_txn *t, void *ud)
{
	struct purge_ctx *pc = ud;
	pc->t = t;
	pc->visited = pc->n = 0;
	pc->more = false;
	pc->key[0] = '\0';
	int r = wf_store_foreach(t, pc->sms->dbi_rcpt, NULL, 0, purge_one, pc);
	if (r < 0)
		return r;
	for (size_t i = 0; i < pc->n; i++) {
		const struct purged *p = &pc->v[i];
		unsigned char idb[8];
		size_t kl = strlen(p->key), ml = strlen(p->msisdn);
		unsigned char ikey[KEY_MAX + 1 + WF_SMS_MSISDN_MAX + 2];
		wf_store_u64_to_key(p->id, idb);
		if ((r = wf_store_del(t, pc->sms->dbi_rcpt, idb, 8)) < 0)
			return r;
		memcpy(ikey, p->key, kl + 1);
		memcpy(ikey + kl + 1, p->msisdn, ml);
		r = wf_store_del(t, pc->sms->dbi_idem, ikey, kl + 1 + ml);
		if (r < 0 && r != -ENOENT)
			return r;
		/* the delivery's record goes with its last recipient */
		if (i + 1 < pc->n && strcmp(pc->v[i + 1].key, p->key) == 0)
			continue;
		r = wf_store_foreach(t, pc->sms->dbi_idem, ikey, kl + 1, idem_any, ikey);
		if (r < 0)
			return r;
		if (r != 1) {
			r = wf_store_del(t, pc->sms->dbi_deliv, p->key, kl);
			if (r < 0 && r != -ENOENT)
				return r;
		}
	}
	return 0;
}

int wf_sms_purge(struct wf_sms *sms, int64_t before_ms, size_t max, size_t *ret_purged,
		 bool *ret_more)
{
	if (!sms || max == 0 || max > 100000)
		return -EINVAL;
	struct purge_ctx pc = { .sms = sms, .before = before_ms, .max = max };
	pc.v = malloc(max * sizeof(*pc.v));
	if (!pc.v)
		return -ENOMEM;
	int r = wf_store_update(sms->store, purge_fn, &pc);
	free(pc.v);
	if (r < 0)
		return r;
	sms->st.purged += pc.n;
	if (ret_purged)
		*ret_purged = pc.n;
	if (ret_more)
		*ret_more = pc.more;
	return 0;
}

/* a quarter of retain, within 0.1 s .. 60 s */
static double purge_interval_s(const struct wf_sms *sms)
{
	double s = (double)sms->c.retain_ms / 4000.0;
	return s < 0.1 ? 0.1 : s > 60 ? 60 : s;
}

static void arm_purge(struct wf_sms *sms, double after_s)
{
	ev_timer_stop(sms->loop, &sms->purge_timer);
	ev_timer_set(&sms->purge_timer, after_s, 0.);
	ev_timer_start(sms->loop, &sms->purge_timer);
}

static void purge_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wf_sms *sms = w->data;
	size_t n = 0;
	bool more = false;
	(void)loop;
	(void)revents;
	int r = wf_sms_purge(sms, now_ms(sms) - sms->c.retain_ms, PURGE_MAX, &n, &more);
	if (r < 0)
		notice(sms, r, "retention: purging old recipients failed");
	/* a full batch: the next one at once; a walk that stopped at its visit
	 * limit (unfinished or still valid recipients first) waits its turn */
	arm_purge(sms, r == 0 && more && n == PURGE_MAX ? 0.01 : purge_interval_s(sms));
}

int wf_sms_open(struct ev_loop *loop, struct wf_store *store, const struct wf_sms_config *c,
		struct wf_sms **ret, char *ret_err, size_t errlen)
{
	int r;
	if (ret_err && errlen)
		ret_err[0] = '\0';
	if (!loop || !store || !c || !ret || !c->sendsms_url || !c->username || !c->password ||
	    !c->from || !c->subscribers_path || c->max_parts > 255 || c->max_inflight > 1024 ||
	    c->dlr_port < 0 || c->dlr_port > 65535 || c->rate_parts_per_s < 0 || c->retain_ms < 0)
		return -EINVAL;
	struct wf_sms *sms = calloc(1, sizeof(*sms));
	if (!sms)
		return -ENOMEM;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(sms);
		return -ENOMEM;
	}
	sms->loop = loop;
	sms->store = store;
	sms->c = *c;
	struct wf_sms_config d;
	wf_sms_config_init(&d);
#define DEF(f) if (!sms->c.f) sms->c.f = d.f
	DEF(max_inflight); DEF(max_connections); DEF(max_attempts); DEF(backoff_base_ms);
	DEF(backoff_max_ms); DEF(http_timeout_ms); DEF(dlr_timeout_ms); DEF(default_validity_ms);
	DEF(max_parts); DEF(dlr_host);
	if (sms->c.commit_interval_ms < 0)
		sms->c.commit_interval_ms = 0;
#undef DEF
	sms->sysclock = wf_clock_system();
	if (!sms->c.clock)
		sms->c.clock = &sms->sysclock;
	sms->sendsms_url = strdup(c->sendsms_url);
	sms->user_q = escape(c->username);
	sms->pass_q = escape(c->password);
	sms->from_q = escape(c->from);
	sms->dlr_host = strdup(sms->c.dlr_host);
	sms->batch = calloc(sms->c.max_inflight, sizeof(*sms->batch));
	if (!sms->sendsms_url || !sms->user_q || !sms->pass_q || !sms->from_q || !sms->dlr_host ||
	    !sms->batch) {
		r = -ENOMEM;
		goto fail;
	}
	sms->c.sendsms_url = sms->c.username = sms->c.password = sms->c.from = NULL;
	sms->c.subscribers_path = NULL;
	sms->c.dlr_host = sms->dlr_host;
	r = wf_sms_subs_load(c->subscribers_path, &sms->subs, ret_err, errlen);
	if (r < 0)
		goto fail;
	if ((r = wf_store_dbi(store, "sms-deliv", 0, &sms->dbi_deliv)) < 0 ||
	    (r = wf_store_dbi(store, "sms-rcpt", 0, &sms->dbi_rcpt)) < 0 ||
	    (r = wf_store_dbi(store, "sms-idem", 0, &sms->dbi_idem)) < 0)
		goto fail;
	wf_sms_bucket_init(&sms->bucket, sms->c.rate_parts_per_s, sms->c.burst_parts, now_ms(sms));

	sms->multi = curl_multi_init();
	if (!sms->multi) {
		r = -ENOMEM;
		goto fail;
	}
	curl_multi_setopt(sms->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(sms->multi, CURLMOPT_SOCKETDATA, sms);
	curl_multi_setopt(sms->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
	curl_multi_setopt(sms->multi, CURLMOPT_TIMERDATA, sms);
	curl_multi_setopt(sms->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)sms->c.max_connections);
	curl_multi_setopt(sms->multi, CURLMOPT_MAXCONNECTS, (long)sms->c.max_connections);
	ev_timer_init(&sms->curl_timer, curl_timer_cb, 0., 0.);
	sms->curl_timer.data = sms;
	ev_timer_init(&sms->tick, tick_cb, 0., 0.);
	sms->tick.data = sms;
	ev_prepare_init(&sms->prepare, prepare_cb);
	sms->prepare.data = sms;
	ev_idle_init(&sms->wake, wake_cb);
	ev_timer_init(&sms->commit_timer, commit_timer_cb, 0., 0.);
	ev_timer_init(&sms->purge_timer, purge_timer_cb, 0., 0.);
	sms->purge_timer.data = sms;

	r = start_listener(sms);
	if (r < 0) {
		if (ret_err && errlen)
			snprintf(ret_err, errlen, "cannot listen for DLRs on 127.0.0.1:%d", c->dlr_port);
		goto fail;
	}
	struct load_ctx lc = { .sms = sms, .at_open = true, .now = now_ms(sms) };
	r = wf_store_view(store, load_fn, &lc);
	if (r < 0)
		goto fail;
	ev_prepare_start(loop, &sms->prepare);
	if (sms->c.retain_ms > 0)
		arm_purge(sms, purge_interval_s(sms));
	if (sms->waiting.n || sms->awaiting.n)
		arm_tick(sms, lc.now + TICK_MS);
	*ret = sms;
	return 0;
fail:
	wf_sms_close(sms);
	return r;
}

struct wf_sms *wf_sms_close(struct wf_sms *sms)
{
	if (!sms)
		return NULL;
	/* make what we know durable, and answer waiting DLRs */
	if (sms->mhd && !sms->commit_failed && (sms->n_upds || sms->dlr_pending)) {
		size_t keep = sms->c.max_inflight;
		sms->c.max_inflight = 0; /* updates only, no new batch */
		flush(sms);
		sms->c.max_inflight = keep;
	}
	if (sms->dlr_pending) {
		resume_dlrs(sms, sms->dlr_pending);
		sms->dlr_pending = NULL;
	}
	ev_prepare_stop(sms->loop, &sms->prepare);
	ev_idle_stop(sms->loop, &sms->wake);
	ev_timer_stop(sms->loop, &sms->commit_timer);
	ev_timer_stop(sms->loop, &sms->purge_timer);
	ev_timer_stop(sms->loop, &sms->tick);
	ev_timer_stop(sms->loop, &sms->curl_timer);
	/* cancel requests in flight: their recipients stay SUBMITTING */
	while (sms->reqs) {
		struct req *q = sms->reqs;
		sms->reqs = q->next;
		curl_multi_remove_handle(sms->multi, q->easy);
		curl_easy_cleanup(q->easy);
		free(q->url);
		free(q);
	}
	if (sms->multi)
		curl_multi_cleanup(sms->multi);
	if (sms->mhd) {
		ev_io_stop(sms->loop, &sms->mhd_io);
		ev_timer_stop(sms->loop, &sms->mhd_timer);
		MHD_stop_daemon(sms->mhd);
	}
	if (sms->ok_resp)
		MHD_destroy_response(sms->ok_resp);
	if (sms->bad_resp)
		MHD_destroy_response(sms->bad_resp);
	for (size_t i = 0; i < sms->hash_cap; i++)
		for (struct item *it = sms->hash[i], *nx; it; it = nx) {
			nx = it->hnext;
			free(it);
		}
	free(sms->hash);
	for (size_t i = 0; i < sms->n_delivs; i++) {
		free(sms->delivs[i].key);
		free(sms->delivs[i].text_q);
	}
	free(sms->delivs);
	free(sms->upds);
	free(sms->batch);
	wf_sms_subs_free(sms->subs);
	free(sms->sendsms_url);
	free(sms->user_q);
	free(sms->pass_q);
	free(sms->from_q);
	free(sms->dlr_host);
	free(sms);
	curl_global_cleanup();
	return NULL;
}

/* ---------- queries ---------- */

void wf_sms_get_stats(const struct wf_sms *sms, struct wf_sms_stats *ret)
{
	*ret = sms->st;
	ret->queue_ready = sms->ready.n;
	ret->queue_waiting = sms->waiting.n;
	ret->inflight = sms->inflight;
	ret->awaiting_dlr = sms->awaiting.n;
}

bool wf_sms_idle(const struct wf_sms *sms)
{
	return sms->hash_n == 0 && sms->n_upds == 0 && sms->inflight == 0;
}

int wf_sms_dlr_port(const struct wf_sms *sms)
{
	return sms->dlr_port;
}

size_t wf_sms_subscriber_count(const struct wf_sms *sms)
{
	return wf_sms_subs_count(sms->subs);
}

struct count_ctx {
	const char *key;
	size_t klen;
	uint64_t *counts;
	unsigned dbi;
};

static int count_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	(void)key;
	(void)klen;
	struct count_ctx *cc = ud;
	struct rcpt_rec rr;
	if (vlen < sizeof(rr))
		return -EIO;
	memcpy(&rr, val, sizeof(rr));
	if (cc->key && (rr.klen != cc->klen || vlen < sizeof(rr) + rr.klen ||
			memcmp((const char *)val + sizeof(rr), cc->key, cc->klen) != 0))
		return 0;
	if (rr.state < WF_SMS_STATE_MAX)
		cc->counts[rr.state]++;
	return 0;
}

static int count_fn(struct wf_txn *t, void *ud)
{
	struct count_ctx *cc = ud;
	return wf_store_foreach(t, cc->dbi, NULL, 0, count_one, cc);
}

int wf_sms_count_states(struct wf_sms *sms, const char *delivery_key,
			uint64_t ret_counts[WF_SMS_STATE_MAX])
{
	memset(ret_counts, 0, sizeof(uint64_t) * WF_SMS_STATE_MAX);
	struct count_ctx cc = { .key = delivery_key, .klen = delivery_key ? strlen(delivery_key) : 0,
				.counts = ret_counts, .dbi = sms->dbi_rcpt };
	return wf_store_view(sms->store, count_fn, &cc);
}

struct each_ctx {
	unsigned dbi_rcpt, dbi_deliv;
	struct wf_txn *t;
	wf_sms_recipient_fn fn;
	void *ud;
};

static int each_one(void *ud, const void *key, size_t klen, const void *val, size_t vlen)
{
	(void)key;
	(void)klen;
	struct each_ctx *ec = ud;
	struct rcpt_rec rr;
	struct deliv_rec dr;
	char dkey[KEY_MAX + 1], msisdn[WF_SMS_MSISDN_MAX + 2];
	if (vlen < sizeof(rr))
		return -EIO;
	memcpy(&rr, val, sizeof(rr));
	if (rr.klen > KEY_MAX || rr.mlen > WF_SMS_MSISDN_MAX + 1 ||
	    vlen < sizeof(rr) + rr.klen + rr.mlen)
		return -EIO;
	memcpy(dkey, (const char *)val + sizeof(rr), rr.klen);
	dkey[rr.klen] = '\0';
	memcpy(msisdn, (const char *)val + sizeof(rr) + rr.klen, rr.mlen);
	msisdn[rr.mlen] = '\0';
	void *dv = NULL;
	size_t dl = 0;
	unsigned parts = 0;
	if (wf_store_get(ec->t, ec->dbi_deliv, dkey, rr.klen, &dv, &dl) == 0 && dl >= sizeof dr) {
		memcpy(&dr, dv, sizeof dr); /* the text follows the record */
		parts = dr.parts;
	}
	free(dv);
	return ec->fn(ec->ud, dkey, msisdn,
		      rr.state < WF_SMS_STATE_MAX ? (enum wf_sms_state)rr.state : WF_SMS_STATE_MAX,
		      parts);
}

static int each_fn(struct wf_txn *t, void *ud)
{
	struct each_ctx *ec = ud;
	ec->t = t;
	return wf_store_foreach(t, ec->dbi_rcpt, NULL, 0, each_one, ec);
}

int wf_sms_foreach_recipient(struct wf_store *store, wf_sms_recipient_fn fn, void *ud)
{
	struct each_ctx ec = { .fn = fn, .ud = ud };
	int r = wf_store_dbi(store, "sms-rcpt", WF_STORE_DB_NOCREATE, &ec.dbi_rcpt);
	if (r == 0)
		r = wf_store_dbi(store, "sms-deliv", WF_STORE_DB_NOCREATE, &ec.dbi_deliv);
	if (r == -ENOENT)
		return 0;
	return r < 0 ? r : wf_store_view(store, each_fn, &ec);
}

struct get_ctx {
	struct wf_sms *sms;
	const char *key, *msisdn;
	struct wf_sms_recipient *out;
};

static int get_fn(struct wf_txn *t, void *ud)
{
	struct get_ctx *g = ud;
	unsigned char ikey[KEY_MAX + 1 + WF_SMS_MSISDN_MAX + 2], idb[8];
	size_t klen = strlen(g->key), mlen = strlen(g->msisdn), len;
	if (klen > KEY_MAX || mlen > WF_SMS_MSISDN_MAX + 1)
		return -EINVAL;
	memcpy(ikey, g->key, klen);
	ikey[klen] = '\0';
	memcpy(ikey + klen + 1, g->msisdn, mlen);
	int r = wf_store_get_buf(t, g->sms->dbi_idem, ikey, klen + 1 + mlen, idb, 8, &len);
	if (r < 0)
		return r;
	unsigned char buf[sizeof(struct rcpt_rec) + KEY_MAX + WF_SMS_MSISDN_MAX + 2];
	struct rcpt_rec rr;
	r = rec_load(g->sms, t, wf_store_key_to_u64(idb), buf, sizeof(buf), &len, &rr);
	if (r < 0)
		return r;
	g->out->state = (enum wf_sms_state)rr.state;
	g->out->attempts = rr.attempts;
	g->out->last_dlr = rr.last_dlr;
	g->out->dlr_mask_seen = rr.dlr_mask;
	g->out->updated_ms = rr.updated_ms;
	return 0;
}

int wf_sms_recipient_get(struct wf_sms *sms, const char *delivery_key, const char *msisdn,
			 struct wf_sms_recipient *ret)
{
	if (!sms || !delivery_key || !msisdn || !ret)
		return -EINVAL;
	struct get_ctx g = { .sms = sms, .key = delivery_key, .msisdn = msisdn, .out = ret };
	return wf_store_view(sms->store, get_fn, &g);
}
