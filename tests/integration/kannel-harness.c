/* Test harness: private Kannel with fakesmsc. See kannel-harness.h. */
#include "kannel-harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "broker.h" /* wf_test_mkdtemp, wf_test_rmtree, wf_test_time_factor */
#include "wf/clock.h"

#define BEARERBOX "/usr/sbin/bearerbox"
#define SMSBOX "/usr/sbin/smsbox"
#define FAKESMSC "/usr/lib/kannel/test/fakesmsc"
#define START_MS 10000
#define STOP_MS 10000

enum { P_BEARER = 0, P_FAKE, P_SMSBOX, P_MAX };

struct wf_test_kannel {
	char *dir, *conf;
	int admin_port, smsbox_port, smsc_port, sendsms_port;
	pid_t pid[P_MAX];
	char url[128];
	char user[64], pass[64], denied[64];
	int port_retries;
	struct wf_test_kannel_options o;
};

static void sleep_ms(int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Holds every probed port's socket open until all are picked, so the four
 * ports differ; the kernel may still hand one out later (rare). */
static int free_ports(int *out, int n)
{
	int fds[8], r = 0;
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = 0 };
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t len = sizeof(a);
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof(a)) < 0 ||
		    getsockname(fds[i], (struct sockaddr *)&a, &len) < 0) {
			r = -errno;
			n = i + 1;
			break;
		}
		out[i] = ntohs(a.sin_port);
	}
	for (int i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return r;
}

static bool port_accepts(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static int write_config(struct wf_test_kannel *k)
{
	FILE *f = fopen(k->conf, "we");
	if (!f)
		return -errno;
	/* no inline comments: Kannel makes them part of the value */
	fprintf(f, "group = core\n"
		   "admin-port = %d\n"
		   "admin-interface = 127.0.0.1\n"
		   "admin-password = adminpw\n"
		   "status-password = statpw\n"
		   "smsbox-port = %d\n"
		   "smsbox-interface = 127.0.0.1\n"
		   "dlr-storage = internal\n"
		   "log-file = \"%s/bearerbox.log\"\n"
		   "log-level = 1\n\n",
		k->admin_port, k->smsbox_port, k->dir);
	fprintf(f, "group = smsc\n"
		   "smsc = fake\n"
		   "smsc-id = fake1\n"
		   "port = %d\n"
		   "our-host = 127.0.0.1\n"
		   "connect-allow-ip = \"127.0.0.1\"\n",
		k->smsc_port);
	if (k->o.throughput > 0)
		fprintf(f, "throughput = %g\n", k->o.throughput);
	if (k->denied[0])
		fprintf(f, "denied-prefix = \"%s\"\n", k->denied);
	fprintf(f, "\ngroup = smsbox\n"
		   "bearerbox-host = 127.0.0.1\n"
		   "bearerbox-port = %d\n"
		   "sendsms-port = %d\n"
		   "sendsms-interface = 127.0.0.1\n"
		   "max-pending-requests = 1024\n"
		   "log-file = \"%s/smsbox.log\"\n"
		   "log-level = 1\n",
		k->smsbox_port, k->sendsms_port, k->dir);
	if (k->o.dlr_retry)
		/* 10 s for the restarted process to listen again: with 3 retries
		 * a slow restart (ASan, a loaded machine) lost DLRs once */
		fprintf(f, "http-request-retry = 10\nhttp-queue-delay = 1\n");
	fprintf(f, "\ngroup = sendsms-user\n"
		   "username = %s\n"
		   "password = %s\n"
		   "max-messages = %u\n"
		   "concatenation = true\n",
		k->user, k->pass, k->o.max_messages ? k->o.max_messages : 10);
	return fclose(f) < 0 ? -errno : 0;
}

/* New ports, new config (also when a port was taken at start). */
static int pick_ports(struct wf_test_kannel *k)
{
	int ports[4];
	int r = free_ports(ports, 4);
	if (r < 0)
		return r;
	k->admin_port = ports[0];
	k->smsbox_port = ports[1];
	k->smsc_port = ports[2];
	k->sendsms_port = ports[3];
	snprintf(k->url, sizeof(k->url), "http://127.0.0.1:%d/cgi-bin/sendsms", k->sendsms_port);
	return write_config(k);
}

int wf_test_kannel_create(const struct wf_test_kannel_options *o, struct wf_test_kannel **ret)
{
	if (access(BEARERBOX, X_OK) < 0 || access(SMSBOX, X_OK) < 0 || access(FAKESMSC, X_OK) < 0)
		return -ENOENT;
	struct wf_test_kannel *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	if (o)
		k->o = *o;
	snprintf(k->user, sizeof(k->user), "%s", k->o.username ? k->o.username : "tester");
	snprintf(k->pass, sizeof(k->pass), "%s", k->o.password ? k->o.password : "testpw");
	k->o.username = k->o.password = NULL;
	k->o.denied_prefix = NULL;
	k->dir = wf_test_mkdtemp("kannel");
	if (!k->dir || asprintf(&k->conf, "%s/kannel.conf", k->dir) < 0) {
		k->conf = NULL;
		wf_test_kannel_free(k);
		return -ENOMEM;
	}
	if (o && o->denied_prefix)
		snprintf(k->denied, sizeof(k->denied), "%s", o->denied_prefix);
	int r = pick_ports(k);
	if (r < 0) {
		wf_test_kannel_free(k);
		return r;
	}
	*ret = k;
	return 0;
}

static pid_t spawn(const char *logpath, char *const argv[])
{
	int logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (logfd < 0)
		return -errno;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = -errno;
		close(logfd);
		return e;
	}
	if (pid == 0) {
		/* own group (stopped as a group), but dies with the test process
		 * even when a failed test never reaches its cleanup */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);
		dup2(logfd, 1);
		dup2(logfd, 2);
		int nul = open("/dev/null", O_RDONLY);
		if (nul >= 0)
			dup2(nul, 0);
		close_range(3, ~0U, 0);
		execv(argv[0], argv);
		_exit(127);
	}
	setpgid(pid, pid);
	close(logfd);
	return pid;
}

