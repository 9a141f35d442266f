/* bundle: several messages in one MQTT publish (see wf/bundle.h). */
#include "wf/bundle.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t magic[WF_BUNDLE_MAGIC_LEN] = { 0x00, 0x01 };

bool wf_bundle_is(const void *payload, size_t len)
{
	return payload != NULL && len >= WF_BUNDLE_MAGIC_LEN &&
	       memcmp(payload, magic, WF_BUNDLE_MAGIC_LEN) == 0;
}

/* Levels of TOPIC (none empty), or -1. LAST gets the start of the last one. */
static int levels(const char *topic, const char **last)
{
	int n = 1;
	const char *p = topic;

	*last = topic;
	if (*p == '\0')
		return -1;
	for (; *p; p++) {
		if (*p != '/')
			continue;
		if (p == topic || p[1] == '\0' || p[1] == '/')
			return -1;
		n++;
		*last = p + 1;
	}
	return n;
}

static int put(char *buf, size_t size, const char *s, size_t len)
{
	if (len >= size)
		return -ENAMETOOLONG;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return 0;
}

int wf_bundle_topic(const char *topic, char *buf, size_t size)
{
	const char *last;
	int n;

	if (topic == NULL || buf == NULL || size == 0)
		return -ENOENT;
	size_t len = strnlen(topic, WF_BUNDLE_MAX_TOPIC + 1);
	if (len > WF_BUNDLE_MAX_TOPIC || (n = levels(topic, &last)) < 0)
		return -ENOENT;
	if (strncmp(topic, "wf/v1/event/", 12) == 0 && n == 7)
		return put(buf, size, topic, len);
	if (strncmp(topic, "wf/v1/warning/", 14) == 0 && n == 7)
		return put(buf, size, topic, (size_t)(last - 1 - topic));
	if (strncmp(topic, "wf/v1/duty/", 11) == 0 && n == 5 && strcmp(last, "inbox") == 0)
		return put(buf, size, topic, len);
	return -ENOENT;
}

