/* met-cap: CAP 1.1/1.2 warning messages: safe parsing (no network, no DTD,
 * no entities), schema validation (the OASIS XSDs compiled in), the rules
 * the schema cannot express, the signature policy, and the mapping to
 * wf.v1.Event (docs/feeds/met.md). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlschemas.h>
#include <openssl/evp.h>

#include "met.h"
#include "wf/clock.h"
#include "wf/region.h"
#include "wf/topic.h"

#define CAP10_NS "http://www.incident.com/cap/1.0"
#define CAP11_NS "urn:oasis:names:tc:emergency:cap:1.1"
#define CAP12_NS "urn:oasis:names:tc:emergency:cap:1.2"
#define DSIG_NS "http://www.w3.org/2000/09/xmldsig#"
#define CAP_MAX_DEPTH 32
#define CAP_MAX_NODES 200000

extern const unsigned char met_xsd_cap11[];
extern const unsigned long met_xsd_cap11_len;
extern const unsigned char met_xsd_cap12[];
extern const unsigned long met_xsd_cap12_len;

struct cap_ctx {
	struct met_state *st;
	struct wf_adapter_sink *sink;
	xmlDocPtr doc;
	const char *ns;
	int version; /* 11 or 12 */
	char note[WF_ADAPTER_REASON_MAX];
};

static xmlParserInputPtr no_entity_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
	return NULL; /* nothing outside the input is ever loaded */
}

static void quiet_generic(void *ctx, const char *msg, ...)
{
}

static void cap_init_once(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	xmlInitParser();
	xmlSetExternalEntityLoader(no_entity_loader);
	xmlSetGenericErrorFunc(NULL, quiet_generic);
}

bool met_cap_sniff(const uint8_t *buf, size_t len)
{
	size_t i = 0;

	if (len >= 3 && buf[0] == 0xEF && buf[1] == 0xBB && buf[2] == 0xBF)
		i = 3;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
		i++;
	return i < len && buf[i] == '<';
}

static void note_add(struct cap_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_add(struct cap_ctx *c, const char *fmt, ...)
{
	size_t l = strlen(c->note);
	va_list ap;

	if (l + 3 >= sizeof c->note)
		return;
	if (l) {
		memcpy(c->note + l, "; ", 3);
		l += 2;
	}
	va_start(ap, fmt);
	vsnprintf(c->note + l, sizeof c->note - l, fmt, ap);
	va_end(ap);
}

/* --- parsing --- */

xmlDocPtr met_cap_read(const uint8_t *buf, size_t len, int extra, char *why, size_t why_size);
xmlDocPtr met_cap_read(const uint8_t *buf, size_t len, int extra, char *why, size_t why_size)
{
	xmlParserCtxtPtr ctxt;
	xmlDocPtr doc;

	cap_init_once();
	if (len > (size_t)INT32_MAX) {
		snprintf(why, why_size, "too large");
		return NULL;
	}
	ctxt = xmlNewParserCtxt();
	if (!ctxt) {
		snprintf(why, why_size, "out of memory");
		return NULL;
	}
	/* NONET; no NOENT (entities are not substituted), no DTDLOAD/DTDATTR,
	 * no XINCLUDE, no HUGE (libxml2's default depth/size limits stay). */
	doc = xmlCtxtReadMemory(ctxt, (const char *)buf, (int)len, NULL, NULL,
				XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | extra);
	if (!doc || !ctxt->wellFormed) {
		const xmlError *e = xmlCtxtGetLastError(ctxt);
		char msg[200] = "not well-formed";
		if (e && e->message) {
			snprintf(msg, sizeof msg, "%s", e->message);
			size_t l = strlen(msg);
			while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' '))
				msg[--l] = '\0';
		}
		snprintf(why, why_size, "not well-formed XML (line %d): %s", e ? e->line : 0, msg);
		xmlFreeDoc(doc);
		xmlFreeParserCtxt(ctxt);
		return NULL;
	}
	xmlFreeParserCtxt(ctxt);
	if (doc->intSubset || doc->extSubset) {
		snprintf(why, why_size, "DOCTYPE is not allowed in CAP (entity/DTD attacks)");
		xmlFreeDoc(doc);
		return NULL;
	}
	return doc;
}

/* --- tree helpers --- */

