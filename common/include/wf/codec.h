#ifndef WF_CODEC_H
#define WF_CODEC_H
/* placeholder */
#endif
