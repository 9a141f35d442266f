/* fuzz-sms-text: SMS text preparation and segmenting (sms-util.h) on
 * arbitrary bytes: wf_sms_utf16_units (UTF-8 -> UTF-16BE), wf_sms_segment
 * and wf_sms_prepare_text (the padding that makes Kannel's blind 67-unit
 * cuts fall where wf_sms_segment cuts). Checked, by abort():
 *   - sizing without and with an output buffer agree;
 *   - parts are at most 70 units (one part) or 67, start in order, cover
 *     the text, and never start between the two units of a surrogate pair;
 *     their count is wf_sms_parts_for_units() unless pairs forced shorter
 *     parts;
 *   - a prepared text is valid UTF-8 of the reported length, and (when it
 *     has more than 70 units) its parts start exactly every 67 units. */
#include <errno.h>

#include "fuzz.h"
#include "sms-util.h"

#define MAXPARTS 4096u

static bool low_surrogate_at(const unsigned char *u16, size_t i)
{
	unsigned v = ((unsigned)u16[2 * i] << 8) | u16[2 * i + 1];
	return v >= 0xDC00 && v <= 0xDFFF;
}

static void check_segments(const unsigned char *u16, size_t units, bool prepared)
{
	static size_t starts[MAXPARTS];
	int parts = wf_sms_segment(u16, units, starts, MAXPARTS);
	if (parts == -E2BIG)
		return;
	if (parts < 1)
		fuzz_die("segment: %d for %zu units", parts, units);
	if (starts[0] != 0)
		fuzz_die("segment: first part starts at %zu", starts[0]);
	for (int p = 0; p < parts; p++) {
		size_t end = p + 1 < parts ? starts[p + 1] : units;
		size_t n = end - starts[p];
		if (end < starts[p] || (parts == 1 ? n > WF_SMS_UCS2_SINGLE : n > WF_SMS_UCS2_PART))
			fuzz_die("segment: part %d of %d is %zu units", p, parts, n);
		if (units > 0 && n == 0)
			fuzz_die("segment: empty part %d", p);
		if (p > 0 && starts[p] < units && low_surrogate_at(u16, starts[p]))
			fuzz_die("segment: part %d starts inside a surrogate pair", p);
		if (prepared && units > WF_SMS_UCS2_SINGLE && starts[p] != (size_t)p * WF_SMS_UCS2_PART)
			fuzz_die("prepared text: part %d starts at %zu, Kannel cuts at %zu", p,
				 starts[p], (size_t)p * WF_SMS_UCS2_PART);
	}
	if (!prepared && (unsigned)parts < wf_sms_parts_for_units(units))
		fuzz_die("segment: %d parts for %zu units", parts, units);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	long n = wf_sms_utf16_units(text, size, NULL);
	if (n < 0) {
		char *t = NULL;
		size_t units = 0;
		if (wf_sms_prepare_text(text, size, &t, &units) == 0)
			fuzz_die("prepare_text accepted what utf16_units rejects");
		return 0;
	}
	unsigned char *u16 = malloc(2 * (size_t)n + 1);
	if (!u16)
		fuzz_die("out of memory");
	if (wf_sms_utf16_units(text, size, u16) != n)
		fuzz_die("utf16_units: counts differ with an output buffer");
	check_segments(u16, (size_t)n, false);
	free(u16);

	char *t = NULL;
	size_t units = 0;
	int r = wf_sms_prepare_text(text, size, &t, &units);
	if (r == -ENOMEM)
		return 0;
	if (r != 0)
		fuzz_die("prepare_text: %d for valid text", r);
	long m = wf_sms_utf16_units(t, strlen(t), NULL);
	if (m < 0 || (size_t)m != units)
		fuzz_die("prepare_text: %zu units reported, %ld in the text", units, m);
	if (n <= (long)WF_SMS_UCS2_SINGLE && (strlen(t) != size || memcmp(t, text, size) != 0))
		fuzz_die("prepare_text changed a short text");
	u16 = malloc(2 * units + 1);
	if (!u16)
		fuzz_die("out of memory");
	(void)wf_sms_utf16_units(t, strlen(t), u16);
	check_segments(u16, units, true);
	free(u16);
	free(t);
	return 0;
}
