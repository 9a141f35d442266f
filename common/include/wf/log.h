#ifndef WF_LOG_H
#define WF_LOG_H
/* placeholder */
#endif
