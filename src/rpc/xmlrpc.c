/*
 * xmlrpc: decodes XML-RPC calls into RpcRequests and encodes XAPI replies.
 *
 * The request body comes from the network, so parsing is defensive first:
 *
 *  - the body must be valid UTF-8 (no NUL bytes); libxml2 is told to ignore
 *    any encoding declaration, so what we validated is what it reads;
 *  - libxml2 runs with XML_PARSE_NONET and without NOENT, DTDLOAD or HUGE,
 *    so its own size and depth limits stay on, and nothing is fetched;
 *  - the SAX hook for a DOCTYPE stops the parser at once, before the
 *    internal subset is read, so no entity is ever declared, let alone
 *    expanded ("billion laughs", XXE);
 *  - a second SAX hook stops the parser when elements nest deeper than any
 *    valid call can, so the tree handed to the recursive decoder is bounded;
 *    the decoder itself also counts value levels against RPC_MAX_DEPTH;
 *  - libxml2's error reports go to a per-parse structured handler, never to
 *    stderr, and only the first one reaches the client, trimmed.
 *
 * Decoding walks the tree with one table of value types.  Encoding appends
 * to one GString with a hand-rolled escaper, because a get_all_records
 * reply can be megabytes and must take milliseconds (see the benchmark in
 * tests/unit/test-xmlrpc.c).  The escaper also makes any string safe for
 * XML 1.0: invalid UTF-8 and characters XML cannot carry become U+FFFD.
 */
#include "rpc/xmlrpc.h"

#include <math.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xmlversion.h>

#include "common/xerr.h"

#define XMLRPC_UNMARSHAL "XMLRPC_UNMARSHAL_FAILURE"

/*
 * Element depth of the deepest valid call: methodCall, params and param,
 * then three elements per value level (value, array|struct, data|member),
 * then a scalar or name element.  The guard sits a little above it so that
 * ordinary over-nesting is reported by the decoder's clearer message.
 */
#define XMLRPC_MAX_ELEMENT_DEPTH (3 + 3 * RPC_MAX_DEPTH + 8)

/* libxml2 2.12 made the structured error handler take a const error. */
#if LIBXML_VERSION >= 21200
#define XMLRPC_ERROR_CONST const
#else
#define XMLRPC_ERROR_CONST
#endif

/* Longest libxml2 message or element name quoted back to the client. */
#define XMLRPC_MAX_QUOTE 120

/* Per-parse state, reached from the libxml2 context's _private. */
typedef struct {
	int depth;
	gboolean refused_dtd;
	gboolean too_deep;
	char *first_error;
} XmlrpcParse;

/* ---- errors ---- */

static void G_GNUC_PRINTF(2, 3)
xmlrpc_fail(GError **error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	xerr_set(error, XMLRPC_UNMARSHAL, msg, NULL);
}

/* An element name fit to quote in an error: short, and valid UTF-8 since
 * the whole body was validated. */
static const char *
xmlrpc_quote_name(const xmlNode *n)
{
	const char *name = (const char *)n->name;

	return strlen(name) <= XMLRPC_MAX_QUOTE ? name : "(long name)";
}

/* ---- libxml2 hooks ---- */

static void
xmlrpc_sax_error(void *user, XMLRPC_ERROR_CONST xmlError *err)
{
	xmlParserCtxtPtr ctxt = user;
	XmlrpcParse *st = ctxt->_private;

	if (st->first_error != NULL || err == NULL || err->message == NULL)
		return;
	g_autofree char *msg = g_strchomp(g_strdup(err->message));
	if (!g_utf8_validate(msg, -1, NULL))
		st->first_error = g_strdup_printf("line %d: not well-formed",
		    err->line);
	else if (g_utf8_strlen(msg, -1) > XMLRPC_MAX_QUOTE) {
		g_autofree char *cut = g_utf8_substring(msg, 0,
		    XMLRPC_MAX_QUOTE);
		st->first_error = g_strdup_printf("line %d: %s...",
		    err->line, cut);
	} else
		st->first_error = g_strdup_printf("line %d: %s", err->line,
		    msg);
}

