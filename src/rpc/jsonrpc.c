/*
 * jsonrpc: decodes JSON-RPC 1.0/2.0 calls and encodes XAPI replies.
 *
 * json-glib's parser recurses once per nesting level and has no limit of
 * its own (a body of 100,000 '[' crashes it), so the body goes through
 * the scan of common/jsonscan.h (brackets outside strings, no single
 * quotes or comments) before the parser sees it, as the migration
 * channel's lines do.  Invalid UTF-8 is refused before parsing too.
 *
 * Replies are built as JsonNode trees and serialised by JsonGenerator; the
 * result value is shared, not copied (json_node_copy only takes a
 * reference on arrays and objects).
 */
#include "rpc/jsonrpc.h"

#include <math.h>
#include <string.h>

#include "common/jsonscan.h"
#include "common/xerr.h"

#define JSONRPC_UNMARSHAL "JSONRPC_UNMARSHAL_FAILURE"

/* The body is an object (bracket depth 1) holding the params array (2);
 * a parameter is value level 1 and an array or object at level k sits at
 * bracket depth k + 2.  The scan sees brackets, not scalars, so the limit
 * lets containers reach level RPC_MAX_DEPTH - 1 and their scalars level
 * RPC_MAX_DEPTH, as in XML-RPC; only an empty container at the last level,
 * which XML-RPC would take, is refused. */
#define JSONRPC_MAX_DOC_DEPTH (RPC_MAX_DEPTH + 1)

/* JSON-RPC 2.0 error codes for XAPI errors (see jsonrpc_error_code). */
static const struct {
	const char *code;
	gint64 number;
} jsonrpc_codes[] = {
	{ .code = "JSONRPC_UNMARSHAL_FAILURE", .number = -32700 },
	{ .code = "XMLRPC_UNMARSHAL_FAILURE", .number = -32700 },
	{ .code = "MESSAGE_METHOD_UNKNOWN", .number = -32601 },
	{ .code = "MESSAGE_PARAMETER_COUNT_MISMATCH", .number = -32602 },
	{ .code = "FIELD_TYPE_ERROR", .number = -32602 },
};

#define JSONRPC_OTHER_ERROR 1

gint64
jsonrpc_error_code(const char *code)
{
	for (gsize i = 0; i < G_N_ELEMENTS(jsonrpc_codes); i++)
		if (strcmp(code, jsonrpc_codes[i].code) == 0)
			return jsonrpc_codes[i].number;
	return JSONRPC_OTHER_ERROR;
}

/* ---- parsing ---- */

/* TRUE when BODY passes the scan of common/jsonscan.h. */
static gboolean
jsonrpc_prescan(const char *body, gsize len, GError **error)
{
	const char *why = jsonscan_check(body, len, JSONRPC_MAX_DOC_DEPTH);

	if (why != NULL) {
		xerr_set(error, JSONRPC_UNMARSHAL, why, NULL);
		return FALSE;
	}
	return TRUE;
}

/* FALSE when a number in NODE cannot be written back as JSON: one that did
 * not fit a double (json-glib reads 1e400 as infinity, which no JSON reply
 * can carry back; XML-RPC refuses it in a <double> too), or one that
 * json-glib would write wrongly (below).  The depth is bounded by the
 * scan before the parse. */
static gboolean
jsonrpc_finite(JsonNode *node)
{
	switch (JSON_NODE_TYPE(node)) {
	case JSON_NODE_OBJECT: {
		JsonObjectIter it;
		JsonNode *member;

		json_object_iter_init(&it, json_node_get_object(node));
		while (json_object_iter_next(&it, NULL, &member))
			if (!jsonrpc_finite(member))
				return FALSE;
		return TRUE;
	}
	case JSON_NODE_ARRAY: {
		JsonArray *a = json_node_get_array(node);

		for (guint i = 0; i < json_array_get_length(a); i++)
			if (!jsonrpc_finite(json_array_get_element(a, i)))
				return FALSE;
		return TRUE;
	}
	case JSON_NODE_VALUE: {
		char buf[G_ASCII_DTOSTR_BUF_SIZE];
		double d;

		if (json_node_get_value_type(node) != G_TYPE_DOUBLE)
			return TRUE;
		d = json_node_get_double(node);
		/* json-glib 1.6 writes a double as g_ascii_dtostr's shortest
		 * form plus ".0" when that has no point: 5e50 goes out as
		 * "5e+50.0", which is not JSON (the JSON-RPC fuzzer's find). */
		g_ascii_dtostr(buf, sizeof(buf), d);
		return isfinite(d) &&
		    !(strchr(buf, 'e') != NULL && strchr(buf, '.') == NULL);
	}
	default:
		return TRUE;
	}
}

static JsonNode *
jsonrpc_load(const char *body, gsize len, GError **error)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	g_autoptr(GError) local = NULL;

	if (len > G_MAXSSIZE) {
		xerr_set(error, JSONRPC_UNMARSHAL, "request too large", NULL);
		return NULL;
	}
	if (!g_utf8_validate(body, len, NULL)) {
		xerr_set(error, JSONRPC_UNMARSHAL,
		    "request is not valid UTF-8", NULL);
		return NULL;
	}
	if (!jsonrpc_prescan(body, len, error))
		return NULL;
	if (!json_parser_load_from_data(parser, body, (gssize)len, &local)) {
		g_autofree char *msg = g_strdup_printf("malformed JSON: %s",
		    local->message);
		xerr_set(error, JSONRPC_UNMARSHAL, msg, NULL);
		return NULL;
	}
	JsonNode *root = json_parser_steal_root(parser);
	if (root == NULL) {
		xerr_set(error, JSONRPC_UNMARSHAL, "empty request", NULL);
		return NULL;
	}
	if (!jsonrpc_finite(root)) {
		xerr_set(error, JSONRPC_UNMARSHAL, "number out of range", NULL);
		json_node_unref(root);
		return NULL;
	}
	return root;
}

