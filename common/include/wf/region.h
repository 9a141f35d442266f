#ifndef WF_REGION_H
#define WF_REGION_H
/* placeholder */
#endif
