#ifndef WF_OUTBOX_H
#define WF_OUTBOX_H
/* placeholder */
#endif
