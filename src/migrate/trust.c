/*
 * trust: the destination a peer-to-peer migration logs in to, proven
 * before the password leaves (see trust.h).
 *
 * known_hosts holds one line per destination, "<host>:<port> <SHA-256
 * fingerprint>", '#' for comments, as ssh's holds "<host> <key>".  It is
 * read at each p2p migration (a person may edit it at any time) and
 * appended to only on trust on first use, under a mutex since several
 * migrations' workers may do so at once.
 */
#include "migrate/trust.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>

#include "common/xerr.h"

#define TRUST_FILE "known_hosts"
#define TRUST_PROBE_TIMEOUT_S 10

static GMutex trust_lock;

char *
trust_fingerprint_normalise(const char *text)
{
	GString *out = g_string_new(NULL);
	guint n = 0;

	for (const char *p = text ? text : ""; *p;) {
		if (*p == ':') {
			p++;
			continue;
		}
		if (!g_ascii_isxdigit(p[0]) || !g_ascii_isxdigit(p[1]) ||
		    n == 32)
			goto bad;
		g_string_append_printf(out, "%s%c%c", n ? ":" : "",
				       g_ascii_toupper(p[0]),
				       g_ascii_toupper(p[1]));
		n++;
		p += 2;
	}
	if (n == 32)
		return g_string_free(out, FALSE);
bad:
	g_string_free(out, TRUE);
	return NULL;
}

static gboolean
trust_fail(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

static gboolean
trust_fail(GError **error, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	g_autofree char *msg = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	xerr_set(error, "SSL_VERIFY_ERROR", msg, NULL);
	return FALSE;
}

/* The fingerprint recorded for HOSTPORT, or NULL. */
static char *
trust_known(const char *path, const char *hostport)
{
	g_autofree char *text = NULL;

	if (!g_file_get_contents(path, &text, NULL, NULL))
		return NULL;
	g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
	for (guint i = 0; lines[i]; i++) {
		g_auto(GStrv) f = g_strsplit_set(g_strstrip(lines[i]), " \t",
						 -1);
		if (f[0] == NULL || *f[0] == '#' || f[1] == NULL)
			continue;
		if (strcmp(f[0], hostport) == 0)
			return trust_fingerprint_normalise(f[1]);
	}
	return NULL;
}

static gboolean
trust_record(const char *path, const char *hostport, const char *fp,
	     GError **error)
{
	g_autofree char *line = g_strdup_printf("%s %s\n", hostport, fp);
	g_autoptr(GFile) f = g_file_new_for_path(path);
	g_autoptr(GError) e = NULL;
	g_autoptr(GFileOutputStream) out = g_file_append_to(
		f, G_FILE_CREATE_PRIVATE, NULL, &e);

	if (out == NULL ||
	    !g_output_stream_write_all(G_OUTPUT_STREAM(out), line,
				       strlen(line), NULL, NULL, &e) ||
	    !g_output_stream_close(G_OUTPUT_STREAM(out), NULL, &e))
		return trust_fail(error, "cannot record %s in %s: %s",
				  hostport, path, e->message);
	return TRUE;
}

static gboolean
trust_accept_any(GTlsConnection *conn, GTlsCertificate *cert,
		 GTlsCertificateFlags errors, gpointer data)
{
	return TRUE;
}

/* Reads HOST:PORT's certificate in a TLS handshake; nothing is sent after
 * it. */
static char *
trust_probe(const char *host, int port, GError **error)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GError) e = NULL;
	g_autoptr(GSocketConnection) conn = NULL;
	g_autoptr(GIOStream) tls = NULL;

	g_socket_client_set_timeout(client, TRUST_PROBE_TIMEOUT_S);
	conn = g_socket_client_connect_to_host(client, host, port, NULL, &e);
	if (conn != NULL)
		tls = g_tls_client_connection_new(G_IO_STREAM(conn), NULL, &e);
	if (tls != NULL) {
		g_tls_connection_set_database(G_TLS_CONNECTION(tls), NULL);
		g_signal_connect(tls, "accept-certificate",
				 G_CALLBACK(trust_accept_any), NULL);
	}
	if (tls == NULL ||
	    !g_tls_connection_handshake(G_TLS_CONNECTION(tls), NULL, &e)) {
		trust_fail(error, "cannot read the certificate of %s:%d: %s",
			   host, port, e ? e->message : "no TLS");
		return NULL;
	}
	GTlsCertificate *cert = g_tls_connection_get_peer_certificate(
		G_TLS_CONNECTION(tls));
	g_autoptr(GByteArray) der = NULL;
	if (cert != NULL)
		g_object_get(cert, "certificate", &der, NULL);
	g_io_stream_close(tls, NULL, NULL);
	if (der == NULL) {
		trust_fail(error, "%s:%d sent no certificate", host, port);
		return NULL;
	}
	g_autofree char *hex = g_compute_checksum_for_data(
		G_CHECKSUM_SHA256, der->data, der->len);
	return trust_fingerprint_normalise(hex);
}

