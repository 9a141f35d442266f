/* help: wfctl's --help texts, one per command (man pages are made from the
 * full text by help2man, docs/man/meson.build; docs/wfctl.md says more). */
#include "help.h"

#include <string.h>

struct cmd_help {
	const char *name;
	const char *synopsis;
	const char *text;
};

static const struct cmd_help helps[] = {
	{ "watch", "wfctl watch [--count N] [--timeout S] [--json] [--quiet] [CONN]",
	  "A live view of what warnfuse publishes: warning versions (level colour, hazard,\n"
	  "area, version, review state, and why: rules and events), duty notices,\n"
	  "broadcast state and services going offline. Read-only: it acknowledges nothing,\n"
	  "and shows each warning version once (resends are skipped).\n"
	  "  --count N       exit 0 after N warning versions\n"
	  "  --timeout S     exit 1 after S seconds without reaching --count\n"
	  "  --json          one JSON object per message ({\"warning\": ...}, field names as in\n"
	  "                  the .proto)\n"
	  "  --quiet         print nothing (with --count: wait for N versions)\n" },
	{ "state", "wfctl state [--json] [CONN]",
	  "Every service's liveness from the retained wf/v1/state topics (status, version,\n"
	  "last heartbeat; overdue = older than 3 promised intervals); exit 1 when any\n"
	  "service (wfctl runs aside) is offline or overdue, 0 when all are well.\n" },
	{ "list", "wfctl list [--all] [--json] [CONN]",
	  "The dispatcher's active warnings from its retained release records\n"
	  "(wf/v1/review/<id>): id, latest version, level, hazard, area, review state,\n"
	  "duty acknowledgements (acked/notified) and what the public has.\n"
	  "  --all           also warnings that ended (cancelled, expired)\n"
	  "  --json          one {\"record\": WarningRecord} per warning\n" },
	{ "show", "wfctl show ID [--json] [CONN]",
	  "One warning's release record: the rules and events behind its latest version,\n"
	  "its version history (review, approvers), its deliveries (duty, broadcast, CAP,\n"
	  "SMS) and its audit trail (who approved, rejected or cancelled, and when).\n"
	  "Exit 4 when the dispatcher has no record of ID.\n"
	  "  --json          {\"record\": WarningRecord}\n" },
	{ "approve", "wfctl approve ID@VERSION [--operator OP] [--reason TEXT] [SEND] [CONN]",
	  "The operator's sign-off (签发) of that exact warning version (the release\n"
	  "policy, docs/dispatch.md: levels I-II need two different operators, III one).\n"
	  "It goes through a durable outbox, and wfctl waits for the dispatcher's verdict\n"
	  "on it (wf/v1/verdict/OP): exit 0 accepted, 3 refused (not an operator, a\n"
	  "superseded or unknown version: the reason is printed), 1 not acknowledged in\n"
	  "time (it stays in the outbox and goes out with the next run).\n"
	  "  --operator OP   who decides (an [operator] of the routing file; default:\n"
	  "                  --username, as the broker's ACL expects)\n"
	  "  --reason TEXT   free text\n" },
	{ "reject", "wfctl reject ID@VERSION --reason TEXT [--operator OP] [SEND] [CONN]",
	  "The operator rejects that exact version: it is never released. As approve.\n" },
	{ "cancel", "wfctl cancel ID[@VERSION] --reason TEXT [--operator OP] [SEND] [CONN]",
	  "解除 by an operator: the dispatcher withdraws the released version from the\n"
	  "public on the channels that had it (broadcast state, a CAP Cancel, an SMS\n"
	  "解除 notice), tells the duty stations, and holds later versions of the warning\n"
	  "for review. Without @VERSION the released version is read from the release\n"
	  "record (exit 4 when there is none). A second cancel changes nothing. Exit\n"
	  "codes as approve (3: refused, e.g. nothing released or not the released\n"
	  "version).\n"
	  "  --reason TEXT   why (required; shown in the audit trail)\n" },
	{ "silence", "wfctl silence list [--json] [CONN]", "" },
	{ "silence", "wfctl silence add --channel CH --expires WHEN --reason TEXT [--region P] "
		     "[--hazard H] [--id ID] [--operator OP] [SEND] [CONN]",
	  "add: deliveries on channel CH (broadcast, cap or sms; duty is never silenced)\n"
	  "matching region prefix P (2, 4, 6, 9 or 12 digits; default everywhere) and\n"
	  "hazard H (a topic token; default any) are recorded as silenced instead of sent\n"
	  "until WHEN (a duration such as 90m, 2h, 1d, or an RFC 3339 time). A later\n"
	  "silence with the same --id replaces it (default id: sil-OP-<time>). Verdict\n"
	  "and exit codes as approve.\n"
	  "list: the silences in force (routing file and operators'), from the retained\n"
	  "wf/v1/silences/<dispatcher>; --json: one {\"silence\": SilenceRecord} each.\n" },
	{ "audit", "wfctl audit [ID] [--operator OP] [--json] [CONN]",
	  "The audit trail: every approval, rejection, cancel and silence the dispatcher\n"
	  "applied or refused, with who (the broker user) and when, oldest first, from\n"
	  "the release records and the operators' verdicts (the latest 64 per warning,\n"
	  "16 per operator; the whole trail is in the dispatcher's LMDB, d-audit).\n"
	  "  --json          one {\"audit\": AuditEntry} per entry\n" },
	{ "stats", "wfctl stats [--json] [CONN]",
	  "The dispatcher's counters (retained wf/v1/stats/<dispatcher>, kept in its LMDB):\n"
	  "versions received and released per agency, deliveries per channel and state,\n"
	  "latencies version made -> released and notice -> first acknowledgement\n"
	  "(count, p50, p95, max), and failures.\n"
	  "  --json          {\"stats\": DispatchStats}\n" },
	{ "inject", "wfctl inject FILE [--rebase] [--max N] [--allow-actual] [SEND] [CONN]",
	  "Drills: publishes the events of FILE (JSON lines, one Event each, the format\n"
	  "wf-fusion --replay reads; '#' lines and blank lines are skipped; '-' is stdin)\n"
	  "through a durable outbox and waits until every one is acknowledged, with a\n"
	  "progress line on stderr. Every line is checked first (path:line: reason);\n"
	  "any error sends nothing (exit 2). Status EXERCISE and TEST are kept as they\n"
	  "are; an ACTUAL event is refused unless --allow-actual.\n"
	  "  --rebase        shift every time so the latest event is observed now (the\n"
	  "                  others keep their distance before it)\n"
	  "  --max N         at most N events (default 100000, at most 1000000); a line\n"
	  "                  is at most 65536 bytes\n"
	  "  --allow-actual  let STATUS_ACTUAL events through (they can reach the public)\n" },
	{ "ack", "wfctl ack STATION ID@VERSION [--operator NAME] [SEND] [CONN]",
	  "A duty station acknowledges the notice of that version (DutyAck). With a\n"
	  "locked-down broker STATION is the console's user. Exit 0 acknowledged by the\n"
	  "dispatcher, 1 not in time.\n" },
	{ "followup", "wfctl followup STATION ID TEXT [--operator NAME] [SEND] [CONN]",
	  "A duty station files a follow-up report (续报, FollowUp) on the warning. As ack.\n" },
};

