/* utf8: private helpers of the codec (not installed). */
#ifndef WF_UTF8_H
#define WF_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* True if S[0..LEN) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF). This function can't fail. */
bool wf_utf8_valid(const char *s, size_t len);

/* True if S[0..LEN) is well-formed UTF-8 without NUL, without C0 controls
 * (except '\n' and '\t' when MULTILINE), DEL or C1 controls (U+0080..9F). */
bool wf_utf8_text_ok(const char *s, size_t len, bool multiline);


#endif
