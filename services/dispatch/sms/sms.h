/* sms: the dispatcher's SMS channel through Kannel (docs/sms.md).
 *
 * One struct wf_sms per gateway (one Kannel smsbox). The dispatcher plans
 * deliveries inside its own LMDB write transaction (wf_sms_enqueue), commits,
 * then calls wf_sms_kick(); the channel sends on the caller's libev loop
 * (libcurl multi, non-blocking), rate-limited by a token bucket counted in
 * SMS parts, retries with exponential backoff, and records Kannel's delivery
 * reports (a libmicrohttpd listener on loopback, driven by the same loop).
 * Every recipient ends in one final state: delivered, failed or expired.
 *
 * Restart safety: a recipient is marked SUBMITTING in a committed
 * transaction before its HTTP request starts. After a kill, SUBMITTING
 * recipients are sent again: at most one duplicate per recipient per kill,
 * and only for the requests in flight at the kill (at most max_inflight).
 *
 * Threads: none. All functions run on the loop's thread. Errors are
 * negative errno; nothing here logs (on_notice reports, the service logs).
 *
 * Pure helpers (UCS-2 segmenting, subscriber file, token bucket, backoff)
 * are declared in sms-util.h and unit-tested on their own. */
#ifndef WF_SMS_H
#define WF_SMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wf/clock.h"

struct ev_loop;
struct wf_store;
struct wf_txn;
struct wf_sms;

/* Per-recipient state, stored in LMDB. The last three are final. */
enum wf_sms_state {
	WF_SMS_QUEUED = 0,     /* planned, or waiting for a retry (attempts > 0) */
	WF_SMS_SUBMITTING,     /* committed before the HTTP request */
	WF_SMS_SENT,           /* Kannel accepted it (202); waiting for a DLR */
	WF_SMS_DELIVERED,      /* DLR 1 */
	WF_SMS_FAILED,         /* permanent refusal, DLR 2/16, or attempts exhausted */
	WF_SMS_EXPIRED,        /* not sent before the delivery expired, or no final DLR in time */
	WF_SMS_STATE_MAX,
	WF_SMS_STATE_INVALID = -1,
};

/* "queued", "submitting", "sent", "delivered", "failed", "expired"; NULL
 * otherwise. This function can't fail. */
const char *wf_sms_state_to_string(enum wf_sms_state s);

struct wf_sms_config {
	/* Kannel sendsms endpoint, e.g. "http://127.0.0.1:13013/cgi-bin/sendsms".
	 * Required. Borrowed during wf_sms_open (copied). */
	const char *sendsms_url;
	const char *username, *password; /* sendsms-user; required */
	const char *from;                /* sender id; required (Kannel refuses none) */
	/* Subscriber file "msisdn,region" (sms-util.h); required. Loaded once. */
	const char *subscribers_path;
	/* DLR listener: 127.0.0.1:dlr_port (0: an ephemeral port, tests only:
	 * DLRs of requests sent before a restart are then lost). The URL Kannel
	 * calls back is built from dlr_host (default "127.0.0.1"). */
	int dlr_port;
	const char *dlr_host;
	double rate_parts_per_s;   /* token bucket, SMS parts per second (0: unlimited) */
	double burst_parts;        /* bucket size (0: max(1, rate)) */
	unsigned max_inflight;     /* HTTP requests at once (0: 64, max 1024); also the
				    * most duplicates one kill can cause */
	unsigned max_connections;  /* keep-alive connections to smsbox (0: 64) */
	unsigned max_attempts;     /* HTTP attempts per recipient (0: 8) */
	int64_t backoff_base_ms;   /* first retry delay (0: 1000) */
	int64_t backoff_max_ms;    /* cap (0: 300000) */
	int64_t http_timeout_ms;   /* per request (0: 10000) */
	int64_t dlr_timeout_ms;    /* SENT without a final DLR for this long: expired (0: 48 h) */
	int64_t default_validity_ms; /* enqueue expires_ms == 0: now + this (0: 24 h) */
	unsigned max_parts;        /* longest text, in parts; must not exceed the
				    * sendsms-user's max-messages (0: 6, max 255) */
	/* Group commit: state changes (HTTP results, DLRs, the next SUBMITTING
	 * batch) are committed together at most once per this many ms
	 * (default 5; wf_sms_config_init sets it, 0 = every loop iteration). */
	int64_t commit_interval_ms;
	/* Retention: recipients that are final and whose delivery expired, both
	 * longer than this ago, are purged from the store, a quarter of it
	 * apart (0.1 s .. 60 s), at most 1,000 in one transaction; a delivery's
	 * record goes with its last recipient, after which planning its key
	 * again plans it anew (the dispatcher never does: it ignores versions
	 * that expired longer than its own retain ago). 0: kept forever. */
	int64_t retain_ms;
	/* Clock for states, backoff and the bucket (NULL: system). Borrowed. */
	const struct wf_clock *clock;
	/* Notices (connection errors, retries exhausted, bad DLRs). May be NULL. */
	void (*on_notice)(void *ud, int err, const char *what);
	/* A recipient reached a final state (after that state was committed). May be NULL. */
	void (*on_final)(void *ud, const char *delivery_key, const char *msisdn, enum wf_sms_state s);
	void *ud;
};

