/* fuzz-bundle: wf_bundle_unpack on arbitrary bytes, as the bus receives a
 * payload that starts with the bundle mark (wf/bundle.h). The first input
 * byte picks the bundle's topic (an event topic, a county's warning topic,
 * a duty inbox, a state topic that no bundle may use); the rest is the
 * payload with the mark put in front. Checked, by abort():
 *   - a refusal is -EBADMSG with a reason, and nothing is returned;
 *   - an accepted bundle has 1..WF_BUNDLE_MAX_ENTRIES entries, each with a
 *     topic whose bundle topic is the bundle's and a payload that is not a
 *     bundle (the state topic accepts nothing);
 *   - its entries, built again with wf_bundle_add and packed, make a
 *     bundle that unpacks to the same entries (one entry: packed as
 *     itself, no mark). */
#include <errno.h>

#include "fuzz.h"
#include "wf/bundle.h"

static const char *const topics[] = {
	"wf/v1/event/met/41/4101/410102",
	"wf/v1/warning/41/4101/410102",
	"wf/v1/duty/duty-410102/inbox",
	"wf/v1/state/wf-fusion-1",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static void check_same(const Wf__V1__Bundle *a, const Wf__V1__Bundle *b)
{
	if (a->n_entries != b->n_entries)
		fuzz_die("repacked: %zu entries, not %zu", b->n_entries, a->n_entries);
	for (size_t i = 0; i < a->n_entries; i++)
		if (strcmp(a->entries[i]->topic, b->entries[i]->topic) != 0 ||
		    a->entries[i]->payload.len != b->entries[i]->payload.len ||
		    (a->entries[i]->payload.len > 0 &&
		     memcmp(a->entries[i]->payload.data, b->entries[i]->payload.data,
			    a->entries[i]->payload.len) != 0))
			fuzz_die("repacked: entry %zu differs", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[1 << 20];
	char why[160], bt[WF_BUNDLE_MAX_TOPIC + 1];
	Wf__V1__Bundle *u = NULL;

	if (size < 1 || size - 1 + WF_BUNDLE_MAGIC_LEN > sizeof buf)
		return 0;
	const char *topic = topics[data[0] % 4];
	buf[0] = 0x00;
	buf[1] = 0x01;
	memcpy(buf + 2, data + 1, size - 1);
	size_t len = size - 1 + 2;

	int r = wf_bundle_unpack(topic, buf, len, &u, why, sizeof why);
	if (r < 0) {
		if (r != -EBADMSG && r != -ENOMEM)
			fuzz_die("unpack: %d", r);
		if (u != NULL || (r == -EBADMSG && why[0] == '\0'))
			fuzz_die("refused without a reason, or with a result");
		return 0;
	}
	if (data[0] % 4 == 3)
		fuzz_die("a bundle on a state topic was accepted");
	if (u->n_entries < 1 || u->n_entries > WF_BUNDLE_MAX_ENTRIES)
		fuzz_die("accepted %zu entries", u->n_entries);
	struct wf_bundle b;
	if (wf_bundle_init(&b, WF_BUNDLE_MAX_ENTRIES, WF_BUNDLE_MAX_BYTES) < 0)
		fuzz_die("init");
	for (size_t i = 0; i < u->n_entries; i++) {
		const Wf__V1__BundleEntry *e = u->entries[i];
		if (wf_bundle_topic(e->topic, bt, sizeof bt) < 0 || strcmp(bt, topic) != 0)
			fuzz_die("entry %zu: topic %s is not under %s", i, e->topic, topic);
		if (wf_bundle_is(e->payload.data, e->payload.len))
			fuzz_die("entry %zu: a bundle inside", i);
		r = wf_bundle_add(&b, topic, e->topic, e->payload.data, e->payload.len);
		if (r == -ENOSPC)
			break; /* the builder's byte estimate is from above */
		if (r < 0)
			fuzz_die("add entry %zu: %d", i, r);
	}
	if (wf_bundle_count(&b) == u->n_entries) {
		const char *pt;
		uint8_t *p = NULL;
		size_t pl = 0;
		if (wf_bundle_pack(&b, &pt, &p, &pl) < 0)
			fuzz_die("pack");
		if (u->n_entries == 1) {
			if (strcmp(pt, u->entries[0]->topic) != 0 || pl != u->entries[0]->payload.len ||
			    (pl > 0 && memcmp(p, u->entries[0]->payload.data, pl) != 0))
				fuzz_die("one entry not packed as itself");
		} else {
			Wf__V1__Bundle *v = NULL;
			if (strcmp(pt, topic) != 0 ||
			    wf_bundle_unpack(pt, p, pl, &v, why, sizeof why) < 0)
				fuzz_die("repacked bundle refused: %s", why);
			check_same(u, v);
			wf_bundle_free(v);
		}
		free(p);
	}
	wf_bundle_destroy(&b);
	wf_bundle_free(u);
	return 0;
}
