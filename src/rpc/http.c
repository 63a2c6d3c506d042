/*
 * http: the HTTP front of ternd (see http.h).
 *
 * A request is decoded by the codec of its path, dispatched, and answered
 * when the call ends; a long poll (event.from) pauses its message meanwhile.
 * Everything but a POST to / or /jsonrpc with a Content-Length within the
 * cap and at most max_headers headers is refused from its headers, before
 * its body is read (guard.c answers it by hand, since libsoup 3.2 reads
 * the whole body of a request it has already refused); a chunked body is
 * refused too (411), so no body grows past the cap.  The TCP port's
 * connections are counted and given deadlines by guard.c.  A reply for a
 * client that went away is dropped.
 *
 * One more path: XAPI's `PUT /import_raw_vdi?session_id=..&vdi=..`, the
 * upload of a VDI's bytes (boot files into the boot SR).  Its session,
 * VDI and Content-Length (at most the VDI's virtual_size) are checked from
 * the headers; the body is not accumulated but written to the file chunk
 * by chunk as it arrives (api/vdi.c, vdi_import_*).
 */
#include "rpc/http.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <gio/gunixsocketaddress.h>
#include <libsoup/soup.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "common/tlsserver.h"
#include "common/xerr.h"
#include "migrate/migrate.h"
#include "rpc/guard.h"
#include "rpc/jsonrpc.h"
#include "rpc/xmlrpc.h"

struct Http {
	Api *api;
	SoupServer *server;
	GSocketService *tcp;
	GTlsCertificate *cert;
	char *unix_path;
	gsize max_body;
	guint max_headers;
	guint first_byte_s;
	Guard *guard;
	guint16 port;
};

typedef struct {
	Http *http;
	SoupServerMessage *msg;
	RpcRequest *req;
	gboolean in_dispatch;     /* api_dispatch has not returned yet */
	gboolean answered;
	gboolean paused;
	gboolean gone;
	gulong disconnect_id;
} Pending;

static void
pending_free(Pending *p)
{
	if (p->disconnect_id)
		g_signal_handler_disconnect(p->msg, p->disconnect_id);
	g_object_unref(p->msg);
	rpc_request_free(p->req);
	g_free(p);
}

static void
http_respond(SoupServerMessage *msg, RpcEncoding enc, char *body, gsize len)
{
	const char *type = enc == RPC_XML ? "text/xml" : "application/json";

	soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
	soup_server_message_set_response(msg, type, SOUP_MEMORY_TAKE, body,
					 len);
}

static void
http_reply(JsonNode *value, const GError *error, gpointer data)
{
	Pending *p = data;
	char *body;
	gsize len;

	p->answered = TRUE;
	if (p->gone) {
		pending_free(p);
		return;
	}
	if (error != NULL) {
		g_autofree char *code = NULL;
		g_auto(GStrv) params = NULL;

		xerr_split(error, &code, &params);
		g_debug("http: %s failed: %s", p->req->method, code);
		body = p->req->encoding == RPC_XML
			       ? xmlrpc_format_failure(code,
					(const char *const *)params, &len)
			       : jsonrpc_format_failure(p->req, code,
					(const char *const *)params, &len);
	} else {
		body = p->req->encoding == RPC_XML
			       ? xmlrpc_format_success(value, &len)
			       : jsonrpc_format_success(p->req, value, &len);
	}
	http_respond(p->msg, p->req->encoding, body, len);
	if (p->paused)
		soup_server_message_unpause(p->msg);
	/* A reply made inside api_dispatch is freed when it returns. */
	if (!p->in_dispatch)
		pending_free(p);
}

static void
http_disconnected(SoupServerMessage *msg, gpointer data)
{
	Pending *p = data;

	p->gone = TRUE;
}