/* Called at "<!DOCTYPE": refuse before any declaration is read. */
static void
xmlrpc_sax_doctype(void *user, const xmlChar *name, const xmlChar *external_id,
    const xmlChar *system_id)
{
	xmlParserCtxtPtr ctxt = user;
	XmlrpcParse *st = ctxt->_private;

	st->refused_dtd = TRUE;
	xmlStopParser(ctxt);
}

static void
xmlrpc_sax_start(void *user, const xmlChar *localname, const xmlChar *prefix,
    const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
    int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
	xmlParserCtxtPtr ctxt = user;
	XmlrpcParse *st = ctxt->_private;

	if (++st->depth > XMLRPC_MAX_ELEMENT_DEPTH) {
		st->too_deep = TRUE;
		xmlStopParser(ctxt);
		return;
	}
	xmlSAX2StartElementNs(user, localname, prefix, uri, nb_namespaces,
	    namespaces, nb_attributes, nb_defaulted, attributes);
}

static void
xmlrpc_sax_end(void *user, const xmlChar *localname, const xmlChar *prefix,
    const xmlChar *uri)
{
	xmlParserCtxtPtr ctxt = user;
	XmlrpcParse *st = ctxt->_private;

	st->depth--;
	xmlSAX2EndElementNs(user, localname, prefix, uri);
}

static gpointer
xmlrpc_init_once(gpointer unused)
{
	xmlInitParser();
	return NULL;
}

