/* agency-test: helpers shared by test-water.c, test-geo.c, test-fire.c and
 * test-police.c (header-only; each test includes it once). They call an
 * adapter's ops->parse directly with a collecting sink. */
#ifndef WF_AGENCY_TEST_H
#define WF_AGENCY_TEST_H

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "wf/clock.h"
#include "wf/region.h"

static struct wf_region_table *regions;
static struct wf_adapter_sink *sink;
/* 2026-07-20T12:00:00+08:00 */
static const int64_t NOW = 1784520000000LL;

static void at_setup(void)
{
	ck_assert_int_eq(wf_region_table_load(getenv("WF_REGIONS"), &regions, NULL), 0);
	sink = wf_adapter_sink_new();
	ck_assert_ptr_nonnull(sink);
}

static void at_teardown(void)
{
	sink = wf_adapter_sink_free(sink);
	regions = wf_region_table_free(regions);
}

/* Reads tests/fixtures/REL into a malloc'd buffer. */
__attribute__((unused)) static char *at_fixture(const char *rel, size_t *ret_len)
{
	char path[1024];
	FILE *f;
	long n;
	char *buf;

	snprintf(path, sizeof path, "%s/tests/fixtures/%s", getenv("WF_SOURCE_ROOT"), rel);
	f = fopen(path, "rb");
	ck_assert_msg(f != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*ret_len = (size_t)n;
	return buf;
}

/* The first event of the last parse with CRITERION (NULL: any), or NULL. */
static const Wf__V1__Event *at_find(const char *criterion)
{
	for (size_t i = 0; i < wf_adapter_sink_count(sink); i++) {
		const Wf__V1__Event *e = wf_adapter_sink_event(sink, i);
		if (!criterion || (e->measurement && strcmp(e->measurement->criterion, criterion) == 0))
			return e;
	}
	return NULL;
}

/* As at_find, failing the test when there is none. */
__attribute__((unused)) static const Wf__V1__Event *at_get(const char *criterion)
{
	const Wf__V1__Event *e = at_find(criterion);
	if (!e)
		ck_abort_msg("no event with criterion %s", criterion ? criterion : "(any)");
	return e;
}

/* The level of the event with CRITERION, -1 if there is none. */
__attribute__((unused)) static int at_level(const char *criterion)
{
	const Wf__V1__Event *e = at_find(criterion);
	return e ? (int)e->level : -1;
}

__attribute__((unused)) static int64_t at_time(const char *rfc3339)
{
	int64_t ms = 0;
	ck_assert_int_eq(wf_clock_parse(rfc3339, &ms), 0);
	return ms;
}

/* Sanity every emitted event must satisfy (protocol.md). */
__attribute__((unused)) static void at_check_events(Wf__V1__Agency agency)
{
	for (size_t i = 0; i < wf_adapter_sink_count(sink); i++) {
		const Wf__V1__Event *e = wf_adapter_sink_event(sink, i);
		ck_assert_int_eq(e->agency, agency);
		ck_assert_uint_eq(strlen(e->region), 12);
		ck_assert_ptr_nonnull(wf_region_find(regions, e->region));
		ck_assert_int_gt(strlen(e->id), 0);
		ck_assert_int_le(strlen(e->id), 128);
		ck_assert_int_gt(e->expires_ms, e->observed_ms);
		ck_assert_int_ne(e->status, 0);
		ck_assert_int_ne(e->msg_type, 0);
		if (e->msg_type == WF__V1__MSG_TYPE__MSG_TYPE_ALERT)
			ck_assert_uint_eq(e->n_references, 0);
		else
			ck_assert_uint_ge(e->n_references, 1);
	}
}

#endif
