/* proc: child processes for integration tests (see proc.h). */
#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "wf/clock.h"

extern char **environ;

static char **merge_env(char *const extra[])
{
	size_t n = 0, m = 0;
	char **out;

	while (environ[n] != NULL)
		n++;
	while (extra != NULL && extra[m] != NULL)
		m++;
	out = calloc(n + m + 1, sizeof *out);
	if (out == NULL)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		bool overridden = false;
		for (size_t j = 0; j < m; j++) {
			const char *eq = strchr(extra[j], '=');
			size_t l = eq ? (size_t)(eq - extra[j]) : strlen(extra[j]);
			if (strncmp(environ[i], extra[j], l) == 0 && environ[i][l] == '=')
				overridden = true;
		}
		if (!overridden)
			out[k++] = environ[i];
	}
	for (size_t j = 0; j < m; j++)
		out[k++] = extra[j];
	out[k] = NULL;
	return out;
}

static pid_t spawn_fd(char *const argv[], char *const env[], int out_fd, const char *log_path)
{
	posix_spawn_file_actions_t fa;
	char **envp = merge_env(env);
	pid_t pid;
	int r;

	if (envp == NULL)
		return -ENOMEM;
	posix_spawn_file_actions_init(&fa);
	if (out_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	if (log_path != NULL) {
		posix_spawn_file_actions_addopen(&fa, 2, log_path, O_WRONLY | O_CREAT | O_APPEND,
						 0644);
		if (out_fd < 0)
			posix_spawn_file_actions_adddup2(&fa, 2, 1);
	}
	r = posix_spawn(&pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	return r != 0 ? -r : pid;
}

pid_t wf_test_spawn(char *const argv[], char *const env[], const char *log_path)
{
	return spawn_fd(argv, env, -1, log_path);
}

int wf_test_wait(pid_t pid, int timeout_ms)
{
	int64_t deadline = wf_clock_mono_ms() + (int64_t)timeout_ms * wf_test_time_factor();
	int st;

	for (;;) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (r < 0)
			return -errno;
		if (wf_clock_mono_ms() >= deadline)
			return -ETIMEDOUT;
		struct timespec ts = { 0, 5 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}

int wf_test_stop(pid_t pid, int sig, int timeout_ms)
{
	int r;

	if (kill(pid, sig) < 0)
		return -errno;
	r = wf_test_wait(pid, timeout_ms);
	if (r == -ETIMEDOUT) {
		kill(pid, SIGKILL);
		r = wf_test_wait(pid, 10000);
	}
	return r;
}

int wf_test_capture(char *const argv[], char *const env[], const char *log_path,
		    char **ret_out, int timeout_ms)
{
	char path[] = "/tmp/wf-test-out-XXXXXX";
	int fd = mkstemp(path), r;
	pid_t pid;

	*ret_out = NULL;
	if (fd < 0)
		return -errno;
	unlink(path);
	pid = spawn_fd(argv, env, fd, log_path);
	if (pid < 0) {
		close(fd);
		return pid;
	}
	r = wf_test_wait(pid, timeout_ms);
	if (r == -ETIMEDOUT) {
		kill(pid, SIGKILL);
		(void)wf_test_wait(pid, 10000);
	}
	off_t len = lseek(fd, 0, SEEK_END);
	char *buf = malloc(len > 0 ? (size_t)len + 1 : 1);
	if (buf != NULL) {
		ssize_t got = len > 0 ? pread(fd, buf, (size_t)len, 0) : 0;
		buf[got > 0 ? got : 0] = '\0';
	}
	close(fd);
	*ret_out = buf;
	return r;
}

static char *join(const char *env, const char *fallback, const char *rel)
{
	const char *root = getenv(env);
	char *out;

	if (root == NULL || *root == '\0')
		root = fallback;
	if (asprintf(&out, "%s/%s", root, rel) < 0)
		return NULL;
	return out;
}

char *wf_test_build_path(const char *rel)
{
	return join("WF_BUILD_ROOT", ".", rel);
}

char *wf_test_source_path(const char *rel)
{
	return join("WF_SOURCE_ROOT", "..", rel);
}

double wf_test_proc_cpu_s(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')'); /* past the command name */
	unsigned long long ut = 0, st = 0;
	/* fields 3..: state ppid pgrp session tty tpgid flags minflt cminflt
	 * majflt cmajflt utime stime */
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
			 &st) != 2)
		return -1;
	long hz = sysconf(_SC_CLK_TCK);
	return hz > 0 ? (double)(ut + st) / (double)hz : -1;
}
