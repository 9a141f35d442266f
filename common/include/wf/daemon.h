/* daemon: signals, reload and systemd notification for a service's libev
 * loop.
 *
 * - SIGTERM and SIGINT call cb->stop (after sending STOPPING=1).
 * - SIGHUP sends RELOADING=1, calls cb->reload, then READY=1 with a STATUS=
 *   that says whether the reload worked; on failure the service keeps its
 *   old configuration (see the reload pattern in wf/config.h).
 * - SIGPIPE is ignored while the daemon object exists.
 * - If systemd enabled the watchdog (WATCHDOG_USEC, and WATCHDOG_PID is
 *   this process), a timer sends WATCHDOG=1 every half interval, but only
 *   while cb->healthy (if set) returns true, so a service whose loop still
 *   turns but no longer makes progress gets restarted.
 * - Without NOTIFY_SOCKET every notification is a no-op returning 0.
 *
 * The signal and watchdog watchers do not keep the loop alive on their
 * own (they are ev_unref'd): ev_run() returns when the service's own
 * watchers are gone or something calls ev_break().
 *
 * libev allows a signal to be watched by one loop only: create at most one
 * wf_daemon per process. */
#ifndef WF_DAEMON_H
#define WF_DAEMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ev_loop;
struct wf_daemon;

/* Longest STATUS= text sent; longer text is cut. */
#define WF_DAEMON_STATUS_MAX 512

struct wf_daemon_callbacks {
	/* SIGTERM or SIGINT (SIGNO) arrived. The service should stop taking
	 * work, finish what it has and leave its loop. Called again for each
	 * further signal (a second one may mean "hurry"). NULL: ev_break(loop,
	 * EVBREAK_ALL). */
	void (*stop)(struct wf_daemon *d, void *ud, int signo);
	/* SIGHUP arrived (or wf_daemon_reload was called). Load the new
	 * configuration into a fresh struct and swap it in only on success.
	 * Return 0 or a negative errno. MSG (MSGLEN bytes, empty on entry) may
	 * receive a one-line explanation (e.g. the config error) that goes into
	 * STATUS=. NULL: reload is not supported (the status says so). */
	int (*reload)(struct wf_daemon *d, void *ud, char *msg, size_t msglen);
	/* Liveness check before each watchdog ping; false skips the ping.
	 * NULL: always healthy. */
	bool (*healthy)(struct wf_daemon *d, void *ud);
};

/* Creates the daemon object on LOOP (borrowed; must outlive it), installs
 * the signal watchers, ignores SIGPIPE and starts the watchdog timer if
 * systemd asked for one. CB is copied; UD is passed to every callback.
 * Returns 0 and sets *ret, or -ENOMEM, -EINVAL (bad arguments or a
 * malformed WATCHDOG_USEC). Free with wf_daemon_free(). */
int wf_daemon_new(struct ev_loop *loop, const struct wf_daemon_callbacks *cb, void *ud,
		  struct wf_daemon **ret);

/* Stops the watchers, restores SIGPIPE's previous disposition and frees D.
 * Accepts NULL. Returns NULL. */
struct wf_daemon *wf_daemon_free(struct wf_daemon *d);

/* Sends "READY=1" plus "STATUS=<status>" if STATUS is not NULL. Control
 * characters in status text are replaced by spaces. All notify functions
 * return 0 (also when there is no NOTIFY_SOCKET) or a negative errno from
 * sending. */
int wf_daemon_ready(struct wf_daemon *d, const char *status);

/* Sends "RELOADING=1" and "MONOTONIC_USEC=<now>". The caller sends READY=1
 * (wf_daemon_ready) when the reload is done. */
int wf_daemon_reloading(struct wf_daemon *d);

/* The full reload cycle that SIGHUP runs: RELOADING=1, cb->reload, then
 * "READY=1\nSTATUS=Configuration reloaded" or "READY=1\nSTATUS=Reload
 * failed, keeping previous configuration: <msg or strerror>". Returns the
 * callback's result (-EOPNOTSUPP without a reload callback). */
int wf_daemon_reload(struct wf_daemon *d);

/* Sends "STOPPING=1". Signals send it before cb->stop; call it yourself
 * when stopping for another reason. */
int wf_daemon_stopping(struct wf_daemon *d);

/* Sends "STATUS=<formatted text>" (at most WF_DAEMON_STATUS_MAX bytes). */
int wf_daemon_status(struct wf_daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sends STATE verbatim (e.g. "EXTEND_TIMEOUT_USEC=..."), for anything the
 * helpers above do not cover. STATE is borrowed for the call. */
int wf_daemon_notify(struct wf_daemon *d, const char *state);

/* The watchdog interval systemd configured in microseconds, 0 if the
 * watchdog is off. The ping period is half of it. Can't fail. */
uint64_t wf_daemon_watchdog_usec(const struct wf_daemon *d);

#endif
