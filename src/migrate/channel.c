/*
 * channel: line framing for the migration channel (see channel.h).
 *
 * Reads are chunked and asynchronous, lines are capped (anyone may
 * connect to the API port, so nothing read from a peer may grow without
 * bound: the first line, read before any token is checked, at
 * CHAN_MAX_FIRST_LINE, later ones at CHAN_MAX_LINE), and a line's JSON is
 * scanned for depth before it is parsed; writes are queued.  A Chan is freed only outside its
 * own read callback: chan_free inside the callback marks it and the read
 * completion reaps it.  A once-a-second tick bounds the wait for the
 * peer's next bytes (chan_set_deadline) and sends the keepalive pings.
 */
#include "migrate/channel.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

#include "common/jsonscan.h"
#include "common/xerr.h"
#include "migrate/migrate-int.h"

struct Chan {
	GIOStream *stream;
	ChanFn fn;
	gpointer data;
	GCancellable *cancel;
	GString *buf;
	guint8 chunk[16384];
	gboolean reading;
	gboolean paused;
	gboolean dead;
	gboolean in_callback;
	GQueue writes;
	gboolean writing;
	gboolean keep_open;
	gboolean got_line;        /* the first line has been delivered */
	guint tick_id;            /* deadline and keepalive, 1 Hz */
	guint deadline_s;         /* 0: none */
	gint64 last_rx_us;        /* monotonic time of the last bytes read */
	gboolean keepalive;
	gint64 last_ping_us;
};

static void chan_read_more(Chan *chan);

/* The handler of a channel nobody listens to any more. */
static void
chan_ignore(Chan *chan, const char *verb, JsonObject *msg,
	    const GError *error, gpointer user_data)
{
	if (verb == NULL)
		chan_free(chan);
}

gboolean
chan_parse(const char *line, char **verb, JsonObject **msg)
{
	const char *sp = strchr(line, ' ');
	g_autoptr(JsonNode) n = NULL;

	if (sp == NULL || sp == line || sp - line > 32)
		return FALSE;
	if (jsonscan_check(sp + 1, strlen(sp + 1), CHAN_MAX_DEPTH) != NULL)
		return FALSE;
	n = json_from_string(sp + 1, NULL);
	if (n == NULL || !JSON_NODE_HOLDS_OBJECT(n))
		return FALSE;
	*verb = g_strndup(line, sp - line);
	*msg = json_object_ref(json_node_get_object(n));
	return TRUE;
}

static void
chan_tick_stop(Chan *chan)
{
	if (chan->tick_id) {
		g_source_remove(chan->tick_id);
		chan->tick_id = 0;
	}
}

static void
chan_destroy(Chan *chan)
{
	chan_tick_stop(chan);
	g_cancellable_cancel(chan->cancel);
	g_object_unref(chan->cancel);
	g_string_free(chan->buf, TRUE);
	g_queue_clear_full(&chan->writes, (GDestroyNotify)g_bytes_unref);
	if (chan->stream && !chan->keep_open)
		g_io_stream_close(chan->stream, NULL, NULL);
	g_clear_object(&chan->stream);
	g_free(chan);
}

/* Calls the owner; returns FALSE if the owner freed the channel. */
static gboolean
chan_deliver(Chan *chan, const char *verb, JsonObject *msg,
	     const GError *error)
{
	chan->in_callback = TRUE;
	chan->fn(chan, verb, msg, error, chan->data);
	chan->in_callback = FALSE;
	if (chan->dead) {
		if (!chan->reading && !chan->writing)
			chan_destroy(chan);
		return FALSE;
	}
	return TRUE;
}

static void
chan_fail(Chan *chan, const GError *error)
{
	/* A peer that went away is reported once. */
	if (chan->dead)
		return;
	chan->paused = TRUE;
	chan_deliver(chan, NULL, NULL, error);
}

