#ifndef WF_CONFIG_H
#define WF_CONFIG_H
/* placeholder */
#endif
