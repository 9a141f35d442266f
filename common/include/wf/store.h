#ifndef WF_STORE_H
#define WF_STORE_H
/* placeholder */
#endif
