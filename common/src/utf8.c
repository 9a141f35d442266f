/* utf8: see utf8.h. A strict decoder after RFC 3629 section 4. */
#include "utf8.h"

#include <stdint.h>

/* Decodes one character at S (N bytes available). Returns its length and
 * sets *cp, or 0 if the sequence is malformed. */
static size_t decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	size_t len;
	uint32_t v, min;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

bool wf_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		if (p[i] < 0x80) {
			i++;
			continue;
		}
		size_t k = decode(p + i, len - i, &cp);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

bool wf_utf8_text_ok(const char *s, size_t len, bool multiline)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < len) {
		uint32_t cp;
		if (p[i] >= 0x20 && p[i] < 0x7f) { /* printable ASCII */
			i++;
			continue;
		}
		size_t k = decode(p + i, len - i, &cp);
		if (!k)
			return false;
		if (cp < 0x20) {
			if (!multiline || (cp != '\n' && cp != '\t'))
				return false;
		} else if (cp >= 0x7f && cp <= 0x9f) {
			return false;
		}
		i += k;
	}
	return true;
}

