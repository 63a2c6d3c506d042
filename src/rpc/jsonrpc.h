/*
 * jsonrpc: the JSON-RPC (1.0 and 2.0) encoding of the XAPI method table.
 *
 * There is no Status envelope here (API.md, "Wire").  A 1.0 reply is
 * {"result", "error", "id"} with error = [CODE, params...]; a 2.0 reply is
 * {"jsonrpc": "2.0", "result", "id"} or {"jsonrpc": "2.0", "error": {"code",
 * "message": CODE, "data": [params]}, "id"}.  The reply uses the version of
 * the request; a request that could not be parsed is answered as 2.0 with
 * id null.
 */
#pragma once

#include "rpc/rpc.h"

/* Parses a JSON-RPC request of LEN bytes (BODY need not be NUL-terminated).
 * "jsonrpc": "2.0" selects RPC_JSON_2, anything else RPC_JSON_1.  "method"
 * must be a string and "params", when present, an array.  Returns a new
 * request, or NULL with ERROR set to JSONRPC_UNMARSHAL_FAILURE [message]. */
RpcRequest *jsonrpc_parse_request(const char *body, gsize len, GError **error);

/* Formats a success reply to REQ carrying VALUE (borrowed; NULL is sent as
 * null).  Returns a new NUL-terminated string; its length goes to *LEN when
 * LEN is not NULL. */
char *jsonrpc_format_success(const RpcRequest *req, JsonNode *value,
    gsize *len);

/* Formats the XAPI error CODE [PARAMS...] (PARAMS NULL-terminated, may be
 * NULL) as a reply to REQ, or, when REQ is NULL, as a 2.0 reply with id
 * null. */
char *jsonrpc_format_failure(const RpcRequest *req, const char *code,
    const char *const *params, gsize *len);

/* The JSON-RPC 2.0 "code" sent for the XAPI error CODE:
 *   JSONRPC_UNMARSHAL_FAILURE, XMLRPC_UNMARSHAL_FAILURE  -32700 (parse error)
 *   MESSAGE_METHOD_UNKNOWN                               -32601 (no method)
 *   MESSAGE_PARAMETER_COUNT_MISMATCH, FIELD_TYPE_ERROR   -32602 (bad params)
 *   every other XAPI error                                    1
 * Clients should look at "message" (the XAPI code), not at this number. */
gint64 jsonrpc_error_code(const char *code);
