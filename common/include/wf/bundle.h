/* bundle: several messages in one MQTT publish (docs/protocol.md,
 * "Bundles"; proto/bundle.proto).
 *
 * A bundle's payload is WF_BUNDLE_MAGIC (0x00 0x01) and a packed
 * wf.v1.Bundle. It is published on the bundle topic of its entries
 * (wf_bundle_topic): an event's own topic, a warning's county topic (the
 * warning topic without its hazard level) or a duty station's inbox; every
 * entry's bundle topic must be the bundle's topic, so the broker's ACL check
 * of that topic covers every entry, and a subscriber that receives an
 * entry's topic receives the bundle too (unless it selects warnings by
 * hazard: see wf_topic_warning_filter). The bus (wf/bus.h) opens bundles
 * and hands their entries to on_message one by one, as if each had been
 * published alone; producers build them with struct wf_bundle.
 *
 * Pure functions: no logging, no globals. */
#ifndef WF_BUNDLE_H
#define WF_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bundle.pb-c.h"

#define WF_BUNDLE_MAGIC_LEN    2u
#define WF_BUNDLE_MAX_ENTRIES  1024u        /* entries a receiver accepts in one bundle */
#define WF_BUNDLE_MAX_TOPIC    1024u        /* bytes of an entry's topic */
#define WF_BUNDLE_MAX_BYTES    (16u << 20)  /* a bundle's payload, at most */

/* True when PAYLOAD starts with the bundle mark (it is then a bundle or
 * garbage, never a single message). Can't fail. */
bool wf_bundle_is(const void *payload, size_t len);

/* The bundle topic of an entry on TOPIC, into BUF: TOPIC itself for an
 * event (wf/v1/event/<agency>/<pp>/<ppcc>/<ppccdd>) and for a duty inbox
 * (wf/v1/duty/<station>/inbox), the topic without its last level for a
 * warning (wf/v1/warning/<pp>/<ppcc>/<ppccdd>/<hazard>). Returns 0,
 * -ENOENT for a topic of any other shape (it is never bundled), or
 * -ENAMETOOLONG when BUF is too small. Checks the shape (levels), not the
 * codes: receivers validate each entry's topic as they would alone. */
int wf_bundle_topic(const char *topic, char *buf, size_t size);

/* Decodes and checks a bundle that arrived on TOPIC: the mark, the
 * protobuf, 1..WF_BUNDLE_MAX_ENTRIES entries, each with a topic of
 * 1..WF_BUNDLE_MAX_TOPIC bytes, no NUL, '+' or '#', whose bundle topic is
 * TOPIC, and a payload that is not itself a bundle. Returns 0 and *RET
 * (free with wf_bundle_free), or -EBADMSG with a reason in WHY (may be
 * NULL; WHY_SIZE bytes), or -ENOMEM. */
int wf_bundle_unpack(const char *topic, const void *payload, size_t len,
		     Wf__V1__Bundle **ret, char *why, size_t why_size);

/* Frees what wf_bundle_unpack returned. Accepts NULL. */
void wf_bundle_free(Wf__V1__Bundle *b);

/* A bundle being built: consecutive entries with one bundle topic. */
struct wf_bundle {
	size_t max_entries, max_bytes; /* limits of what wf_bundle_add takes */
	char topic[WF_BUNDLE_MAX_TOPIC + 1]; /* the bundle topic ("" when empty) */
	size_t n, cap;
	char **topics;        /* entries' topics, owned */
	uint8_t **payloads;   /* entries' payloads, owned */
	size_t *lens;
	size_t bytes;         /* packed size of the entries so far (estimate from above) */
};

/* An empty bundle of at most MAX_ENTRIES (2..WF_BUNDLE_MAX_ENTRIES) entries
 * and about MAX_BYTES packed bytes (at least 1024). -EINVAL otherwise. */
int wf_bundle_init(struct wf_bundle *b, size_t max_entries, size_t max_bytes);

/* Appends a copy of one entry whose bundle topic is BUNDLE_TOPIC. Returns 0,
 * -EXDEV when the bundle holds entries of another bundle topic, -ENOSPC when
 * it is full (entries or bytes; an empty bundle takes any one entry),
 * -EINVAL for a bad argument, -ENOMEM. */
int wf_bundle_add(struct wf_bundle *b, const char *bundle_topic, const char *topic,
		  const void *payload, size_t len);

/* Entries held. Can't fail. */
size_t wf_bundle_count(const struct wf_bundle *b);

/* The message to publish for what B holds (at least one entry): with one
 * entry, its own topic and payload (no bundle); with more, the bundle
 * topic and WF_BUNDLE_MAGIC + the packed Bundle. *TOPIC points into B;
 * *PAYLOAD is malloc'ed (free it). Returns 0, -ENOENT when B is empty,
 * -ENOMEM. B keeps its entries until wf_bundle_clear. */
int wf_bundle_pack(const struct wf_bundle *b, const char **topic, uint8_t **payload,
		   size_t *len);

/* Drops the entries (the limits stay). Can't fail. */
void wf_bundle_clear(struct wf_bundle *b);

/* Frees the entries' memory. Accepts NULL. */
void wf_bundle_destroy(struct wf_bundle *b);

#endif
