/* met-aws: automatic weather station observations (CSV), rolling
 * 1/3/6/12/24 h accumulations per station, and the CMA signal rules
 * (DOMAIN.md section 2) applied to what was observed. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "met.h"
#include "wf/clock.h"
#include "wf/topic.h"

#define H (3600 * 1000LL)
#define AWS_KEEP_MS (100 * H)  /* history kept per station: the 96 h cold-wave window */
#define AWS_LINE_MAX 1024
#define AWS_MAX_RECORDS 200000

struct aws_rec {
	int64_t t;
	double rain, mean, gust, temp, vis; /* NAN when missing */
};

struct met_aws_hist {
	struct aws_rec *r;
	size_t n, cap;
};

void met_aws_hist_free(struct met_aws_hist *h)
{
	if (!h)
		return;
	free(h->r);
	free(h);
}

enum col { C_STATION, C_TIME, C_RAIN, C_MEAN, C_GUST, C_TEMP, C_VIS, C_MAX };
static const char *const col_names[C_MAX] = { "station", "time", "rain_mm", "wind_mean_ms",
					      "wind_gust_ms", "temp_c", "visibility_m" };
static const double col_min[C_MAX] = { 0, 0, 0, 0, 0, -90, 0 };
static const double col_max[C_MAX] = { 0, 0, 1000, 150, 150, 65, 100000 };

struct parsed {
	struct met_station *st;
	struct aws_rec rec;
};

static bool utf8_valid(const uint8_t *s, size_t n, size_t *bad)
{
	for (size_t i = 0; i < n;) {
		uint8_t c = s[i];
		size_t l = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 :
			   (c & 0xF8) == 0xF0 ? 4 : 0;
		if (!l || (l == 2 && c < 0xC2) || i + l > n)
			goto bad;
		for (size_t k = 1; k < l; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				goto bad;
		if (l == 3 && ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] >= 0xA0)))
			goto bad;
		if (l == 4 && ((c == 0xF0 && s[i + 1] < 0x90) || c > 0xF4 || (c == 0xF4 && s[i + 1] >= 0x90)))
			goto bad;
		i += l;
		continue;
bad:
		*bad = i;
		return false;
	}
	return true;
}

static int split(char *line, char **f, int maxf)
{
	int n = 0;
	char *p = line;

	for (;;) {
		if (n == maxf)
			return -1;
		f[n++] = p;
		char *c = strchr(p, ',');
		if (!c)
			break;
		*c = '\0';
		p = c + 1;
	}
	for (int i = 0; i < n; i++) { /* trim */
		while (*f[i] == ' ' || *f[i] == '\t')
			f[i]++;
		size_t l = strlen(f[i]);
		while (l && (f[i][l - 1] == ' ' || f[i][l - 1] == '\t'))
			f[i][--l] = '\0';
	}
	return n;
}

static int hist_insert(struct met_station *s, const struct aws_rec *rec)
{
	struct met_aws_hist *h = s->hist;
	size_t i;

	if (!h) {
		h = s->hist = calloc(1, sizeof(*h));
		if (!h)
			return -ENOMEM;
	}
	/* keep sorted by time; the same time replaces (re-sent records) */
	for (i = h->n; i > 0 && h->r[i - 1].t > rec->t; i--)
		;
	if (i > 0 && h->r[i - 1].t == rec->t) {
		h->r[i - 1] = *rec;
	} else {
		if (h->n == h->cap) {
			size_t nc = h->cap ? h->cap * 2 : 64;
			struct aws_rec *nr = realloc(h->r, nc * sizeof(*nr));
			if (!nr)
				return -ENOMEM;
			h->r = nr;
			h->cap = nc;
		}
		memmove(&h->r[i + 1], &h->r[i], (h->n - i) * sizeof(*h->r));
		h->r[i] = *rec;
		h->n++;
	}
	/* prune what no window needs any more */
	int64_t newest = h->r[h->n - 1].t;
	size_t drop = 0;
	while (drop < h->n && h->r[drop].t <= newest - AWS_KEEP_MS)
		drop++;
	if (drop) {
		memmove(h->r, h->r + drop, (h->n - drop) * sizeof(*h->r));
		h->n -= drop;
	}
	return 0;
}

/* Over records with t in (T - from_h, T - to_h]: sum of rain, min/max temp,
 * max mean wind; *n how many had a value. */
