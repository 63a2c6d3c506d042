/*
 * guard: what a stranger on the TCP port may cost ternd before any
 * session or token is checked (see guard.h).
 *
 * Every connection the port accepts is counted, globally and per peer
 * address, from accept until its GSocketConnection is finalized (a weak
 * reference: whoever holds the connection, libsoup, a TLS wrapper or the
 * migration channel, ends the count by letting go of it).  Over a cap, a
 * connection is closed at accept, before a byte is read.
 *
 * An HTTP connection also has one deadline at a time, moved by libsoup's
 * server signals:
 *
 *   request-started (accept, or the first byte of the next request)
 *                       -> headers within header_s
 *   got-headers (the early handler calls guard_got_headers)
 *                       -> body within body_s
 *   request-read        -> none: the call runs (a long poll may wait)
 *   request-finished    -> the next request within idle_s (keep-alive)
 *
 * The bodies of TCP requests share one budget of bytes (a body is held in
 * memory from its headers until its message is freed): a request whose
 * Content-Length does not fit is refused from its headers with 503.
 *
 * A connection past its deadline is shut down under libsoup, which then
 * sees the end of its stream and drops it.  A request refused from its
 * headers (guard_refuse) is taken from libsoup, since libsoup 3.2 would
 * otherwise read and keep the whole body before answering: the refusal is
 * written by hand, what the client still sends is read and dropped for at
 * most GUARD_DRAIN_S seconds (so that the client sees the answer rather
 * than a reset), and the connection is closed.
 *
 * libsoup 3.2 also never lets go of a kept-alive connection whose client
 * hangs up between requests: its file descriptor can be closed under it,
 * but its objects (the connection, a TLS session with its credentials,
 * signal closures: about 24 KB) stay for good.  bench/soak found ternd
 * growing by 200 KB a migration from it (each p2p login is a few such
 * connections).  So every response says "Connection: close", on the TCP
 * port and on the Unix socket alike, and libsoup ends the connection
 * itself once the response is out, which it does without leaking.  A
 * client then pays one connect (and TLS handshake) per call, a millisecond
 * or two, against a daemon that lives for months.  The keep-alive
 * deadline and the watch below stay only as a bound, should libsoup ever
 * keep a connection open after such a response (ternd closes it whatever
 * the client says).
 */
#include "rpc/guard.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#define GUARD_KEY "tern-guard-conn"
#define GUARD_DRAIN_S 2
#define GUARD_DRAIN_MAX (4 * 1024 * 1024)
/* NVAL too: a socket closed under a watch would otherwise make poll()
 * return at once, forever, without the watch ever running. */
#define GUARD_IDLE_EVENTS (G_IO_IN | G_IO_HUP | G_IO_ERR | G_IO_NVAL)

/* Shared by the Guard and the messages whose bodies it counts, which may
 * outlive it at exit. */
typedef struct {
	gsize used;
} GuardBudget;

typedef struct {
	GuardBudget *budget;
	gsize bytes;
} GuardReservation;

struct Guard {
	GuardLimits lim;
	GuardBudget *budget;      /* g_rc_box */
	guint total;
	GHashTable *per_addr;     /* address string -> count */
	GHashTable *conns;        /* GuardConn set */
	guint refused;
};

typedef struct {
	Guard *guard;
	GSocketConnection *conn;  /* weak */
	GSocketAddress *remote;   /* carries GUARD_KEY while the conn lives */
	char *addr;
	guint timer;
	const char *waiting;      /* what the deadline waits for */
	GSource *idle_watch;      /* between requests: did the peer leave? */
	gboolean released;        /* no longer counted */
} GuardConn;

Guard *
guard_new(const GuardLimits *lim)
{
	Guard *g = g_new0(Guard, 1);

	g->lim = *lim;
	g->budget = g_rc_box_new0(GuardBudget);
	g->per_addr = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
					    NULL);
	g->conns = g_hash_table_new(NULL, NULL);
	return g;
}

static void
guard_conn_disarm(GuardConn *gc)
{
	if (gc->timer) {
		g_source_remove(gc->timer);
		gc->timer = 0;
	}
	if (gc->idle_watch) {
		g_source_destroy(gc->idle_watch);
		g_source_unref(gc->idle_watch);
		gc->idle_watch = NULL;
	}
}

