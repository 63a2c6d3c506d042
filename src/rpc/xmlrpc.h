/*
 * xmlrpc: the XML-RPC encoding of the XAPI method table.
 *
 * Parsing uses libxml2 with every network, DTD and entity feature off: a
 * document with a DOCTYPE is refused before its internal subset is read, so
 * entity bombs and external entities are never expanded.  Values map to
 * JsonNodes (see rpc.h); replies follow XAPI: every reply is a struct
 * {Status, Value} or {Status, ErrorDescription}, 64-bit ints travel as
 * strings and there is no nil (null becomes the empty string).
 */
#pragma once

#include "rpc/rpc.h"

/* Parses an XML-RPC <methodCall> of LEN bytes (BODY need not be
 * NUL-terminated).  Returns a new request with encoding RPC_XML, or NULL
 * with ERROR set to XMLRPC_UNMARSHAL_FAILURE [message]. */
RpcRequest *xmlrpc_parse_request(const char *body, gsize len, GError **error);

/* Formats {Status: "Success", Value: VALUE} as a <methodResponse>.  VALUE
 * is borrowed; NULL is sent as the empty string.  Returns a new
 * NUL-terminated string; its length goes to *LEN when LEN is not NULL. */
char *xmlrpc_format_success(JsonNode *value, gsize *len);

/* Formats {Status: "Failure", ErrorDescription: [CODE, PARAMS...]}.
 * PARAMS is NULL-terminated and may be NULL. */
char *xmlrpc_format_failure(const char *code, const char *const *params,
    gsize *len);
