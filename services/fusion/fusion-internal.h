/* fusion-internal: structures shared by rules.c, engine.c and eval.c.
 * Not a public interface. */
#ifndef WF_FUSION_INTERNAL_H
#define WF_FUSION_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "keyfilter.h"
#include "types.pb-c.h"

/* Hazard and agency numbers fit in 64 bits of a bitmap (types.proto: < 64). */
#define FUSION_HAZARD_MAX 64
#define FUSION_AGENCY_MAX 8
#define FUSION_ID_MAX     64  /* rule id bytes */
#define FUSION_TERMS_MAX  8   /* alternatives per when-line */
#define FUSION_WHEN_MAX   8   /* when-lines per chain rule */
#define FUSION_TEXT_MAX   512 /* headline / instruction template bytes */

/* Strength: 0 none, 1 = IV blue ... 4 = I red. */
static inline int fusion_strength(int level) { return level >= 1 && level <= 4 ? 5 - level : 0; }
static inline int fusion_level(int strength) { return strength >= 1 && strength <= 4 ? 5 - strength : 0; }

enum fusion_rule_kind {
	FUSION_RULE_DIRECT = 0,
	FUSION_RULE_CORROBORATE,
	FUSION_RULE_CHAIN,
	FUSION_RULE_COUNT,
	FUSION_RULE_KIND_MAX,
};

/* One input pattern: [agency:]hazard[>=level][,criterion=X][,value>=N][,over] */
struct fusion_term {
	int agency;        /* 0: any */
	int hazard;
	int min_strength;  /* 0: any, including ungraded */
	char criterion[64];/* "": any */
	bool has_value_min;
	double value_min;
	bool over;         /* measurement.value >= measurement.threshold */
};

struct fusion_alt {
	struct fusion_term terms[FUSION_TERMS_MAX];
	unsigned n;
	uint64_t hazards;        /* bit h: some term names hazard h */
};

enum fusion_level_mode {
	FUSION_LEVEL_FIXED = 0, /* level = X */
	FUSION_LEVEL_MAX,       /* level = max: strongest input */
	FUSION_LEVEL_ABOVE,     /* level = above N: N levels above the strongest input */
};

struct fusion_rule {
	char id[FUSION_ID_MAX + 1];
	enum fusion_rule_kind kind;
	unsigned line;
	uint64_t hazards;        /* direct, corroborate: hazards covered */
	int min_strength;        /* direct: inputs below are ignored; chain/count: floor */
	int output;              /* chain, count: derived hazard */
	struct fusion_alt when[FUSION_WHEN_MAX];
	unsigned n_when;         /* count: exactly 1 (what is counted) */
	int64_t within_ms;
	enum fusion_level_mode level_mode;
	int level_strength;      /* FIXED: the level; ABOVE: N */
	int certainty;           /* chain/count: output certainty; corroborate: raised to */
	unsigned min_agencies;   /* corroborate */
	int raise;               /* corroborate: levels up */
	unsigned min_count;      /* count */
	int count_level;         /* count: region level that is counted in */
	char instruction[FUSION_TEXT_MAX];
};

struct wf_fusion_rules {
	/* [fusion] */
	int area_level;          /* enum wf_region_level: grouping level */
	int64_t dwell_ms;        /* downgrade dwell */
	int64_t retain_ms;       /* keep expired event records (dedupe) */
	int64_t renew_ms;        /* continue a warning this long before its expiry */
	/* [levels]: allowed strengths per hazard, bit s set = strength s allowed */
	uint8_t allowed[FUSION_HAZARD_MAX];
	struct fusion_rule *rules;
	size_t n_rules;
	/* derived lookups */
	int direct_for[FUSION_HAZARD_MAX];      /* rule index or -1 */
	int corroborate_for[FUSION_HAZARD_MAX]; /* rule index or -1 */
	/* affects[h]: the hazards whose grading can change when an input of
	 * hazard h comes or goes (h itself and the outputs of the chain and
	 * count rules that name h); eval.c regrades only those */
	uint64_t affects[FUSION_HAZARD_MAX];
};

