/* keyfilter: a Bloom filter of the keys stored in fusion.input, so that the
 * lookup of an event id never seen before (most events) is answered without
 * a B-tree descent. It may say "maybe" for a key that is not stored (about
 * 1 in 400 at its capacity: the store is then read, as without it), never
 * "no" for one that is: the engine adds every key it stores and builds the
 * filter from the store itself (engine.c input_lookup). Keys cannot be
 * removed; purged ones only add false "maybe"s until the next rebuild. */
#ifndef WF_FUSION_KEYFILTER_H
#define WF_FUSION_KEYFILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fusion_keyfilter {
	uint64_t *bits;  /* 16 bits a key of capacity, a power of two */
	uint64_t mask;   /* number of bits - 1 */
	size_t n, cap;   /* keys added; capacity */
	bool ready;      /* built: answers may be trusted */
};

#define FUSION_KEYFILTER_MIN 65536u

/* Empties F for at least CAP keys (not ready: the caller adds the stored
 * keys, then sets ready). -ENOMEM leaves F empty and not ready. */
int fusion_keyfilter_reset(struct fusion_keyfilter *f, size_t cap);
void fusion_keyfilter_add(struct fusion_keyfilter *f, const void *key, size_t len);
/* false: KEY was never added. */
bool fusion_keyfilter_maybe(const struct fusion_keyfilter *f, const void *key, size_t len);
void fusion_keyfilter_free(struct fusion_keyfilter *f);

#endif