__attribute__((format(printf, 3, 4)))
static int fail(char *why, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && size > 0) {
		va_start(ap, fmt);
		vsnprintf(why, size, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

int wf_bundle_unpack(const char *topic, const void *payload, size_t len,
		     Wf__V1__Bundle **ret, char *why, size_t why_size)
{
	char bt[WF_BUNDLE_MAX_TOPIC + 1];
	Wf__V1__Bundle *b;

	if (ret == NULL)
		return -EINVAL;
	*ret = NULL;
	if (why != NULL && why_size > 0)
		why[0] = '\0';
	if (topic == NULL || !wf_bundle_is(payload, len))
		return fail(why, why_size, "not a bundle (no 0x00 0x01 mark)");
	if (len > WF_BUNDLE_MAX_BYTES)
		return fail(why, why_size, "bundle larger than %u bytes", WF_BUNDLE_MAX_BYTES);
	b = wf__v1__bundle__unpack(NULL, len - WF_BUNDLE_MAGIC_LEN,
				   (const uint8_t *)payload + WF_BUNDLE_MAGIC_LEN);
	if (b == NULL)
		return fail(why, why_size, "bundle does not decode as wf.v1.Bundle");
	if (b->n_entries == 0 || b->n_entries > WF_BUNDLE_MAX_ENTRIES) {
		size_t n = b->n_entries;
		wf_bundle_free(b);
		return fail(why, why_size, "bundle of %zu entries (1 to 1024 allowed)", n);
	}
	for (size_t i = 0; i < b->n_entries; i++) {
		const Wf__V1__BundleEntry *e = b->entries[i];
		const char *t = e->topic;
		size_t tl = t ? strnlen(t, WF_BUNDLE_MAX_TOPIC + 1) : 0;
		int bad = 0;

		/* (protobuf-c NUL-terminates strings: what is checked here is
		 * exactly the C string handed on) */
		if (tl == 0 || tl > WF_BUNDLE_MAX_TOPIC || strpbrk(t, "+#") != NULL)
			bad = fail(why, why_size, "bundle entry %zu: bad topic", i);
		else if (wf_bundle_topic(t, bt, sizeof bt) < 0 || strcmp(bt, topic) != 0)
			bad = fail(why, why_size,
				   "bundle entry %zu: topic is not one of the bundle topic's entries", i);
		else if (wf_bundle_is(e->payload.data, e->payload.len))
			bad = fail(why, why_size, "bundle entry %zu: a bundle inside a bundle", i);
		if (bad) {
			wf_bundle_free(b);
			return bad;
		}
	}
	*ret = b;
	return 0;
}

void wf_bundle_free(Wf__V1__Bundle *b)
{
	if (b != NULL)
		wf__v1__bundle__free_unpacked(b, NULL);
}

int wf_bundle_init(struct wf_bundle *b, size_t max_entries, size_t max_bytes)
{
	if (b == NULL || max_entries < 2 || max_entries > WF_BUNDLE_MAX_ENTRIES ||
	    max_bytes < 1024 || max_bytes > WF_BUNDLE_MAX_BYTES)
		return -EINVAL;
	memset(b, 0, sizeof *b);
	b->max_entries = max_entries;
	b->max_bytes = max_bytes;
	return 0;
}

/* a packed BundleEntry inside the Bundle, from above: tags and lengths */
static size_t entry_bytes(size_t topic_len, size_t len)
{
	return topic_len + len + 3 * (1 + 10);
}

int wf_bundle_add(struct wf_bundle *b, const char *bundle_topic, const char *topic,
		  const void *payload, size_t len)
{
	if (b == NULL || bundle_topic == NULL || topic == NULL || (len > 0 && payload == NULL))
		return -EINVAL;
	size_t btl = strlen(bundle_topic), tl = strlen(topic), eb = entry_bytes(tl, len);
	if (btl == 0 || btl > WF_BUNDLE_MAX_TOPIC || tl == 0 || tl > WF_BUNDLE_MAX_TOPIC)
		return -EINVAL;
	if (b->n > 0 && strcmp(b->topic, bundle_topic) != 0)
		return -EXDEV;
	if (b->n > 0 && (b->n >= b->max_entries || b->bytes + eb > b->max_bytes))
		return -ENOSPC;
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		char **t = realloc(b->topics, cap * sizeof *t);
		if (t == NULL)
			return -ENOMEM;
		b->topics = t;
		uint8_t **p = realloc(b->payloads, cap * sizeof *p);
		if (p == NULL)
			return -ENOMEM;
		b->payloads = p;
		size_t *l = realloc(b->lens, cap * sizeof *l);
		if (l == NULL)
			return -ENOMEM;
		b->lens = l;
		b->cap = cap;
	}
	char *tc = malloc(tl + 1);
	uint8_t *pc = malloc(len > 0 ? len : 1);
	if (tc == NULL || pc == NULL) {
		free(tc);
		free(pc);
		return -ENOMEM;
	}
	memcpy(tc, topic, tl + 1);
	if (len > 0)
		memcpy(pc, payload, len);
	if (b->n == 0)
		memcpy(b->topic, bundle_topic, btl + 1);
	b->topics[b->n] = tc;
	b->payloads[b->n] = pc;
	b->lens[b->n] = len;
	b->n++;
	b->bytes += eb;
	return 0;
}

size_t wf_bundle_count(const struct wf_bundle *b)
{
	return b != NULL ? b->n : 0;
}

int wf_bundle_pack(const struct wf_bundle *b, const char **topic, uint8_t **payload,
		   size_t *len)
{
	if (b == NULL || topic == NULL || payload == NULL || len == NULL)
		return -EINVAL;
	*payload = NULL;
	*len = 0;
	if (b->n == 0)
		return -ENOENT;
	if (b->n == 1) {
		uint8_t *p = malloc(b->lens[0] > 0 ? b->lens[0] : 1);
		if (p == NULL)
			return -ENOMEM;
		memcpy(p, b->payloads[0], b->lens[0]);
		*topic = b->topics[0];
		*payload = p;
		*len = b->lens[0];
		return 0;
	}
	Wf__V1__BundleEntry *ev = calloc(b->n, sizeof *ev);
	Wf__V1__BundleEntry **ep = calloc(b->n, sizeof *ep);
	if (ev == NULL || ep == NULL) {
		free(ev);
		free(ep);
		return -ENOMEM;
	}
	for (size_t i = 0; i < b->n; i++) {
		wf__v1__bundle_entry__init(&ev[i]);
		ev[i].topic = b->topics[i];
		ev[i].payload.data = b->payloads[i];
		ev[i].payload.len = b->lens[i];
		ep[i] = &ev[i];
	}
	Wf__V1__Bundle m = WF__V1__BUNDLE__INIT;
	m.n_entries = b->n;
	m.entries = ep;
	size_t sz = wf__v1__bundle__get_packed_size(&m);
	uint8_t *p = malloc(WF_BUNDLE_MAGIC_LEN + sz);
	if (p != NULL) {
		memcpy(p, magic, WF_BUNDLE_MAGIC_LEN);
		(void)wf__v1__bundle__pack(&m, p + WF_BUNDLE_MAGIC_LEN);
	}
	free(ev);
	free(ep);
	if (p == NULL)
		return -ENOMEM;
	*topic = b->topic;
	*payload = p;
	*len = WF_BUNDLE_MAGIC_LEN + sz;
	return 0;
}

void wf_bundle_clear(struct wf_bundle *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++) {
		free(b->topics[i]);
		free(b->payloads[i]);
	}
	b->n = 0;
	b->bytes = 0;
	b->topic[0] = '\0';
}

void wf_bundle_destroy(struct wf_bundle *b)
{
	if (b == NULL)
		return;
	wf_bundle_clear(b);
	free(b->topics);
	free(b->payloads);
	free(b->lens);
	b->topics = NULL;
	b->payloads = NULL;
	b->lens = NULL;
	b->cap = 0;
}
