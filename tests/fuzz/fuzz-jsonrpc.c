/*
 * fuzz-jsonrpc: libFuzzer target for the JSON-RPC request decoder.
 *
 * The input is an HTTP body as a stranger may POST it to /jsonrpc, before
 * any session is checked.  jsonrpc_parse_request() must return a request or
 * set an error, never both, never neither; a request it returns must encode
 * back to a JSON reply (success and failure) that json-glib reads, and its
 * parameters to an XML-RPC reply that libxml2 reads.
 */
#include <string.h>

#include <libxml/parser.h>

#include "fuzz.h"
#include "rpc/jsonrpc.h"
#include "rpc/xmlrpc.h"

static const char fuzz_jsonrpc_warmup[] =
	"{\"jsonrpc\":\"2.0\",\"method\":\"VM.get_record\","
	"\"params\":[\"s\",{\"a\":[1,2.5,true,null]}],\"id\":1}";

static void
fuzz_jsonrpc_reads_back(const char *json)
{
	g_autoptr(JsonNode) back = json_from_string(json, NULL);

	FUZZ_CHECK(back != NULL && JSON_NODE_HOLDS_OBJECT(back),
	    "the JSON reply reads back as an object");
}

static void
fuzz_jsonrpc_one(const char *body, size_t len)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(RpcRequest) req = jsonrpc_parse_request(body, len, &err);
	static const char *const params[] = { "p1", "p\"2", NULL };

	FUZZ_CHECK((req == NULL) != (err == NULL), "request xor error");
	if (req == NULL)
		return;
	FUZZ_CHECK(req->method != NULL && req->params != NULL, "members");

	g_autoptr(JsonNode) value = json_node_new(JSON_NODE_ARRAY);
	json_node_set_array(value, req->params);

	gsize n = 0;
	g_autofree char *ok = jsonrpc_format_success(req, value, &n);
	fuzz_jsonrpc_reads_back(ok);
	g_autofree char *failed = jsonrpc_format_failure(req,
	    "SESSION_INVALID", params, &n);
	fuzz_jsonrpc_reads_back(failed);

	g_autofree char *xml = xmlrpc_format_success(value, &n);
	xmlDoc *doc = xmlReadMemory(xml, (int)n, NULL, NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
	    XML_PARSE_HUGE);
	FUZZ_CHECK(doc != NULL, "the XML-RPC reply is well-formed");
	xmlFreeDoc(doc);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	xmlInitParser();
	fuzz_jsonrpc_one(fuzz_jsonrpc_warmup, sizeof fuzz_jsonrpc_warmup - 1);
	fuzz_jsonrpc_one("[", 1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_jsonrpc_one((const char *)data, size);
	return 0;
}
