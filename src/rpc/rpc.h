/*
 * rpc: the request type shared by tern's two wire encodings.
 *
 * XML-RPC and JSON-RPC are two encodings of one XAPI method table (API.md,
 * "Wire").  Each codec (xmlrpc.c, jsonrpc.c) is a set of pure functions: it
 * turns a request body into an RpcRequest and a result or an XAPI error into
 * a reply body, and does no I/O.  Values of every kind travel as json-glib
 * JsonNodes (null, bool, int64, double, string, array, object), whichever
 * encoding they came in, so the method handlers see one value type.
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

/* The deepest nesting of arrays and structs a request value may have.  A
 * scalar parameter is level 1; each array or struct around it adds one.
 * Both codecs enforce it before recursing, so a hostile body cannot exhaust
 * the stack. */
#define RPC_MAX_DEPTH 64

typedef enum {
	RPC_XML,
	RPC_JSON_1,	/* JSON-RPC 1.0: no "jsonrpc" member */
	RPC_JSON_2,	/* JSON-RPC 2.0: "jsonrpc": "2.0" */
} RpcEncoding;

typedef struct {
	RpcEncoding encoding;
	char *method;		/* owned; never NULL in a parsed request */
	JsonArray *params;	/* owned; positional, empty when absent */
	JsonNode *id;		/* JSON-RPC id, owned; NULL when the request
				 * had no "id" member (always NULL for XML) */
} RpcRequest;

/* Frees REQ and everything it owns.  Accepts NULL. */
static inline void
rpc_request_free(RpcRequest *req)
{
	if (req == NULL)
		return;
	g_free(req->method);
	if (req->params != NULL)
		json_array_unref(req->params);
	if (req->id != NULL)
		json_node_unref(req->id);
	g_free(req);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(RpcRequest, rpc_request_free)