static bool is_el(const xmlNode *n, const char *ns, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
	       strcmp((const char *)n->ns->href, ns) == 0 &&
	       (!name || strcmp((const char *)n->name, name) == 0);
}

static xmlNodePtr child(const xmlNode *parent, const char *ns, const char *name)
{
	for (xmlNodePtr n = parent ? parent->children : NULL; n; n = n->next)
		if (is_el(n, ns, name))
			return n;
	return NULL;
}

static xmlNodePtr next_el(const xmlNode *from, const char *ns, const char *name)
{
	for (xmlNodePtr n = from->next; n; n = n->next)
		if (is_el(n, ns, name))
			return n;
	return NULL;
}

/* Trimmed text of N into BUF ("" when N is NULL). */
static const char *text(const xmlNode *n, char *buf, size_t size)
{
	buf[0] = '\0';
	if (!n)
		return buf;
	xmlChar *t = xmlNodeGetContent(n);
	if (!t)
		return buf;
	const char *s = (const char *)t;
	while (*s && isspace((unsigned char)*s))
		s++;
	snprintf(buf, size, "%s", s);
	size_t l = strlen(buf);
	while (l && isspace((unsigned char)buf[l - 1]))
		buf[--l] = '\0';
	xmlFree(t);
	return buf;
}

static const char *child_text(const xmlNode *p, const char *ns, const char *name, char *buf,
			      size_t size)
{
	return text(child(p, ns, name), buf, size);
}

