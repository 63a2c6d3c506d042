/*
 * tlsserver: a TLS server end without a certificate database (see
 * tlsserver.h for why).
 */
#include "common/tlsserver.h"

GIOStream *
tlsserver_new(GIOStream *base, GTlsCertificate *cert, GError **error)
{
	GTlsBackend *backend = g_tls_backend_get_default();

	/* "database" given as NULL at construction: the backend then never
	 * loads its default (system) database for this connection. */
	return g_initable_new(
		g_tls_backend_get_server_connection_type(backend), NULL, error,
		"base-io-stream", base, "certificate", cert, "database", NULL,
		NULL);
}