static gboolean
chan_dispatch_lines(Chan *chan)
{
	char *nl;

	while (!chan->paused && (nl = memchr(chan->buf->str, '\n',
					     chan->buf->len)) != NULL) {
		g_autofree char *line = g_strndup(chan->buf->str,
						  nl - chan->buf->str);
		g_autofree char *verb = NULL;
		g_autoptr(JsonObject) msg = NULL;

		g_string_erase(chan->buf, 0, nl - chan->buf->str + 1);
		if (!chan_parse(line, &verb, &msg)) {
			g_autoptr(GError) e = xerr_new("INTERNAL_ERROR",
				"migration channel: malformed message", NULL);
			chan_fail(chan, e);
			return FALSE;
		}
		chan->got_line = TRUE;
		if (chan->keepalive && strcmp(verb, "PING") == 0) {
			chan_send(chan, "PONG", NULL);
			continue;
		}
		if (chan->keepalive && strcmp(verb, "PONG") == 0)
			continue;
		if (!chan_deliver(chan, verb, msg, NULL))
			return FALSE;
	}
	if (chan->buf->len > (chan->got_line ? CHAN_MAX_LINE
					      : CHAN_MAX_FIRST_LINE)) {
		g_autoptr(GError) e = xerr_new("INTERNAL_ERROR",
			"migration channel: message too long", NULL);
		chan_fail(chan, e);
		return FALSE;
	}
	return TRUE;
}

static void
chan_read_done(GObject *src, GAsyncResult *res, gpointer data)
{
	Chan *chan = data;
	GError *e = NULL;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(src), res, &e);

	chan->reading = FALSE;
	if (chan->dead) {
		g_clear_error(&e);
		if (!chan->writing)
			chan_destroy(chan);
		return;
	}
	if (n < 0 && g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
		g_error_free(e);
		return;
	}
	if (n <= 0) {
		chan_fail(chan, e);
		g_clear_error(&e);
		return;
	}
	chan->last_rx_us = g_get_monotonic_time();
	g_string_append_len(chan->buf, (const char *)chan->chunk, n);
	if (chan_dispatch_lines(chan))
		chan_read_more(chan);
}

static void
chan_read_more(Chan *chan)
{
	if (chan->reading || chan->paused || chan->dead)
		return;
	/* Read a line's worth at most: bytes after it may belong to QEMU,
	 * though the protocol's turn-taking means none should be there. */
	chan->reading = TRUE;
	g_input_stream_read_async(g_io_stream_get_input_stream(chan->stream),
				  chan->chunk, sizeof chan->chunk,
				  G_PRIORITY_DEFAULT, chan->cancel,
				  chan_read_done, chan);
}

Chan *
chan_new(GIOStream *stream, ChanFn fn, gpointer user_data)
{
	Chan *chan = g_new0(Chan, 1);

	chan->stream = g_object_ref(stream);
	chan->fn = fn;
	chan->data = user_data;
	chan->cancel = g_cancellable_new();
	chan->buf = g_string_new(NULL);
	g_queue_init(&chan->writes);
	chan_read_more(chan);
	return chan;
}

void
chan_free(Chan *chan)
{
	if (chan == NULL)
		return;
	chan->dead = TRUE;
	chan_tick_stop(chan);
	g_cancellable_cancel(chan->cancel);
	if (!chan->in_callback && !chan->reading && !chan->writing)
		chan_destroy(chan);
}

GOutputStream *
chan_output(Chan *chan)
{
	return g_io_stream_get_output_stream(chan->stream);
}

GIOStream *
chan_steal_stream(Chan *chan)
{
	GIOStream *s = g_object_ref(chan->stream);

	chan->keep_open = TRUE;
	chan_free(chan);
	return s;
}

void
chan_pause(Chan *chan)
{
	chan->paused = TRUE;
	chan_tick_stop(chan);
}

static gboolean
chan_tick(gpointer data)
{
	Chan *chan = data;
	gint64 now = g_get_monotonic_time();

	if (chan->dead || chan->paused) {
		chan->tick_id = 0;
		return G_SOURCE_REMOVE;
	}
	if (chan->deadline_s > 0 &&
	    now - chan->last_rx_us >= (gint64)chan->deadline_s *
					       G_USEC_PER_SEC) {
		g_autoptr(GError) e = g_error_new(G_IO_ERROR,
			G_IO_ERROR_TIMED_OUT, "the peer sent nothing for %u s",
			chan->deadline_s);
		/* The owner may free the channel in chan_fail: no access
		 * after it. */
		chan->tick_id = 0;
		chan_fail(chan, e);
		return G_SOURCE_REMOVE;
	}
	if (chan->keepalive &&
	    now - chan->last_ping_us >= (gint64)CHAN_PING_S * G_USEC_PER_SEC) {
		chan->last_ping_us = now;
		chan_send(chan, "PING", NULL);
	}
	return G_SOURCE_CONTINUE;
}

static void
chan_tick_start(Chan *chan)
{
	if (chan->tick_id == 0 && !chan->dead && !chan->paused)
		chan->tick_id = g_timeout_add_seconds(1, chan_tick, chan);
}

