#ifndef WF_DEDUPE_H
#define WF_DEDUPE_H
/* placeholder */
#endif