struct window {
	double rain, tmin, tmax, wmax;
	size_t n_rain, n_temp, n_wind;
};

static struct window window_of(const struct met_aws_hist *h, int64_t T, int from_h, int to_h)
{
	struct window w = { 0, INFINITY, -INFINITY, -INFINITY, 0, 0, 0 };
	int64_t lo = T - from_h * H, hi = T - to_h * H;

	for (size_t i = 0; h && i < h->n; i++) {
		const struct aws_rec *r = &h->r[i];
		if (r->t <= lo || r->t > hi)
			continue;
		if (!isnan(r->rain)) {
			w.rain += r->rain;
			w.n_rain++;
		}
		if (!isnan(r->temp)) {
			w.tmin = fmin(w.tmin, r->temp);
			w.tmax = fmax(w.tmax, r->temp);
			w.n_temp++;
		}
		if (!isnan(r->mean)) {
			w.wmax = fmax(w.wmax, r->mean);
			w.n_wind++;
		}
	}
	return w;
}

static int emit(struct met_state *st, struct wf_adapter_sink *sink, const struct met_station *s,
		int64_t T, Wf__V1__Hazard hz, Wf__V1__Level level, double value, double thr,
		const char *unit, const char *criterion, const char *text)
{
	char id[128], ts[32];
	time_t sec = (time_t)(T / 1000);
	struct tm tm;
	Wf__V1__Event *ev = wf_adapter_event_new();

	if (!ev)
		return -ENOMEM;
	gmtime_r(&sec, &tm);
	strftime(ts, sizeof ts, "%Y%m%dT%H%M%SZ", &tm);
	snprintf(id, sizeof id, "met-aws-%s-%s-%s", s->id, ts, wf_hazard_to_string(hz));
	ev->agency = WF__V1__AGENCY__AGENCY_MET;
	ev->hazard = hz;
	ev->level = level;
	ev->certainty = WF__V1__CERTAINTY__CERTAINTY_OBSERVED;
	ev->observed_ms = T;
	ev->issued_ms = T; /* deterministic: the same file gives the same event */
	ev->expires_ms = T + st->aws_validity_ms;
	ev->status = WF__V1__STATUS__STATUS_ACTUAL;
	ev->msg_type = WF__V1__MSG_TYPE__MSG_TYPE_ALERT;
	if (wf_adapter_set_str(&ev->id, id) < 0 || wf_adapter_set_str(&ev->region, s->region) < 0 ||
	    wf_adapter_set_str(&ev->station, s->id) < 0 || wf_adapter_set_str(&ev->text, text) < 0 ||
	    wf_adapter_set_measurement(ev, value, thr, unit, criterion) < 0 ||
	    (s->has_point && wf_adapter_set_point(ev, s->lat, s->lon) < 0)) {
		protobuf_c_message_free_unpacked(&ev->base, NULL);
		return -ENOMEM;
	}
	return wf_adapter_sink_emit(sink, ev);
}

#define THR(t) met_thr_for(st, s, (t))