/* rules.c */
bool fusion_term_match(const struct fusion_term *t, int agency, int hazard, int strength,
		       const char *criterion, double value, double threshold, bool has_meas);

/* ---- engine state (engine.c) ---- */

enum fusion_input_state {
	FUSION_IN_VALID = 0,
	FUSION_IN_EXPIRED,
	FUSION_IN_CANCELLED,
	FUSION_IN_SUPERSEDED,
	FUSION_IN_NOINPUT,    /* a CANCEL message itself, or expired on arrival */
};

struct fusion_area;

struct fusion_input {
	struct fusion_input *hnext;
	struct fusion_area *area;  /* set while VALID */
	uint32_t hash;
	uint32_t pos;              /* index in its area's bucket while VALID */
	uint32_t heap_pos;         /* index of its expiry timer in wf_fusion.heap */
	uint8_t agency, hazard, strength, certainty, status, state;
	bool placeholder;          /* known only as a reference so far */
	bool has_meas;
	int64_t observed, expires, purge_at;
	double value, threshold;
	const char *criterion;     /* interned, "" if none */
	char region[13];
	char id[];                 /* event id, NUL-terminated */
};

struct fusion_incident {
	uint8_t hazard, strength, certainty;
	uint8_t pend_strength;     /* 0: no downgrade pending */
	uint32_t version;
	int64_t onset, expires, pend_since;
	uint16_t n_regions;
	char id[96];
	char *regions;             /* n_regions x 12 digits, concatenated */
	char *rule_ids;            /* "a,b,c" */
};

/* A VALID input in its area's bucket, with copies of what the direct and
 * corroboration rules read (fixed while the input is VALID), so grading
 * does not chase the pointer. */
struct fusion_slot {
	struct fusion_input *in;
	int64_t expires, observed;
	uint8_t strength, certainty, agency;
};

#define WF_FUSION_MAX_UP 4 /* ancestors of a village: province .. township */

/* The VALID inputs of one hazard in one area (unordered). */
struct fusion_bucket {
	struct fusion_slot *v;
	uint32_t n, cap;
	uint32_t by_agency[FUSION_AGENCY_MAX]; /* inputs per agency (corroboration) */
};

#define FUSION_ALL_HAZARDS (~UINT64_C(0))

struct fusion_area {
	struct fusion_area *hnext;
	struct fusion_area *dirty_next;
	uint32_t hash;
	uint8_t status;
	bool dirty, owned;
	char code[13];
	uint64_t dirty_hz;              /* hazards whose inputs changed since the last
					 * evaluation (FUSION_ALL_HAZARDS: regrade all) */
	/* VALID inputs grouped here, one bucket per hazard that has (or had)
	 * any, in hazard order: bucket of h = bk[popcount(bk_mask below h)] */
	struct fusion_bucket *bk;
	uint64_t bk_mask;
	uint32_t n_inputs;
	struct fusion_incident **incs;  /* sorted by hazard, one per hazard */
	uint32_t n_incs, cap_incs;
	uint64_t inc_mask;              /* bit h: incs holds hazard h's incident,
					 * at index popcount(inc_mask below h) */
	int64_t timer_at;               /* INT64_MAX: none */
	/* eval.c's cache of the coarser areas that exist above this one
	 * (valid while up_gen == wf_fusion.area_gen) */
	struct fusion_area *up[WF_FUSION_MAX_UP];
	uint8_t n_up;
	bool up_known;
	uint32_t up_gen;
};

enum fusion_timer_kind { FUSION_T_EXPIRE = 0, FUSION_T_AREA };

struct fusion_timer {
	int64_t at;
	uint64_t seq;  /* tie-break: insertion order is not used for output */
	void *ptr;
	uint8_t kind;
};