static void
http_origin(SoupServerMessage *msg, CallOrigin *origin)
{
	GSocket *sock = soup_server_message_get_socket(msg);

	memset(origin, 0, sizeof *origin);
	if (sock != NULL &&
	    g_socket_get_family(sock) == G_SOCKET_FAMILY_UNIX) {
		/* The peer of a connection never changes: ask the kernel
		 * once per connection, not once per request. */
		gpointer cached = g_object_get_data(G_OBJECT(sock),
						    "tern-peer-uid");
		if (cached == NULL) {
			g_autoptr(GCredentials) cred =
				g_socket_get_credentials(sock, NULL);
			uid_t uid = cred ? g_credentials_get_unix_user(cred,
								       NULL)
					 : (uid_t)-1;
			cached = GSIZE_TO_POINTER((gsize)uid + 1);
			g_object_set_data(G_OBJECT(sock), "tern-peer-uid",
					  cached);
		}
		origin->local = TRUE;
		origin->root = GPOINTER_TO_SIZE(cached) - 1 == 0;
		origin->peer = "local";
	} else {
		origin->peer = (char *)soup_server_message_get_remote_host(msg);
	}
}

/* ---- PUT /import_raw_vdi ------------------------------------------- */

#define HTTP_IMPORT_PATH "/import_raw_vdi"
#define HTTP_IMPORT_KEY "tern-import"

typedef struct {
	Http *http;
	VdiImport *imp;
	GError *error;            /* the first write that failed */
	SoupServerMessage *msg;
	gboolean gone;
} HttpImport;

static void
http_import_free(HttpImport *hi)
{
	vdi_import_free(hi->imp);
	g_clear_error(&hi->error);
	g_free(hi);
}

static void
http_import_chunk(SoupServerMessage *msg, GBytes *chunk, gpointer data)
{
	HttpImport *hi = data;
	gsize len;
	const void *buf = g_bytes_get_data(chunk, &len);

	if (hi->error == NULL && hi->imp != NULL)
		vdi_import_write(hi->imp, buf, len, &hi->error);
}

static void
http_import_early(Http *http, SoupServerMessage *msg, GHashTable *query,
		  goffset clen, SoupEncoding enc)
{
	GError *e = NULL;
	guint status = 0;

	if (strcmp(soup_server_message_get_method(msg), "PUT") != 0)
		return guard_refuse(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
				    "Method Not Allowed");
	if (enc != SOUP_ENCODING_CONTENT_LENGTH || clen < 0)
		return guard_refuse(msg, SOUP_STATUS_LENGTH_REQUIRED,
				    "Length Required");
	VdiImport *imp = http->api == NULL ? NULL : vdi_import_open(http->api,
		query ? g_hash_table_lookup(query, "session_id") : NULL,
		query ? g_hash_table_lookup(query, "vdi") : NULL, clen,
		&status, &e);
	if (imp == NULL) {
		g_info("http: import_raw_vdi refused: %s",
		       e ? e->message : "not ready");
		g_clear_error(&e);
		return guard_refuse(msg, status ? status : 503,
				    status == 413 ? "Payload Too Large"
				    : status == 404 ? "Not Found"
				    : status == 409 ? "Conflict"
				    : status == 403 ? "Forbidden" : "Error");
	}
	HttpImport *hi = g_new0(HttpImport, 1);
	hi->http = http;
	hi->imp = imp;
	hi->msg = msg;
	soup_message_body_set_accumulate(
		soup_server_message_get_request_body(msg), FALSE);
	g_signal_connect(msg, "got-chunk", G_CALLBACK(http_import_chunk), hi);
	g_object_set_data_full(G_OBJECT(msg), HTTP_IMPORT_KEY, hi,
			       (GDestroyNotify)http_import_free);
}

static void
http_import_done(const GError *error, gpointer data)
{
	SoupServerMessage *msg = data;

	if (error != NULL)
		g_info("http: import_raw_vdi failed: %s", error->message);
	soup_server_message_set_status(msg, error ? 500 : SOUP_STATUS_OK,
				       NULL);
	soup_server_message_unpause(msg);
	g_object_unref(msg);
}

static void
http_import_handle(Http *http, SoupServerMessage *msg)
{
	HttpImport *hi = g_object_get_data(G_OBJECT(msg), HTTP_IMPORT_KEY);

	if (hi == NULL || hi->imp == NULL) {
		soup_server_message_set_status(msg, 500, NULL);
		return;
	}
	if (hi->error != NULL) {
		g_info("http: import_raw_vdi failed: %s", hi->error->message);
		soup_server_message_set_status(msg, xerr_is(hi->error,
			"VDI_TOO_SMALL") ? 413 : 500, NULL);
		return;
	}
	VdiImport *imp = g_steal_pointer(&hi->imp);
	soup_server_message_pause(msg);
	vdi_import_finish(http->api, imp, http_import_done,
			  g_object_ref(msg));
}

