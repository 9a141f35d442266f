/* dryrun: --dry-run FILE... (parse, grade, validate, print JSON lines) and
 * --check FILE... (validate only). Nothing is stored or published. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "adapter-int.h"
#include "wf/cli.h"
#include "wf/codec.h"
#include "wf/pbjson.h"

static int print_rejected(FILE *out, const char *file, const char *reason)
{
	cJSON *o = cJSON_CreateObject();
	char *s;

	if (!o || !cJSON_AddStringToObject(o, "rejected", file) ||
	    !cJSON_AddStringToObject(o, "reason", reason)) {
		cJSON_Delete(o);
		return -ENOMEM;
	}
	s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!s)
		return -ENOMEM;
	fprintf(out, "%s\n", s);
	free(s);
	return 0;
}

static const char *read_error(int r, size_t max, char *buf, size_t size)
{
	if (r == -EFBIG)
		snprintf(buf, size, "too large (limit %zu bytes)", max);
	else if (r == -EINVAL)
		snprintf(buf, size, "not a regular file");
	else
		snprintf(buf, size, "cannot read: %s", strerror(-r));
	return buf;
}

int adapter_dry_run(const struct wf_adapter_ops *ops, void *state,
		    const struct wf_region_table *regions, int64_t now_ms, size_t max_file,
		    char **files, int nfiles, FILE *out, FILE *err)
{
	struct wf_adapter_sink *sink = wf_adapter_sink_new();
	struct wf_codec_limits lim;
	char reason[WF_ADAPTER_REASON_MAX];
	uint64_t seq = 0;
	int status = WF_EXIT_OK;

	if (!sink) {
		fprintf(err, "wf-%s: out of memory\n", ops->kind);
		return WF_EXIT_FAILURE;
	}
	wf_codec_limits_init(&lim);
	lim.regions = regions;
	for (int f = 0; f < nfiles; f++) {
		const char *name = files[f];
		uint8_t *buf = NULL;
		size_t len = 0;
		int r;

		wf_adapter_sink_reset(sink);
		r = adapter_read_path(name, max_file, &buf, &len);
		if (r < 0) {
			read_error(r, max_file, reason, sizeof reason);
			goto rejected;
		}
		r = ops->parse(state, name, buf, len, now_ms, sink);
		free(buf);
		if (r < 0) {
			const char *why = wf_adapter_sink_reason_text(sink);
			snprintf(reason, sizeof reason, "%s", *why ? why : strerror(-r));
			goto rejected;
		}
		/* Validate every event exactly as the spool would before printing any. */
		for (size_t i = 0; i < wf_adapter_sink_count(sink); i++) {
			Wf__V1__Event *ev = adapter_sink_event_mut(sink, i);
			struct wf_codec_error why = { 0 };
			if (wf_adapter_set_str(&ev->producer, "dry-run") < 0)
				goto oom;
			ev->seq = seq + i + 1;
			r = wf_codec_event_validate(ev, &lim, now_ms, &why);
			if (r == -EBADMSG) {
				snprintf(reason, sizeof reason, "event %zu (%s): %s: %s: %s", i + 1,
					 ev->id && *ev->id ? ev->id : "?", wf_reason_to_string(why.reason),
					 why.field, why.detail);
				goto rejected;
			} else if (r < 0) {
				goto oom;
			}
		}
		for (size_t i = 0; i < wf_adapter_sink_count(sink); i++) {
			char *line = wf_pbjson_print(&wf_adapter_sink_event(sink, i)->base);
			if (!line)
				goto oom;
			fprintf(out, "%s\n", line);
			free(line);
		}
		seq += wf_adapter_sink_count(sink);
		continue;
rejected:
		if (print_rejected(out, name, reason) < 0)
			goto oom;
		status = WF_EXIT_PARTIAL;
	}
	wf_adapter_sink_free(sink);
	if (fflush(out) != 0)
		return WF_EXIT_FAILURE;
	return status;
oom:
	wf_adapter_sink_free(sink);
	fprintf(err, "wf-%s: out of memory\n", ops->kind);
	return WF_EXIT_FAILURE;
}

int adapter_check(const struct wf_adapter_ops *ops, void *state, int64_t now_ms,
		  size_t max_file, char **files, int nfiles, FILE *out, FILE *err)
{
	struct wf_adapter_sink *sink = wf_adapter_sink_new();
	char reason[WF_ADAPTER_REASON_MAX];
	int status = WF_EXIT_OK;

	if (!sink) {
		fprintf(err, "wf-%s: out of memory\n", ops->kind);
		return WF_EXIT_FAILURE;
	}
	for (int f = 0; f < nfiles; f++) {
		uint8_t *buf = NULL;
		size_t len = 0;
		int r;

		wf_adapter_sink_reset(sink);
		r = adapter_read_path(files[f], max_file, &buf, &len);
		if (r < 0) {
			read_error(r, max_file, reason, sizeof reason);
		} else {
			r = ops->check(state, files[f], buf, len, now_ms, sink);
			free(buf);
			if (r < 0) {
				const char *why = wf_adapter_sink_reason_text(sink);
				snprintf(reason, sizeof reason, "%s", *why ? why : strerror(-r));
			}
		}
		if (r < 0) {
			fprintf(out, "%s: INVALID: %s\n", files[f], reason);
			status = WF_EXIT_PARTIAL;
		} else {
			const char *note = wf_adapter_sink_reason_text(sink);
			if (*note)
				fprintf(out, "%s: OK (%s)\n", files[f], note);
			else
				fprintf(out, "%s: OK\n", files[f]);
		}
	}
	wf_adapter_sink_free(sink);
	return fflush(out) == 0 ? status : WF_EXIT_FAILURE;
}