static const char send_opts[] =
	"SEND (commands that send):\n"
	"  --state DIR     the outbox (default $HOME/.local/state/warnfuse/<producer>;\n"
	"                  producer: --username, else wfctl-OP)\n"
	"  --timeout S     wait at most S seconds for the acknowledgement and the\n"
	"                  verdict (default 30)\n";

static const char read_opts[] =
	"READ (list, show, stats, audit, silence list):\n"
	"  --timeout S     wait at most S seconds for the broker (default 10)\n";

static const char conn_opts[] =
	"CONN (every command):\n"
	"  --host HOST     broker (default 127.0.0.1)\n"
	"  --port PORT     broker port (default 1883)\n"
	"  --username U    broker user (a locked-down broker: an operator's own user)\n"
	"  --password-file F  its password, first line (mode 0600)\n"
	"  --cafile F      TLS: the broker's CA certificate (TLS is on when given)\n"
	"  --cert F, --key F  TLS client certificate and its key (the broker's\n"
	"                  listener with require_certificate)\n"
	"  --help          this text\n";

static const char trailer[] =
	"Environment: WF_REGIONS (region table for area names), WF_NOW (the clock starts\n"
	"at this RFC 3339 time, for rehearsals).\n"
	"Exit status: 0 done (a decision accepted), 1 no answer in time or no broker,\n"
	"2 usage or bad input (nothing sent), 3 refused by the dispatcher, 4 no such\n"
	"warning or no verdict published; state: 1 when a service is down.\n";

void wfctl_usage(FILE *f, const char *cmd)
{
	bool all = cmd == NULL;
	size_t n = sizeof helps / sizeof helps[0];
	bool first = true;
	for (size_t i = 0; i < n; i++)
		if (all || strcmp(helps[i].name, cmd) == 0) {
			fprintf(f, "%s %s\n", first ? "Usage:" : "  or: ", helps[i].synopsis);
			first = false;
		}
	fputs("\n", f);
	for (size_t i = 0; i < n; i++)
		if ((all || strcmp(helps[i].name, cmd) == 0) && helps[i].text[0])
			fprintf(f, "%swfctl %s:\n%s", i > 0 && all ? "\n" : "", helps[i].name,
				helps[i].text);
	fputs("\n", f);
	if (all || strcmp(cmd, "approve") == 0 || strcmp(cmd, "reject") == 0 ||
	    strcmp(cmd, "cancel") == 0 || strcmp(cmd, "silence") == 0 || strcmp(cmd, "inject") == 0 ||
	    strcmp(cmd, "ack") == 0 || strcmp(cmd, "followup") == 0)
		fputs(send_opts, f);
	if (all || strcmp(cmd, "list") == 0 || strcmp(cmd, "show") == 0 ||
	    strcmp(cmd, "stats") == 0 || strcmp(cmd, "audit") == 0 || strcmp(cmd, "silence") == 0)
		fputs(read_opts, f);
	fputs(conn_opts, f);
	fputs("\n", f);
	fputs(trailer, f);
}