static int walk_limits(const xmlNode *n, int depth, size_t *count)
{
	for (; n; n = n->next) {
		if (++*count > CAP_MAX_NODES)
			return -E2BIG;
		if (n->type == XML_ENTITY_REF_NODE || n->type == XML_ENTITY_NODE)
			return -EBADMSG;
		if (n->children) {
			if (depth + 1 > CAP_MAX_DEPTH)
				return -ELOOP;
			int r = walk_limits(n->children, depth + 1, count);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* ds:Signature elements anywhere except as trailing children of ROOT. */
static bool misplaced_signature(const xmlNode *n, const xmlNode *root)
{
	for (; n; n = n->next) {
		if (is_el(n, DSIG_NS, "Signature") && n->parent != root)
			return true;
		if (n->type == XML_ELEMENT_NODE && !is_el(n, DSIG_NS, NULL) &&
		    misplaced_signature(n->children, root))
			return true;
	}
	/* at the root level: nothing but signatures may follow the first one */
	return false;
}

static bool signature_not_last(const xmlNode *root)
{
	bool seen = false;

	for (const xmlNode *n = root->children; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		if (is_el(n, DSIG_NS, "Signature"))
			seen = true;
		else if (seen)
			return true;
	}
	return false;
}

/* --- schema --- */

static void schema_error(void *ud, xmlErrorPtr e)
{
	char *first = ud;

	if (first[0] || !e || !e->message)
		return;
	snprintf(first, 256, "line %d: %s", e->line, e->message);
	size_t l = strlen(first);
	while (l && (first[l - 1] == '\n' || first[l - 1] == ' '))
		first[--l] = '\0';
}

static xmlSchemaPtr schema_get(struct met_state *st, int version)
{
	int i = version == 11 ? 0 : 1;

	if (!st->xsd[i]) {
		const unsigned char *x = i ? met_xsd_cap12 : met_xsd_cap11;
		unsigned long l = i ? met_xsd_cap12_len : met_xsd_cap11_len;
		xmlSchemaParserCtxtPtr pc = xmlSchemaNewMemParserCtxt((const char *)x, (int)l);
		if (!pc)
			return NULL;
		st->xsd[i] = xmlSchemaParse(pc);
		xmlSchemaFreeParserCtxt(pc);
	}
	return st->xsd[i];
}

void met_cap_free(struct met_state *st)
{
	for (int i = 0; i < 2; i++) {
		if (st->xsd[i])
			xmlSchemaFree(st->xsd[i]);
		st->xsd[i] = NULL;
	}
}

static int schema_validate(struct cap_ctx *c, char *why, size_t why_size)
{
	xmlSchemaPtr xsd = schema_get(c->st, c->version);
	char first[256] = "";
	xmlDocPtr copy = NULL, target = c->doc;
	int r;

	if (!xsd) {
		snprintf(why, why_size, "internal error: CAP schema did not compile");
		return -EIO;
	}
	/* CAP 1.1's schema has no slot for ds:Signature: validate without them. */
	if (c->version == 11 && child(xmlDocGetRootElement(c->doc), DSIG_NS, "Signature")) {
		copy = xmlCopyDoc(c->doc, 1);
		if (!copy)
			return -ENOMEM;
		xmlNodePtr root = xmlDocGetRootElement(copy), n, next;
		for (n = root->children; n; n = next) {
			next = n->next;
			if (is_el(n, DSIG_NS, "Signature")) {
				xmlUnlinkNode(n);
				xmlFreeNode(n);
			}
		}
		target = copy;
	}
	xmlSchemaValidCtxtPtr vc = xmlSchemaNewValidCtxt(xsd);
	if (!vc) {
		xmlFreeDoc(copy);
		return -ENOMEM;
	}
	xmlSchemaSetValidStructuredErrors(vc, schema_error, first);
	r = xmlSchemaValidateDoc(vc, target);
	xmlSchemaFreeValidCtxt(vc);
	xmlFreeDoc(copy);
	if (r != 0) {
		snprintf(why, why_size, "CAP %d.%d schema: %s", c->version / 10, c->version % 10,
			 first[0] ? first : "invalid");
		return -EBADMSG;
	}
	return 0;
}

/* --- the rules the schema cannot express --- */

static bool cap_token_ok(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (isspace((unsigned char)*s) || *s == ',' || *s == '<' || *s == '&')
			return false;
	return true;
}

static int cap_time(const char *s, int64_t *ret)
{
	/* CAP: YYYY-MM-DDThh:mm:ss with a numeric offset ("Z" is not CAP) */
	size_t l = strlen(s);
	if (l < 20 || s[10] != 'T' || s[l - 1] == 'Z' || s[l - 1] == 'z')
		return -EINVAL;
	return wf_clock_parse(s, ret);
}

static bool coord_ok(const char *pair, double *lat, double *lon)
{
	char *end;
	const char *comma = strchr(pair, ',');

	if (!comma || comma == pair)
		return false;
	errno = 0;
	*lat = strtod(pair, &end);
	if (end != comma || errno)
		return false;
	*lon = strtod(comma + 1, &end);
	if (*end || end == comma + 1 || errno)
		return false;
	return isfinite(*lat) && isfinite(*lon) && *lat >= -90 && *lat <= 90 && *lon >= -180 &&
	       *lon <= 180;
}

static int polygon_check(const char *s, char *why, size_t why_size)
{
	char *copy = strdup(s), *save = NULL, *tok;
	double first_lat = 0, first_lon = 0, lat = 0, lon = 0;
	size_t n = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
		if (!coord_ok(tok, &lat, &lon)) {
			snprintf(why, why_size, "polygon: bad point '%.40s' (want lat,lon in range)", tok);
			free(copy);
			return -EBADMSG;
		}
		if (n++ == 0) {
			first_lat = lat;
			first_lon = lon;
		}
	}
	free(copy);
	if (n < 4) {
		snprintf(why, why_size, "polygon: %zu points, at least 4 needed", n);
		return -EBADMSG;
	}
	if (first_lat != lat || first_lon != lon) {
		snprintf(why, why_size, "polygon: not closed (first point != last point)");
		return -EBADMSG;
	}
	return 0;
}

static int circle_check(const char *s, char *why, size_t why_size)
{
	char pair[128];
	double lat, lon, radius;
	char *end;
	const char *sp = s;

	while (*sp && !isspace((unsigned char)*sp))
		sp++;
	if ((size_t)(sp - s) >= sizeof pair || !*sp)
		goto bad;
	memcpy(pair, s, (size_t)(sp - s));
	pair[sp - s] = '\0';
	if (!coord_ok(pair, &lat, &lon))
		goto bad;
	errno = 0;
	radius = strtod(sp, &end);
	while (*end && isspace((unsigned char)*end))
		end++;
	if (*end || errno || !isfinite(radius) || radius < 0)
		goto bad;
	return 0;
bad:
	snprintf(why, why_size, "circle: '%.60s' is not 'lat,lon radius'", s);
	return -EBADMSG;
}

static int refs_check(const char *refs, int64_t sent_ms, char *why, size_t why_size)
{
	char *copy = strdup(refs), *save = NULL, *tok;
	size_t n = 0;
	int r = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, " \t\r\n", &save); tok; tok = strtok_r(NULL, " \t\r\n", &save)) {
		char *c1 = strchr(tok, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
		int64_t ms;
		n++;
		if (!c1 || !c2 || c1 == tok || c2 == c1 + 1 || strchr(c2 + 1, ',') ||
		    cap_time(c2 + 1, &ms) < 0) {
			snprintf(why, why_size, "references: '%.80s' is not sender,identifier,sent", tok);
			r = -EBADMSG;
			break;
		}
		if (ms > sent_ms) {
			snprintf(why, why_size, "references: '%.80s' was sent after this message", tok);
			r = -EBADMSG;
			break;
		}
	}
	free(copy);
	if (r == 0 && n == 0) {
		snprintf(why, why_size, "references: empty");
		r = -EBADMSG;
	}
	return r;
}

static int rules_check(struct cap_ctx *c, xmlNodePtr root, char *why, size_t why_size)
{
	const char *ns = c->ns;
	char buf[1024], msgtype[32], scope[32];
	int64_t sent_ms;
	int r;

	if (!cap_token_ok(child_text(root, ns, "identifier", buf, sizeof buf))) {
		snprintf(why, why_size, "identifier: '%.80s' is empty or has spaces, ',', '<' or '&'",
			 buf);
		return -EBADMSG;
	}
	if (!cap_token_ok(child_text(root, ns, "sender", buf, sizeof buf))) {
		snprintf(why, why_size, "sender: '%.80s' is empty or has spaces, ',', '<' or '&'", buf);
		return -EBADMSG;
	}
	if (cap_time(child_text(root, ns, "sent", buf, sizeof buf), &sent_ms) < 0) {
		snprintf(why, why_size, "sent: '%.40s' is not a CAP date-time", buf);
		return -EBADMSG;
	}
	child_text(root, ns, "msgType", msgtype, sizeof msgtype);
	if (strcmp(msgtype, "Update") == 0 || strcmp(msgtype, "Cancel") == 0) {
		xmlNodePtr refs = child(root, ns, "references");
		if (!refs) {
			snprintf(why, why_size, "%s without references to earlier messages", msgtype);
			return -EBADMSG;
		}
		char *t = (char *)xmlNodeGetContent(refs);
		if (!t)
			return -ENOMEM;
		r = refs_check(t, sent_ms, why, why_size);
		xmlFree(t);
		if (r < 0)
			return r;
	}
	child_text(root, ns, "scope", scope, sizeof scope);
	if (strcmp(scope, "Restricted") == 0 && !child(root, ns, "restriction")) {
		snprintf(why, why_size, "scope Restricted without restriction");
		return -EBADMSG;
	}
	if (strcmp(scope, "Private") == 0 && !child(root, ns, "addresses")) {
		snprintf(why, why_size, "scope Private without addresses");
		return -EBADMSG;
	}
	int ninfo = 0;
	for (xmlNodePtr info = child(root, ns, "info"); info; info = next_el(info, ns, "info")) {
		int64_t expires_ms = 0, onset_ms = 0, eff_ms = 0;
		ninfo++;
		if (child(info, ns, "effective") &&
		    cap_time(child_text(info, ns, "effective", buf, sizeof buf), &eff_ms) < 0) {
			snprintf(why, why_size, "info %d: effective: '%.40s' is not a CAP date-time",
				 ninfo, buf);
			return -EBADMSG;
		}
		if (child(info, ns, "onset") &&
		    cap_time(child_text(info, ns, "onset", buf, sizeof buf), &onset_ms) < 0) {
			snprintf(why, why_size, "info %d: onset: '%.40s' is not a CAP date-time", ninfo,
				 buf);
			return -EBADMSG;
		}
		if (child(info, ns, "expires")) {
			if (cap_time(child_text(info, ns, "expires", buf, sizeof buf), &expires_ms) < 0) {
				snprintf(why, why_size,
					 "info %d: expires: '%.40s' is not a CAP date-time", ninfo, buf);
				return -EBADMSG;
			}
			/* equal is seen in real cancellations (expire at once) */
			if (expires_ms < sent_ms) {
				snprintf(why, why_size, "info %d: expires is before sent", ninfo);
				return -EBADMSG;
			}
			if (onset_ms && expires_ms < onset_ms) {
				snprintf(why, why_size, "info %d: expires is before onset", ninfo);
				return -EBADMSG;
			}
		}
		int narea = 0;
		for (xmlNodePtr area = child(info, ns, "area"); area; area = next_el(area, ns, "area")) {
			narea++;
			for (xmlNodePtr p = child(area, ns, "polygon"); p; p = next_el(p, ns, "polygon")) {
				char *t = (char *)xmlNodeGetContent(p);
				if (!t)
					return -ENOMEM;
				const char *s = t;
				while (*s && isspace((unsigned char)*s))
					s++;
				if (!*s) {
					note_add(c, "info %d area %d: empty polygon ignored", ninfo, narea);
					xmlFree(t);
					continue;
				}
				char w[200];
				r = polygon_check(s, w, sizeof w);
				xmlFree(t);
				if (r < 0) {
					snprintf(why, why_size, "info %d area %d: %s", ninfo, narea, w);
					return r;
				}
			}
			for (xmlNodePtr p = child(area, ns, "circle"); p; p = next_el(p, ns, "circle")) {
				char w[200];
				text(p, buf, sizeof buf);
				if (!*buf) {
					note_add(c, "info %d area %d: empty circle ignored", ninfo, narea);
					continue;
				}
				if (circle_check(buf, w, sizeof w) < 0) {
					snprintf(why, why_size, "info %d area %d: %s", ninfo, narea, w);
					return -EBADMSG;
				}
			}
		}
	}
	return 0;
}

/* Validates BUF fully; on success C->doc is the tree (caller frees). */
static int cap_validate(struct cap_ctx *c, const uint8_t *buf, size_t len, char *why,
			size_t why_size)
{
	xmlNodePtr root;
	size_t count = 0;
	int r;

	c->doc = met_cap_read(buf, len, 0, why, why_size);
	if (!c->doc)
		return -EBADMSG;
	root = xmlDocGetRootElement(c->doc);
	if (!root) {
		snprintf(why, why_size, "no root element");
		return -EBADMSG;
	}
	r = walk_limits(root, 0, &count);
	if (r < 0) {
		snprintf(why, why_size, r == -ELOOP ? "nested deeper than %d elements" :
			 r == -E2BIG ? "more than %d nodes" : "entity references are not allowed",
			 r == -ELOOP ? CAP_MAX_DEPTH : CAP_MAX_NODES);
		return -EBADMSG;
	}
	if (is_el(root, CAP12_NS, "alert")) {
		c->ns = CAP12_NS;
		c->version = 12;
	} else if (is_el(root, CAP11_NS, "alert")) {
		c->ns = CAP11_NS;
		c->version = 11;
	} else if (is_el(root, CAP10_NS, "alert")) {
		snprintf(why, why_size, "CAP 1.0 (%s) is not supported: CAP 1.1 or 1.2 required",
			 CAP10_NS);
		return -EPROTONOSUPPORT;
	} else {
		snprintf(why, why_size, "not a CAP alert: root element <%s>%s%s%s", root->name,
			 root->ns ? " in namespace " : " without a namespace",
			 root->ns && root->ns->href ? (const char *)root->ns->href : "", "");
		return -EBADMSG;
	}
	if (misplaced_signature(root->children, root) || signature_not_last(root)) {
		snprintf(why, why_size, "signature: ds:Signature must be the last child(ren) of <alert>");
		return -EBADMSG;
	}
	r = schema_validate(c, why, why_size);
	if (r < 0)
		return r;
	r = rules_check(c, root, why, why_size);
	if (r < 0)
		return r;
	/* signatures */
	bool present = child(root, DSIG_NS, "Signature") != NULL;
	if (c->st->sig_policy == MET_SIG_IGNORE) {
		if (present)
			note_add(c, "signature not checked (policy ignore)");
		return 0;
	}
	if (!present) {
		if (c->st->sig_policy == MET_SIG_REQUIRE) {
			snprintf(why, why_size, "signature: required but the alert is unsigned");
			return -EBADMSG;
		}
		return 0;
	}
	struct met_sig_outcome o = { 0 };
	r = met_sig_verify(c->st, c->doc, buf, len, &o);
	if (r < 0) {
		snprintf(why, why_size, "signature: %s", o.detail[0] ? o.detail : strerror(-r));
		return r == -ENOMEM ? r : -EBADMSG;
	}
	switch (o.result) {
	case MET_SIG_INVALID:
		snprintf(why, why_size, "signature: INVALID: %s", o.detail);
		return -EBADMSG;
	case MET_SIG_UNUSABLE:
		if (c->st->sig_policy == MET_SIG_REQUIRE) {
			snprintf(why, why_size, "signature: present but unusable: %s", o.detail);
			return -EBADMSG;
		}
		note_add(c, "signature present but unusable (%s): treated as unsigned", o.detail);
		return 0;
	case MET_SIG_VALID:
		if (!o.trusted && (c->st->sig_policy == MET_SIG_REQUIRE || c->st->n_trusted_certs)) {
			snprintf(why, why_size, "signature: valid but the signer is not trusted%s%s",
				 o.detail[0] ? ": " : "", o.detail);
			return -EBADMSG;
		}
		note_add(c, "signature valid%s, %s%s", o.normalised ? " after whitespace normalisation" : "",
			 o.trusted ? "trusted" : "untrusted (no trusted_cert configured)",
			 o.weak ? ", weak algorithm (SHA-1)" : "");
		return 0;
	default:
		return 0;
	}
}

int met_cap_check(void *state, const char *name, const uint8_t *buf, size_t len, int64_t now_ms,
		  struct wf_adapter_sink *sink)
{
	struct cap_ctx c = { .st = state, .sink = sink };
	char why[WF_ADAPTER_REASON_MAX];
	int r;

	if (!met_cap_sniff(buf, len)) {
		wf_adapter_reason(sink, "not XML: --check validates CAP 1.1/1.2 messages");
		return -EBADMSG;
	}
	r = cap_validate(&c, buf, len, why, sizeof why);
	xmlFreeDoc(c.doc);
	if (r < 0) {
		wf_adapter_reason(sink, "%s", why);
		return r;
	}
	if (c.note[0])
		wf_adapter_reason(sink, "%s", c.note);
	return 0;
}

/* --- mapping to events --- */

static void hash_ref(const char *sender, const char *identifier, int64_t sent_ms, char out[33])
{
	char in[1024];
	unsigned char d[32];
	unsigned int n = 32;

	snprintf(in, sizeof in, "%s,%s,%lld", sender, identifier, (long long)sent_ms);
	EVP_Digest(in, strlen(in), d, &n, EVP_sha256(), NULL);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void utf8_truncate(char *s, size_t max)
{
	size_t l = strlen(s);

	if (l <= max)
		return;
	l = max;
	while (l > 0 && ((unsigned char)s[l] & 0xC0) == 0x80)
		l--;
	s[l] = '\0';
}

struct target {
	char region[13];
	int hazard;
};

static int add_target(struct target **t, size_t *n, const char *region, int hazard)
{
	for (size_t i = 0; i < *n; i++)
		if ((*t)[i].hazard == hazard && strcmp((*t)[i].region, region) == 0)
			return 0;
	struct target *nt = realloc(*t, (*n + 1) * sizeof(**t));
	if (!nt)
		return -ENOMEM;
	*t = nt;
	memcpy(nt[*n].region, region, 13);
	nt[*n].hazard = hazard;
	(*n)++;
	return 1;
}

static int info_hazard(struct cap_ctx *c, xmlNodePtr info)
{
	const char *ns = c->ns;
	char vn[256], v[256], key[520], ev[256];
	const char *h;

	for (xmlNodePtr e = child(info, ns, "eventCode"); e; e = next_el(e, ns, "eventCode")) {
		child_text(e, ns, "valueName", vn, sizeof vn);
		child_text(e, ns, "value", v, sizeof v);
		snprintf(key, sizeof key, "%s|%s", vn, v);
		h = met_map_find(c->st->eventcodes, c->st->n_eventcodes, key);
		if (h)
			return wf_hazard_from_string(h);
	}
	child_text(info, ns, "event", ev, sizeof ev);
	h = met_map_find(c->st->events, c->st->n_events, ev);
	return h ? wf_hazard_from_string(h) : -ENOENT;
}

static int emit_info(struct cap_ctx *c, xmlNodePtr root, xmlNodePtr info, Wf__V1__Status status,
		     Wf__V1__MsgType mt, struct target **targets, size_t *ntargets, char *why,
		     size_t why_size)
{
	const char *ns = c->ns;
	char sender[256], identifier[256], buf[1024], hash[33];
	int64_t sent_ms = 0, onset_ms = 0, expires_ms = 0;
	int hazard, r;

	child_text(root, ns, "sender", sender, sizeof sender);
	child_text(root, ns, "identifier", identifier, sizeof identifier);
	cap_time(child_text(root, ns, "sent", buf, sizeof buf), &sent_ms);
	hash_ref(sender, identifier, sent_ms, hash);

	hazard = info_hazard(c, info);
	if (hazard <= 0) {
		child_text(info, ns, "event", buf, sizeof buf);
		snprintf(why, why_size, "no hazard mapping for event '%.100s'", buf);
		return -ENOENT;
	}
	const char *sev = met_map_find(c->st->severities, c->st->n_severities,
				       child_text(info, ns, "severity", buf, sizeof buf));
	int level = sev ? wf_level_from_string(sev) : WF__V1__LEVEL__LEVEL_NONE;
	child_text(info, ns, "certainty", buf, sizeof buf);
	Wf__V1__Certainty cert = strcmp(buf, "Observed") == 0 ? WF__V1__CERTAINTY__CERTAINTY_OBSERVED :
		strcmp(buf, "Likely") == 0 || strcmp(buf, "Very Likely") == 0 ?
		WF__V1__CERTAINTY__CERTAINTY_LIKELY :
		strcmp(buf, "Possible") == 0 ? WF__V1__CERTAINTY__CERTAINTY_POSSIBLE :
		strcmp(buf, "Unlikely") == 0 ? WF__V1__CERTAINTY__CERTAINTY_UNLIKELY :
		WF__V1__CERTAINTY__CERTAINTY_UNKNOWN;
	if (child(info, ns, "onset"))
		cap_time(child_text(info, ns, "onset", buf, sizeof buf), &onset_ms);
	else if (child(info, ns, "effective"))
		cap_time(child_text(info, ns, "effective", buf, sizeof buf), &onset_ms);
	else
		onset_ms = sent_ms;
	if (child(info, ns, "expires"))
		cap_time(child_text(info, ns, "expires", buf, sizeof buf), &expires_ms);
	else
		expires_ms = onset_ms + c->st->cap_default_validity_ms;

	if (expires_ms <= onset_ms) /* expires at once (a cancellation): the wire needs > */
		expires_ms = onset_ms + 1000;
	char textbuf[4200];
	child_text(info, ns, "headline", textbuf, sizeof textbuf);
	if (!*textbuf)
		child_text(info, ns, "description", textbuf, sizeof textbuf);
	if (!*textbuf)
		child_text(info, ns, "event", textbuf, sizeof textbuf);
	utf8_truncate(textbuf, 4096);

	/* regions of this info */
	size_t before = *ntargets;
	for (xmlNodePtr area = child(info, ns, "area"); area; area = next_el(area, ns, "area")) {
		for (xmlNodePtr g = child(area, ns, "geocode"); g; g = next_el(g, ns, "geocode")) {
			char vn[256], v[256], key[520], code[13];
			const char *m;
			child_text(g, ns, "valueName", vn, sizeof vn);
			child_text(g, ns, "value", v, sizeof v);
			snprintf(key, sizeof key, "%s|%s", vn, v);
			m = met_map_find(c->st->geocodes, c->st->n_geocodes, key);
			if (!m) {
				m = met_map_find(c->st->geocodes, c->st->n_geocodes, vn);
				if (m && strcmp(m, "code") == 0)
					m = v;
			}
			if (!m || wf_region_normalize(m, code) < 0 ||
			    (c->st->regions && !wf_region_find(c->st->regions, code)))
				continue;
			int added = add_target(targets, ntargets, code, hazard);
			if (added < 0)
				return added;
			if (!added)
				continue;
			Wf__V1__Event *ev = wf_adapter_event_new();
			if (!ev)
				return -ENOMEM;
			char id[128];
			snprintf(id, sizeof id, "cap-%s-%s-%s", hash, code, wf_hazard_to_string(hazard));
			ev->agency = WF__V1__AGENCY__AGENCY_MET;
			ev->hazard = hazard;
			ev->level = level;
			ev->certainty = cert;
			ev->observed_ms = onset_ms;
			ev->issued_ms = sent_ms;
			ev->expires_ms = expires_ms;
			ev->status = status;
			ev->msg_type = mt;
			utf8_truncate(sender, 256);
			if (wf_adapter_set_str(&ev->id, id) < 0 || wf_adapter_set_str(&ev->region, code) < 0 ||
			    wf_adapter_set_str(&ev->text, textbuf) < 0 ||
			    wf_adapter_set_str(&ev->station, sender) < 0)
				goto oom;
			if (mt != WF__V1__MSG_TYPE__MSG_TYPE_ALERT) {
				char *refs = (char *)xmlNodeGetContent(child(root, ns, "references"));
				char *save = NULL;
				for (char *tok = refs ? strtok_r(refs, " \t\r\n", &save) : NULL; tok;
				     tok = strtok_r(NULL, " \t\r\n", &save)) {
					char *c1 = strchr(tok, ','), *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
					int64_t ms = 0;
					char rh[33], rid[128];
					if (!c2)
						continue;
					*c1 = *c2 = '\0';
					cap_time(c2 + 1, &ms);
					hash_ref(tok, c1 + 1, ms, rh);
					snprintf(rid, sizeof rid, "cap-%s-%s-%s", rh, code,
						 wf_hazard_to_string(hazard));
					if (wf_adapter_add_reference(ev, rid) < 0) {
						xmlFree(refs);
						goto oom;
					}
				}
				xmlFree(refs);
			}
			r = wf_adapter_sink_emit(c->sink, ev);
			if (r < 0)
				return r;
			continue;
oom:
			protobuf_c_message_free_unpacked(&ev->base, NULL);
			return -ENOMEM;
		}
	}
	if (*ntargets == before) {
		snprintf(why, why_size, "no region: no geocode of info maps to a known division "
			 "(see [met.cap.geocode])");
		return -ENOENT;
	}
	return 0;
}

int met_cap_parse(struct met_state *st, const char *name, const uint8_t *buf, size_t len,
		  int64_t now_ms, struct wf_adapter_sink *sink)
{
	struct cap_ctx c = { .st = st, .sink = sink };
	char why[WF_ADAPTER_REASON_MAX], tmp[64];
	struct target *targets = NULL;
	size_t ntargets = 0;
	int r;

	r = cap_validate(&c, buf, len, why, sizeof why);
	if (r < 0) {
		wf_adapter_reason(sink, "%s", why);
		goto out;
	}
	xmlNodePtr root = xmlDocGetRootElement(c.doc);
	child_text(root, c.ns, "status", tmp, sizeof tmp);
	Wf__V1__Status status = strcmp(tmp, "Actual") == 0 ? WF__V1__STATUS__STATUS_ACTUAL :
		strcmp(tmp, "Exercise") == 0 ? WF__V1__STATUS__STATUS_EXERCISE :
		strcmp(tmp, "Test") == 0 ? WF__V1__STATUS__STATUS_TEST : 0;
	child_text(root, c.ns, "msgType", tmp, sizeof tmp);
	Wf__V1__MsgType mt = strcmp(tmp, "Alert") == 0 ? WF__V1__MSG_TYPE__MSG_TYPE_ALERT :
		strcmp(tmp, "Update") == 0 ? WF__V1__MSG_TYPE__MSG_TYPE_UPDATE :
		strcmp(tmp, "Cancel") == 0 ? WF__V1__MSG_TYPE__MSG_TYPE_CANCEL : 0;
	if (!status || !mt) /* System/Draft, Ack/Error: nothing to grade */
		goto out;
	/* Prefer Chinese info blocks when there are any (one event per region
	 * and hazard either way). */
	bool have_zh = false;
	for (xmlNodePtr info = child(root, c.ns, "info"); info; info = next_el(info, c.ns, "info"))
		if (strncmp(child_text(info, c.ns, "language", tmp, sizeof tmp), "zh", 2) == 0)
			have_zh = true;
	for (xmlNodePtr info = child(root, c.ns, "info"); info; info = next_el(info, c.ns, "info")) {
		if (have_zh && strncmp(child_text(info, c.ns, "language", tmp, sizeof tmp), "zh", 2))
			continue;
		r = emit_info(&c, root, info, status, mt, &targets, &ntargets, why, sizeof why);
		if (r == -ENOENT) {
			if (st->reject_unmapped) {
				wf_adapter_reason(sink, "%s", why);
				r = -EINVAL;
				goto out;
			}
			r = 0;
			continue;
		}
		if (r < 0) {
			wf_adapter_reason(sink, "%s", r == -ENOMEM ? "out of memory" : why);
			goto out;
		}
	}
	r = 0;
out:
	free(targets);
	xmlFreeDoc(c.doc);
	return r;
}