static int grade(struct met_state *st, struct wf_adapter_sink *sink, const struct met_station *s,
		 const struct aws_rec *rec)
{
	const struct met_aws_hist *h = s->hist;
	int64_t T = rec->t;
	char text[512];
	int r;

	/* rainstorm */
	double acc[5];
	static const int hours[5] = { 1, 3, 6, 12, 24 };
	for (int i = 0; i < 5; i++)
		acc[i] = window_of(h, T, hours[i], 0).rain;
	snprintf(text, sizeof text,
		 "station %s rainfall 1h %.1f mm, 3h %.1f mm, 6h %.1f mm, 12h %.1f mm, 24h %.1f mm",
		 s->id, acc[0], acc[1], acc[2], acc[3], acc[4]);
	if (acc[1] >= THR(MET_RAIN_3H_RED))
		r = emit(st, sink, s, T, WF__V1__HAZARD__HAZARD_RAINSTORM, WF__V1__LEVEL__LEVEL_I,
			 acc[1], THR(MET_RAIN_3H_RED), "mm", "rain_3h", text);
	else if (acc[1] >= THR(MET_RAIN_3H_ORANGE))
		r = emit(st, sink, s, T, WF__V1__HAZARD__HAZARD_RAINSTORM, WF__V1__LEVEL__LEVEL_II,
			 acc[1], THR(MET_RAIN_3H_ORANGE), "mm", "rain_3h", text);
	else if (acc[2] >= THR(MET_RAIN_6H_YELLOW))
		r = emit(st, sink, s, T, WF__V1__HAZARD__HAZARD_RAINSTORM, WF__V1__LEVEL__LEVEL_III,
			 acc[2], THR(MET_RAIN_6H_YELLOW), "mm", "rain_6h", text);
	else if (acc[3] >= THR(MET_RAIN_12H_BLUE))
		r = emit(st, sink, s, T, WF__V1__HAZARD__HAZARD_RAINSTORM, WF__V1__LEVEL__LEVEL_IV,
			 acc[3], THR(MET_RAIN_12H_BLUE), "mm", "rain_12h", text);
	else
		r = 0;
	if (r < 0)
		return r;

	/* gale: the observed mean wind or gust (levels red..blue) */
	static const enum met_thr gm[4] = { MET_WIND_MEAN_RED, MET_WIND_MEAN_ORANGE,
					    MET_WIND_MEAN_YELLOW, MET_WIND_MEAN_BLUE };
	static const enum met_thr gg[4] = { MET_WIND_GUST_RED, MET_WIND_GUST_ORANGE,
					    MET_WIND_GUST_YELLOW, MET_WIND_GUST_BLUE };
	for (int l = 0; l < 4; l++) {
		bool by_mean = !isnan(rec->mean) && rec->mean >= THR(gm[l]);
		bool by_gust = !isnan(rec->gust) && rec->gust >= THR(gg[l]);
		if (!by_mean && !by_gust)
			continue;
		snprintf(text, sizeof text, "station %s wind mean %.1f m/s, gust %.1f m/s", s->id,
			 isnan(rec->mean) ? 0.0 : rec->mean, isnan(rec->gust) ? 0.0 : rec->gust);
		r = emit(st, sink, s, T, WF__V1__HAZARD__HAZARD_GALE, (Wf__V1__Level)(l + 1),
			 by_mean ? rec->mean : rec->gust, by_mean ? THR(gm[l]) : THR(gg[l]), "m/s",
			 by_mean ? "wind_mean" : "wind_gust", text);
		if (r < 0)
			return r;
		break;
	}

	/* heat: 24 h maximum; yellow needs three consecutive 24 h maxima */
	if (!isnan(rec->temp)) {
		struct window d0 = window_of(h, T, 24, 0), d1 = window_of(h, T, 48, 24),
			      d2 = window_of(h, T, 72, 48);
		snprintf(text, sizeof text, "station %s 24h maximum temperature %.1f Cel", s->id,
			 d0.tmax);
		if (d0.tmax >= THR(MET_HEAT_RED))
			r = emit(st, sink, s, T, WF__V1__HAZARD__HAZARD_HEAT, WF__V1__LEVEL__LEVEL_I,
				 d0.tmax, THR(MET_HEAT_RED), "Cel", "tmax_24h", text);
		else if (d0.tmax >= THR(MET_HEAT_ORANGE))
			r = emit(st, sink, s, T, WF__V1__HAZARD__HAZARD_HEAT, WF__V1__LEVEL__LEVEL_II,
				 d0.tmax, THR(MET_HEAT_ORANGE), "Cel", "tmax_24h", text);
		else if (d0.tmax >= THR(MET_HEAT_YELLOW) && d1.n_temp && d1.tmax >= THR(MET_HEAT_YELLOW) &&
			 d2.n_temp && d2.tmax >= THR(MET_HEAT_YELLOW))
			r = emit(st, sink, s, T, WF__V1__HAZARD__HAZARD_HEAT, WF__V1__LEVEL__LEVEL_III,
				 fmin(d0.tmax, fmin(d1.tmax, d2.tmax)), THR(MET_HEAT_YELLOW), "Cel",
				 "tmax_3days", text);
		if (r < 0)
			return r;
	}

	/* fog: observed visibility */
	if (!isnan(rec->vis)) {
		snprintf(text, sizeof text, "station %s visibility %.0f m", s->id, rec->vis);
		if (rec->vis < THR(MET_FOG_RED))
			r = emit(st, sink, s, T, WF__V1__HAZARD__HAZARD_FOG, WF__V1__LEVEL__LEVEL_I,
				 rec->vis, THR(MET_FOG_RED), "m", "visibility", text);
		else if (rec->vis < THR(MET_FOG_ORANGE))
			r = emit(st, sink, s, T, WF__V1__HAZARD__HAZARD_FOG, WF__V1__LEVEL__LEVEL_II,
				 rec->vis, THR(MET_FOG_ORANGE), "m", "visibility", text);
		else if (rec->vis < THR(MET_FOG_YELLOW))
			r = emit(st, sink, s, T, WF__V1__HAZARD__HAZARD_FOG, WF__V1__LEVEL__LEVEL_III,
				 rec->vis, THR(MET_FOG_YELLOW), "m", "visibility", text);
		if (r < 0)
			return r;
	}

	/* cold wave: drop of the minimum temperature between consecutive
	 * windows (24 h; 48 h for blue), the new minimum, and the wind */
	if (!isnan(rec->temp)) {
		struct window n24 = window_of(h, T, 24, 0), p24 = window_of(h, T, 48, 24);
		struct window n48 = window_of(h, T, 48, 0), p48 = window_of(h, T, 96, 48);
		static const enum met_thr cd[4] = { MET_COLD_DROP_RED, MET_COLD_DROP_ORANGE,
						    MET_COLD_DROP_YELLOW, MET_COLD_DROP_BLUE };
		static const enum met_thr ct[4] = { MET_COLD_TMIN_RED, MET_COLD_TMIN_ORANGE,
						    MET_COLD_TMIN_YELLOW, MET_COLD_TMIN_BLUE };
		static const enum met_thr cw[4] = { MET_COLD_WIND_RED, MET_COLD_WIND_ORANGE,
						    MET_COLD_WIND_YELLOW, MET_COLD_WIND_BLUE };
		for (int l = 0; l < 4; l++) {
			const struct window *now = l < 3 ? &n24 : &n48, *prev = l < 3 ? &p24 : &p48;
			if (!now->n_temp || !prev->n_temp || !now->n_wind)
				continue;
			double drop = prev->tmin - now->tmin;
			if (drop >= THR(cd[l]) && now->tmin <= THR(ct[l]) && now->wmax >= THR(cw[l])) {
				snprintf(text, sizeof text,
					 "station %s minimum temperature fell %.1f Cel to %.1f Cel in %d h, wind %.1f m/s",
					 s->id, drop, now->tmin, l < 3 ? 24 : 48, now->wmax);
				r = emit(st, sink, s, T, WF__V1__HAZARD__HAZARD_COLD_WAVE,
					 (Wf__V1__Level)(l + 1), drop, THR(cd[l]), "Cel",
					 l < 3 ? "tmin_drop_24h" : "tmin_drop_48h", text);
				if (r < 0)
					return r;
				break;
			}
		}
	}
	return 0;
}

