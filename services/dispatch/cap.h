/* cap: CAP 1.2 (OASIS) XML rendering of a released warning version, for
 * broadcast platforms and public feeds (docs/dispatch.md, "CAP"). Built
 * with libxml2's tree API (text is escaped by the library), UTF-8 Chinese
 * text, region codes as <geocode>s, times in Beijing time (+08:00, CAP's
 * dateTime form with a 'T'), Update/Cancel with <references> naming the
 * CAP messages (sender,identifier,sent) of the versions they supersede.
 * Nothing here logs or reads the clock. */
#ifndef DSP_CAP_H
#define DSP_CAP_H

#include <stddef.h>
#include <stdint.h>

#include "warning.pb-c.h"
#include "wf/region.h"

struct dsp_cap_options {
	const char *sender;       /* CAP <sender>, e.g. "warnfuse@410185.yjj.gov.cn" */
	const char *sender_name;  /* <senderName>, e.g. "登封市应急管理局" (may be NULL) */
	const struct wf_region_table *regions; /* names for <areaDesc> (may be NULL) */
	const char *identifier_suffix; /* appended to <identifier> (a manual cancel: ".cancel") */
};

/* A CAP message this one refers to. */
struct dsp_cap_ref {
	char identifier[160];
	int64_t sent_ms;
};

/* The CAP <identifier> of warning version ID@VERSION: "<id>.v<version>"
 * (no spaces, commas or '<' '&', as CAP requires). Returns 0 or
 * -ENAMETOOLONG. */
int dsp_cap_identifier(const char *id, uint32_t version, char *buf, size_t size);

/* CAP dateTime of MS in Beijing time: "2026-12-02T21:00:00+08:00" (BUF at
 * least 26 bytes). Returns BUF. */
char *dsp_cap_time(int64_t ms, char *buf, size_t size);

/* Renders W (validated) as a CAP 1.2 alert. REFS (N_REFS) are the messages
 * an UPDATE/CANCEL supersedes. Returns 0 and a malloc'd NUL-terminated
 * document in *RET_XML (caller frees) of *RET_LEN bytes, -EINVAL, or
 * -ENOMEM. */
int dsp_cap_render(const struct dsp_cap_options *o, const Wf__V1__Warning *w,
		   const struct dsp_cap_ref *refs, size_t n_refs, char **ret_xml,
		   size_t *ret_len);

#endif