static gboolean
trust_is_loopback(const char *host)
{
	g_autoptr(GInetAddress) a = g_inet_address_new_from_string(host);

	if (a != NULL)
		return g_inet_address_get_is_loopback(a);
	return g_ascii_strcasecmp(host, "localhost") == 0;
}

gboolean
trust_p2p_pin(const char *state_dir, const char *url, const char *given,
	      gboolean first_use, char **pin, GError **error)
{
	g_autoptr(GUri) u = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
	const char *scheme = u ? g_uri_get_scheme(u) : NULL;
	const char *host = u ? g_uri_get_host(u) : NULL;

	*pin = NULL;
	if (u == NULL || host == NULL || *host == 0)
		return trust_fail(error, "bad destination URL %s", url);
	if (g_ascii_strcasecmp(scheme, "http") == 0) {
		if (trust_is_loopback(host))
			return TRUE;
		return trust_fail(error, "%s is plain http to another host: "
				  "the password would cross unprotected to a "
				  "destination nobody verified; use https",
				  url);
	}
	if (g_ascii_strcasecmp(scheme, "https") != 0)
		return trust_fail(error, "bad destination URL %s", url);

	int port = g_uri_get_port(u) > 0 ? g_uri_get_port(u) : 443;
	g_autofree char *hostport = g_strdup_printf("%s:%d", host, port);
	if (given != NULL && *given != 0) {
		if ((*pin = trust_fingerprint_normalise(given)) == NULL)
			return trust_fail(error, "fingerprint \"%s\" is not "
					  "32 hex bytes (SHA-256)", given);
		return TRUE;
	}

	g_autofree char *path = g_build_filename(state_dir, TRUST_FILE, NULL);
	g_mutex_lock(&trust_lock);
	*pin = trust_known(path, hostport);
	g_mutex_unlock(&trust_lock);
	if (*pin != NULL)
		return TRUE;
	if (!first_use)
		return trust_fail(error, "the certificate of %s is not "
				  "verified: give its fingerprint (dest "
				  "fingerprint, tern --to-fingerprint) or allow "
				  "trust on first use (dest trust_on_first_use "
				  "= true, recorded in %s)", hostport, path);

	g_autofree char *seen = trust_probe(host, port, error);
	if (seen == NULL)
		return FALSE;
	g_mutex_lock(&trust_lock);
	/* Another migration may have recorded it meanwhile: its line wins,
	 * and a different certificate is refused as a changed one. */
	g_autofree char *known = trust_known(path, hostport);
	gboolean ok = known != NULL ||
		      trust_record(path, hostport, seen, error);
	g_mutex_unlock(&trust_lock);
	if (!ok)
		return FALSE;
	if (known != NULL && strcmp(known, seen) != 0)
		return trust_fail(error, "the certificate of %s changed while "
				  "it was being recorded", hostport);
	g_message("migrate: recorded %s's certificate %s in %s (trust on "
		  "first use)", hostport, seen, path);
	*pin = g_steal_pointer(&seen);
	return TRUE;
}