static void
http_handle(SoupServer *server, SoupServerMessage *msg, const char *path,
	    GHashTable *query, gpointer data)
{
	Http *http = data;
	RpcEncoding enc;

	if (strcmp(path, HTTP_IMPORT_PATH) == 0) {
		http_import_handle(http, msg);
		return;
	}
	if (strcmp(path, "/") == 0)
		enc = RPC_XML;
	else if (strcmp(path, "/jsonrpc") == 0)
		enc = RPC_JSON_2;
	else {
		soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND,
					       NULL);
		return;
	}
	if (strcmp(soup_server_message_get_method(msg), "POST") != 0) {
		soup_server_message_set_status(msg,
			SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
		return;
	}

	SoupMessageBody *mb = soup_server_message_get_request_body(msg);
	g_autoptr(GBytes) body = soup_message_body_flatten(mb);
	gsize len;
	const char *text = g_bytes_get_data(body, &len);
	GError *e = NULL;
	RpcRequest *req = enc == RPC_XML
				  ? xmlrpc_parse_request(text, len, &e)
				  : jsonrpc_parse_request(text, len, &e);
	if (req == NULL) {
		g_autofree char *code = NULL;
		g_auto(GStrv) params = NULL;
		char *out;

		xerr_split(e, &code, &params);
		g_clear_error(&e);
		out = enc == RPC_XML
			      ? xmlrpc_format_failure(code,
					(const char *const *)params, &len)
			      : jsonrpc_format_failure(NULL, code,
					(const char *const *)params, &len);
		http_respond(msg, enc, out, len);
		return;
	}

	Pending *p = g_new0(Pending, 1);
	CallOrigin origin;
	p->http = http;
	p->msg = g_object_ref(msg);
	p->req = req;
	http_origin(msg, &origin);
	p->in_dispatch = TRUE;
	api_dispatch(http->api, req->method, req->params, &origin, http_reply,
		     p);
	p->in_dispatch = FALSE;
	if (p->answered) {
		/* Most calls answer at once: libsoup sends the reply when this
		 * handler returns, with no pause and no extra wake-up. */
		pending_free(p);
		return;
	}
	/* A call that answers later (event.from, login): hold the message. */
	soup_server_message_pause(msg);
	p->paused = TRUE;
	p->disconnect_id = g_signal_connect(msg, "disconnected",
					    G_CALLBACK(http_disconnected), p);
}

static void
http_count_header(const char *name, const char *value, gpointer data)
{
	(*(guint *)data)++;
}

/* An early handler: runs when the headers are in, before the body is read,
 * so that a request which will be refused is refused without its body. */
static void
http_early(SoupServer *server, SoupServerMessage *msg, const char *path,
	   GHashTable *query, gpointer data)
{
	Http *http = data;
	SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
	goffset clen = soup_message_headers_get_content_length(h);
	SoupEncoding enc = soup_message_headers_get_encoding(h);
	guint nheaders = 0;

	guard_got_headers(msg);
	soup_message_headers_foreach(h, http_count_header, &nheaders);
	if (strcmp(path, HTTP_IMPORT_PATH) == 0 &&
	    !(http->max_headers && nheaders > http->max_headers))
		http_import_early(http, msg, query, clen, enc);
	else if (strcmp(path, "/") != 0 && strcmp(path, "/jsonrpc") != 0)
		guard_refuse(msg, SOUP_STATUS_NOT_FOUND, "Not Found");
	else if (strcmp(soup_server_message_get_method(msg), "POST") != 0)
		guard_refuse(msg, SOUP_STATUS_METHOD_NOT_ALLOWED,
			     "Method Not Allowed");
	else if (http->max_headers && nheaders > http->max_headers)
		guard_refuse(msg, 431, "Request Header Fields Too Large");
	else if (enc != SOUP_ENCODING_CONTENT_LENGTH)
		guard_refuse(msg, SOUP_STATUS_LENGTH_REQUIRED,
			     "Length Required");
	else if (clen < 0 || (guint64)clen > http->max_body)
		guard_refuse(msg, SOUP_STATUS_REQUEST_ENTITY_TOO_LARGE,
			     "Payload Too Large");
	else if (!guard_reserve_body(http->guard, msg, clen))
		guard_refuse(msg, SOUP_STATUS_SERVICE_UNAVAILABLE,
			     "Service Unavailable");
}

