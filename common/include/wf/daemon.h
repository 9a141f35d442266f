#ifndef WF_DAEMON_H
#define WF_DAEMON_H
/* placeholder */
#endif
