#ifndef WF_TEST_BROKER_H
#define WF_TEST_BROKER_H
#endif
