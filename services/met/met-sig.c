/* met-sig: XML-DSig verification of CAP alerts with xmlsec (OpenSSL), per
 * ../shared/design/CAP-SIGNATURES.md: only URI="" references, a fixed list
 * of transforms, every top-level signature on a copy without its siblings,
 * both the return code and the status read, canonical base64 required,
 * and trust decided by pinning: the signing key must equal the public key
 * of one of the configured trusted certificates. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <xmlsec/crypto.h>
#include <xmlsec/errors.h>
#include <xmlsec/io.h>
#include <xmlsec/keys.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/xmltree.h>
#include <xmlsec/openssl/evp.h>

#include "met.h"

#define DSIG_NS "http://www.w3.org/2000/09/xmldsig#"

struct met_sig {
	EVP_PKEY **trusted;
	size_t n_trusted;
	/* One keys manager for every verification (NULL under policy ignore):
	 * its init loads the system CA store (X509_STORE_set_default_paths),
	 * which took 4/5 of a signed file's time when done per signature.
	 * Verifying reads keys from KeyInfo only and adds nothing to it. */
	xmlSecKeysMngrPtr mngr;
};

static int sig_users;

static void xmlsec_quiet(const char *file, int line, const char *func, const char *errorObject,
			 const char *errorSubject, int reason, const char *msg)
{
}

xmlDocPtr met_cap_read(const uint8_t *buf, size_t len, int extra, char *why, size_t why_size);

int met_sig_init(struct met_state *st, char *err, size_t err_size)
{
	struct met_sig *s = calloc(1, sizeof(*s));

	if (!s)
		return -ENOMEM;
	st->sig = s;
	for (size_t i = 0; i < st->n_trusted_certs; i++) {
		FILE *f = fopen(st->trusted_certs[i], "re");
		if (!f) {
			snprintf(err, err_size, "%s: %s", st->trusted_certs[i], strerror(errno));
			return -errno;
		}
		X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
		fclose(f);
		EVP_PKEY *k = x ? X509_get_pubkey(x) : NULL;
		X509_free(x);
		if (!k) {
			snprintf(err, err_size, "%s: not a PEM certificate", st->trusted_certs[i]);
			return -EINVAL;
		}
		EVP_PKEY **n = realloc(s->trusted, (s->n_trusted + 1) * sizeof(*n));
		if (!n) {
			EVP_PKEY_free(k);
			return -ENOMEM;
		}
		s->trusted = n;
		n[s->n_trusted++] = k;
	}
	if (st->sig_policy != MET_SIG_IGNORE && sig_users++ == 0) {
		xmlInitParser();
		if (xmlSecInit() < 0 || xmlSecCheckVersion() != 1 ||
		    xmlSecCryptoAppInit(NULL) < 0 || xmlSecCryptoInit() < 0) {
			snprintf(err, err_size, "xmlsec initialisation failed");
			sig_users--;
			return -EIO;
		}
		xmlSecErrorsSetCallback(xmlsec_quiet);
		xmlSecIOCleanupCallbacks(); /* no file/http/ftp loaders; URI="" still works */
	}
	if (st->sig_policy != MET_SIG_IGNORE) {
		s->mngr = xmlSecKeysMngrCreate();
		if (!s->mngr || xmlSecCryptoAppDefaultKeysMngrInit(s->mngr) < 0) {
			snprintf(err, err_size, "xmlsec keys manager initialisation failed");
			return -EIO;
		}
	}
	return 0;
}

void met_sig_free(struct met_state *st)
{
	struct met_sig *s = st->sig;

	if (!s)
		return;
	for (size_t i = 0; i < s->n_trusted; i++)
		EVP_PKEY_free(s->trusted[i]);
	free(s->trusted);
	if (s->mngr)
		xmlSecKeysMngrDestroy(s->mngr);
	free(s);
	st->sig = NULL;
	if (st->sig_policy != MET_SIG_IGNORE && sig_users > 0 && --sig_users == 0) {
		xmlSecCryptoShutdown();
		xmlSecCryptoAppShutdown();
		xmlSecShutdown();
	}
}