struct wf_fusion {
	struct wf_store *store;
	struct wf_fusion_rules *rules;
	const struct wf_region_table *regions;
	char **owned;
	size_t n_owned;
	unsigned dbi_input, dbi_inc, dbi_meta;
	/* Only VALID inputs are held in memory (the hash below, their area's
	 * bucket, their expiry timer). Every other event record (expired, cancelled, superseded,
	 * a CANCEL itself, a reference's tombstone) lives only in dbi_input
	 * until its purge time, with an entry in dbi_purge keyed (purge time,
	 * input key), so memory follows the valid inputs, not the retention. */
	unsigned dbi_purge;
	int64_t next_purge;  /* earliest dbi_purge entry; INT64_MIN: not known */
	bool inputs_v2;      /* meta "inputs-v2": dbi_input keys are (agency,
			      * status, id) and every record not in memory has
			      * its dbi_purge entry (older stores: upgraded at
			      * the first write, engine.c inputs_upgrade) */
	struct fusion_input *cold; /* a record read from the store (input_find) */
	/* the keys of dbi_input (keyfilter.h): built from the store at the
	 * first lookup, added to at every store; off after an -ENOMEM */
	struct fusion_keyfilter kf;
	bool kf_off;
	bool stale;          /* indexes must be rebuilt from the store */
	bool regrade_all;    /* rules were swapped */
	bool full_regrade;   /* wf_fusion_options.full_regrade */
	bool alive_known[FUSION_AGENCY_MAX];
	bool silent[FUSION_AGENCY_MAX];
	int64_t now;
	int64_t stored_now;
	/* inputs hash */
	struct fusion_input **in_tab;
	size_t in_cap, n_in, n_valid; /* n_in == n_valid: only VALID ones are here */
	/* areas hash */
	struct fusion_area **ar_tab;
	size_t ar_cap, n_areas, n_incidents;
	uint32_t area_gen;   /* counts area creations (fusion_area.up cache) */
	struct fusion_area *dirty;
	/* timers: binary min-heap */
	struct fusion_timer *heap;
	size_t n_heap, cap_heap;
	uint64_t timer_seq;
	/* interned criterion strings */
	char **intern;
	size_t n_intern, cap_intern;
	uint64_t emitted;
	struct fusion_scratch *scratch; /* eval.c */
};

/* Bits set in X. Without -mpopcnt (Debian's x86-64 baseline has no
 * POPCNT) __builtin_popcountll is a libgcc call; this is a few shifts. */
static inline unsigned fusion_popcount(uint64_t x)
{
	x = x - ((x >> 1) & UINT64_C(0x5555555555555555));
	x = (x & UINT64_C(0x3333333333333333)) + ((x >> 2) & UINT64_C(0x3333333333333333));
	x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
	return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
}

/* The bucket of hazard H in A; bit H of a->bk_mask must be set. */
static inline struct fusion_bucket *fusion_bucket_of(const struct fusion_area *a, int h)
{
	return &a->bk[fusion_popcount(a->bk_mask & ((UINT64_C(1) << h) - 1))];
}

/* engine.c helpers used by eval.c */
struct fusion_area *fusion_area_find(struct wf_fusion *e, int status, const char *code);
int fusion_incident_store(struct wf_fusion *e, struct wf_txn *t, const struct fusion_area *a,
			  const struct fusion_incident *inc);
int fusion_incident_delete(struct wf_fusion *e, struct wf_txn *t, const struct fusion_area *a,
			   const struct fusion_incident *inc);
int fusion_incident_id(struct wf_fusion *e, struct wf_txn *t, const struct fusion_area *a,
		       int hazard, const char *base, char *out, size_t size);
int fusion_timer_push(struct wf_fusion *e, int64_t at, int kind, void *ptr);
void fusion_area_set_timer(struct wf_fusion *e, struct fusion_area *a);
void fusion_incident_free(struct fusion_incident *inc);

/* eval.c: regrade area A at e->now for the hazards in DIRTY (inputs
 * changed; FUSION_ALL_HAZARDS: everything), emit, persist. Returns
 * versions emitted or a negative errno. */
int fusion_eval_area(struct wf_fusion *e, struct wf_txn *t, struct fusion_area *a, uint64_t dirty,
		     wf_fusion_emit_fn emit, void *ud);

void fusion_scratch_free(struct fusion_scratch *s);

/* FNV-1a 32 (ids.c-style helper, in engine.c) */
uint32_t fusion_hash(const void *data, size_t len, uint32_t h);

#endif
