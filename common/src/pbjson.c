/* pbjson: protobuf-c messages <-> JSON by reflection (see wf/pbjson.h). */
#include "wf/pbjson.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* Integers up to 2^53 are exact in a double (and so in cJSON's numbers). */
#define EXACT_MAX 9007199254740992.0

static void *field_ptr(const ProtobufCMessage *m, size_t off)
{
	return (char *)m + off;
}

static bool field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
	const void *p = field_ptr(m, f->offset);

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)field_ptr(m, f->quantifier_offset) > 0;
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)field_ptr(m, f->quantifier_offset) == f->id;
	if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
	    f->type != PROTOBUF_C_TYPE_MESSAGE)
		return *(const protobuf_c_boolean *)field_ptr(m, f->quantifier_offset);
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: case PROTOBUF_C_TYPE_ENUM:
		return *(const uint32_t *)p != 0;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		return *(const uint64_t *)p != 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)p != 0.0f;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)p != 0.0;
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *)p;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return s != NULL && s[0] != '\0';
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)p)->len > 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(ProtobufCMessage *const *)p != NULL;
	}
	return false;
}

static size_t scalar_size(ProtobufCType t)
{
	switch (t) {
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	default:
		return 4;
	}
}

static cJSON *int_json(bool negative, uint64_t mag)
{
	char buf[32];

	snprintf(buf, sizeof buf, "%s%" PRIu64, negative ? "-" : "", mag);
	if ((double)mag <= EXACT_MAX)
		return cJSON_CreateRaw(buf);
	return cJSON_CreateString(buf); /* as the proto3 JSON mapping writes 64-bit values */
}

static cJSON *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32: {
		int32_t v = *(const int32_t *)p;
		return int_json(v < 0, v < 0 ? (uint64_t)(-(int64_t)v) : (uint64_t)v);
	}
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		return int_json(false, *(const uint32_t *)p);
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64: {
		int64_t v = *(const int64_t *)p;
		return int_json(v < 0, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
	}
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		return int_json(false, *(const uint64_t *)p);
	case PROTOBUF_C_TYPE_FLOAT:
		return cJSON_CreateNumber((double)*(const float *)p);
	case PROTOBUF_C_TYPE_DOUBLE:
		return cJSON_CreateNumber(*(const double *)p);
	case PROTOBUF_C_TYPE_BOOL:
		return cJSON_CreateBool(*(const protobuf_c_boolean *)p);
	case PROTOBUF_C_TYPE_ENUM: {
		int v = *(const int *)p;
		const ProtobufCEnumValue *ev =
			protobuf_c_enum_descriptor_get_value(f->descriptor, v);
		if (ev != NULL)
			return cJSON_CreateString(ev->name);
		return int_json(v < 0, v < 0 ? (uint64_t)(-(int64_t)v) : (uint64_t)v);
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(char *const *)p;
		return cJSON_CreateString(s != NULL ? s : "");
	}
	case PROTOBUF_C_TYPE_BYTES:
		return cJSON_CreateNull(); /* not used by the contract */
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
		return sub != NULL ? wf_pbjson_from_message(sub) : cJSON_CreateObject();
	}
	}
	return NULL;
}

cJSON *wf_pbjson_from_message(const ProtobufCMessage *m)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;
	cJSON *obj = cJSON_CreateObject();

	if (obj == NULL)
		return NULL;
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		cJSON *v;

		if (!field_present(m, f))
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n = *(const size_t *)field_ptr(m, f->quantifier_offset);
			const char *arr = *(char *const *)field_ptr(m, f->offset);
			size_t sz = scalar_size(f->type);

			v = cJSON_CreateArray();
			if (v == NULL)
				goto fail;
			for (size_t k = 0; k < n; k++) {
				cJSON *e = value_json(f, arr + k * sz);
				if (e == NULL) {
					cJSON_Delete(v);
					goto fail;
				}
				cJSON_AddItemToArray(v, e);
			}
		} else {
			v = value_json(f, field_ptr(m, f->offset));
			if (v == NULL)
				goto fail;
		}
		cJSON_AddItemToObject(obj, f->name, v);
	}
	return obj;