/* ---- The TCP port: TLS, plain HTTP or the migration channel ---------- */

typedef struct {
	Http *http;
	GSocketConnection *conn;
	GSocketAddress *remote;   /* guard_admit's, for libsoup */
	GSource *source;
	guint timeout_id;
} Sniff;

static void
sniff_free(Sniff *s)
{
	if (s->timeout_id)
		g_source_remove(s->timeout_id);
	if (s->source) {
		g_source_destroy(s->source);
		g_source_unref(s->source);
	}
	g_object_unref(s->conn);
	g_object_unref(s->remote);
	g_free(s);
}

static void
http_accept_stream(Http *http, GSocketConnection *conn,
		   GSocketAddress *remote)
{
	GError *e = NULL;
	g_autoptr(GSocketAddress) local =
		g_socket_connection_get_local_address(conn, NULL);
	g_autoptr(GIOStream) stream = NULL;

	if (http->cert != NULL) {
		stream = tlsserver_new(G_IO_STREAM(conn), http->cert, &e);
		if (stream == NULL) {
			g_warning("http: TLS: %s", e->message);
			g_error_free(e);
			return;
		}
	} else {
		stream = g_object_ref(G_IO_STREAM(conn));
	}
	if (!soup_server_accept_iostream(http->server, stream, local, remote,
					 &e)) {
		g_warning("http: accept: %s", e->message);
		g_error_free(e);
	}
}

static gboolean
sniff_timeout(gpointer data)
{
	Sniff *s = data;

	s->timeout_id = 0;
	sniff_free(s);
	return G_SOURCE_REMOVE;
}

static gboolean
sniff_ready(GSocket *sock, GIOCondition cond, gpointer data)
{
	Sniff *s = data;
	Http *http = s->http;
	char first = 0;
	/* Peek: the byte stays for whoever takes the connection. */
	gssize n = recv(g_socket_get_fd(sock), &first, 1, MSG_PEEK);
	if (n == 1 && first == 0x16 && http->cert != NULL)
		http_accept_stream(http, s->conn, s->remote);
	else if (n == 1 && first == 'T')
		migrate_dst_accept(http->api, s->conn);
	else if (n == 1 && http->cert == NULL)
		http_accept_stream(http, s->conn, s->remote);
	else if (n != 0 && !(n < 0 && errno == EAGAIN))
		g_info("http: dropped a connection that is neither TLS nor "
		       "the migration channel");
	if (n < 0 && errno == EAGAIN)
		return G_SOURCE_CONTINUE;
	g_source_destroy(s->source);
	g_source_unref(s->source);
	s->source = NULL;
	sniff_free(s);
	return G_SOURCE_REMOVE;
}

