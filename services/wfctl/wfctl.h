/* wfctl internals shared by its files (docs/wfctl.md): the connection
 * options every command takes, the clock, reading retained topics, and the
 * commands' entry points. */
#ifndef WFCTL_H
#define WFCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "dispatch.pb-c.h"
#include "wf/clock.h"
#include "wf/node.h"
#include "wf/region.h"

/* Exit statuses scripts can rely on (docs/wfctl.md, "Exit status"). */
#define WFCTL_EXIT_OK 0        /* done; a decision accepted by the dispatcher */
#define WFCTL_EXIT_FAILURE 1   /* no answer in time, broker unreachable, not acknowledged */
#define WFCTL_EXIT_USAGE 2     /* bad command line or input file: nothing was sent */
#define WFCTL_EXIT_REFUSED 3   /* the dispatcher refused the decision (the reason is printed) */
#define WFCTL_EXIT_NOT_FOUND 4 /* no such warning (show, cancel), or no verdict published */

/* --username / --password-file: the broker identity; --cafile, --cert,
 * --key: TLS (the broker's TLS listener with client certificates,
 * docs/operations.md 4a). */
struct creds {
	const char *username;
	const char *password_file;
	char password[256];
	const char *cafile, *certfile, *keyfile;
};

/* getopt codes of the TLS options, and their entries for an option table */
#define WFCTL_OPT_CAFILE 0x101
#define WFCTL_OPT_CERT 0x102
#define WFCTL_OPT_KEY 0x103
#define WFCTL_TLS_OPTIONS                                                                  \
	{ "cafile", required_argument, NULL, WFCTL_OPT_CAFILE },                           \
	{ "cert", required_argument, NULL, WFCTL_OPT_CERT },                               \
	{ "key", required_argument, NULL, WFCTL_OPT_KEY }

struct wfctl_conn {
	const char *host;
	long port;
	struct creds cr;
};

/* Connection options: --host, --port, --username, --password-file as
 * getopt codes H, p, u, P, and the TLS ones (WFCTL_OPT_*). Returns 1 when C
 * was one of them, 0 when not, -1 after printing why ARG is wrong. */
int conn_option(int c, const char *arg, const char **host, long *port, struct creds *cr);
/* Reads the password file and checks the TLS files; -EINVAL after
 * printing why. */
int creds_load(struct creds *c);
/* Puts the identity and TLS settings of C into bus options BO. */
void creds_bus(const struct creds *c, struct wf_bus_options *bo);
/* Node options of a sending command: producer SERVICE with its outbox in
 * STATE (NULL: $HOME/.local/state/warnfuse/SERVICE, written into DIR of
 * DIRLEN bytes), on HOST:PORT as C, on CLOCK, resending after RESEND_MS. */
void wfctl_node_options(struct wf_node_options *o, const char *service, const char *state,
			char *dir, size_t dirlen, const char *host, long port, const struct creds *c,
			const struct wf_clock *clock, int64_t resend_ms);
/* --timeout S in 1..86400. */
int parse_timeout(const char *arg, long *ret);
/* The wall clock, or WF_NOW's shifted one (OFFSET must outlive the clock).
 * -1 after printing why WF_NOW is wrong. */
int wfctl_clock(struct wf_clock *clock, int64_t *offset);
/* The region table of WF_REGIONS, or NULL (names then fall back to codes). */
struct wf_region_table *wfctl_regions(void);
const char *wfctl_area_name(const struct wf_region_table *t, const char *code);
const char *enum_name(const ProtobufCEnumDescriptor *d, int v, size_t strip);
const char *colour(int level);
/* "MM-DD HH:MM:SS" Beijing time of MS ("-" for 0). */
const char *wfctl_time(int64_t ms, char *buf, size_t size);
/* {"KIND": <M as JSON>} and a newline. */
void wfctl_print_json(const char *kind, const ProtobufCMessage *m);

/* Warning id syntax: [A-Za-z0-9._:-], 1..128 bytes (docs/protocol.md). */
bool wfctl_warning_id_valid(const char *id);

/* Reads retained messages: subscribes to FILTERS, calls FN for each
 * message, and returns once no message came for QUIET_S after the
 * subscriptions were granted (retained messages follow the SUBACK at
 * once), or DONE(UD) holds. 0, or -ETIMEDOUT when the broker did not
 * answer within TIMEOUT_S. */
int wfctl_fetch(const struct wfctl_conn *c, const char *const *filters, size_t n,
		double timeout_s, double quiet_s,
		void (*fn)(void *ud, const char *topic, const void *payload, size_t len),
		bool (*done)(void *ud), void *ud);

/* Commands (argv[1] is the command). */
int list_main(int argc, char **argv);
int show_main(int argc, char **argv);
int stats_main(int argc, char **argv);
int audit_main(int argc, char **argv);
int silence_list_main(int argc, char **argv);
int inject_main(int argc, char **argv);

/* Prints one audit entry as a line (OUT). */
void wfctl_print_audit(FILE *out, const Wf__V1__AuditEntry *a);

#endif
