/*
 * http: ternd's listeners.  XML-RPC at POST /, JSON-RPC at POST /jsonrpc,
 * served by libsoup on a Unix socket (mode 0600, peers identified by their
 * credentials) and on one TCP port, HTTPS unless plain HTTP was asked for.
 * The TCP port also carries the migration channel: the first byte of a
 * connection tells a TLS handshake (0x16) from the migration preamble
 * ("TERN-MIGRATE ...", see src/migrate/channel.c), so one firewall rule
 * serves both.
 */
#pragma once

#include <gio/gio.h>

#include "api/api.h"
#include "rpc/guard.h"

typedef struct Http Http;

typedef struct {
	const char *unix_path;    /* NULL for none */
	const char *listen;       /* "addr:port" or NULL for none */
	GTlsCertificate *cert;    /* NULL: plain HTTP on the TCP port */
	gsize max_body;           /* bytes; larger requests get 413 */
	guint max_headers;        /* more get 431; 0: no cap */
	guint first_byte_s;       /* a TCP connection's first byte */
	GuardLimits limits;       /* connections and deadlines (guard.h) */
} HttpConfig;

Http *http_new(Api *api, const HttpConfig *cfg, GError **error);
/* Sets the API requests go to (when it is made after the listeners). */
void http_set_api(Http *http, Api *api);
void http_free(Http *http);
/* The TCP port actually bound (useful with port 0). */
guint16 http_port(Http *http);