/* Fills C with the defaults above (required fields NULL). Can't fail. */
void wf_sms_config_init(struct wf_sms_config *c);

/* Opens the channel. Loads the subscriber file: on a bad file returns the
 * loader's error (-EINVAL, -EEXIST, -E2BIG, -EFBIG, -ENOENT...; see
 * wf_sms_subs_load) and, if RET_ERR is not NULL, writes "path:line: message"
 * into RET_ERR (ERRLEN bytes). Opens three databases in STORE (sms-deliv,
 * sms-rcpt, sms-idem: count them in max_dbs; this thread must hold no write
 * transaction of STORE meanwhile). Starts the DLR listener (-EADDRINUSE if
 * it cannot bind) and loads every unfinished recipient (SUBMITTING ones are
 * sent again: see above). Sending starts at the first wf_sms_kick(). STORE
 * and LOOP are borrowed until wf_sms_close(). Returns 0 and sets *ret, or a
 * negative errno (*ret untouched). */
int wf_sms_open(struct ev_loop *loop, struct wf_store *store, const struct wf_sms_config *c,
		struct wf_sms **ret, char *ret_err, size_t errlen);

/* Stops the listener and cancels requests in flight (their recipients stay
 * SUBMITTING and are sent again at the next open). Accepts NULL; returns NULL. */
struct wf_sms *wf_sms_close(struct wf_sms *sms);

/* Plans DELIVERY_KEY (1..200 bytes of [A-Za-z0-9._@:-], e.g.
 * "<warning id>@<version>") to every subscriber whose region lies in
 * REGION_CODE (6 or 12 digits; the region and its sub-regions), in the
 * caller's write transaction T. TEXT_UTF8 (valid UTF-8, non-empty) is sent
 * as UCS-2; it must fit in max_parts parts (-EMSGSIZE). EXPIRES_MS: recipients not sent by
 * then end EXPIRED (0: now + default_validity_ms).
 * Idempotent per (delivery_key, recipient): planning the same key again
 * adds only subscribers not planned before (the text of the first plan is
 * kept). Re-runnable under wf_store_update (touches only T). Stores the
 * number of newly planned recipients in *ret_planned (may be NULL).
 * Returns 0, -EINVAL (bad key, region or text), -EMSGSIZE, or a store error. */
int wf_sms_enqueue(struct wf_sms *sms, struct wf_txn *t, const char *delivery_key,
		   const char *region_code, const char *text_utf8, int64_t expires_ms,
		   size_t *ret_planned);

