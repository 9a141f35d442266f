/* met: wf-met internals (CAP warning messages and automatic weather station
 * observations). One header for the service's files; prefix met_. */
#ifndef WF_MET_H
#define WF_MET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "adapter.h"

enum met_sig_policy {
	MET_SIG_REQUIRE = 0,
	MET_SIG_VERIFY_IF_PRESENT,
	MET_SIG_IGNORE,
	MET_SIG_POLICY_MAX,
	MET_SIG_POLICY_INVALID = -1,
};
const char *met_sig_policy_to_string(enum met_sig_policy p);

/* AWS thresholds (DOMAIN.md §2 defaults). Order matters: met-config.c names. */
enum met_thr {
	MET_RAIN_12H_BLUE, MET_RAIN_6H_YELLOW, MET_RAIN_3H_ORANGE, MET_RAIN_3H_RED,
	MET_WIND_MEAN_BLUE, MET_WIND_GUST_BLUE, MET_WIND_MEAN_YELLOW, MET_WIND_GUST_YELLOW,
	MET_WIND_MEAN_ORANGE, MET_WIND_GUST_ORANGE, MET_WIND_MEAN_RED, MET_WIND_GUST_RED,
	MET_HEAT_YELLOW, MET_HEAT_ORANGE, MET_HEAT_RED,
	MET_FOG_YELLOW, MET_FOG_ORANGE, MET_FOG_RED,
	MET_COLD_DROP_BLUE, MET_COLD_TMIN_BLUE, MET_COLD_WIND_BLUE,
	MET_COLD_DROP_YELLOW, MET_COLD_TMIN_YELLOW, MET_COLD_WIND_YELLOW,
	MET_COLD_DROP_ORANGE, MET_COLD_TMIN_ORANGE, MET_COLD_WIND_ORANGE,
	MET_COLD_DROP_RED, MET_COLD_TMIN_RED, MET_COLD_WIND_RED,
	MET_THR_MAX,
};
const char *met_thr_name(enum met_thr t);
double met_thr_default(enum met_thr t);

/* A partial set of thresholds (an override section). */
struct met_thr_set {
	double v[MET_THR_MAX];
	bool set[MET_THR_MAX];
};

struct met_override {
	char *key;               /* station id, or region prefix (2..12 digits) */
	struct met_thr_set thr;
};

struct met_station {
	char *id;
	char region[13];
	bool has_point;
	double lat, lon;
	struct met_aws_hist *hist; /* met-aws.c */
};

struct met_map {
	char *key;    /* lowercased key */
	char *value;
};

struct met_state {
	const struct wf_region_table *regions;
	/* [met] */
	enum met_sig_policy sig_policy;
	char **trusted_certs;
	size_t n_trusted_certs;
	bool reject_unmapped;        /* CAP with no hazard/region mapping: reject (else 0 events) */
	int64_t cap_default_validity_ms;
	int64_t aws_validity_ms;
	size_t max_depth;
	/* mapping ([met.cap.event], [met.cap.eventcode], [met.cap.severity], [met.cap.geocode]) */
	struct met_map *events; size_t n_events;
	struct met_map *eventcodes; size_t n_eventcodes;
	struct met_map *severities; size_t n_severities;
	struct met_map *geocodes; size_t n_geocodes;
	/* AWS */
	struct met_thr_set thr;      /* every value set */
	struct met_override *station_ovr; size_t n_station_ovr;
	struct met_override *region_ovr; size_t n_region_ovr;
	struct met_station *stations; size_t n_stations;
	/* CAP signature verification (met-sig.c) */
	struct met_sig *sig;
	/* compiled CAP schemas (met-cap.c), [0] 1.1, [1] 1.2; NULL until used */
	void *xsd[2];
};

/* met-config.c */
int met_config_load(const char *path, const struct wf_region_table *regions, void **ret_state,
		    char *err, size_t err_size);
void met_config_free(void *state);
const char *met_map_find(const struct met_map *m, size_t n, const char *key);
struct met_station *met_station_find(struct met_state *st, const char *id);
/* Effective threshold T for station S. */
double met_thr_for(const struct met_state *st, const struct met_station *s, enum met_thr t);

/* met-cap.c: CAP 1.1/1.2 */
bool met_cap_sniff(const uint8_t *buf, size_t len);
int met_cap_check(void *state, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
		  struct wf_adapter_sink *sink);
int met_cap_parse(struct met_state *st, const char *name, const uint8_t *buf, size_t len,
		  int64_t now_ms, struct wf_adapter_sink *sink);

void met_cap_free(struct met_state *st);

/* met-aws.c: automatic weather station CSV */
int met_aws_parse(struct met_state *st, const char *name, const uint8_t *buf, size_t len,
		  int64_t now_ms, struct wf_adapter_sink *sink);
void met_aws_hist_free(struct met_aws_hist *h);

/* met-sig.c: XML signatures */
struct _xmlDoc;
enum met_sig_result {
	MET_SIG_UNSIGNED = 0,
	MET_SIG_UNUSABLE,  /* present but not processable (placeholder): warn */
	MET_SIG_VALID,     /* integrity verified */
	MET_SIG_INVALID,
};
struct met_sig_outcome {
	enum met_sig_result result;
	bool trusted;        /* the signer's key is one of the trusted certificates */
	bool normalised;     /* valid only after whitespace normalisation */
	bool weak;           /* rsa-sha1 / sha1 digest */
	char detail[256];
};
int met_sig_init(struct met_state *st, char *err, size_t err_size);
void met_sig_free(struct met_state *st);
/* Verifies the top-level ds:Signature elements of DOC (parsed from BUF). */
int met_sig_verify(struct met_state *st, struct _xmlDoc *doc, const uint8_t *buf, size_t len,
		   struct met_sig_outcome *out);

#endif
