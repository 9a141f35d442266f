/* keyfilter: see keyfilter.h. 16 bits a key and 4 probes (double hashing
 * of one 64-bit hash): a false "maybe" about 0.24% of the time at
 * capacity. */
#include "keyfilter.h"

#include <errno.h>
#include <stdlib.h>

#define PROBES 4

/* FNV-1a, then the splitmix64 finaliser (FNV's low bits mix poorly) */
static uint64_t key_hash(const void *key, size_t len)
{
	const unsigned char *p = key;
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

int fusion_keyfilter_reset(struct fusion_keyfilter *f, size_t cap)
{
	size_t c = FUSION_KEYFILTER_MIN;
	while (c < cap && c < ((size_t)1 << 40))
		c *= 2;
	uint64_t *bits = calloc(c * 16 / 64, sizeof *bits);
	free(f->bits);
	*f = (struct fusion_keyfilter){ 0 };
	if (!bits)
		return -ENOMEM;
	f->bits = bits;
	f->mask = (uint64_t)c * 16 - 1;
	f->cap = c;
	return 0;
}

void fusion_keyfilter_add(struct fusion_keyfilter *f, const void *key, size_t len)
{
	if (!f->bits)
		return;
	uint64_t h = key_hash(key, len), step = (h >> 32) | 1;
	for (unsigned i = 0; i < PROBES; i++, h += step)
		f->bits[(h & f->mask) >> 6] |= UINT64_C(1) << (h & 63);
	f->n++;
}

bool fusion_keyfilter_maybe(const struct fusion_keyfilter *f, const void *key, size_t len)
{
	if (!f->bits)
		return true;
	uint64_t h = key_hash(key, len), step = (h >> 32) | 1;
	for (unsigned i = 0; i < PROBES; i++, h += step)
		if (!(f->bits[(h & f->mask) >> 6] & (UINT64_C(1) << (h & 63))))
			return false;
	return true;
}

void fusion_keyfilter_free(struct fusion_keyfilter *f)
{
	free(f->bits);
	*f = (struct fusion_keyfilter){ 0 };
}
