/* fuzz-codec.h: the body shared by the fuzz-codec-<message> targets.
 * Defines FUZZ_CODEC(T, CT) -> LLVMFuzzerTestOneInput that
 *   1. unpacks DATA with wf_codec_T_unpack (the receiver's path: size
 *      check, protobuf-c unpack, validation, region membership against the
 *      shipped table, timestamps against the fixed NOW);
 *   2. for an accepted message, checks the codec's own promise that what a
 *      consumer accepts a producer may emit: wf_codec_T_pack must accept it
 *      too (TOO_LARGE excepted: 6-digit regions grow to 12 on the wire), and
 *      the packed bytes must unpack again;
 *   3. prints it as JSON (pbjson) and frees everything (leaks are errors).
 * A broken promise aborts, so libFuzzer records the input. */
#ifndef WF_FUZZ_CODEC_H
#define WF_FUZZ_CODEC_H

#include <errno.h>

#include "fuzz.h"
#include "wf/codec.h"
#include "wf/pbjson.h"

#define FUZZ_CODEC(T, CT)                                                                       \
	int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)                            \
	{                                                                                       \
		struct wf_codec_limits lim;                                                     \
		struct wf_codec_error err;                                                      \
		CT *m = NULL, *again = NULL;                                                    \
		uint8_t *buf = NULL;                                                            \
		size_t len = 0;                                                                 \
		int r;                                                                          \
                                                                                                \
		wf_codec_limits_init(&lim);                                                     \
		lim.regions = fuzz_regions();                                                   \
		r = wf_codec_##T##_unpack(data, size, &lim, FUZZ_NOW, &m, &err);                \
		if (r < 0) {                                                                    \
			if (r != -EBADMSG && r != -ENOMEM)                                      \
				fuzz_die(#T "_unpack: unexpected %d", r);                       \
			if (r == -EBADMSG && wf_reason_to_string(err.reason) == NULL)           \
				fuzz_die(#T "_unpack: rejected without a valid reason (%d)",    \
					 (int)err.reason);                                      \
			return 0;                                                               \
		}                                                                               \
		r = wf_codec_##T##_pack(m, &lim, FUZZ_NOW, &buf, &len, &err);                   \
		if (r < 0 && !(r == -EBADMSG && err.reason == WF_REASON_TOO_LARGE))             \
			fuzz_die(#T ": unpack accepted what pack rejects: %s %s: %s",           \
				 wf_reason_to_string(err.reason), err.field, err.detail);       \
		if (r == 0) {                                                                   \
			r = wf_codec_##T##_unpack(buf, len, &lim, FUZZ_NOW, &again, &err);      \
			if (r < 0 && !fuzz_known_repack_bug(&m->base))                          \
				fuzz_die(#T ": repacked message rejected: %s %s: %s",           \
					 wf_reason_to_string(err.reason), err.field,            \
					 err.detail);                                           \
			wf_codec_##T##_free(again);                                             \
			free(buf);                                                              \
		}                                                                               \
		free(wf_pbjson_print(&m->base));                                                \
		wf_codec_##T##_free(m);                                                         \
		return 0;                                                                       \
	}

#endif