int met_aws_parse(struct met_state *st, const char *name, const uint8_t *buf, size_t len,
		  int64_t now_ms, struct wf_adapter_sink *sink)
{
	struct parsed *recs = NULL;
	size_t nrec = 0, cap = 0, bad, pos = 0;
	int colidx[C_MAX], lineno = 0, ncols = 0, r = -EBADMSG;
	char line[AWS_LINE_MAX + 1];

	if (len == 0) {
		wf_adapter_reason(sink, "empty file");
		return -EBADMSG;
	}
	if (memchr(buf, '\0', len)) {
		wf_adapter_reason(sink, "binary data (NUL byte) in a CSV file");
		return -EBADMSG;
	}
	if (!utf8_valid(buf, len, &bad)) {
		size_t l = 1;
		for (size_t i = 0; i < bad; i++)
			l += buf[i] == '\n';
		wf_adapter_reason(sink, "not UTF-8 (line %zu, byte offset %zu): re-encode the feed "
				  "(e.g. from GBK) as UTF-8", l, bad);
		return -EILSEQ;
	}
	if (buf[len - 1] != '\n') {
		wf_adapter_reason(sink, "truncated: the last line has no newline");
		return -EBADMSG;
	}
	if (len >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF)
		pos = 3;
	for (int i = 0; i < C_MAX; i++)
		colidx[i] = -1;
	while (pos < len) {
		const uint8_t *nl = memchr(buf + pos, '\n', len - pos);
		size_t l = (size_t)(nl - (buf + pos));
		lineno++;
		if (l > AWS_LINE_MAX) {
			wf_adapter_reason(sink, "line %d: longer than %d bytes", lineno, AWS_LINE_MAX);
			goto out;
		}
		memcpy(line, buf + pos, l);
		line[l] = '\0';
		pos += l + 1;
		if (l && line[l - 1] == '\r')
			line[--l] = '\0';
		if (l == 0 || line[0] == '#')
			continue;
		char *f[16];
		int n = split(line, f, 16);
		if (n < 0) {
			wf_adapter_reason(sink, "line %d: more than 16 fields", lineno);
			goto out;
		}
		if (ncols == 0) { /* header */
			for (int i = 0; i < n; i++) {
				int c;
				for (c = 0; c < C_MAX; c++)
					if (strcmp(f[i], col_names[c]) == 0)
						break;
				if (c == C_MAX) {
					wf_adapter_reason(sink, "line %d: unknown column '%.40s'", lineno, f[i]);
					goto out;
				}
				if (colidx[c] >= 0) {
					wf_adapter_reason(sink, "line %d: column '%s' twice", lineno, f[i]);
					goto out;
				}
				colidx[c] = i;
			}
			if (colidx[C_STATION] < 0 || colidx[C_TIME] < 0) {
				wf_adapter_reason(sink, "line %d: header needs 'station' and 'time' columns",
						  lineno);
				goto out;
			}
			ncols = n;
			continue;
		}
		if (n != ncols) {
			wf_adapter_reason(sink, "line %d: %d fields, the header has %d (truncated?)",
					  lineno, n, ncols);
			goto out;
		}
		struct parsed p = { 0 };
		p.st = met_station_find(st, f[colidx[C_STATION]]);
		if (!p.st) {
			wf_adapter_reason(sink, "line %d: unknown station '%.64s' (add it to [met.stations])",
					  lineno, f[colidx[C_STATION]]);
			goto out;
		}
		if (wf_clock_parse(f[colidx[C_TIME]], &p.rec.t) < 0) {
			wf_adapter_reason(sink, "line %d: time '%.40s' is not RFC 3339", lineno,
					  f[colidx[C_TIME]]);
			goto out;
		}
		if (p.rec.t > now_ms + 5 * 60 * 1000LL) {
			wf_adapter_reason(sink, "line %d: time %.40s is in the future", lineno,
					  f[colidx[C_TIME]]);
			goto out;
		}
		double *vals[C_MAX] = { NULL, NULL, &p.rec.rain, &p.rec.mean, &p.rec.gust, &p.rec.temp,
					&p.rec.vis };
		for (int c = C_RAIN; c < C_MAX; c++) {
			*vals[c] = NAN;
			if (colidx[c] < 0 || !*f[colidx[c]])
				continue;
			char *end;
			errno = 0;
			double v = strtod(f[colidx[c]], &end);
			if (*end || errno || !isfinite(v) || v < col_min[c] || v > col_max[c]) {
				wf_adapter_reason(sink, "line %d: %s '%.40s' is not a number in %g..%g",
						  lineno, col_names[c], f[colidx[c]], col_min[c], col_max[c]);
				goto out;
			}
			*vals[c] = v;
		}
		if (nrec == cap) {
			if (cap >= AWS_MAX_RECORDS) {
				wf_adapter_reason(sink, "more than %d records", AWS_MAX_RECORDS);
				goto out;
			}
			size_t nc = cap ? cap * 2 : 256;
			struct parsed *nr = realloc(recs, nc * sizeof(*nr));
			if (!nr) {
				r = -ENOMEM;
				goto out;
			}
			recs = nr;
			cap = nc;
		}
		recs[nrec++] = p;
	}
	if (ncols == 0) {
		wf_adapter_reason(sink, "no header line");
		goto out;
	}
	/* The whole file parsed: feed the history and grade, record by record. */
	for (size_t i = 0; i < nrec; i++) {
		r = hist_insert(recs[i].st, &recs[i].rec);
		if (r < 0)
			goto out;
		r = grade(st, sink, recs[i].st, &recs[i].rec);
		if (r < 0) {
			wf_adapter_reason(sink, "%s", r == -ENOSPC ? "too many events" : "out of memory");
			goto out;
		}
	}
	r = 0;
out:
	free(recs);
	return r;
}
