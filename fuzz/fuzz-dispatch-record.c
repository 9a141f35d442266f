/* fuzz-dispatch-record: the dispatcher's stored fixed records
 * (services/dispatch/store.c, dsp_rec_decode / dsp_rec_encode) on
 * arbitrary bytes, as a damaged state file would give them. The first
 * byte picks the record (its size); the rest is the stored value. Checked,
 * by abort():
 *   - decoding returns 0 or -EBADMSG, never writes past the record;
 *   - a decoded record starts with its layout version (1), and encoding
 *     it and decoding that gives it back exactly;
 *   - the input taken as a record (cut or zero-padded to the size,
 *     version byte 1) survives encode + decode unchanged, within
 *     DSP_REC_ENCODED_MAX. */
#include <errno.h>

#include "fuzz.h"
#include "stats.h"
#include "store.h"

static const size_t sizes[] = {
	sizeof(struct dsp_current),  sizeof(struct dsp_delivery), sizeof(struct dsp_duty),
	sizeof(struct dsp_followup), sizeof(struct dsp_cancel),	  sizeof(struct dsp_silmeta),
	sizeof(struct dsp_stats),
};

#define REC_MAX sizeof(struct dsp_stats)
#define GUARD 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t rec[REC_MAX + GUARD], again[REC_MAX + GUARD];
	static uint8_t enc[DSP_REC_ENCODED_MAX(REC_MAX)];
	if (size < 1)
		return 0;
	size_t rs = sizes[data[0] % (sizeof sizes / sizeof sizes[0])];
	const uint8_t *val = data + 1;
	size_t vl = size - 1;

	memset(rec, 0xA5, sizeof rec);
	int r = dsp_rec_decode(val, vl, rec, rs);
	if (r != 0 && r != -EBADMSG)
		fuzz_die("decode: %d", r);
	for (size_t i = rs; i < rs + GUARD; i++)
		if (rec[i] != 0xA5)
			fuzz_die("decode wrote past the %zu-byte record", rs);
	if (r == 0) {
		if (rec[0] != 1)
			fuzz_die("decoded a record of layout version %u", rec[0]);
		size_t n = dsp_rec_encode(rec, rs, enc);
		if (n > DSP_REC_ENCODED_MAX(rs) || dsp_rec_decode(enc, n, again, rs) != 0 ||
		    memcmp(rec, again, rs) != 0)
			fuzz_die("a decoded record does not survive encode + decode");
	}

	/* the input as a record of that size */
	memset(rec, 0, rs);
	memcpy(rec, val, vl < rs ? vl : rs);
	rec[0] = 1;
	size_t n = dsp_rec_encode(rec, rs, enc);
	if (n > DSP_REC_ENCODED_MAX(rs))
		fuzz_die("encoded %zu bytes of a %zu-byte record", n, rs);
	memset(again, 0xA5, sizeof again);
	if (dsp_rec_decode(enc, n, again, rs) != 0 || memcmp(rec, again, rs) != 0)
		fuzz_die("a %zu-byte record does not survive encode + decode", rs);
	return 0;
}