fail:
	cJSON_Delete(obj);
	return NULL;
}

char *wf_pbjson_print(const ProtobufCMessage *m)
{
	cJSON *j = wf_pbjson_from_message(m);
	char *s;

	if (j == NULL)
		return NULL;
	s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

/* --- JSON -> message --- */

struct pctx {
	char *err;
	size_t err_size;
	char path[256]; /* field path for messages, e.g. "measurement.value" */
};

__attribute__((format(printf, 2, 3)))
static int fail(struct pctx *c, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (c->err_size == 0)
		return -EINVAL;
	if (c->path[0] != '\0')
		n = snprintf(c->err, c->err_size, "%s: ", c->path);
	if (n < 0 || (size_t)n >= c->err_size)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(c->err + n, c->err_size - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* An integer from a JSON number or decimal string: *neg and *mag. */
static int json_int(struct pctx *c, const cJSON *j, bool *neg, uint64_t *mag)
{
	if (cJSON_IsNumber(j)) {
		double v = j->valuedouble;

		if (!isfinite(v) || v != floor(v))
			return fail(c, "not an integer");
		if (fabs(v) > EXACT_MAX)
			return fail(c, "integer beyond 2^53: write it as a decimal string");
		*neg = v < 0;
		*mag = (uint64_t)fabs(v);
		return 0;
	}
	if (cJSON_IsString(j)) {
		const char *s = j->valuestring;
		uint64_t acc = 0;

		*neg = false;
		if (*s == '-') {
			*neg = true;
			s++;
		}
		if (*s == '\0')
			return fail(c, "empty integer string");
		for (; *s != '\0'; s++) {
			if (*s < '0' || *s > '9')
				return fail(c, "not a decimal integer string");
			if (acc > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
				return fail(c, "integer out of range");
			acc = acc * 10 + (uint64_t)(*s - '0');
		}
		*mag = acc;
		return 0;
	}
	return fail(c, "expected an integer");
}

static int set_value(struct pctx *c, const ProtobufCFieldDescriptor *f, const cJSON *j, void *p,
		     unsigned depth);

/* Appends ".NAME" (or NAME at the start) to the path at PLEN, truncating
 * (the path is only for messages; this runs for every member parsed, so
 * no printf). */
static void path_field(struct pctx *c, size_t plen, const char *name)
{
	size_t room = sizeof c->path - 1 - plen, n = strlen(name);
	char *p = c->path + plen;
	if (plen && room) {
		*p++ = '.';
		room--;
	}
	if (n > room)
		n = room;
	memcpy(p, name, n);
	p[n] = '\0';
}

/* Appends "[K]" to the path at PLEN (truncated if it does not fit). */
static void path_index(struct pctx *c, size_t plen, size_t k)
{
	char tmp[24];
	size_t t = sizeof tmp;
	tmp[--t] = ']';
	do {
		tmp[--t] = (char)('0' + k % 10);
		k /= 10;
	} while (k && t > 1);
	tmp[--t] = '[';
	size_t n = sizeof tmp - t, room = sizeof c->path - 1 - plen;
	if (n > room)
		n = room;
	memcpy(c->path + plen, tmp + t, n);
	c->path[plen + n] = '\0';
}

static int build(struct pctx *c, const ProtobufCMessageDescriptor *d, const cJSON *j,
		 ProtobufCMessage **ret, unsigned depth)
{
	ProtobufCMessage *m;
	const cJSON *item;
	int r = 0;

	if (depth > WF_PBJSON_MAX_DEPTH)
		return fail(c, "nested deeper than %u", WF_PBJSON_MAX_DEPTH);
	if (!cJSON_IsObject(j))
		return fail(c, "expected an object for %s", d->name);
	m = calloc(1, d->sizeof_message);
	if (m == NULL)
		return -ENOMEM;
	d->message_init(m);

	cJSON_ArrayForEach(item, j) {
		const ProtobufCFieldDescriptor *f;
		size_t plen = strlen(c->path);

		if (item->string == NULL) {
			r = fail(c, "member without a name");
			goto out;
		}
		f = protobuf_c_message_descriptor_get_field_by_name(d, item->string);
		if (f == NULL) {
			r = fail(c, "unknown field '%.64s' in %s", item->string, d->name);
			goto out;
		}
		path_field(c, plen, f->name);
		if (cJSON_IsNull(item)) {
			/* null means the default */
		} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			int n = cJSON_GetArraySize(item);
			size_t sz = scalar_size(f->type);
			char *arr;
			const cJSON *e;
			size_t k = 0;

			if (!cJSON_IsArray(item)) {
				r = fail(c, "expected an array");
				goto out;
			}
			if ((unsigned)n > WF_PBJSON_MAX_ARRAY) {
				r = fail(c, "more than %u elements", WF_PBJSON_MAX_ARRAY);
				goto out;
			}
			/* A repeated key given twice: the first array is freed with m. */
			if (*(size_t *)field_ptr(m, f->quantifier_offset) != 0) {
				r = fail(c, "given twice");
				goto out;
			}
			if (n > 0) {
				arr = calloc((size_t)n, sz);
				if (arr == NULL) {
					r = -ENOMEM;
					goto out;
				}
				*(void **)field_ptr(m, f->offset) = arr;
				cJSON_ArrayForEach(e, item) {
					size_t plen2 = strlen(c->path);

					path_index(c, plen2, k);
					r = set_value(c, f, e, arr + k * sz, depth);
					c->path[plen2] = '\0';
					if (r < 0) {
						/* elements 0..k-1 are complete; k is not */
						*(size_t *)field_ptr(m, f->quantifier_offset) = k;
						goto out;
					}
					k++;
				}
				*(size_t *)field_ptr(m, f->quantifier_offset) = k;
			}
		} else {
			r = set_value(c, f, item, field_ptr(m, f->offset), depth);
			if (r < 0)
				goto out;
			if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
				*(uint32_t *)field_ptr(m, f->quantifier_offset) = f->id;
			else if (f->label == PROTOBUF_C_LABEL_OPTIONAL &&
				 f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
				*(protobuf_c_boolean *)field_ptr(m, f->quantifier_offset) = 1;
		}
		c->path[plen] = '\0';
	}
out:
	if (r < 0) {
		protobuf_c_message_free_unpacked(m, NULL);
		return r;
	}
	*ret = m;
	return 0;
}

static int set_value(struct pctx *c, const ProtobufCFieldDescriptor *f, const cJSON *j, void *p,
		     unsigned depth)
{
	bool neg = false;
	uint64_t mag = 0;
	int r;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
		if ((r = json_int(c, j, &neg, &mag)) < 0)
			return r;
		if (mag > (neg ? (uint64_t)INT32_MAX + 1 : (uint64_t)INT32_MAX))
			return fail(c, "out of range for int32");
		*(int32_t *)p = neg ? (int32_t)(0 - (int64_t)mag) : (int32_t)mag;
		return 0;
	case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
		if ((r = json_int(c, j, &neg, &mag)) < 0)
			return r;
		if ((neg && mag != 0) || mag > UINT32_MAX)
			return fail(c, "out of range for uint32");
		*(uint32_t *)p = (uint32_t)mag;
		return 0;
	case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
		if ((r = json_int(c, j, &neg, &mag)) < 0)
			return r;
		if (mag > (neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX))
			return fail(c, "out of range for int64");
		*(int64_t *)p = neg ? (int64_t)(0 - mag) : (int64_t)mag;
		return 0;
	case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
		if ((r = json_int(c, j, &neg, &mag)) < 0)
			return r;
		if (neg && mag != 0)
			return fail(c, "out of range for uint64");
		*(uint64_t *)p = mag;
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
	case PROTOBUF_C_TYPE_DOUBLE:
		if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
			return fail(c, "expected a finite number");
		if (f->type == PROTOBUF_C_TYPE_FLOAT)
			*(float *)p = (float)j->valuedouble;
		else
			*(double *)p = j->valuedouble;
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (!cJSON_IsBool(j))
			return fail(c, "expected true or false");
		*(protobuf_c_boolean *)p = cJSON_IsTrue(j);
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumValue *ev = NULL;

		if (cJSON_IsString(j))
			ev = protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, j->valuestring);
		else if (cJSON_IsNumber(j) && j->valuedouble == floor(j->valuedouble) &&
			 fabs(j->valuedouble) <= INT32_MAX)
			ev = protobuf_c_enum_descriptor_get_value(f->descriptor, (int)j->valuedouble);
		else
			return fail(c, "expected an enum name");
		if (ev == NULL)
			return fail(c, "not a value of %s", ((const ProtobufCEnumDescriptor *)
							     f->descriptor)->name);
		*(int *)p = ev->value;
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING: {
		char *s;

		if (!cJSON_IsString(j))
			return fail(c, "expected a string");
		if (*(char **)p != NULL && *(char **)p != (char *)protobuf_c_empty_string)
			return fail(c, "given twice");
		s = strdup(j->valuestring);
		if (s == NULL)
			return -ENOMEM;
		/* the default may be protobuf_c_empty_string, which is never freed */
		*(char **)p = s;
		return 0;
	}
	case PROTOBUF_C_TYPE_BYTES:
		return fail(c, "bytes fields are not supported in JSON");
	case PROTOBUF_C_TYPE_MESSAGE: {
		ProtobufCMessage *sub = NULL;

		if (*(ProtobufCMessage **)p != NULL)
			return fail(c, "given twice");
		r = build(c, f->descriptor, j, &sub, depth + 1);
		if (r < 0)
			return r;
		*(ProtobufCMessage **)p = sub;
		return 0;
	}
	}
	return fail(c, "unsupported field type");
}

int wf_pbjson_to_message(const ProtobufCMessageDescriptor *d, const cJSON *j,
			 ProtobufCMessage **ret, char *err, size_t err_size)
{
	struct pctx c = { .err = err, .err_size = err_size };

	if (err_size > 0)
		err[0] = '\0';
	if (d == NULL || j == NULL || ret == NULL)
		return -EINVAL;
	return build(&c, d, j, ret, 0);
}

int wf_pbjson_parse(const ProtobufCMessageDescriptor *d, const char *text, size_t len,
		    ProtobufCMessage **ret, char *err, size_t err_size)
{
	const char *end = NULL;
	cJSON *j;
	int r;

	if (err_size > 0)
		err[0] = '\0';
	if (d == NULL || text == NULL || ret == NULL)
		return -EINVAL;
	if (len > WF_PBJSON_MAX_TEXT) {
		snprintf(err, err_size, "JSON text of %zu bytes exceeds %u", len, WF_PBJSON_MAX_TEXT);
		return -EINVAL;
	}
	if (memchr(text, '\0', len) != NULL) {
		snprintf(err, err_size, "NUL byte in JSON text");
		return -EINVAL;
	}
	j = cJSON_ParseWithLengthOpts(text, len, &end, false);
	if (j == NULL) {
		const char *at = cJSON_GetErrorPtr();
		size_t off = (at != NULL && at >= text && at <= text + len) ? (size_t)(at - text) : 0;
		snprintf(err, err_size, "not JSON at offset %zu", off);
		return -EINVAL;
	}
	if (end != NULL) {
		while (end < text + len && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
			end++;
		if (end < text + len) {
			snprintf(err, err_size, "trailing data at offset %zu", (size_t)(end - text));
			cJSON_Delete(j);
			return -EINVAL;
		}
	}
	r = wf_pbjson_to_message(d, j, ret, err, err_size);
	cJSON_Delete(j);
	return r;
}