static bool alive(pid_t *pid)
{
	if (*pid <= 0)
		return false;
	int st;
	pid_t p = waitpid(*pid, &st, WNOHANG);
	if (p == *pid) {
		*pid = 0;
		return false;
	}
	return true;
}

static void dump_logs(const struct wf_test_kannel *k)
{
	const char *names[] = { "bearerbox.out", "bearerbox.log", "smsbox.out", "fakesmsc.log" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", k->dir, names[i]);
		FILE *f = fopen(path, "re");
		if (!f)
			continue;
		fprintf(stderr, "--- %s (tail)\n", names[i]);
		fseek(f, 0, SEEK_END);
		long sz = ftell(f);
		fseek(f, sz > 4000 ? sz - 4000 : 0, SEEK_SET);
		char buf[4097];
		size_t n = fread(buf, 1, 4096, f);
		buf[n] = '\0';
		fputs(buf, stderr);
		fclose(f);
	}
}

struct membuf {
	char *p;
	size_t n;
};

static size_t mem_cb(char *p, size_t size, size_t n, void *ud)
{
	struct membuf *m = ud;
	size_t len = size * n;
	char *np = realloc(m->p, m->n + len + 1);
	if (!np)
		return 0;
	memcpy(np + m->n, p, len);
	m->p = np;
	m->n += len;
	m->p[m->n] = '\0';
	return len;
}

char *wf_test_kannel_status(const struct wf_test_kannel *k)
{
	char url[128];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/status.txt?password=statpw", k->admin_port);
	CURL *e = curl_easy_init();
	if (!e)
		return NULL;
	struct membuf m = { 0 };
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, mem_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &m);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	CURLcode rc = curl_easy_perform(e);
	curl_easy_cleanup(e);
	if (rc != CURLE_OK) {
		free(m.p);
		return NULL;
	}
	return m.p;
}

static bool log_has(const struct wf_test_kannel *k, const char *name, const char *what)
{
	char path[512], buf[8193];
	snprintf(path, sizeof(path), "%s/%s", k->dir, name);
	FILE *f = fopen(path, "re");
	if (!f)
		return false;
	bool found = false;
	size_t n;
	while (!found && (n = fread(buf, 1, sizeof(buf) - 1, f)) > 0) {
		buf[n] = '\0';
		found = strstr(buf, what) != NULL;
	}
	fclose(f);
	return found;
}

