/*
 * fuzz-xmlrpc: libFuzzer target for the XML-RPC request decoder.
 *
 * The input is an HTTP body as a stranger may POST it to /RPC2, before any
 * session is checked.  xmlrpc_parse_request() must return a request or set
 * an error, never both, never neither; a request it returns must encode
 * back, as the reply the daemon would send with its parameters as the
 * value, to XML that libxml2 reads without an error (what every XML-RPC
 * client does with the reply), and to JSON that json-glib reads.
 */
#include <string.h>

#include <libxml/parser.h>

#include "fuzz.h"
#include "rpc/jsonrpc.h"
#include "rpc/xmlrpc.h"

static const char fuzz_xmlrpc_warmup[] =
	"<?xml version=\"1.0\"?><methodCall><methodName>VM.get_record"
	"</methodName><params><param><value><string>s</string></value>"
	"</param></params></methodCall>";

static void
fuzz_xmlrpc_one(const char *body, size_t len)
{
	g_autoptr(GError) err = NULL;
	g_autoptr(RpcRequest) req = xmlrpc_parse_request(body, len, &err);

	FUZZ_CHECK((req == NULL) != (err == NULL), "request xor error");
	if (req == NULL)
		return;
	FUZZ_CHECK(req->method != NULL && req->method[0] != 0, "method");

	g_autoptr(JsonNode) value = json_node_new(JSON_NODE_ARRAY);
	json_node_set_array(value, req->params);

	gsize xlen = 0;
	g_autofree char *xml = xmlrpc_format_success(value, &xlen);
	FUZZ_CHECK(xml != NULL && xlen == strlen(xml), "XML reply");
	xmlDoc *doc = xmlReadMemory(xml, (int)xlen, NULL, NULL,
	    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
	    XML_PARSE_HUGE);
	FUZZ_CHECK(doc != NULL, "the XML reply is well-formed");
	xmlFreeDoc(doc);

	gsize jlen = 0;
	g_autofree char *json = jsonrpc_format_success(req, value, &jlen);
	g_autoptr(JsonNode) back = json_from_string(json, NULL);
	FUZZ_CHECK(back != NULL, "the JSON reply reads back");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	xmlInitParser();
	/* GLib's and libxml2's one-time allocations happen here, not in the
	 * first input, where the leak checker would count them. */
	fuzz_xmlrpc_one(fuzz_xmlrpc_warmup, sizeof fuzz_xmlrpc_warmup - 1);
	fuzz_xmlrpc_one("<x/>", 4);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_xmlrpc_one((const char *)data, size);
	return 0;
}
