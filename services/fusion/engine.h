/* engine: the deterministic fusion engine of wf-fusion (docs/fusion.md).
 *
 * Events go in (wf_fusion_ingest), time goes in (wf_fusion_tick), source
 * liveness goes in (wf_fusion_source_liveness); graded Warning versions come
 * out through an emit callback. The engine never reads the system clock:
 * every call takes NOW_MS, and the engine's virtual time is the largest
 * NOW_MS it has seen (a smaller one is treated as that maximum).
 *
 * Transactions. Every state change of a call happens inside the caller's
 * write transaction T, so the daemon can put the dedupe record and the
 * outbox entries of the emitted warnings in the same transaction. The
 * engine also keeps in-memory indexes mirroring the store (rebuilt from
 * LMDB at open). After the caller COMMITS T nothing needs to be done. If
 * the caller ABORTS T (or a commit fails, or a call or the emit callback
 * returned an error), it must call wf_fusion_txn_aborted(): the engine then
 * drops its indexes and rebuilds them from the store inside the next call's
 * transaction. (wf_store_update() re-runs its function after growing the
 * map: call wf_fusion_txn_aborted() at the start of every re-run.)
 * Many calls may share one transaction (group commit).
 *
 * Emission. EMIT is called zero or more times per call, synchronously, in a
 * deterministic order, with a Warning that is BORROWED for the duration of
 * the callback (copy or pack it; do not keep pointers). Every field is set
 * except producer, seq and epoch, which the caller stamps (a copy of the
 * struct with those three set passes wf_codec_warning_validate()). EMIT
 * returns 0, or a negative errno that makes the call stop and return it
 * (then abort T and call wf_fusion_txn_aborted()). EMIT may be NULL (the
 * versions are made and recorded but not seen).
 *
 * Ownership: RULES passed to wf_fusion_open / wf_fusion_set_rules are taken
 * over by the engine on success. The store and the region table are
 * borrowed for the engine's lifetime. Events are borrowed for the call.
 *
 * Errors are negative errno (store errors as in wf/store.h; -EINVAL bad
 * argument; -ENOMEM). The engine never logs. One thread at a time. */
#ifndef WF_FUSION_ENGINE_H
#define WF_FUSION_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "event.pb-c.h"
#include "warning.pb-c.h"
#include "wf/region.h"
#include "wf/store.h"

struct wf_fusion;
struct wf_fusion_rules;

/* ---- rules (rules.c): the rule file, docs/fusion.md "Rule language" ---- */

/* Parses the rule file PATH. Returns 0 and a new rule set in *ret (free
 * with wf_fusion_rules_free), or a negative errno with "path:line: message"
 * (or "path: message") in ERR (ERRLEN bytes): -ENOENT etc. from open,
 * -EFBIG over 1 MiB, -EINVAL for content. *ret untouched on failure. */
int wf_fusion_rules_load(const char *path, struct wf_fusion_rules **ret, char *err, size_t errlen);

/* The same from the NUL-terminated TEXT; NAME stands in for the path. */
int wf_fusion_rules_parse(const char *name, const char *text, struct wf_fusion_rules **ret,
			  char *err, size_t errlen);

/* Frees R (NULL is fine); returns NULL. */
struct wf_fusion_rules *wf_fusion_rules_free(struct wf_fusion_rules *r);

/* Number of [rule] sections in R. This function can't fail. */
size_t wf_fusion_rules_count(const struct wf_fusion_rules *r);

/* ---- engine (engine.c, eval.c) ---- */

/* Result of wf_fusion_ingest (>= 0). */
enum wf_fusion_result {
	WF_FUSION_APPLIED = 0,    /* recorded and taken into account */
	WF_FUSION_DUPLICATE,      /* (agency, id) seen before: nothing changed */
	WF_FUSION_EXPIRED,        /* already expired at NOW_MS: recorded (for dedupe,
				     and its references applied) but no input */
	WF_FUSION_SUPERSEDED,     /* an UPDATE/CANCEL seen earlier already replaced it
				     (out-of-order arrival): recorded, no input */
	WF_FUSION_CANCEL_APPLIED, /* a CANCEL: its references were cancelled */
	WF_FUSION_NOT_OWNED,      /* region outside this instance's partition: ignored */
	WF_FUSION_RESULT_MAX,
};

/* "applied", "duplicate", ...; NULL for other values. */
const char *wf_fusion_result_to_string(enum wf_fusion_result r);

struct wf_fusion_options {
	/* Region table for warning headlines (names); may be NULL (codes are
	 * used). Borrowed. */
	const struct wf_region_table *regions;
	/* Partition: region code prefixes (digit strings of 2..12 digits,
	 * e.g. "4101" or "410102") this instance owns. An event within an
	 * owned prefix is an input; an event for a coarser region containing an
	 * owned prefix (e.g. a prefecture-wide 410100000000 for an owner of
	 * "410102") is kept as chain context only; anything else is NOT_OWNED.
	 * Warnings are made only for areas within an owned prefix. NULL / 0:
	 * everything is owned. Copied. */
	const char *const *owned;
	size_t n_owned;
	/* LMDB database name prefix, so two engines can share one store in
	 * tests (NULL: "fusion"). At most 32 bytes of [a-z0-9_-]. */
	const char *db_prefix;
	/* Regrade every hazard of an area on each evaluation instead of only
	 * the hazards whose inputs changed (and what they affect). The output
	 * is the same, only slower: the reference the incremental evaluation
	 * is tested against (tests/unit/test-fusion-engine.c). */
	bool full_regrade;
};