/* XSD base64Binary: canonical pad bits (CAP-SIGNATURES.md, pitfalls). */
static bool base64_canonical(const char *s)
{
	char buf[16384];
	size_t n = 0;

	for (; *s; s++) {
		if (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			continue;
		if (n + 1 >= sizeof buf)
			return true; /* long values (certificates): only the tail matters */
		buf[n++] = *s;
	}
	if (n == 0 || n % 4)
		return false;
	if (buf[n - 1] == '=' && buf[n - 2] == '=')
		return strchr("AQgw", buf[n - 3]) != NULL;
	if (buf[n - 1] == '=')
		return strchr("AEIMQUYcgkosw048", buf[n - 2]) != NULL;
	return true;
}

static bool walk_base64(xmlNodePtr n)
{
	static const char *const names[] = { "DigestValue", "SignatureValue", "X509Certificate",
					     "Modulus", "Exponent" };
	for (; n; n = n->next) {
		if (n->type != XML_ELEMENT_NODE)
			continue;
		for (size_t i = 0; i < 5; i++) {
			if (strcmp((const char *)n->name, names[i]) == 0) {
				xmlChar *t = xmlNodeGetContent(n);
				bool ok = t && base64_canonical((const char *)t);
				xmlFree(t);
				if (!ok)
					return false;
			}
		}
		if (!walk_base64(n->children))
			return false;
	}
	return true;
}

static bool is_sig(xmlNodePtr n)
{
	return n->type == XML_ELEMENT_NODE && xmlSecCheckNodeName(n, xmlSecNodeSignature, xmlSecDSigNs);
}

static bool weak_alg(xmlNodePtr sig)
{
	bool weak = false;
	xmlChar *s = xmlNodeGetContent(sig);

	(void)s;
	xmlFree(s);
	for (xmlNodePtr si = sig->children; si; si = si->next)
		for (xmlNodePtr m = si->children; m; m = m->next) {
			xmlChar *alg = m->type == XML_ELEMENT_NODE ? xmlGetProp(m, BAD_CAST "Algorithm") : NULL;
			if (alg && strstr((const char *)alg, "sha1"))
				weak = true;
			xmlFree(alg);
		}
	return weak;
}

/* Verifies signature number IDX of DOC on a copy without its siblings.
 * Returns 1 valid, 0 invalid (status), -1 not processable. */
static int verify_one(struct met_state *st, xmlDocPtr doc, int idx, bool *trusted, char *detail,
		      size_t dsize)
{
	xmlDocPtr copy = xmlCopyDoc(doc, 1);
	xmlNodePtr root, n, next, mine = NULL;
	xmlSecDSigCtxPtr ctx = NULL;
	int i = 0, res = -1;

	*trusted = false;
	if (!copy)
		return -1;
	root = xmlDocGetRootElement(copy);
	for (n = root->children; n; n = next) {
		next = n->next;
		if (!is_sig(n))
			continue;
		if (i++ == idx) {
			mine = n;
		} else {
			xmlUnlinkNode(n);
			xmlFreeNode(n);
		}
	}
	if (!mine || !st->sig || !st->sig->mngr)
		goto out;
	ctx = xmlSecDSigCtxCreate(st->sig->mngr);
	if (!ctx)
		goto out;
	ctx->enabledReferenceUris = xmlSecTransformUriTypeEmpty;
	ctx->flags |= XMLSEC_DSIG_FLAGS_IGNORE_MANIFESTS;
	/* integrity here; trust is pinning, below */
	ctx->keyInfoReadCtx.flags |= XMLSEC_KEYINFO_FLAGS_X509DATA_DONT_VERIFY_CERTS;
	xmlSecTransformId sig_ids[] = {
		xmlSecTransformInclC14NId, xmlSecTransformInclC14NWithCommentsId,
		xmlSecTransformInclC14N11Id, xmlSecTransformInclC14N11WithCommentsId,
		xmlSecTransformExclC14NId, xmlSecTransformExclC14NWithCommentsId,
		xmlSecTransformRsaSha1Id, xmlSecTransformRsaSha256Id, xmlSecTransformRsaSha384Id,
		xmlSecTransformRsaSha512Id, xmlSecTransformEcdsaSha256Id, xmlSecTransformEcdsaSha384Id,
		xmlSecTransformEcdsaSha512Id,
	};
	xmlSecTransformId ref_ids[] = {
		xmlSecTransformEnvelopedId, xmlSecTransformInclC14NId,
		xmlSecTransformInclC14NWithCommentsId, xmlSecTransformInclC14N11Id,
		xmlSecTransformInclC14N11WithCommentsId, xmlSecTransformExclC14NId,
		xmlSecTransformExclC14NWithCommentsId, xmlSecTransformSha1Id, xmlSecTransformSha256Id,
		xmlSecTransformSha384Id, xmlSecTransformSha512Id,
	};
	for (size_t k = 0; k < sizeof sig_ids / sizeof sig_ids[0]; k++)
		if (xmlSecDSigCtxEnableSignatureTransform(ctx, sig_ids[k]) < 0)
			goto out;
	for (size_t k = 0; k < sizeof ref_ids / sizeof ref_ids[0]; k++)
		if (xmlSecDSigCtxEnableReferenceTransform(ctx, ref_ids[k]) < 0)
			goto out;
	xmlSecPtrListAdd(&ctx->keyInfoReadCtx.enabledKeyData, BAD_CAST xmlSecKeyDataX509Id);
	xmlSecPtrListAdd(&ctx->keyInfoReadCtx.enabledKeyData, BAD_CAST xmlSecKeyDataValueId);
	xmlSecPtrListAdd(&ctx->keyInfoReadCtx.enabledKeyData, BAD_CAST xmlSecKeyDataRsaId);
	xmlSecPtrListAdd(&ctx->keyInfoReadCtx.enabledKeyData, BAD_CAST xmlSecKeyDataEcdsaId);
	if (xmlSecDSigCtxVerify(ctx, mine) < 0) {
		snprintf(detail, dsize, "not processable (malformed, unknown key or forbidden URI/transform)");
		res = -1;
		goto out;
	}
	if (xmlSecPtrListGetSize(&ctx->signedInfoReferences) != 1) {
		snprintf(detail, dsize, "exactly one Reference required");
		res = 0;
		goto out;
	}
	if (ctx->status != xmlSecDSigStatusSucceeded) {
		snprintf(detail, dsize, "digest or signature value does not match");
		res = 0;
		goto out;
	}
	res = 1;
	if (ctx->signKey) {
		xmlSecKeyDataPtr v = xmlSecKeyGetValue(ctx->signKey);
		EVP_PKEY *k = v ? xmlSecOpenSSLEvpKeyDataGetEvp(v) : NULL;
		for (size_t t = 0; k && st->sig && t < st->sig->n_trusted; t++)
			if (EVP_PKEY_eq(k, st->sig->trusted[t]) == 1)
				*trusted = true;
	}
out:
	if (ctx)
		xmlSecDSigCtxDestroy(ctx);
	xmlFreeDoc(copy);
	return res;
}

static int verify_doc(struct met_state *st, xmlDocPtr doc, struct met_sig_outcome *out,
		      bool *any_invalid)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);
	int nsig = 0, best = -1;

	for (xmlNodePtr n = root->children; n; n = n->next)
		if (is_sig(n))
			nsig++;
	*any_invalid = false;
	for (int i = 0; i < nsig; i++) {
		bool trusted = false;
		char d[200] = "";
		int r = verify_one(st, doc, i, &trusted, d, sizeof d);
		if (r == 1) {
			if (best < 1 || (trusted && !out->trusted)) {
				out->trusted = trusted;
				snprintf(out->detail, sizeof out->detail, "signature %d of %d", i + 1, nsig);
			}
			best = 1;
		} else if (r == 0) {
			*any_invalid = true;
			if (best < 0) {
				best = 0;
				snprintf(out->detail, sizeof out->detail, "%s", d);
			}
		} else if (best < 0 && !out->detail[0]) {
			snprintf(out->detail, sizeof out->detail, "%s", d);
		}
	}
	return best;
}