static void
guard_conn_free(GuardConn *gc)
{
	guard_conn_disarm(gc);
	g_object_set_data(G_OBJECT(gc->remote), GUARD_KEY, NULL);
	g_object_unref(gc->remote);
	g_free(gc->addr);
	g_free(gc);
}

/* The connection no longer counts (closed, or finalized). */
static void
guard_conn_release(GuardConn *gc)
{
	Guard *g = gc->guard;
	guint n = GPOINTER_TO_UINT(g_hash_table_lookup(g->per_addr,
						       gc->addr));

	if (gc->released)
		return;
	gc->released = TRUE;
	g->total--;
	if (n <= 1)
		g_hash_table_remove(g->per_addr, gc->addr);
	else
		g_hash_table_insert(g->per_addr, g_strdup(gc->addr),
				    GUINT_TO_POINTER(n - 1));
}

static void
guard_conn_gone(gpointer data, GObject *where_the_object_was)
{
	GuardConn *gc = data;

	guard_conn_release(gc);
	g_hash_table_remove(gc->guard->conns, gc);
	guard_conn_free(gc);
}

/* Closes the socket under whoever holds it.  libsoup 3.2 never lets go of
 * a kept-alive connection whose client closed it between requests (its
 * next message has no completion callback), so the socket is closed here
 * and the connection stops counting now, not at a finalize that may never
 * come. */
static void
guard_conn_close(GuardConn *gc)
{
	GSocket *sock = g_socket_connection_get_socket(gc->conn);

	guard_conn_disarm(gc);
	g_socket_shutdown(sock, TRUE, TRUE, NULL);
	g_socket_close(sock, NULL);
	guard_conn_release(gc);
}

void
guard_free(Guard *g)
{
	GHashTableIter it;
	gpointer key;

	if (g == NULL)
		return;
	g_hash_table_iter_init(&it, g->conns);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		GuardConn *gc = key;
		g_object_weak_unref(G_OBJECT(gc->conn), guard_conn_gone, gc);
		guard_conn_free(gc);
	}
	g_hash_table_destroy(g->conns);
	g_hash_table_destroy(g->per_addr);
	g_rc_box_release(g->budget);
	g_free(g);
}

/* Stops counting connections whose socket is closed although their
 * object lives on (a holder that closed but keeps a reference). */
static void
guard_sweep(Guard *g)
{
	GHashTableIter it;
	gpointer key;

	g_hash_table_iter_init(&it, g->conns);
	while (g_hash_table_iter_next(&it, &key, NULL)) {
		GuardConn *gc = key;
		if (!gc->released &&
		    g_socket_is_closed(g_socket_connection_get_socket(gc->conn)))
			guard_conn_release(gc);
	}
}

static gboolean
guard_over(Guard *g, const char *addr, guint *n)
{
	*n = GPOINTER_TO_UINT(g_hash_table_lookup(g->per_addr, addr));
	return (g->lim.max_conns && g->total >= g->lim.max_conns) ||
	       (g->lim.max_per_addr && *n >= g->lim.max_per_addr);
}

gboolean
guard_admit(Guard *g, GSocketConnection *conn, GSocketAddress **remote_out)
{
	g_autoptr(GSocketAddress) remote =
		g_socket_connection_get_remote_address(conn, NULL);
	g_autofree char *addr = NULL;
	guint n;

	if (G_IS_INET_SOCKET_ADDRESS(remote))
		addr = g_inet_address_to_string(g_inet_socket_address_get_address(
			G_INET_SOCKET_ADDRESS(remote)));
	else
		addr = g_strdup("?");
	if (guard_over(g, addr, &n))
		guard_sweep(g);
	if (remote == NULL || guard_over(g, addr, &n)) {
		/* A flood is logged, not every connection in it. */
		g->refused++;
		if ((g->refused & (g->refused - 1)) == 0)
			g_info("http: refused a connection from %s (%u open "
			       "from it, %u in all; %u refused so far)", addr,
			       n, g->total, g->refused);
		return FALSE;
	}

	GuardConn *gc = g_new0(GuardConn, 1);
	gc->guard = g;
	gc->conn = conn;
	gc->remote = g_object_ref(remote);
	gc->addr = g_steal_pointer(&addr);
	g_object_set_data(G_OBJECT(remote), GUARD_KEY, gc);
	g_object_weak_ref(G_OBJECT(conn), guard_conn_gone, gc);
	g_hash_table_add(g->conns, gc);
	g_hash_table_insert(g->per_addr, g_strdup(gc->addr),
			    GUINT_TO_POINTER(n + 1));
	g->total++;
	*remote_out = g_steal_pointer(&remote);
	return TRUE;
}