void
chan_set_deadline(Chan *chan, guint seconds)
{
	chan->deadline_s = seconds;
	chan->last_rx_us = g_get_monotonic_time();
	if (seconds > 0 || chan->keepalive)
		chan_tick_start(chan);
	else
		chan_tick_stop(chan);
}

void
chan_set_keepalive(Chan *chan)
{
	chan->keepalive = TRUE;
	chan->last_ping_us = g_get_monotonic_time();
	chan_tick_start(chan);
}

int
chan_dup_fd(Chan *chan)
{
	GIOStream *s = chan->stream;

	if (!G_IS_SOCKET_CONNECTION(s))
		return -1;
	return dup(g_socket_get_fd(g_socket_connection_get_socket(
		G_SOCKET_CONNECTION(s))));
}

static void chan_write_next(Chan *chan);

static void
chan_write_done(GObject *src, GAsyncResult *res, gpointer data)
{
	Chan *chan = data;
	GError *e = NULL;

	chan->writing = FALSE;
	g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, NULL, &e);
	g_bytes_unref(g_queue_pop_head(&chan->writes));
	if (chan->dead) {
		g_clear_error(&e);
		if (!chan->reading)
			chan_destroy(chan);
		return;
	}
	if (e != NULL) {
		chan_fail(chan, e);
		g_error_free(e);
		return;
	}
	chan_write_next(chan);
}

static void
chan_write_next(Chan *chan)
{
	GBytes *b = g_queue_peek_head(&chan->writes);

	if (b == NULL || chan->writing)
		return;
	chan->writing = TRUE;
	g_output_stream_write_all_async(
		g_io_stream_get_output_stream(chan->stream),
		g_bytes_get_data(b, NULL), g_bytes_get_size(b),
		G_PRIORITY_DEFAULT, NULL, chan_write_done, chan);
}

void
chan_send(Chan *chan, const char *verb, JsonObject *msg)
{
	g_autoptr(JsonObject) empty = msg ? NULL : json_object_new();
	g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(),
						      msg ? msg : empty);
	g_autofree char *text = json_to_string(n, FALSE);
	char *line = g_strdup_printf("%s %s\n", verb, text);

	if (chan->dead) {
		g_free(line);
		return;
	}
	g_queue_push_tail(&chan->writes, g_bytes_new_take(line, strlen(line)));
	chan_write_next(chan);
}

/* ---- Connecting ----------------------------------------------------- */

typedef struct {
	ChanFn fn;
	gpointer data;
	ChanConnectFn done;
} Connect;

static void
chan_connected(GObject *src, GAsyncResult *res, gpointer data)
{
	Connect *c = data;
	GError *e = NULL;
	g_autoptr(GSocketConnection) conn = g_socket_client_connect_finish(
		G_SOCKET_CLIENT(src), res, &e);

	if (conn == NULL) {
		c->done(NULL, e, c->data);
		g_error_free(e);
	} else {
		GSocket *sock = g_socket_connection_get_socket(conn);
		/* The client's timeout bounds the connect only: a control
		 * channel is quiet for as long as the stream takes. */
		g_socket_set_timeout(sock, 0);
		g_socket_set_option(sock, IPPROTO_TCP, TCP_NODELAY, 1, NULL);
		c->done(chan_new(G_IO_STREAM(conn), c->fn, c->data), NULL,
			c->data);
	}
	g_free(c);
}

void
chan_connect(const char *url, ChanFn fn, gpointer user_data,
	     ChanConnectFn done)
{
	g_autoptr(GSocketClient) client = g_socket_client_new();
	g_autoptr(GUri) uri = g_uri_parse(url, G_URI_FLAGS_NONE, NULL);
	Connect *c = g_new0(Connect, 1);

	c->fn = fn;
	c->data = user_data;
	c->done = done;
	g_socket_client_set_timeout(client, 10);
	if (uri == NULL || g_uri_get_host(uri) == NULL ||
	    g_uri_get_port(uri) <= 0) {
		g_autoptr(GError) e = xerr_new("INTERNAL_ERROR",
			"the destination URL must be scheme://host:port", NULL);
		done(NULL, e, user_data);
		g_free(c);
		return;
	}
	g_socket_client_connect_to_host_async(client, g_uri_get_host(uri),
					      g_uri_get_port(uri), NULL,
					      chan_connected, c);
}

void
migrate_chan_set_handler(Chan *chan, ChanFn fn, gpointer user_data)
{
	chan->fn = fn ? fn : chan_ignore;
	chan->data = user_data;
}