/* Opens an engine on store S (creating its databases: call while this
 * thread holds no transaction of S) and rebuilds its indexes from what S
 * holds. Takes RULES over on success. O may be NULL (defaults). */
int wf_fusion_open(struct wf_store *s, struct wf_fusion_rules *rules,
		   const struct wf_fusion_options *o, struct wf_fusion **ret);

/* Frees E and its rules (not the store). NULL is fine; returns NULL. */
struct wf_fusion *wf_fusion_close(struct wf_fusion *e);

typedef int (*wf_fusion_emit_fn)(void *ud, const Wf__V1__Warning *w);

/* Applies one event EV (already validated with wf_codec_event_validate and
 * checked against its topic by the caller) at virtual time NOW_MS in write
 * transaction T. Runs the due timers up to NOW_MS first (as
 * wf_fusion_tick), then dedupes by (agency, id), applies references
 * (UPDATE supersedes, CANCEL cancels the referenced events of the same
 * agency, also when they arrive later), regroups and regrades the affected
 * areas and emits the resulting warning versions. Returns an enum
 * wf_fusion_result (>= 0) or a negative errno. -EINVAL: EV unusable (bad
 * region code, unknown agency/hazard/status numbers). -EXDEV: EV names in
 * its references an event of another status (an exercise or test message
 * naming an actual event, or the reverse): refused, nothing changed. */
int wf_fusion_ingest(struct wf_fusion *e, struct wf_txn *t, const Wf__V1__Event *ev,
		     int64_t now_ms, wf_fusion_emit_fn emit, void *ud);

/* Advances virtual time to NOW_MS in write transaction T: expires inputs,
 * cancels warnings whose inputs are all gone, makes downgrades whose dwell
 * time has passed, re-issues ("continues") warnings about to reach their
 * expiry while still supported, purges records past retention, and applies
 * a rule set swapped in by wf_fusion_set_rules. Returns the number of
 * versions emitted (>= 0) or a negative errno. */
int wf_fusion_tick(struct wf_fusion *e, struct wf_txn *t, int64_t now_ms,
		   wf_fusion_emit_fn emit, void *ud);

/* Runs every timer due up to NOW_MS at its own deadline (one
 * wf_fusion_tick per deadline, in order), so a late call gives the same
 * versions as timely ones: what replay mode does before each event and
 * the daemon before each event and on its timer. Returns the number of
 * versions emitted (>= 0) or a negative errno. */
int wf_fusion_advance(struct wf_fusion *e, struct wf_txn *t, int64_t now_ms,
		      wf_fusion_emit_fn emit, void *ud);

/* Earliest virtual time at which wf_fusion_tick has work (INT64_MAX when
 * none): the daemon's timer. This function can't fail. */
int64_t wf_fusion_next_deadline(const struct wf_fusion *e);

/* Records that AGENCY's source is alive or silent (from its ServiceState:
 * heartbeat overdue or OFFLINE will). While an agency is silent, every
 * area where it feeds an active warning gets a HAZARD_MONITORING_GAP
 * notice (level IV, rule id "source-liveness"); the notice is cancelled when
 * the agency is alive again or no longer feeds a warning. Nothing else is
 * cancelled or changed. Returns the number of versions emitted or a
 * negative errno. */
int wf_fusion_source_liveness(struct wf_fusion *e, struct wf_txn *t, int agency, bool alive,
			      int64_t now_ms, wf_fusion_emit_fn emit, void *ud);

/* Swaps in RULES (taken over on success; the old set is freed). Incident
 * state is kept; every area is regraded under the new rules at the next
 * wf_fusion_tick or wf_fusion_ingest. -EINVAL (RULES not taken, the old
 * rules stay) if RULES changes [fusion] area, which needs a restart; a
 * message is put in ERR. */
int wf_fusion_set_rules(struct wf_fusion *e, struct wf_fusion_rules *rules, char *err,
			size_t errlen);

/* The caller aborted the transaction of the last calls (see above). */
void wf_fusion_txn_aborted(struct wf_fusion *e);

struct wf_fusion_stats {
	uint64_t inputs;        /* event records in memory: the valid ones (the
				 * others are only in the store, until their purge) */
	uint64_t valid_inputs;  /* inputs currently valid */
	uint64_t incidents;     /* active warnings (incidents) */
	uint64_t areas;         /* areas with state */
	uint64_t emitted;       /* versions emitted since open */
	int64_t now_ms;         /* virtual time */
};

/* Fills *ret. This function can't fail. */
void wf_fusion_get_stats(const struct wf_fusion *e, struct wf_fusion_stats *ret);

#endif
