/* fuzz-sms-subs: the SMS subscriber file parser (wf_sms_subs_load,
 * sms-util.h) on arbitrary bytes. It reads a path, so each input is
 * written to a memfd (no disk) and loaded as /proc/self/fd/N. An accepted
 * file is queried for a few regions; the ranges must lie in the table and
 * hold only subscribers of that region. */
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "sms-util.h"
#include "wf/region.h"

static int fd = -1;
static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fd = memfd_create("fuzz-sms-subs", MFD_CLOEXEC);
	if (fd < 0)
		fuzz_die("memfd_create failed");
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const q[] = { "410185103000", "410185000000", "410000000000",
					 "000000000000" };
	struct wf_sms_subs *s = NULL;
	char err[512];

	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		fuzz_die("memfd write failed");
	if (wf_sms_subs_load(path, &s, err, sizeof err) != 0)
		return 0;
	size_t total = wf_sms_subs_count(s);
	for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
		const struct wf_sms_subscriber *first = NULL;
		size_t n = wf_sms_subs_in_region(s, q[i], &first);
		if (n > total)
			fuzz_die("in_region: %zu of %zu", n, total);
		for (size_t k = 0; k < n; k++)
			if (strlen(first[k].region) != 12 ||
			    (strcmp(q[i], "000000000000") != 0 && !wf_region_contains(q[i], first[k].region)))
				fuzz_die("in_region(%s) returned %s", q[i], first[k].region);
	}
	wf_sms_subs_free(s);
	return 0;
}