int met_sig_verify(struct met_state *st, xmlDocPtr doc, const uint8_t *buf, size_t len,
		   struct met_sig_outcome *out)
{
	xmlNodePtr root = xmlDocGetRootElement(doc);
	bool any_invalid = false;
	int best;

	memset(out, 0, sizeof(*out));
	for (xmlNodePtr n = root->children; n; n = n->next) {
		if (!is_sig(n))
			continue;
		if (weak_alg(n))
			out->weak = true;
		if (!walk_base64(n->children)) {
			out->result = MET_SIG_INVALID;
			snprintf(out->detail, sizeof out->detail, "non-canonical base64 value");
			return 0;
		}
	}
	best = verify_doc(st, doc, out, &any_invalid);
	if (best == 0) {
		/* Signed compact, published indented: one defensible second try. */
		char why[128];
		xmlDocPtr nb = met_cap_read(buf, len, XML_PARSE_NOBLANKS, why, sizeof why);
		if (nb) {
			xmlNodePtr n, next;
			for (n = nb->children; n; n = next) {
				next = n->next;
				if (n->type == XML_PI_NODE || n->type == XML_COMMENT_NODE) {
					xmlUnlinkNode(n);
					xmlFreeNode(n);
				}
			}
			struct met_sig_outcome o2 = { 0 };
			bool inv2;
			if (verify_doc(st, nb, &o2, &inv2) == 1) {
				*out = o2;
				out->weak = out->weak || o2.weak;
				out->normalised = true;
				best = 1;
			}
			xmlFreeDoc(nb);
		}
	}
	out->result = best == 1 ? MET_SIG_VALID : best == 0 ? MET_SIG_INVALID : MET_SIG_UNUSABLE;
	return 0;
}
