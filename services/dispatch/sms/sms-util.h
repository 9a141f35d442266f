/* sms-util: the pure parts of the SMS channel, no I/O but the subscriber
 * file read: UCS-2 sizing and segmenting, the subscriber list, the token
 * bucket and the retry backoff. Time is always passed in. */
#ifndef WF_SMS_UTIL_H
#define WF_SMS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* GSM 03.40 with coding 2 (UCS-2): 140 octets per SMS = 70 UTF-16 units;
 * with the 6-octet concatenation UDH, 67 units per part. */
#define WF_SMS_UCS2_SINGLE 70u
#define WF_SMS_UCS2_PART   67u

/* Converts valid UTF-8 TEXT (LEN bytes) to UTF-16BE. Characters outside the
 * BMP (e.g. emoji) become surrogate pairs: 2 units, as the handset counts
 * them. If OUT is not NULL it receives the big-endian bytes (room for
 * 2 * units). Returns the number of UTF-16 units, or -EINVAL for invalid
 * UTF-8 (overlong, surrogates, > U+10FFFF, truncated) or an embedded NUL. */
long wf_sms_utf16_units(const char *text, size_t len, unsigned char *out);

/* Number of SMS parts for a text of UNITS UTF-16 units: 1 for 0..70,
 * else ceil(units / 67). This function can't fail. */
unsigned wf_sms_parts_for_units(size_t units);

/* Splits UNITS UTF-16 units (big-endian bytes in U16) into parts of at most
 * 67 units (one part of up to 70 if it fits), never between the two units
 * of a surrogate pair (such a part then carries 66). Stores the unit offset
 * where each part starts in RET_STARTS (room for MAX entries) and returns
 * the number of parts, or -E2BIG if more than MAX would be needed. */
int wf_sms_segment(const unsigned char *u16, size_t units, size_t *ret_starts, unsigned max);

/* Kannel (1.4.5, concatenation = true) cuts a long UCS-2 text blindly
 * every 67 units, splitting a surrogate pair that straddles a cut (seen at
 * fakesmsc: part 1 ends in D83D, part 2 starts with DE00). This returns, in
 * *RET_TEXT (malloc'd, NUL-terminated, caller frees), TEXT with one space
 * inserted before every character outside the BMP that would straddle a
 * cut, so that Kannel's cuts match wf_sms_segment(); a text of at most 70
 * units is copied unchanged. Stores the resulting number of UTF-16 units in
 * *RET_UNITS. Returns 0, -EINVAL (invalid UTF-8) or -ENOMEM. */
int wf_sms_prepare_text(const char *text, size_t len, char **ret_text, size_t *ret_units);

/* --- subscribers --- */

#define WF_SMS_MSISDN_MAX 20u     /* digits, optional leading '+' */
#define WF_SMS_SUBS_MAX   10000000u
#define WF_SMS_LINE_MAX   256u

struct wf_sms_subscriber {
	char msisdn[WF_SMS_MSISDN_MAX + 2];
	char region[13];           /* normalised to 12 digits */
	unsigned line;             /* line in the file */
};

struct wf_sms_subs;

/* Loads a subscriber file: UTF-8 text, one "msisdn,region" per line (an
 * optional first line "msisdn,region" is a header; '#' lines and empty
 * lines are skipped; spaces around fields are trimmed). msisdn: 5..20
 * digits with an optional leading '+'; region: 6 or 12 digits. A repeated
 * (msisdn, region) pair is an error. Returns 0 and sets *ret, or a negative
 * errno and writes "PATH:LINE: message" into ERR (ERRLEN bytes; may be
 * NULL): -EINVAL bad line, -EEXIST duplicate, -E2BIG line too long, -EFBIG
 * too many rows, or the errno of open/read. */
int wf_sms_subs_load(const char *path, struct wf_sms_subs **ret, char *err, size_t errlen);

/* Frees S (NULL is fine); returns NULL. */
struct wf_sms_subs *wf_sms_subs_free(struct wf_sms_subs *s);

/* Number of rows. Can't fail. */
size_t wf_sms_subs_count(const struct wf_sms_subs *s);

/* The subscribers whose region lies in REGION12 (12 digits; the region
 * itself and everything under it), sorted by region then msisdn, as a
 * borrowed contiguous range: stores its first entry in *ret_first and
 * returns the count (0: none). A msisdn registered in two regions appears
 * twice. Valid until wf_sms_subs_free. Can't fail for valid input. */
size_t wf_sms_subs_in_region(const struct wf_sms_subs *s, const char *region12,
			     const struct wf_sms_subscriber **ret_first);

/* --- token bucket --- */

struct wf_sms_bucket {
	double rate;    /* tokens per second; <= 0: unlimited */
	double burst;   /* capacity */
	double tokens;
	int64_t last_ms;
};

/* Starts full at NOW_MS. BURST <= 0 means max(1, rate). Can't fail. */
void wf_sms_bucket_init(struct wf_sms_bucket *b, double rate, double burst, int64_t now_ms);

/* Takes N tokens at NOW_MS if available: true (taken) or false (nothing
 * taken). A request larger than the bucket is allowed once the bucket is
 * full (tokens go negative), so big texts are not starved. Can't fail. */
bool wf_sms_bucket_take(struct wf_sms_bucket *b, double n, int64_t now_ms);

/* Milliseconds from NOW_MS until N tokens could be taken (0: now). */
int64_t wf_sms_bucket_wait_ms(struct wf_sms_bucket *b, double n, int64_t now_ms);

/* Delay before retry number ATTEMPT (1 = after the first failure):
 * BASE * 2^(ATTEMPT-1), at most MAX. Can't fail. */
int64_t wf_sms_backoff_ms(unsigned attempt, int64_t base_ms, int64_t max_ms);

#endif