/* Parses BODY into a tree with the safeguards described at the top. */
static xmlDoc *
xmlrpc_read(const char *body, gsize len, GError **error)
{
	static GOnce once = G_ONCE_INIT;
	XmlrpcParse st = { 0 };
	xmlDoc *doc = NULL;

	g_once(&once, xmlrpc_init_once, NULL);
	if (len == 0) {
		xmlrpc_fail(error, "empty request");
		return NULL;
	}
	if (len > G_MAXINT) {
		xmlrpc_fail(error, "request too large");
		return NULL;
	}
	if (!g_utf8_validate(body, len, NULL)) {
		xmlrpc_fail(error, "request is not valid UTF-8");
		return NULL;
	}
	xmlParserCtxtPtr ctxt = xmlCreateMemoryParserCtxt(body, (int)len);
	if (ctxt == NULL) {
		xmlrpc_fail(error, "cannot create XML parser");
		return NULL;
	}
	xmlCtxtUseOptions(ctxt, XML_PARSE_NONET | XML_PARSE_NOCDATA |
	    XML_PARSE_IGNORE_ENC | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
	ctxt->_private = &st;
	ctxt->sax->serror = xmlrpc_sax_error;
	ctxt->sax->internalSubset = xmlrpc_sax_doctype;
	ctxt->sax->externalSubset = xmlrpc_sax_doctype;
	ctxt->sax->startElementNs = xmlrpc_sax_start;
	ctxt->sax->endElementNs = xmlrpc_sax_end;

	xmlParseDocument(ctxt);

	/* The hooks refuse any DTD; checking the tree too costs nothing. */
	if (ctxt->myDoc != NULL && (ctxt->myDoc->intSubset != NULL ||
	    ctxt->myDoc->extSubset != NULL))
		st.refused_dtd = TRUE;
	if (ctxt->wellFormed && !st.refused_dtd && !st.too_deep) {
		doc = ctxt->myDoc;
		ctxt->myDoc = NULL;
	} else if (st.refused_dtd)
		xmlrpc_fail(error, "DOCTYPE and entity declarations are not "
		    "allowed");
	else if (st.too_deep)
		xmlrpc_fail(error, "XML nested too deeply");
	else
		xmlrpc_fail(error, "malformed XML: %s",
		    st.first_error ? st.first_error : "not well-formed");
	if (ctxt->myDoc != NULL)
		xmlFreeDoc(ctxt->myDoc);
	ctxt->myDoc = NULL;
	ctxt->_private = NULL;
	xmlFreeParserCtxt(ctxt);
	g_free(st.first_error);
	return doc;
}

/* ---- tree helpers ---- */

static gboolean
xmlrpc_is(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && n->ns == NULL &&
	    strcmp((const char *)n->name, name) == 0;
}

static gboolean
xmlrpc_blank(const xmlChar *s)
{
	for (; s != NULL && *s; s++)
		if (!g_ascii_isspace(*s))
			return FALSE;
	return TRUE;
}

/* The first element at or after N, skipping comments, processing
 * instructions and whitespace.  Anything else (text, entity references)
 * sets *BAD and ends the walk. */
static xmlNode *
xmlrpc_skip(xmlNode *n, gboolean *bad)
{
	for (; n != NULL; n = n->next) {
		switch (n->type) {
		case XML_ELEMENT_NODE:
			return n;
		case XML_COMMENT_NODE:
		case XML_PI_NODE:
			break;
		case XML_TEXT_NODE:
			if (xmlrpc_blank(n->content))
				break;
			*bad = TRUE;
			return NULL;
		default:
			*bad = TRUE;
			return NULL;
		}
	}
	return NULL;
}

/* The text inside N, which may hold only text and comments.  Returns NULL
 * (and sets ERROR) when N has child elements. */
static char *
xmlrpc_text(const xmlNode *n, GError **error)
{
	g_autoptr(GString) s = g_string_new(NULL);

	for (const xmlNode *c = n->children; c != NULL; c = c->next) {
		if (c->type == XML_TEXT_NODE)
			g_string_append(s, (const char *)c->content);
		else if (c->type != XML_COMMENT_NODE &&
		    c->type != XML_PI_NODE) {
			xmlrpc_fail(error, "unexpected content in <%s>",
			    xmlrpc_quote_name(n));
			return NULL;
		}
	}
	return g_string_free(g_steal_pointer(&s), FALSE);
}

/* ---- decoding ---- */

static JsonNode *xmlrpc_decode_value(const xmlNode *value, int level,
    GError **error);

static JsonNode *
xmlrpc_decode_int(const xmlNode *n, int level, GError **error)
{
	g_autofree char *text = xmlrpc_text(n, error);
	gint64 v;

	if (text == NULL)
		return NULL;
	g_strstrip(text);
	/* XML-RPC allows a leading plus sign; GLib does not. */
	const char *digits = text[0] == '+' && g_ascii_isdigit(text[1]) ?
	    text + 1 : text;
	if (!g_ascii_string_to_signed(digits, 10, G_MININT64, G_MAXINT64, &v,
	    NULL)) {
		xmlrpc_fail(error, "bad <%s> value", xmlrpc_quote_name(n));
		return NULL;
	}
	return json_node_init_int(json_node_alloc(), v);
}

static JsonNode *
xmlrpc_decode_boolean(const xmlNode *n, int level, GError **error)
{
	g_autofree char *text = xmlrpc_text(n, error);

	if (text == NULL)
		return NULL;
	g_strstrip(text);
	if (strcmp(text, "0") != 0 && strcmp(text, "1") != 0) {
		xmlrpc_fail(error, "bad <boolean> value (must be 0 or 1)");
		return NULL;
	}
	return json_node_init_boolean(json_node_alloc(), text[0] == '1');
}

static JsonNode *
xmlrpc_decode_double(const xmlNode *n, int level, GError **error)
{
	g_autofree char *text = xmlrpc_text(n, error);
	char *end;

	if (text == NULL)
		return NULL;
	g_strstrip(text);
	double v = g_ascii_strtod(text, &end);
	if (text[0] == 0 || *end != 0 || !isfinite(v)) {
		xmlrpc_fail(error, "bad <double> value");
		return NULL;
	}
	return json_node_init_double(json_node_alloc(), v);
}

/* string, dateTime.iso8601 and base64 all arrive as their text. */
static JsonNode *
xmlrpc_decode_string(const xmlNode *n, int level, GError **error)
{
	g_autofree char *text = xmlrpc_text(n, error);

	if (text == NULL)
		return NULL;
	return json_node_init_string(json_node_alloc(), text);
}

static JsonNode *
xmlrpc_decode_nil(const xmlNode *n, int level, GError **error)
{
	gboolean bad = FALSE;

	if (xmlrpc_skip(n->children, &bad) != NULL || bad) {
		xmlrpc_fail(error, "<nil> must be empty");
		return NULL;
	}
	return json_node_init_null(json_node_alloc());
}

/* <member> holds one <name> and one <value>, in either order. */
static gboolean
xmlrpc_decode_member(const xmlNode *m, JsonObject *obj, int level,
    GError **error)
{
	const xmlNode *name = NULL, *value = NULL;
	gboolean bad = FALSE;

	for (xmlNode *c = xmlrpc_skip(m->children, &bad); c != NULL;
	    c = xmlrpc_skip(c->next, &bad)) {
		if (xmlrpc_is(c, "name") && name == NULL)
			name = c;
		else if (xmlrpc_is(c, "value") && value == NULL)
			value = c;
		else {
			xmlrpc_fail(error, "unexpected <%s> in <member>",
			    xmlrpc_quote_name(c));
			return FALSE;
		}
	}
	if (bad || name == NULL || value == NULL) {
		xmlrpc_fail(error, "<member> needs one <name> and one <value>");
		return FALSE;
	}
	g_autofree char *key = xmlrpc_text(name, error);
	if (key == NULL)
		return FALSE;
	JsonNode *v = xmlrpc_decode_value(value, level + 1, error);
	if (v == NULL)
		return FALSE;
	json_object_set_member(obj, key, v);
	return TRUE;
}

static JsonNode *
xmlrpc_decode_struct(const xmlNode *n, int level, GError **error)
{
	g_autoptr(JsonObject) obj = json_object_new();
	gboolean bad = FALSE;

	for (xmlNode *c = xmlrpc_skip(n->children, &bad); c != NULL;
	    c = xmlrpc_skip(c->next, &bad)) {
		if (!xmlrpc_is(c, "member")) {
			xmlrpc_fail(error, "unexpected <%s> in <struct>",
			    xmlrpc_quote_name(c));
			return NULL;
		}
		if (!xmlrpc_decode_member(c, obj, level, error))
			return NULL;
	}
	if (bad) {
		xmlrpc_fail(error, "unexpected text in <struct>");
		return NULL;
	}
	return json_node_init_object(json_node_alloc(), obj);
}

static JsonNode *
xmlrpc_decode_array(const xmlNode *n, int level, GError **error)
{
	gboolean bad = FALSE;
	xmlNode *data = xmlrpc_skip(n->children, &bad);

	if (bad || data == NULL || !xmlrpc_is(data, "data") ||
	    xmlrpc_skip(data->next, &bad) != NULL || bad) {
		xmlrpc_fail(error, "<array> must hold exactly one <data>");
		return NULL;
	}
	g_autoptr(JsonArray) arr = json_array_new();
	for (xmlNode *c = xmlrpc_skip(data->children, &bad); c != NULL;
	    c = xmlrpc_skip(c->next, &bad)) {
		if (!xmlrpc_is(c, "value")) {
			xmlrpc_fail(error, "unexpected <%s> in <data>",
			    xmlrpc_quote_name(c));
			return NULL;
		}
		JsonNode *v = xmlrpc_decode_value(c, level + 1, error);
		if (v == NULL)
			return NULL;
		json_array_add_element(arr, v);
	}
	if (bad) {
		xmlrpc_fail(error, "unexpected text in <data>");
		return NULL;
	}
	return json_node_init_array(json_node_alloc(), arr);
}

typedef JsonNode *(*XmlrpcDecodeFn)(const xmlNode *n, int level,
    GError **error);

static const struct {
	const char *name;
	XmlrpcDecodeFn decode;
} xmlrpc_types[] = {
	{ .name = "string", .decode = xmlrpc_decode_string },
	{ .name = "int", .decode = xmlrpc_decode_int },
	{ .name = "i4", .decode = xmlrpc_decode_int },
	{ .name = "i8", .decode = xmlrpc_decode_int },
	{ .name = "boolean", .decode = xmlrpc_decode_boolean },
	{ .name = "double", .decode = xmlrpc_decode_double },
	{ .name = "struct", .decode = xmlrpc_decode_struct },
	{ .name = "array", .decode = xmlrpc_decode_array },
	{ .name = "dateTime.iso8601", .decode = xmlrpc_decode_string },
	{ .name = "base64", .decode = xmlrpc_decode_string },
	{ .name = "nil", .decode = xmlrpc_decode_nil },
};

/* Decodes the <value> element VALUE found at nesting LEVEL (1 for a
 * parameter).  A <value> with no element inside is an untyped string. */
static JsonNode *
xmlrpc_decode_value(const xmlNode *value, int level, GError **error)
{
	gboolean bad = FALSE;

	if (level > RPC_MAX_DEPTH) {
		xmlrpc_fail(error, "value nested deeper than %d levels",
		    RPC_MAX_DEPTH);
		return NULL;
	}
	xmlNode *typed = xmlrpc_skip(value->children, &bad);
	if (typed == NULL)
		return xmlrpc_decode_string(value, level, error);
	if (bad || xmlrpc_skip(typed->next, &bad) != NULL || bad) {
		xmlrpc_fail(error, "<value> must hold one typed element or "
		    "text");
		return NULL;
	}
	for (gsize i = 0; i < G_N_ELEMENTS(xmlrpc_types); i++)
		if (xmlrpc_is(typed, xmlrpc_types[i].name))
			return xmlrpc_types[i].decode(typed, level, error);
	xmlrpc_fail(error, "unknown element <%s> in <value>",
	    xmlrpc_quote_name(typed));
	return NULL;
}

static gboolean
xmlrpc_decode_params(const xmlNode *params, JsonArray *out, GError **error)
{
	gboolean bad = FALSE;

	for (xmlNode *p = xmlrpc_skip(params->children, &bad); p != NULL;
	    p = xmlrpc_skip(p->next, &bad)) {
		if (!xmlrpc_is(p, "param")) {
			xmlrpc_fail(error, "unexpected <%s> in <params>",
			    xmlrpc_quote_name(p));
			return FALSE;
		}
		xmlNode *v = xmlrpc_skip(p->children, &bad);
		if (bad || v == NULL || !xmlrpc_is(v, "value") ||
		    xmlrpc_skip(v->next, &bad) != NULL || bad) {
			xmlrpc_fail(error, "<param> must hold one <value>");
			return FALSE;
		}
		JsonNode *node = xmlrpc_decode_value(v, 1, error);
		if (node == NULL)
			return FALSE;
		json_array_add_element(out, node);
	}
	if (bad) {
		xmlrpc_fail(error, "unexpected text in <params>");
		return FALSE;
	}
	return TRUE;
}

RpcRequest *
xmlrpc_parse_request(const char *body, gsize len, GError **error)
{
	const xmlNode *name = NULL, *params = NULL;
	gboolean bad = FALSE;

	xmlDoc *doc = xmlrpc_read(body, len, error);
	if (doc == NULL)
		return NULL;
	g_autoptr(RpcRequest) req = g_new0(RpcRequest, 1);
	req->encoding = RPC_XML;
	req->params = json_array_new();

	const xmlNode *root = xmlDocGetRootElement(doc);
	if (root == NULL || !xmlrpc_is(root, "methodCall")) {
		xmlrpc_fail(error, "root element must be <methodCall>");
		goto fail;
	}
	for (xmlNode *c = xmlrpc_skip(root->children, &bad); c != NULL;
	    c = xmlrpc_skip(c->next, &bad)) {
		if (xmlrpc_is(c, "methodName") && name == NULL)
			name = c;
		else if (xmlrpc_is(c, "params") && params == NULL)
			params = c;
		else {
			xmlrpc_fail(error, "unexpected <%s> in <methodCall>",
			    xmlrpc_quote_name(c));
			goto fail;
		}
	}
	if (bad || name == NULL) {
		xmlrpc_fail(error, "<methodCall> needs a <methodName>");
		goto fail;
	}
	req->method = xmlrpc_text(name, error);
	if (req->method == NULL)
		goto fail;
	g_strstrip(req->method);
	if (req->method[0] == 0) {
		xmlrpc_fail(error, "empty <methodName>");
		goto fail;
	}
	if (params != NULL && !xmlrpc_decode_params(params, req->params,
	    error))
		goto fail;
	xmlFreeDoc(doc);
	return g_steal_pointer(&req);
fail:
	xmlFreeDoc(doc);
	return NULL;
}

/* ---- encoding ---- */

/* g_string_append_len without GLib 2.74's overlap checks: the encoder's
 * hot path.  GString's fields are public, so this stays within its API. */
static inline void
xmlrpc_out(GString *s, const char *p, gsize n)
{
	if (G_LIKELY(s->len + n < s->allocated_len)) {
		memcpy(s->str + s->len, p, n);
		s->len += n;
		s->str[s->len] = 0;
	} else
		g_string_append_len(s, p, (gssize)n);
}

#define XMLRPC_OUT_LIT(s, lit) xmlrpc_out((s), "" lit, sizeof(lit) - 1)

/*
 * Appends P as XML character data.  Runs of plain bytes are copied in one
 * go; & < > are escaped, CR becomes &#13; so that it survives end-of-line
 * normalisation, and anything XML 1.0 cannot carry (control characters,
 * U+FFFE, U+FFFF, bytes that are not UTF-8) becomes U+FFFD.
 */
static void
xmlrpc_append_escaped(GString *s, const char *p)
{
	const char *run = p;

	while (*p != 0) {
		guchar c = (guchar)*p;
		const char *rep;
		gsize skip = 1;

		if (c >= 0x20 && c < 0x80) {
			if (c == '&')
				rep = "&amp;";
			else if (c == '<')
				rep = "&lt;";
			else if (c == '>')
				rep = "&gt;";
			else {
				p++;
				continue;
			}
		} else if (c == '\t' || c == '\n') {
			p++;
			continue;
		} else if (c == '\r')
			rep = "&#13;";
		else if (c < 0x20)
			rep = "\xEF\xBF\xBD";
		else {
			gunichar u = g_utf8_get_char_validated(p, -1);
			if (u == (gunichar)-1 || u == (gunichar)-2)
				rep = "\xEF\xBF\xBD";
			else if (u == 0xFFFE || u == 0xFFFF) {
				rep = "\xEF\xBF\xBD";
				skip = g_utf8_skip[c];
			} else {
				p += g_utf8_skip[c];
				continue;
			}
		}
		xmlrpc_out(s, run, (gsize)(p - run));
		xmlrpc_out(s, rep, strlen(rep));
		p += skip;
		run = p;
	}
	xmlrpc_out(s, run, (gsize)(p - run));
}

static void
xmlrpc_append_string(GString *s, const char *str)
{
	XMLRPC_OUT_LIT(s, "<value><string>");
	xmlrpc_append_escaped(s, str);
	XMLRPC_OUT_LIT(s, "</string></value>");
}

static void xmlrpc_append_value(GString *s, JsonNode *node);

/* XAPI sends 64-bit ints as strings.  Formatted by hand: printf is the
 * slowest step of a large reply otherwise. */
static void
xmlrpc_append_int(GString *s, gint64 v)
{
	char buf[24];
	char *p = buf + sizeof(buf);
	guint64 u = v < 0 ? -(guint64)v : (guint64)v;

	do {
		*--p = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		*--p = '-';
	XMLRPC_OUT_LIT(s, "<value><string>");
	xmlrpc_out(s, p, (gsize)(buf + sizeof(buf) - p));
	XMLRPC_OUT_LIT(s, "</string></value>");
}

/* The shortest of %.15g, %.16g and %.17g that reads back as V, so that
 * 0.1 is sent as "0.1", not "0.10000000000000001". */
static void
xmlrpc_format_double(char *buf, gsize size, double v)
{
	static const char *const formats[] = { "%.15g", "%.16g", "%.17g" };

	for (gsize i = 0; i < G_N_ELEMENTS(formats); i++) {
		g_ascii_formatd(buf, (int)size, formats[i], v);
		if (g_ascii_strtod(buf, NULL) == v)
			return;
	}
}

static void
xmlrpc_append_scalar(GString *s, JsonNode *node)
{
	char buf[G_ASCII_DTOSTR_BUF_SIZE];

	switch (json_node_get_value_type(node)) {
	case G_TYPE_INT64:
		xmlrpc_append_int(s, json_node_get_int(node));
		break;
	case G_TYPE_DOUBLE:
		xmlrpc_format_double(buf, sizeof(buf),
		    json_node_get_double(node));
		XMLRPC_OUT_LIT(s, "<value><double>");
		xmlrpc_out(s, buf, strlen(buf));
		XMLRPC_OUT_LIT(s, "</double></value>");
		break;
	case G_TYPE_BOOLEAN:
		if (json_node_get_boolean(node))
			XMLRPC_OUT_LIT(s, "<value><boolean>1</boolean></value>");
		else
			XMLRPC_OUT_LIT(s, "<value><boolean>0</boolean></value>");
		break;
	case G_TYPE_STRING:
		xmlrpc_append_string(s, json_node_get_string(node));
		break;
	default:
		xmlrpc_append_string(s, "");
		break;
	}
}

static void
xmlrpc_append_object(GString *s, JsonObject *obj)
{
	JsonObjectIter iter;
	const char *key;
	JsonNode *member;

	XMLRPC_OUT_LIT(s, "<value><struct>");
	json_object_iter_init_ordered(&iter, obj);
	while (json_object_iter_next_ordered(&iter, &key, &member)) {
		XMLRPC_OUT_LIT(s, "<member><name>");
		xmlrpc_append_escaped(s, key);
		XMLRPC_OUT_LIT(s, "</name>");
		xmlrpc_append_value(s, member);
		XMLRPC_OUT_LIT(s, "</member>");
	}
	XMLRPC_OUT_LIT(s, "</struct></value>");
}

static void
xmlrpc_append_array(GString *s, JsonArray *arr)
{
	guint n = json_array_get_length(arr);

	XMLRPC_OUT_LIT(s, "<value><array><data>");
	for (guint i = 0; i < n; i++)
		xmlrpc_append_value(s, json_array_get_element(arr, i));
	XMLRPC_OUT_LIT(s, "</data></array></value>");
}

/* XAPI's XML-RPC has no nil: null (and a NULL node) is the empty string. */
static void
xmlrpc_append_value(GString *s, JsonNode *node)
{
	switch (node == NULL ? JSON_NODE_NULL : JSON_NODE_TYPE(node)) {
	case JSON_NODE_OBJECT:
		xmlrpc_append_object(s, json_node_get_object(node));
		break;
	case JSON_NODE_ARRAY:
		xmlrpc_append_array(s, json_node_get_array(node));
		break;
	case JSON_NODE_VALUE:
		xmlrpc_append_scalar(s, node);
		break;
	case JSON_NODE_NULL:
	default:
		xmlrpc_append_string(s, "");
		break;
	}
}

#define XMLRPC_REPLY_HEAD "<?xml version=\"1.0\"?>\n" \
	"<methodResponse><params><param><value><struct>"
#define XMLRPC_REPLY_TAIL "</struct></value></param></params>" \
	"</methodResponse>\n"

static char *
xmlrpc_finish(GString *s, gsize *len)
{
	g_string_append(s, XMLRPC_REPLY_TAIL);
	if (len != NULL)
		*len = s->len;
	return g_string_free(s, FALSE);
}

char *
xmlrpc_format_success(JsonNode *value, gsize *len)
{
	GString *s = g_string_sized_new(4096);

	g_string_append(s, XMLRPC_REPLY_HEAD
	    "<member><name>Status</name>"
	    "<value><string>Success</string></value></member>"
	    "<member><name>Value</name>");
	xmlrpc_append_value(s, value);
	XMLRPC_OUT_LIT(s, "</member>");
	return xmlrpc_finish(s, len);
}

char *
xmlrpc_format_failure(const char *code, const char *const *params,
    gsize *len)
{
	GString *s = g_string_sized_new(512);

	g_string_append(s, XMLRPC_REPLY_HEAD
	    "<member><name>Status</name>"
	    "<value><string>Failure</string></value></member>"
	    "<member><name>ErrorDescription</name><value><array><data>");
	xmlrpc_append_string(s, code);
	for (gsize i = 0; params != NULL && params[i] != NULL; i++)
		xmlrpc_append_string(s, params[i]);
	g_string_append(s, "</data></array></value></member>");
	return xmlrpc_finish(s, len);
}
