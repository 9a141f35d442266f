/* daemon: see wf/daemon.h and docs/service-runtime.md */
#include "wf/daemon.h"

#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

struct wf_daemon {
	struct ev_loop *loop;
	struct wf_daemon_callbacks cb;
	void *ud;
	ev_signal sig_term, sig_int, sig_hup;
	ev_timer watchdog;
	uint64_t watchdog_usec;
	struct sigaction old_pipe;
	bool pipe_saved;
};

static int notify(const char *state)
{
	int r = sd_notify(0, state);
	return r < 0 ? r : 0;
}

/* Copies TEXT into BUF, replacing control characters by spaces. */
static void sanitize(char *buf, size_t size, const char *text)
{
	size_t i;
	for (i = 0; i + 1 < size && text[i]; i++) {
		unsigned char c = (unsigned char)text[i];
		buf[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	buf[i] = '\0';
}

int wf_daemon_notify(struct wf_daemon *d, const char *state)
{
	if (!state)
		return -EINVAL;
	return notify(state);
}

static int send_status(const char *prefix, const char *status)
{
	char clean[WF_DAEMON_STATUS_MAX + 1];
	char buf[WF_DAEMON_STATUS_MAX + 64];
	if (!status)
		return notify(prefix);
	sanitize(clean, sizeof clean, status);
	snprintf(buf, sizeof buf, "%s%sSTATUS=%s", prefix, *prefix ? "\n" : "", clean);
	return notify(buf);
}

int wf_daemon_ready(struct wf_daemon *d, const char *status)
{
	return send_status("READY=1", status);
}

int wf_daemon_status(struct wf_daemon *d, const char *fmt, ...)
{
	char text[WF_DAEMON_STATUS_MAX + 1];
	va_list ap;
	if (!fmt)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	return send_status("", text);
}

int wf_daemon_reloading(struct wf_daemon *d)
{
	struct timespec ts;
	char buf[96];
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(buf, sizeof buf, "RELOADING=1\nMONOTONIC_USEC=%llu",
		 (unsigned long long)ts.tv_sec * 1000000ULL + (unsigned long long)ts.tv_nsec / 1000);
	return notify(buf);
}

int wf_daemon_stopping(struct wf_daemon *d)
{
	return notify("STOPPING=1");
}

int wf_daemon_reload(struct wf_daemon *d)
{
	char msg[WF_DAEMON_STATUS_MAX / 2];
	char status[WF_DAEMON_STATUS_MAX + 1];
	int r;

	if (!d)
		return -EINVAL;
	(void)wf_daemon_reloading(d);
	msg[0] = '\0';
	if (d->cb.reload)
		r = d->cb.reload(d, d->ud, msg, sizeof msg);
	else
		r = -EOPNOTSUPP;
	msg[sizeof msg - 1] = '\0';
	if (r >= 0) {
		r = 0;
		snprintf(status, sizeof status, "%s", msg[0] ? msg : "Configuration reloaded");
	} else if (r == -EOPNOTSUPP && !d->cb.reload) {
		snprintf(status, sizeof status, "Reload not supported, configuration unchanged");
	} else {
		snprintf(status, sizeof status, "Reload failed, keeping previous configuration: %s",
			 msg[0] ? msg : strerror(-r));
	}
	(void)wf_daemon_ready(d, status);
	return r;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct wf_daemon *d = w->data;
	if (w->signum == SIGHUP) {
		(void)wf_daemon_reload(d);
		return;
	}
	(void)wf_daemon_stopping(d);
	if (d->cb.stop)
		d->cb.stop(d, d->ud, w->signum);
	else
		ev_break(loop, EVBREAK_ALL);
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct wf_daemon *d = w->data;
	if (d->cb.healthy && !d->cb.healthy(d, d->ud))
		return;
	(void)notify("WATCHDOG=1");
}

static void start_signal(struct wf_daemon *d, ev_signal *w, int signo)
{
	ev_signal_init(w, on_signal, signo);
	w->data = d;
	ev_signal_start(d->loop, w);
	ev_unref(d->loop);
}

static void stop_signal(struct wf_daemon *d, ev_signal *w)
{
	if (!ev_is_active(w))
		return;
	ev_ref(d->loop);
	ev_signal_stop(d->loop, w);
}

int wf_daemon_new(struct ev_loop *loop, const struct wf_daemon_callbacks *cb, void *ud,
		  struct wf_daemon **ret)
{
	struct wf_daemon *d;
	uint64_t usec = 0;
	int r;

	if (!loop || !ret)
		return -EINVAL;
	r = sd_watchdog_enabled(0, &usec);
	if (r < 0)
		return r;
	if (r == 0)
		usec = 0;
	d = calloc(1, sizeof *d);
	if (!d)
		return -ENOMEM;
	d->loop = loop;
	if (cb)
		d->cb = *cb;
	d->ud = ud;
	d->watchdog_usec = usec;

	struct sigaction ign = { .sa_handler = SIG_IGN };
	sigemptyset(&ign.sa_mask);
	if (sigaction(SIGPIPE, &ign, &d->old_pipe) == 0)
		d->pipe_saved = true;

	start_signal(d, &d->sig_term, SIGTERM);
	start_signal(d, &d->sig_int, SIGINT);
	start_signal(d, &d->sig_hup, SIGHUP);

	if (usec > 0) {
		ev_tstamp period = (ev_tstamp)usec / 2e6;
		ev_timer_init(&d->watchdog, on_watchdog, period, period);
		d->watchdog.data = d;
		ev_timer_start(loop, &d->watchdog);
		ev_unref(loop);
	}
	*ret = d;
	return 0;
}

struct wf_daemon *wf_daemon_free(struct wf_daemon *d)
{
	if (!d)
		return NULL;
	stop_signal(d, &d->sig_term);
	stop_signal(d, &d->sig_int);
	stop_signal(d, &d->sig_hup);
	if (d->watchdog_usec > 0 && ev_is_active(&d->watchdog)) {
		ev_ref(d->loop);
		ev_timer_stop(d->loop, &d->watchdog);
	}
	if (d->pipe_saved)
		sigaction(SIGPIPE, &d->old_pipe, NULL);
	free(d);
	return NULL;
}

uint64_t wf_daemon_watchdog_usec(const struct wf_daemon *d)
{
	return d ? d->watchdog_usec : 0;
}
