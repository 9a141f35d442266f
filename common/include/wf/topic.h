#ifndef WF_TOPIC_H
#define WF_TOPIC_H
/* placeholder */
#endif
