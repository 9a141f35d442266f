/* fuzz.h: helpers shared by the libFuzzer targets in fuzz/ (header-only;
 * each target includes it once). See docs/proof.md, "Fuzzing".
 *
 * Every target is deterministic: time is the fixed NOW below (the same
 * instant as the unit tests), the region table is the shipped one, and
 * state that a parser keeps across calls is either rebuilt per input or
 * bounded (said in each target). */
#ifndef WF_FUZZ_H
#define WF_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf/region.h"

#ifndef WF_FUZZ_SOURCE_ROOT
#error "WF_FUZZ_SOURCE_ROOT must be defined (fuzz/meson.build does)"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* 2026-07-20T12:00:00+08:00, as in tests/unit/agency-test.h */
static const int64_t FUZZ_NOW = 1784520000000LL;

/* Fails loudly: a broken harness must not look like a quiet fuzzer. */
__attribute__((noreturn, format(printf, 1, 2), unused)) static void fuzz_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("fuzz: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	abort();
}

/* SOURCE_ROOT/REL, or $WF_SOURCE_ROOT/REL when that is set (static storage,
 * valid until the fourth call after). */
__attribute__((unused)) static const char *fuzz_path(const char *rel)
{
	/* a few rotating buffers: two results may be live in one call's arguments */
	static char path[4][4096];
	static unsigned next;
	char *p = path[next++ % 4];
	const char *root = getenv("WF_SOURCE_ROOT");
	snprintf(p, sizeof path[0], "%s/%s", root && *root ? root : WF_FUZZ_SOURCE_ROOT, rel);
	return p;
}

/* The shipped region table ($WF_REGIONS or data/regions.csv), loaded once. */
__attribute__((unused)) static const struct wf_region_table *fuzz_regions(void)
{
	static struct wf_region_table *t;
	if (!t) {
		const char *p = getenv("WF_REGIONS");
		if (!p || !*p)
			p = fuzz_path("data/regions.csv");
		if (wf_region_table_load(p, &t, NULL) < 0)
			fuzz_die("cannot load region table %s", p);
	}
	return t;
}

/* A malloc'd NUL-terminated copy of DATA (for parsers that take C strings;
 * an embedded NUL simply ends the text early, as it would for a file read
 * by such a parser's _load twin). Aborts when out of memory. */
__attribute__((unused)) static char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (!s)
		fuzz_die("out of memory");
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

/* --- known bugs, tolerated so that a target keeps fuzzing past them ---
 *
 * Known bug 1 (docs/proof.md): protobuf-c 1.4.1 rejects a field number 0
 * only when its tag is the single byte 0x00; an overlong tag varint for it
 * (0x80 0x00) unpacks, lands in unknown_fields with tag 0, and
 * protobuf_c_message_pack writes it back as 0x00, which nothing decodes.
 * Fixed: the codec (common/src/codec.c unpack_common, has_field_zero) now
 * rejects it as MALFORMED; tests/unit/test-codec.c and the inputs under
 * tests/fixtures/fuzz/codec-* keep it fixed. */
#include <protobuf-c/protobuf-c.h>

__attribute__((unused)) static int fuzz_has_tag0(const ProtobufCMessage *m)
{
	if (!m)
		return 0;
	for (unsigned i = 0; i < m->n_unknown_fields; i++)
		if (m->unknown_fields[i].tag == 0)
			return 1;
	const ProtobufCMessageDescriptor *d = m->descriptor;
	for (unsigned f = 0; f < d->n_fields; f++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[f];
		if (fd->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		const char *base = (const char *)m;
		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)(const void *)(base + fd->quantifier_offset);
			ProtobufCMessage *const *v =
				*(ProtobufCMessage *const *const *)(const void *)(base + fd->offset);
			for (size_t k = 0; k < n; k++)
				if (fuzz_has_tag0(v[k]))
					return 1;
		} else if (fuzz_has_tag0(
				   *(const ProtobufCMessage *const *)(const void *)(base + fd->offset))) {
			return 1;
		}
	}
	return 0;
}

/* True when a repack check should be skipped for M. The codec rejects
 * field number 0 since 2026-12-02 (has_field_zero in common/src/codec.c),
 * so nothing is skipped any more; WF_FUZZ_LENIENT=1 brings the old skip
 * back for comparing with an older codec. */
__attribute__((unused)) static int fuzz_known_repack_bug(const ProtobufCMessage *m)
{
	const char *lenient = getenv("WF_FUZZ_LENIENT");
	return lenient && *lenient == '1' && fuzz_has_tag0(m);
}

#endif
