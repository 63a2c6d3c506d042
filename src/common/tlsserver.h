/*
 * tlsserver: the TLS server end of a connection to ternd (the API port and
 * the migration channel's control connection).
 *
 * Neither asks for a client certificate, so the connection gets no
 * certificate database.  Left unset, GIO's GnuTLS backend (glib-networking
 * 2.74, Debian 12) reads the system's whole CA bundle into every server
 * connection, 3-4 MB of parsed certificates each, and part of it stays
 * behind after the connection is gone: bench/soak measured ternd's RSS
 * growing by about 10 MB per migration, and any TLS client could grow it
 * by 3.7 MB a request.
 */
#pragma once

#include <gio/gio.h>

/* A new server-side TLS stream over BASE presenting CERT; NULL with
 * ERROR set when GIO has no TLS backend. */
GIOStream *tlsserver_new(GIOStream *base, GTlsCertificate *cert,
			 GError **error);
