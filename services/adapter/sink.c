/* sink: the collecting sink of adapter.h and the Event builder helpers. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "adapter-int.h"

struct wf_adapter_sink {
	Wf__V1__Event **events;
	size_t n;
	size_t cap;
	char reason[WF_ADAPTER_REASON_MAX];
};

struct wf_adapter_sink *wf_adapter_sink_new(void)
{
	return calloc(1, sizeof(struct wf_adapter_sink));
}

static void sink_clear(struct wf_adapter_sink *sink)
{
	for (size_t i = 0; i < sink->n; i++)
		protobuf_c_message_free_unpacked(&sink->events[i]->base, NULL);
	sink->n = 0;
	sink->reason[0] = '\0';
}

struct wf_adapter_sink *wf_adapter_sink_free(struct wf_adapter_sink *sink)
{
	if (!sink)
		return NULL;
	sink_clear(sink);
	free(sink->events);
	free(sink);
	return NULL;
}

void wf_adapter_sink_reset(struct wf_adapter_sink *sink)
{
	if (sink)
		sink_clear(sink);
}

size_t wf_adapter_sink_count(const struct wf_adapter_sink *sink)
{
	return sink ? sink->n : 0;
}

const Wf__V1__Event *wf_adapter_sink_event(const struct wf_adapter_sink *sink, size_t i)
{
	if (!sink || i >= sink->n)
		return NULL;
	return sink->events[i];
}

const char *wf_adapter_sink_reason_text(const struct wf_adapter_sink *sink)
{
	return sink ? sink->reason : "";
}

int wf_adapter_sink_emit(struct wf_adapter_sink *sink, Wf__V1__Event *ev)
{
	if (!ev)
		return -EINVAL;
	if (!sink) {
		protobuf_c_message_free_unpacked(&ev->base, NULL);
		return -EINVAL;
	}
	if (sink->n >= WF_ADAPTER_MAX_EVENTS_PER_FILE) {
		protobuf_c_message_free_unpacked(&ev->base, NULL);
		return -ENOSPC;
	}
	if (sink->n == sink->cap) {
		size_t ncap = sink->cap ? sink->cap * 2 : 16;
		Wf__V1__Event **p = realloc(sink->events, ncap * sizeof(*p));
		if (!p) {
			protobuf_c_message_free_unpacked(&ev->base, NULL);
			return -ENOMEM;
		}
		sink->events = p;
		sink->cap = ncap;
	}
	sink->events[sink->n++] = ev;
	return 0;
}

void wf_adapter_reason(struct wf_adapter_sink *sink, const char *fmt, ...)
{
	va_list ap;

	if (!sink || !fmt)
		return;
	va_start(ap, fmt);
	vsnprintf(sink->reason, sizeof(sink->reason), fmt, ap);
	va_end(ap);
	/* one line: newlines and other control characters become spaces */
	for (char *p = sink->reason; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
}

Wf__V1__Event *wf_adapter_event_new(void)
{
	Wf__V1__Event *ev = malloc(sizeof(*ev));

	if (!ev)
		return NULL;
	wf__v1__event__init(ev);
	/* protobuf-c's init points empty strings at a shared static "";
	 * free_unpacked skips those, so they are safe. */
	return ev;
}

int wf_adapter_set_str(char **field, const char *s)
{
	char *copy;

	if (!field)
		return -EINVAL;
	if (s) {
		copy = strdup(s);
		if (!copy)
			return -ENOMEM;
	} else {
		copy = (char *)protobuf_c_empty_string;
	}
	if (*field && *field != protobuf_c_empty_string)
		free(*field);
	*field = copy;
	return 0;
}

int wf_adapter_set_measurement(Wf__V1__Event *ev, double value, double threshold,
			       const char *unit, const char *criterion)
{
	Wf__V1__Measurement *m;

	if (!ev)
		return -EINVAL;
	m = ev->measurement;
	if (!m) {
		m = malloc(sizeof(*m));
		if (!m)
			return -ENOMEM;
		wf__v1__measurement__init(m);
		ev->measurement = m;
	}
	m->value = value;
	m->threshold = threshold;
	if (wf_adapter_set_str(&m->unit, unit) < 0 ||
	    wf_adapter_set_str(&m->criterion, criterion) < 0)
		return -ENOMEM;
	return 0;
}

int wf_adapter_set_point(Wf__V1__Event *ev, double lat, double lon)
{
	Wf__V1__Point *p;

	if (!ev)
		return -EINVAL;
	p = ev->point;
	if (!p) {
		p = malloc(sizeof(*p));
		if (!p)
			return -ENOMEM;
		wf__v1__point__init(p);
		ev->point = p;
	}
	p->lat = lat;
	p->lon = lon;
	return 0;
}

int wf_adapter_add_reference(Wf__V1__Event *ev, const char *id)
{
	char **refs;
	char *copy;

	if (!ev || !id)
		return -EINVAL;
	copy = strdup(id);
	if (!copy)
		return -ENOMEM;
	refs = realloc(ev->references, (ev->n_references + 1) * sizeof(*refs));
	if (!refs) {
		free(copy);
		return -ENOMEM;
	}
	ev->references = refs;
	ev->references[ev->n_references++] = copy;
	return 0;
}

Wf__V1__Event *adapter_sink_event_mut(struct wf_adapter_sink *sink, size_t i)
{
	if (!sink || i >= sink->n)
		return NULL;
	return sink->events[i];
}