static gboolean
guard_conn_expired(gpointer data)
{
	GuardConn *gc = data;

	gc->timer = 0;
	g_info("http: closed a connection from %s: %s not in time", gc->addr,
	       gc->waiting);
	guard_conn_close(gc);
	return G_SOURCE_REMOVE;
}

static void
guard_conn_arm(GuardConn *gc, guint seconds, const char *what)
{
	guard_conn_disarm(gc);
	if (gc->released)
		return;
	gc->waiting = what;
	if (seconds > 0)
		gc->timer = g_timeout_add_seconds(seconds, guard_conn_expired,
						  gc);
}

/* The guarded connection of MSG; NULL on the Unix socket. */
static GuardConn *
guard_conn_of(SoupServerMessage *msg)
{
	GSocketAddress *remote = soup_server_message_get_remote_address(msg);

	return remote ? g_object_get_data(G_OBJECT(remote), GUARD_KEY) : NULL;
}

static void
guard_request_started(SoupServer *server, SoupServerMessage *msg,
		      gpointer data)
{
	GuardConn *gc = guard_conn_of(msg);

	soup_message_headers_replace(
		soup_server_message_get_response_headers(msg), "Connection",
		"close");
	if (gc != NULL)
		guard_conn_arm(gc, gc->guard->lim.header_s, "the headers");
}

static void
guard_request_read(SoupServer *server, SoupServerMessage *msg, gpointer data)
{
	GuardConn *gc = guard_conn_of(msg);

	if (gc != NULL)
		guard_conn_disarm(gc);
}

/* Between requests: a peer that hangs up is closed at once; the first
 * byte of a next request starts its header deadline (libsoup's
 * request-started moves it again once it reads that byte). */
