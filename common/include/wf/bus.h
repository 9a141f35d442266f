#ifndef WF_BUS_H
#define WF_BUS_H
/* placeholder */
#endif