/* Purges, in one write transaction of its own, at most MAX (1..100,000)
 * recipients that are final, not in memory, and whose last change and
 * delivery expiry are both before BEFORE_MS (with their sms-idem keys; a
 * delivery's record with its last recipient). The walk goes in planning
 * order and stops at the first final recipient changed at BEFORE_MS or
 * later. Stores the number purged in *ret_purged and whether more may be
 * due in *ret_more (either may be NULL). Returns 0, -EINVAL or a store
 * error. The retain_ms timer calls it; tests may call it directly. */
int wf_sms_purge(struct wf_sms *sms, int64_t before_ms, size_t max, size_t *ret_purged,
		 bool *ret_more);

/* After the caller's commit: picks up what was planned and starts sending.
 * Cheap; call after every commit that may have planned something.
 * Returns 0 or a store error. */
int wf_sms_kick(struct wf_sms *sms);

struct wf_sms_stats {
	uint64_t planned;          /* recipients planned by this process */
	uint64_t resumed;          /* unfinished recipients loaded at open */
	uint64_t resent_submitting;/* of those, SUBMITTING at open (possible duplicates) */
	uint64_t requests;         /* HTTP requests started */
	uint64_t accepted;         /* 202 from Kannel */
	uint64_t retries;          /* attempts that will be retried */
	uint64_t http_errors;      /* transport errors and unexpected replies */
	uint64_t refused;          /* permanent refusals (4xx but auth) */
	uint64_t dlrs;             /* DLR callbacks received */
	uint64_t dlr_unknown;      /* DLRs for unknown recipients or malformed */
	uint64_t delivered, failed, expired; /* final states reached in this process */
	uint64_t parts_sent;       /* SMS parts handed to Kannel */
	uint64_t purged;           /* recipients removed by retention */
	size_t queue_ready;        /* in memory: due now */
	size_t queue_waiting;      /* in memory: waiting for backoff */
	size_t inflight;           /* HTTP requests running */
	size_t awaiting_dlr;       /* SENT, waiting for a final DLR */
};

/* Copies the counters. This function can't fail. */
void wf_sms_get_stats(const struct wf_sms *sms, struct wf_sms_stats *ret);

/* Counts recipients by state in STORE (a read transaction; O(recipients)),
 * all deliveries together or only DELIVERY_KEY (may be NULL). */
int wf_sms_count_states(struct wf_sms *sms, const char *delivery_key,
			uint64_t ret_counts[WF_SMS_STATE_MAX]);

/* Calls FN for every planned recipient of every delivery in STORE (the
 * dispatcher's store; its own read transaction, no struct wf_sms needed:
 * for harnesses and tools reading a stopped dispatcher's state), with the
 * delivery's key, the recipient's number, state, and the delivery's SMS
 * parts. FN returns 0 to go on, non-zero to stop (returned). 0 and no call
 * when the store has no SMS state. */
typedef int (*wf_sms_recipient_fn)(void *ud, const char *delivery_key, const char *msisdn,
				   enum wf_sms_state state, unsigned parts);
int wf_sms_foreach_recipient(struct wf_store *store, wf_sms_recipient_fn fn, void *ud);

struct wf_sms_recipient {
	enum wf_sms_state state;
	unsigned attempts;   /* HTTP attempts so far */
	int last_dlr;        /* last DLR status (1, 2, 4, 8, 16), 0 none */
	unsigned dlr_mask_seen; /* OR of every DLR status seen */
	int64_t updated_ms;
};

/* Looks up one recipient of a delivery. -ENOENT if not planned. */
int wf_sms_recipient_get(struct wf_sms *sms, const char *delivery_key, const char *msisdn,
			 struct wf_sms_recipient *ret);

/* True when nothing is queued, waiting, in flight, or waiting for a DLR
 * (every planned recipient is final). This function can't fail. */
bool wf_sms_idle(const struct wf_sms *sms);

/* The DLR listener's port (useful with dlr_port = 0). Can't fail. */
int wf_sms_dlr_port(const struct wf_sms *sms);

/* Number of subscribers loaded. Can't fail. */
size_t wf_sms_subscriber_count(const struct wf_sms *sms);

#endif
