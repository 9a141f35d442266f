/* daemon: wf-fusion's MQTT daemon mode (daemon.c), on the service runtime
 * (services/runtime/runtime.h). */
#ifndef WF_FUSION_DAEMON_H
#define WF_FUSION_DAEMON_H

/* The whole daemon program: the runtime's command line (--config,
 * --check-config, --print-config, --log-level, --help, --version).
 * Returns the exit status. */
int wf_fusion_daemon_main(int argc, char **argv);

#endif