RpcRequest *
jsonrpc_parse_request(const char *body, gsize len, GError **error)
{
	g_autoptr(JsonNode) root = jsonrpc_load(body, len, error);

	if (root == NULL)
		return NULL;
	if (!JSON_NODE_HOLDS_OBJECT(root)) {
		xerr_set(error, JSONRPC_UNMARSHAL,
		    "request must be a JSON object", NULL);
		return NULL;
	}
	JsonObject *obj = json_node_get_object(root);

	JsonNode *method = json_object_get_member(obj, "method");
	if (method == NULL || !JSON_NODE_HOLDS_VALUE(method) ||
	    json_node_get_value_type(method) != G_TYPE_STRING ||
	    json_node_get_string(method)[0] == 0) {
		xerr_set(error, JSONRPC_UNMARSHAL,
		    "\"method\" must be a non-empty string", NULL);
		return NULL;
	}
	JsonNode *params = json_object_get_member(obj, "params");
	if (params != NULL && !JSON_NODE_HOLDS_ARRAY(params)) {
		xerr_set(error, JSONRPC_UNMARSHAL,
		    "\"params\" must be an array", NULL);
		return NULL;
	}
	JsonNode *version = json_object_get_member(obj, "jsonrpc");
	JsonNode *id = json_object_get_member(obj, "id");

	RpcRequest *req = g_new0(RpcRequest, 1);
	req->encoding = version != NULL && JSON_NODE_HOLDS_VALUE(version) &&
	    json_node_get_value_type(version) == G_TYPE_STRING &&
	    strcmp(json_node_get_string(version), "2.0") == 0 ?
	    RPC_JSON_2 : RPC_JSON_1;
	req->method = g_strdup(json_node_get_string(method));
	req->params = params != NULL ?
	    json_array_ref(json_node_get_array(params)) : json_array_new();
	req->id = id != NULL ? json_node_copy(id) : NULL;
	return req;
}

/* ---- replies ---- */

static gboolean
jsonrpc_is_v2(const RpcRequest *req)
{
	return req == NULL || req->encoding == RPC_JSON_2;
}

/* Starts a reply object: "jsonrpc" for 2.0. */
static JsonObject *
jsonrpc_reply_new(const RpcRequest *req)
{
	JsonObject *reply = json_object_new();

	if (jsonrpc_is_v2(req))
		json_object_set_string_member(reply, "jsonrpc", "2.0");
	return reply;
}

/* Ends REPLY with the request's id (null when there is none) and
 * serialises it.  Takes ownership of REPLY. */
static char *
jsonrpc_reply_finish(const RpcRequest *req, JsonObject *reply, gsize *len)
{
	g_autoptr(JsonObject) owned = reply;
	g_autoptr(JsonNode) root = json_node_alloc();
	g_autoptr(JsonGenerator) gen = json_generator_new();

	if (req != NULL && req->id != NULL)
		json_object_set_member(reply, "id", json_node_copy(req->id));
	else
		json_object_set_null_member(reply, "id");
	json_node_init_object(root, owned);
	json_generator_set_root(gen, root);
	return json_generator_to_data(gen, len);
}

static JsonNode *
jsonrpc_value_or_null(JsonNode *value)
{
	return value != NULL ? json_node_copy(value) :
	    json_node_init_null(json_node_alloc());
}

char *
jsonrpc_format_success(const RpcRequest *req, JsonNode *value, gsize *len)
{
	JsonObject *reply = jsonrpc_reply_new(req);

	json_object_set_member(reply, "result", jsonrpc_value_or_null(value));
	if (!jsonrpc_is_v2(req))
		json_object_set_null_member(reply, "error");
	return jsonrpc_reply_finish(req, reply, len);
}

static JsonArray *
jsonrpc_strings(const char *const *params)
{
	JsonArray *arr = json_array_new();

	for (gsize i = 0; params != NULL && params[i] != NULL; i++)
		json_array_add_string_element(arr, params[i]);
	return arr;
}

char *
jsonrpc_format_failure(const RpcRequest *req, const char *code,
    const char *const *params, gsize *len)
{
	JsonObject *reply = jsonrpc_reply_new(req);

	if (jsonrpc_is_v2(req)) {
		JsonObject *err = json_object_new();
		json_object_set_int_member(err, "code",
		    jsonrpc_error_code(code));
		json_object_set_string_member(err, "message", code);
		json_object_set_array_member(err, "data",
		    jsonrpc_strings(params));
		json_object_set_object_member(reply, "error", err);
	} else {
		JsonArray *err = json_array_new();
		json_array_add_string_element(err, code);
		for (gsize i = 0; params != NULL && params[i] != NULL; i++)
			json_array_add_string_element(err, params[i]);
		json_object_set_null_member(reply, "result");
		json_object_set_array_member(reply, "error", err);
	}
	return jsonrpc_reply_finish(req, reply, len);
}