static gboolean
http_incoming(GSocketService *service, GSocketConnection *conn,
	      GObject *source, gpointer data)
{
	Http *http = data;
	GSocket *sock = g_socket_connection_get_socket(conn);
	GSocketAddress *remote = NULL;
	Sniff *s;

	/* Over a cap: the service drops its reference and the socket closes
	 * unread. */
	if (!guard_admit(http->guard, conn, &remote))
		return TRUE;
	s = g_new0(Sniff, 1);
	s->http = http;
	s->conn = g_object_ref(conn);
	s->remote = remote;
	/* libsoup writes headers and body apart: without this, Nagle and
	 * delayed ACKs hold every reply for tens of milliseconds. */
	g_socket_set_option(sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
	g_socket_set_blocking(sock, FALSE);
	s->source = g_socket_create_source(sock, G_IO_IN | G_IO_HUP, NULL);
	g_source_set_callback(s->source, G_SOURCE_FUNC(sniff_ready), s, NULL);
	g_source_attach(s->source, NULL);
	/* The first byte decides who takes the connection; until it comes,
	 * it is nobody's, and it may not wait long. */
	s->timeout_id = g_timeout_add_seconds(MAX(http->first_byte_s, 1),
					      sniff_timeout, s);
	return TRUE;
}

static GSocket *
http_unix_socket(const char *path, GError **error)
{
	g_autoptr(GSocket) sock = g_socket_new(G_SOCKET_FAMILY_UNIX,
		G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, error);
	g_autoptr(GSocketAddress) addr = NULL;
	mode_t old;

	if (sock == NULL)
		return NULL;
	g_unlink(path);
	addr = g_unix_socket_address_new(path);
	/* Created 0600 from the start: no window where others may connect. */
	old = umask(0177);
	gboolean ok = g_socket_bind(sock, addr, FALSE, error);
	umask(old);
	if (!ok || g_chmod(path, 0600) != 0 || !g_socket_listen(sock, error)) {
		if (error && *error == NULL)
			g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
				    "chmod %s: %s", path, g_strerror(errno));
		return NULL;
	}
	return g_steal_pointer(&sock);
}

static gboolean
http_listen_tcp(Http *http, const char *listen, GError **error)
{
	g_autoptr(GSocketConnectable) addr =
		g_network_address_parse(listen, 0, error);
	g_autoptr(GSocketAddressEnumerator) en = NULL;
	g_autoptr(GSocketAddress) sa = NULL;
	g_autoptr(GSocketAddress) bound = NULL;

	if (addr == NULL)
		return FALSE;
	en = g_socket_connectable_enumerate(addr);
	sa = g_socket_address_enumerator_next(en, NULL, error);
	if (sa == NULL)
		return FALSE;
	http->tcp = g_socket_service_new();
	if (!g_socket_listener_add_address(G_SOCKET_LISTENER(http->tcp), sa,
					   G_SOCKET_TYPE_STREAM,
					   G_SOCKET_PROTOCOL_TCP, NULL, &bound,
					   error))
		return FALSE;
	http->port = g_inet_socket_address_get_port(
		G_INET_SOCKET_ADDRESS(bound));
	g_signal_connect(http->tcp, "incoming", G_CALLBACK(http_incoming),
			 http);
	g_socket_service_start(http->tcp);
	return TRUE;
}

Http *
http_new(Api *api, const HttpConfig *cfg, GError **error)
{
	Http *http = g_new0(Http, 1);

	http->api = api;
	http->max_body = cfg->max_body;
	http->max_headers = cfg->max_headers;
	http->first_byte_s = cfg->first_byte_s;
	http->guard = guard_new(&cfg->limits);
	http->cert = cfg->cert ? g_object_ref(cfg->cert) : NULL;
	http->server = soup_server_new("server-header", "ternd", NULL);
	soup_server_add_early_handler(http->server, NULL, http_early, http,
				      NULL);
	soup_server_add_handler(http->server, NULL, http_handle, http, NULL);
	guard_watch(http->guard, http->server);

	if (cfg->unix_path != NULL) {
		g_autoptr(GSocket) sock = http_unix_socket(cfg->unix_path,
							   error);
		if (sock == NULL ||
		    !soup_server_listen_socket(http->server, sock, 0, error))
			goto fail;
		http->unix_path = g_strdup(cfg->unix_path);
	}
	if (cfg->listen != NULL && !http_listen_tcp(http, cfg->listen, error))
		goto fail;
	return http;
fail:
	http_free(http);
	return NULL;
}

void
http_free(Http *http)
{
	if (http == NULL)
		return;
	if (http->tcp) {
		g_socket_service_stop(http->tcp);
		g_socket_listener_close(G_SOCKET_LISTENER(http->tcp));
		g_object_unref(http->tcp);
	}
	soup_server_disconnect(http->server);
	g_object_unref(http->server);
	guard_free(http->guard);
	if (http->unix_path)
		g_unlink(http->unix_path);
	g_free(http->unix_path);
	g_clear_object(&http->cert);
	g_free(http);
}

guint16
http_port(Http *http)
{
	return http->port;
}

void
http_set_api(Http *http, Api *api)
{
	http->api = api;
}
