/* pbjson: any protobuf-c message <-> one JSON object (cJSON), by reflection
 * over the generated descriptors, so every message of the contract has the
 * same JSON form without per-message code.
 *
 * The JSON form (docs/protocol.md, "JSON form"):
 *   - keys are the .proto field names (snake_case, e.g. "observed_ms");
 *   - enums are their full .proto value names ("AGENCY_MET", "LEVEL_II");
 *     on input a number naming a defined value is accepted too;
 *   - int64/uint64/int32/uint32 are JSON numbers (on input also decimal
 *     strings, as the proto3 JSON mapping writes 64-bit values); a value that
 *     does not fit the field, or is not integral, is an error;
 *   - double/float are numbers (NaN/Inf are not representable and rejected);
 *   - string is a JSON string (UTF-8); bytes are not used by the contract and
 *     are rejected;
 *   - repeated fields are arrays; nested messages are objects;
 *   - on output, proto3 default values (0, "", empty arrays, absent
 *     messages) are omitted; on input, absent keys mean the default.
 *   - on input an unknown key, a wrong JSON type, nesting deeper than
 *     WF_PBJSON_MAX_DEPTH or an array longer than WF_PBJSON_MAX_ARRAY is an
 *     error with a specific message naming the field.
 *
 * The result of parsing is NOT validated against the contract's limits:
 * pass it through wf_codec_*_validate() as every received message is.
 * Functions here never log. */
#ifndef WF_PBJSON_H
#define WF_PBJSON_H

#include <stddef.h>

#include <protobuf-c/protobuf-c.h>

struct cJSON;

#define WF_PBJSON_MAX_DEPTH 16u        /* nested messages */
#define WF_PBJSON_MAX_ARRAY 65536u     /* elements of one repeated field */
#define WF_PBJSON_MAX_TEXT  (4u << 20) /* bytes of one JSON text to parse */

/* Builds the JSON object of message M. Returns a new cJSON object (free with
 * cJSON_Delete) or NULL when out of memory. */
struct cJSON *wf_pbjson_from_message(const ProtobufCMessage *m);

/* The same as one line of compact JSON without a trailing newline: a
 * malloc'd NUL-terminated string (caller frees), or NULL when out of memory. */
char *wf_pbjson_print(const ProtobufCMessage *m);

/* Builds a message of type D from the JSON object J. Returns 0 and sets
 * *ret (free with protobuf_c_message_free_unpacked(*ret, NULL)), or
 * -EINVAL with a one-line reason in ERR (ERR_SIZE bytes, always
 * NUL-terminated when ERR_SIZE > 0), or -ENOMEM. */
int wf_pbjson_to_message(const ProtobufCMessageDescriptor *d, const struct cJSON *j,
			 ProtobufCMessage **ret, char *err, size_t err_size);

/* The same from LEN bytes of JSON text (at most WF_PBJSON_MAX_TEXT; need
 * not be NUL-terminated). -EINVAL also for text that is not one JSON object
 * ("not JSON at offset N"). */
int wf_pbjson_parse(const ProtobufCMessageDescriptor *d, const char *text, size_t len,
		    ProtobufCMessage **ret, char *err, size_t err_size);

#endif