int wf_test_kannel_start(struct wf_test_kannel *k)
{
	char log[512], port[16];
	int64_t end = wf_clock_mono_ms() + (int64_t)START_MS * wf_test_time_factor();
	if (!alive(&k->pid[P_BEARER])) {
		snprintf(log, sizeof(log), "%s/bearerbox.out", k->dir);
		char *argv[] = { (char *)BEARERBOX, (char *)"-v", (char *)"1", k->conf, NULL };
		k->pid[P_BEARER] = spawn(log, argv);
		if (k->pid[P_BEARER] < 0)
			return k->pid[P_BEARER];
		/* our own bearerbox must be alive while its admin port answers */
		for (;;) {
			if (!alive(&k->pid[P_BEARER])) {
				if (log_has(k, "bearerbox.out", "in use") && !k->pid[P_FAKE] &&
				    !k->pid[P_SMSBOX] && k->port_retries++ < 5) {
					/* a port was taken between probing and binding */
					int r = pick_ports(k);
					if (r < 0)
						return r;
					return wf_test_kannel_start(k);
				}
				fprintf(stderr, "bearerbox exited\n");
				dump_logs(k);
				return -ECHILD;
			}
			if (port_accepts(k->admin_port) && port_accepts(k->smsbox_port) &&
			    port_accepts(k->smsc_port))
				break;
			if (wf_clock_mono_ms() > end)
				goto timeout;
			sleep_ms(5);
		}
	}
	if (!alive(&k->pid[P_FAKE])) {
		snprintf(log, sizeof(log), "%s/fakesmsc.log", k->dir);
		snprintf(port, sizeof(port), "%d", k->smsc_port);
		char *argv[] = { (char *)FAKESMSC, (char *)"-H", (char *)"127.0.0.1", (char *)"-r", port,
				 (char *)"-m", (char *)"0", (char *)"1 2 text nop", NULL };
		k->pid[P_FAKE] = spawn(log, argv);
		if (k->pid[P_FAKE] < 0)
			return k->pid[P_FAKE];
	}
	if (!alive(&k->pid[P_SMSBOX])) {
		snprintf(log, sizeof(log), "%s/smsbox.out", k->dir);
		char *argv[] = { (char *)SMSBOX, (char *)"-v", (char *)"1", k->conf, NULL };
		k->pid[P_SMSBOX] = spawn(log, argv);
		if (k->pid[P_SMSBOX] < 0)
			return k->pid[P_SMSBOX];
	}
	for (;;) {
		for (int i = 0; i < P_MAX; i++)
			if (!alive(&k->pid[i])) {
				fprintf(stderr, "a Kannel process (%d) exited during start\n", i);
				dump_logs(k);
				return -ECHILD;
			}
		char *st = wf_test_kannel_status(k);
		/* "Box connections:" lists "smsbox:(none), IP 127.0.0.1 (0 queued), ..."
		 * and the SMSC line shows "(online Ns, ...)" once fakesmsc is attached */
		bool ready = st && strstr(st, "smsbox:") && strstr(st, "(online");
		free(st);
		if (ready && port_accepts(k->sendsms_port))
			return 0;
		if (wf_clock_mono_ms() > end)
			goto timeout;
		sleep_ms(10);
	}
timeout:
	fprintf(stderr, "Kannel did not become ready in time\n");
	dump_logs(k);
	return -ETIMEDOUT;
}

static void stop_one(pid_t *pid, int sig)
{
	if (*pid <= 0)
		return;
	kill(-*pid, sig);
	int64_t end = wf_clock_mono_ms() + STOP_MS;
	while (alive(pid)) {
		if (wf_clock_mono_ms() > end) {
			kill(-*pid, SIGKILL);
			waitpid(*pid, NULL, 0);
			*pid = 0;
			break;
		}
		sleep_ms(5);
	}
}

int wf_test_kannel_stop_smsbox(struct wf_test_kannel *k)
{
	pid_t g = k->pid[P_SMSBOX];
	stop_one(&k->pid[P_SMSBOX], SIGTERM);
	if (g > 0)
		kill(-g, SIGKILL); /* a re-launched copy in the same group */
	return 0;
}

