/* util: see util.h. */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

double wf_test_mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

_Noreturn void wf_test_die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
	exit(1);
}

char *wf_test_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		wf_test_die("asprintf");
	return s;
}

void wf_test_spit(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");
	if (!f || fwrite(data, 1, len, f) != len) {
		if (f)
			fclose(f);
		wf_test_die(path);
	}
	if (fclose(f) != 0)
		wf_test_die(path);
}

void wf_test_spit_text(const char *path, const char *text)
{
	wf_test_spit(path, text, strlen(text));
}

long wf_test_dir_count(const char *path, const char *suffix)
{
	DIR *d = opendir(path);
	if (!d)
		return -1;
	long n = 0;
	size_t sl = strlen(suffix);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		size_t l = strlen(e->d_name);
		n += e->d_name[0] != '.' && l >= sl && strcmp(e->d_name + l - sl, suffix) == 0;
	}
	closedir(d);
	return n;
}