static gboolean
guard_conn_idle_ready(GSocket *sock, GIOCondition cond, gpointer data)
{
	GuardConn *gc = data;
	char c;
	gssize n = recv(g_socket_get_fd(sock), &c, 1, MSG_PEEK | MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return G_SOURCE_CONTINUE;
	if (n <= 0) {
		guard_conn_close(gc);
		return G_SOURCE_REMOVE;
	}
	/* Destroys this source too. */
	guard_conn_arm(gc, gc->guard->lim.header_s, "the headers");
	return G_SOURCE_REMOVE;
}

static void
guard_request_finished(SoupServer *server, SoupServerMessage *msg,
		       gpointer data)
{
	GuardConn *gc = guard_conn_of(msg);
	GSocket *sock;

	if (gc == NULL || gc->released)
		return;
	guard_conn_arm(gc, gc->guard->lim.idle_s, "a next request");
	sock = g_socket_connection_get_socket(gc->conn);
	gc->idle_watch = g_socket_create_source(sock, GUARD_IDLE_EVENTS, NULL);
	g_source_set_callback(gc->idle_watch,
			      G_SOURCE_FUNC(guard_conn_idle_ready), gc, NULL);
	g_source_attach(gc->idle_watch, NULL);
}

void
guard_watch(Guard *g, SoupServer *server)
{
	g_signal_connect(server, "request-started",
			 G_CALLBACK(guard_request_started), g);
	g_signal_connect(server, "request-read",
			 G_CALLBACK(guard_request_read), g);
	g_signal_connect(server, "request-finished",
			 G_CALLBACK(guard_request_finished), g);
	g_signal_connect(server, "request-aborted",
			 G_CALLBACK(guard_request_finished), g);
}

void
guard_got_headers(SoupServerMessage *msg)
{
	GuardConn *gc = guard_conn_of(msg);

	if (gc != NULL)
		guard_conn_arm(gc, gc->guard->lim.body_s, "the body");
}

static void
guard_reservation_free(gpointer data)
{
	GuardReservation *r = data;

	r->budget->used -= r->bytes;
	g_rc_box_release(r->budget);
	g_free(r);
}

gboolean
guard_reserve_body(Guard *g, SoupServerMessage *msg, goffset clen)
{
	GuardReservation *r;

	if (guard_conn_of(msg) == NULL || clen <= 0)
		return TRUE;
	if (g->lim.bodies_in_flight &&
	    g->budget->used + (gsize)clen > g->lim.bodies_in_flight)
		return FALSE;
	r = g_new0(GuardReservation, 1);
	r->budget = g_rc_box_acquire(g->budget);
	r->bytes = clen;
	r->budget->used += r->bytes;
	g_object_set_data_full(G_OBJECT(msg), "tern-guard-body", r,
			       guard_reservation_free);
	return TRUE;
}

/* ---- Refusing from the headers ------------------------------------- */

typedef struct {
	GIOStream *stream;
	GCancellable *cancel;
	guint timer;
	gsize drained;
	char *reply;
	guint8 buf[16384];
} Refusal;

static void
guard_refusal_closed(GObject *src, GAsyncResult *res, gpointer data)
{
	g_io_stream_close_finish(G_IO_STREAM(src), res, NULL);
	g_object_unref(src);
}

static void
guard_refusal_free(Refusal *r)
{
	if (r->timer)
		g_source_remove(r->timer);
	/* Asynchronously: a TLS close writes, and must not block the loop. */
	g_io_stream_close_async(r->stream, G_PRIORITY_DEFAULT, NULL,
				guard_refusal_closed, NULL);
	g_object_unref(r->cancel);
	g_free(r->reply);
	g_free(r);
}

static gboolean
guard_refusal_timeout(gpointer data)
{
	Refusal *r = data;

	r->timer = 0;
	g_cancellable_cancel(r->cancel);
	return G_SOURCE_REMOVE;
}

static void
guard_refusal_drained(GObject *src, GAsyncResult *res, gpointer data)
{
	Refusal *r = data;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(src), res, NULL);

	if (n <= 0 || (r->drained += n) > GUARD_DRAIN_MAX) {
		guard_refusal_free(r);
		return;
	}
	g_input_stream_read_async(g_io_stream_get_input_stream(r->stream),
				  r->buf, sizeof r->buf, G_PRIORITY_LOW,
				  r->cancel, guard_refusal_drained, r);
}

static void
guard_refusal_written(GObject *src, GAsyncResult *res, gpointer data)
{
	Refusal *r = data;

	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, NULL,
					      NULL)) {
		guard_refusal_free(r);
		return;
	}
	g_input_stream_read_async(g_io_stream_get_input_stream(r->stream),
				  r->buf, sizeof r->buf, G_PRIORITY_LOW,
				  r->cancel, guard_refusal_drained, r);
}

void
guard_refuse(SoupServerMessage *msg, guint status, const char *reason)
{
	GuardConn *gc = guard_conn_of(msg);
	Refusal *r = g_new0(Refusal, 1);

	g_info("http: refused a %s request from %s: %u %s",
	       soup_server_message_get_method(msg),
	       gc ? gc->addr : "the local socket", status, reason);
	if (gc != NULL)
		guard_conn_disarm(gc);
	r->stream = soup_server_message_steal_connection(msg);
	if (r->stream == NULL) {
		g_free(r);
		return;
	}
	r->cancel = g_cancellable_new();
	r->reply = g_strdup_printf("HTTP/1.1 %u %s\r\nServer: ternd\r\n"
				   "Connection: close\r\n"
				   "Content-Length: 0\r\n\r\n", status, reason);
	/* The write is a hundred bytes into an empty socket buffer; the
	 * timer bounds it anyway, and the drain after it. */
	r->timer = g_timeout_add_seconds(GUARD_DRAIN_S, guard_refusal_timeout, r);
	g_output_stream_write_all_async(g_io_stream_get_output_stream(r->stream),
					r->reply, strlen(r->reply),
					G_PRIORITY_DEFAULT, r->cancel,
					guard_refusal_written, r);
}