int wf_test_kannel_stop_fakesmsc(struct wf_test_kannel *k)
{
	stop_one(&k->pid[P_FAKE], SIGTERM);
	int64_t end = wf_clock_mono_ms() + (int64_t)START_MS * wf_test_time_factor();
	for (;;) {
		char *st = wf_test_kannel_status(k);
		bool online = st && strstr(st, "(online");
		free(st);
		if (!online)
			return 0;
		if (wf_clock_mono_ms() > end)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
}

int wf_test_kannel_stop(struct wf_test_kannel *k)
{
	pid_t groups[P_MAX];
	for (int i = 0; i < P_MAX; i++)
		groups[i] = k->pid[i];
	stop_one(&k->pid[P_SMSBOX], SIGTERM);
	stop_one(&k->pid[P_BEARER], SIGTERM);
	stop_one(&k->pid[P_FAKE], SIGTERM);
	for (int i = 0; i < P_MAX; i++)
		if (groups[i] > 0)
			kill(-groups[i], SIGKILL);
	return 0;
}

struct wf_test_kannel *wf_test_kannel_free(struct wf_test_kannel *k)
{
	if (!k)
		return NULL;
	wf_test_kannel_stop(k);
	if (k->dir && !getenv("WF_KEEP_KANNEL"))
		wf_test_rmtree(k->dir);
	free(k->dir);
	free(k->conf);
	free(k);
	return NULL;
}

const char *wf_test_kannel_sendsms_url(const struct wf_test_kannel *k) { return k->url; }
const char *wf_test_kannel_username(const struct wf_test_kannel *k) { return k->user; }
const char *wf_test_kannel_password(const struct wf_test_kannel *k) { return k->pass; }
const char *wf_test_kannel_dir(const struct wf_test_kannel *k) { return k->dir; }
int wf_test_kannel_admin_port(const struct wf_test_kannel *k) { return k->admin_port; }

/* ---------- fakesmsc output ---------- */

static char *read_all(const struct wf_test_kannel *k, size_t *ret_len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/fakesmsc.log", k->dir);
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	struct membuf m = { 0 };
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (mem_cb(buf, 1, n, &m) != n) {
			free(m.p);
			fclose(f);
			return NULL;
		}
	fclose(f);
	if (!m.p)
		m.p = calloc(1, 1);
	*ret_len = m.n;
	return m.p;
}

long wf_test_kannel_received_count(const struct wf_test_kannel *k)
{
	size_t len;
	char *all = read_all(k, &len);
	if (!all)
		return -ENOENT;
	long n = 0;
	for (char *p = all; (p = strstr(p, "Got message ")); p++)
		n++;
	free(all);
	return n;
}

static int hexv(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Kannel's URL encoding: '+' is a space, %XX a byte, the rest literal. */
static size_t url_decode(const char *s, size_t n, unsigned char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+')
			out[o++] = ' ';
		else if (s[i] == '%' && i + 2 < n && hexv(s[i + 1]) >= 0 && hexv(s[i + 2]) >= 0) {
			out[o++] = (unsigned char)(hexv(s[i + 1]) * 16 + hexv(s[i + 2]));
			i += 2;
		} else
			out[o++] = (unsigned char)s[i];
	}
	return o;
}

long wf_test_kannel_received(const struct wf_test_kannel *k, struct wf_test_sms **ret)
{
	size_t len;
	char *all = read_all(k, &len);
	if (!all)
		return -ENOENT;
	struct wf_test_sms *v = NULL;
	size_t n = 0, cap = 0;
	for (char *line = all, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		char *p = strstr(line, "Got message ");
		if (!p)
			continue;
		p = strchr(p, '<');
		char *q = p ? strrchr(p, '>') : NULL;
		if (!p || !q)
			continue;
		*q = '\0';
		p++;
		char from[32], to[32], type[16];
		int off = 0;
		if (sscanf(p, "%31s %31s %15s %n", from, to, type, &off) < 3)
			continue;
		char *rest = p + off;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			void *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				wf_test_sms_free(v, n);
				free(all);
				return -ENOMEM;
			}
			v = nv;
		}
		struct wf_test_sms *m = &v[n];
		memset(m, 0, sizeof(*m));
		snprintf(m->from, sizeof(m->from), "%s", from);
		snprintf(m->to, sizeof(m->to), "%s", to);
		if (strcmp(type, "udh") == 0) {
			char *sp = strchr(rest, ' ');
			if (!sp || strncmp(sp, " data ", 6) != 0)
				continue;
			unsigned char tmp[64];
			size_t ul = (size_t)(sp - rest);
			if (ul > sizeof(tmp))
				continue;
			m->udh_len = url_decode(rest, ul, tmp);
			if (m->udh_len > sizeof(m->udh))
				continue;
			memcpy(m->udh, tmp, m->udh_len);
			m->has_udh = true;
			m->ucs2 = true;
			rest = sp + 6;
		} else {
			m->ucs2 = strcmp(type, "ucs-2") == 0;
		}
		size_t rl = strlen(rest);
		m->data = malloc(rl + 1);
		if (!m->data)
			continue;
		m->len = url_decode(rest, rl, m->data);
		n++;
	}
	free(all);
	*ret = v;
	return (long)n;
}

void wf_test_sms_free(struct wf_test_sms *v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i].data);
	free(v);
}
