/*
 * qmp: an asynchronous QMP client on the GLib main loop (see qmp.h).
 *
 * NOTES ON THE DESIGN
 *
 * The wire is one JSON object per line in each direction.  The socket is
 * non-blocking and watched by GSocket sources on the main context that was
 * current at qmp_connect(); nothing here ever waits.
 *
 *  1. Reading.  One input source reads up to QMP_READ_CHUNK bytes straight
 *     into the tail of rbuf, then splits off and handles each complete line.
 *     Only bytes not yet searched are scanned for '\n' (rbuf_scanned), so a
 *     long reply arriving in many pieces costs linear time.  The size cap is
 *     checked after every read against the unfinished line, so the buffer
 *     never holds more than max_reply + QMP_READ_CHUNK bytes.
 *  2. Writing.  Commands are formatted into complete lines and queued.  A
 *     command is written at once when the queue was empty (the common case:
 *     no extra main loop iteration), and the rest waits for an output source
 *     that exists only while the queue is not empty.  A file descriptor rides
 *     as SCM_RIGHTS on the first sendmsg() of its own command, so it arrives
 *     with that command's first byte.  Write errors found inside qmp_call()
 *     are reported from an idle source, never from inside qmp_call().
 *  3. Matching.  Every command carries a unique integer "id"; pending calls
 *     sit in a queue in sending order (QEMU answers in order, so the match is
 *     almost always the head).  A reply whose id is unknown (its call timed
 *     out) is dropped.  Each call with a deadline owns one timeout source.
 *  4. Lifetime.  Sources hold no reference on the Qmp; every source callback
 *     holds one while it dispatches, so a user callback may drop the last
 *     outside reference or call qmp_close().  After each user callback the
 *     dispatcher re-checks the state and stops once it is CLOSED.  Dropping
 *     the last reference of an open Qmp resurrects it for the duration of
 *     the shutdown (like GObject's dispose), so callbacks of failed calls
 *     still see a valid object.
 *
 * STATES (qmp_set_state() is the only transition and never goes backwards):
 *
 *   CONNECTING --connect()--> GREETING --greeting--> NEGOTIATING
 *        |                       |                       |
 *        |                       |          qmp_capabilities answered
 *        |                       |                       v
 *        +-----------------------+--------------------> OPEN
 *                    any failure, timeout or close        |
 *                               \                         |
 *                                +---------> CLOSED <-----+
 *
 *   CONNECTING   qmp_connect()          socket connect (retried if the
 *                                       listener's backlog is full)
 *   GREETING     qmp_connect_attempt()  waiting for {"QMP": ...}
 *   NEGOTIATING  qmp_handle_greeting()  qmp_capabilities sent
 *   OPEN         qmp_connect_negotiated() DONE called with the Qmp
 *   CLOSED       qmp_shutdown()         from any state
 *
 * A failure before OPEN is reported to DONE; a failure in OPEN goes to the
 * closed callback, exactly once, after the pending calls have failed.
 */
#include "qemu/qmp.h"

#include <string.h>

#include <gio/gio.h>
#include <gio/gunixfdmessage.h>
#include <gio/gunixsocketaddress.h>

#include "common/jsonscan.h"

#define QMP_READ_CHUNK (64 * 1024)
#define QMP_CONNECT_RETRY_MS 10
/* QEMU writes shallow JSON; the cap only keeps json-glib's recursion bounded. */
#define QMP_MAX_DEPTH 128

/* The QMP error class travels with QMP_ERROR_COMMAND errors as the private
 * data of an extended error domain (GLib >= 2.68). */
typedef struct {
	char *klass;
} QmpErrorPrivate;

static void
qmp_error_private_init(QmpErrorPrivate *priv)
{
	priv->klass = NULL;
}

static void
qmp_error_private_copy(const QmpErrorPrivate *src, QmpErrorPrivate *dst)
{
	dst->klass = g_strdup(src->klass);
}

static void
qmp_error_private_clear(QmpErrorPrivate *priv)
{
	g_clear_pointer(&priv->klass, g_free);
}

G_DEFINE_EXTENDED_ERROR(QmpError, qmp_error)

const char *
qmp_error_get_class(const GError *error)
{
	if (error == NULL || error->domain != QMP_ERROR ||
	    error->code != QMP_ERROR_COMMAND)
		return NULL;
	return qmp_error_get_private(error)->klass;
}

typedef enum {
	QMP_STATE_CONNECTING,
	QMP_STATE_GREETING,
	QMP_STATE_NEGOTIATING,
	QMP_STATE_OPEN,
	QMP_STATE_CLOSED,
} QmpState;

/* A command waiting for its reply. */
typedef struct {
	GList link;		/* in Qmp.calls; link.data is the call */
	Qmp *qmp;		/* not a reference, except in a deferred call */
	gint64 id;
	guint timeout_ms;
	QmpReplyFn fn;
	gpointer user_data;
	GSource *timer;
} QmpCall;

/* A command line waiting to be written. */
typedef struct {
	char *buf;
	gsize len;
	gsize off;
	GSocketControlMessage *fdmsg;	/* sent with the first byte, or NULL */
} QmpOut;

struct Qmp {
	grefcount ref;
	QmpState state;
	char *path;
	GMainContext *ctx;
	GSocket *sock;

	GSource *in_src;
	GSource *out_src;		/* only while out is not empty */
	GSource *connect_timer;		/* deadline of the handshake */
	GSource *retry_timer;		/* connect() retry when backlog full */
	GSource *fail_idle;		/* reports fail_error */
	GError *fail_error;

	GByteArray *rbuf;
	gsize rbuf_scanned;		/* bytes of rbuf known to hold no '\n' */
	gsize max_reply;
	JsonParser *parser;
	JsonGenerator *gen;

	GQueue out;			/* of QmpOut */
	GQueue calls;			/* of QmpCall, oldest first */
	gint64 next_id;
	guint timeout_ms;
	guint connect_timeout_ms;

	QmpEventHandler *handlers;	/* copy, names owned, {NULL}-terminated */
	QmpClosedFn closed;
	QmpConnectFn done;		/* NULL once reported */
	gpointer user_data;
};

static void
qmp_set_state(Qmp *qmp, QmpState state)
{
	g_assert(state > qmp->state);
	qmp->state = state;
}

static GSource *
qmp_attach(Qmp *qmp, GSource *src, GSourceFunc fn, gpointer data)
{
	g_source_set_callback(src, fn, data, NULL);
	g_source_attach(src, qmp->ctx);
	return src;
}

static void
qmp_source_clear(GSource **src)
{
	if (*src == NULL)
		return;
	g_source_destroy(*src);
	g_clear_pointer(src, g_source_unref);
}

static void
qmp_out_free(QmpOut *out)
{
	g_free(out->buf);
	g_clear_object(&out->fdmsg);
	g_free(out);
}

static void
qmp_call_free(QmpCall *call)
{
	qmp_source_clear(&call->timer);
	g_free(call);
}

/* ---- Lifetime ------------------------------------------------------- */

Qmp *
qmp_ref(Qmp *qmp)
{
	g_ref_count_inc(&qmp->ref);
	return qmp;
}

static void qmp_shutdown(Qmp *qmp, const GError *reason, gboolean notify);

static void
qmp_free(Qmp *qmp)
{
	g_assert(qmp->state == QMP_STATE_CLOSED);
	g_assert(g_queue_is_empty(&qmp->calls));
	g_clear_object(&qmp->sock);
	g_clear_error(&qmp->fail_error);
	g_byte_array_unref(qmp->rbuf);
	g_object_unref(qmp->parser);
	g_object_unref(qmp->gen);
	for (QmpEventHandler *h = qmp->handlers; h->name != NULL; h++)
		g_free((char *)h->name);
	g_free(qmp->handlers);
	g_main_context_unref(qmp->ctx);
	g_free(qmp->path);
	g_free(qmp);
}

void
qmp_unref(Qmp *qmp)
{
	if (qmp == NULL || !g_ref_count_dec(&qmp->ref))
		return;
	if (qmp->state != QMP_STATE_CLOSED) {
		/* Resurrect while the pending calls fail: their callbacks get
		 * a live object and may even keep it. */
		g_autoptr(GError) err = g_error_new(QMP_ERROR,
		    QMP_ERROR_CLOSED, "QMP connection to %s closed",
		    qmp->path);
		g_ref_count_init(&qmp->ref);
		qmp_shutdown(qmp, err, FALSE);
		if (!g_ref_count_dec(&qmp->ref))
			return;
	}
	qmp_free(qmp);
}

gboolean
qmp_is_open(Qmp *qmp)
{
	return qmp->state == QMP_STATE_OPEN;
}

void
qmp_set_timeout(Qmp *qmp, guint timeout_ms)
{
	qmp->timeout_ms = timeout_ms;
}

void
qmp_set_max_reply(Qmp *qmp, gsize bytes)
{
	qmp->max_reply = bytes;
}

/* Ends the connection: every pending call fails with REASON, then, if
 * NOTIFY, the closed callback runs.  The caller holds a reference. */
static void
qmp_shutdown(Qmp *qmp, const GError *reason, gboolean notify)
{
	QmpOut *out;
	GList *link;

	if (qmp->state == QMP_STATE_CLOSED)
		return;
	qmp_set_state(qmp, QMP_STATE_CLOSED);
	qmp_source_clear(&qmp->in_src);
	qmp_source_clear(&qmp->out_src);
	qmp_source_clear(&qmp->connect_timer);
	qmp_source_clear(&qmp->retry_timer);
	qmp_source_clear(&qmp->fail_idle);
	if (qmp->sock != NULL)
		g_socket_close(qmp->sock, NULL);
	while ((out = g_queue_pop_head(&qmp->out)) != NULL)
		qmp_out_free(out);

	while ((link = g_queue_pop_head_link(&qmp->calls)) != NULL) {
		QmpCall *call = link->data;
		QmpReplyFn fn = call->fn;
		gpointer data = call->user_data;

		qmp_call_free(call);
		fn(qmp, NULL, reason, data);
	}
	if (notify && qmp->closed != NULL)
		qmp->closed(qmp, reason, qmp->user_data);
}

void
qmp_close(Qmp *qmp)
{
	G_GNUC_UNUSED g_autoptr(Qmp) hold = qmp_ref(qmp);
	g_autoptr(GError) err = NULL;

	if (qmp->state == QMP_STATE_CLOSED)
		return;
	err = g_error_new(QMP_ERROR, QMP_ERROR_CLOSED,
	    "QMP connection to %s closed", qmp->path);
	qmp_shutdown(qmp, err, FALSE);
}

/* Reports a fatal ERROR (takes ownership): before OPEN it fails the
 * connect, in OPEN it closes the connection and notifies.  The caller holds
 * a reference. */
static void
qmp_fail(Qmp *qmp, GError *error)
{
	g_autoptr(GError) err = error;

	if (qmp->state == QMP_STATE_CLOSED)
		return;
	if (qmp->state == QMP_STATE_OPEN) {
		qmp_shutdown(qmp, err, TRUE);
		return;
	}

	QmpConnectFn done = g_steal_pointer(&qmp->done);

	qmp_shutdown(qmp, err, FALSE);
	done(NULL, err, qmp->user_data);
	qmp_unref(qmp);		/* the reference the connect was to hand over */
}

static gboolean
qmp_on_fail_idle(gpointer data)
{
	Qmp *qmp = data;
	G_GNUC_UNUSED g_autoptr(Qmp) hold = qmp_ref(qmp);

	g_clear_pointer(&qmp->fail_idle, g_source_unref);
	qmp_fail(qmp, g_steal_pointer(&qmp->fail_error));
	return G_SOURCE_REMOVE;
}

/* Reports ERROR (takes ownership) from the main loop, for code that must
 * not call back into the user.  Only the first such error is kept. */
static void
qmp_fail_later(Qmp *qmp, GError *error)
{
	if (qmp->fail_idle != NULL || qmp->state == QMP_STATE_CLOSED) {
		g_error_free(error);
		return;
	}
	qmp->fail_error = error;
	qmp->fail_idle = qmp_attach(qmp, g_idle_source_new(),
	    qmp_on_fail_idle, qmp);
}

/* ---- Writing -------------------------------------------------------- */

static gboolean qmp_on_output(GSocket *sock, GIOCondition cond,
    gpointer data);

/* Writes queued lines until the queue is empty or the socket is full.
 * FALSE with ERROR when the socket failed. */
static gboolean
qmp_flush(Qmp *qmp, GError **error)
{
	QmpOut *out;

	while ((out = g_queue_peek_head(&qmp->out)) != NULL) {
		g_autoptr(GError) err = NULL;
		gssize n;

		if (out->fdmsg != NULL) {
			GOutputVector v = { out->buf + out->off,
			    out->len - out->off };

			n = g_socket_send_message(qmp->sock, NULL, &v, 1,
			    &out->fdmsg, 1, 0, NULL, &err);
			if (n > 0)
				g_clear_object(&out->fdmsg);
		} else {
			n = g_socket_send(qmp->sock, out->buf + out->off,
			    out->len - out->off, NULL, &err);
		}
		if (n < 0) {
			if (!g_error_matches(err, G_IO_ERROR,
			    G_IO_ERROR_WOULD_BLOCK)) {
				g_set_error(error, QMP_ERROR,
				    QMP_ERROR_CLOSED,
				    "QMP socket %s: write failed: %s",
				    qmp->path, err->message);
				return FALSE;
			}
			if (qmp->out_src == NULL) {
				qmp->out_src = g_socket_create_source(
				    qmp->sock, G_IO_OUT, NULL);
				qmp_attach(qmp, qmp->out_src,
				    G_SOURCE_FUNC(qmp_on_output),
				    qmp);
			}
			return TRUE;
		}
		out->off += n;
		if (out->off == out->len)
			qmp_out_free(g_queue_pop_head(&qmp->out));
	}
	qmp_source_clear(&qmp->out_src);
	return TRUE;
}

static gboolean
qmp_on_output(GSocket *sock, GIOCondition cond, gpointer data)
{
	Qmp *qmp = data;
	G_GNUC_UNUSED g_autoptr(Qmp) hold = qmp_ref(qmp);
	GError *err = NULL;

	if (!qmp_flush(qmp, &err))
		qmp_fail(qmp, err);
	return G_SOURCE_CONTINUE;
}

static char *
qmp_format(Qmp *qmp, const char *command, JsonObject *args, gint64 id,
    gsize *len)
{
	g_autoptr(JsonNode) root = json_node_new(JSON_NODE_OBJECT);
	JsonObject *obj = json_object_new();
	GString *line = g_string_sized_new(64 + strlen(command));

	json_object_set_string_member(obj, "execute", command);
	if (args != NULL)
		json_object_set_object_member(obj, "arguments",
		    json_object_ref(args));
	json_object_set_int_member(obj, "id", id);
	json_node_take_object(root, obj);
	json_generator_set_root(qmp->gen, root);
	json_generator_to_gstring(qmp->gen, line);
	json_generator_set_root(qmp->gen, NULL);
	g_string_append_c(line, '\n');
	*len = line->len;
	return g_string_free(line, FALSE);
}

/* ---- Calls ---------------------------------------------------------- */

static gboolean
qmp_on_call_timeout(gpointer data)
{
	QmpCall *call = data;
	Qmp *qmp = call->qmp;
	G_GNUC_UNUSED g_autoptr(Qmp) hold = qmp_ref(qmp);
	g_autoptr(GError) err = g_error_new(QMP_ERROR, QMP_ERROR_TIMEOUT,
	    "QMP command %" G_GINT64_FORMAT " on %s: no reply within %u ms",
	    call->id, qmp->path, call->timeout_ms);
	QmpReplyFn fn = call->fn;
	gpointer user_data = call->user_data;

	g_queue_unlink(&qmp->calls, &call->link);
	qmp_call_free(call);
	fn(qmp, NULL, err, user_data);
	return G_SOURCE_REMOVE;
}

/* Queues COMMAND, whatever the state but CLOSED.  FD < 0 for none. */
static void
qmp_send(Qmp *qmp, const char *command, JsonObject *args, int fd,
    QmpReplyFn fn, gpointer user_data)
{
	QmpCall *call = g_new0(QmpCall, 1);
	QmpOut *out = g_new0(QmpOut, 1);
	gboolean idle = g_queue_is_empty(&qmp->out);

	call->qmp = qmp;
	call->id = qmp->next_id++;
	call->fn = fn;
	call->user_data = user_data;
	call->timeout_ms = qmp->timeout_ms;
	call->link.data = call;
	if (qmp->timeout_ms > 0)
		call->timer = qmp_attach(qmp,
		    g_timeout_source_new(qmp->timeout_ms),
		    qmp_on_call_timeout, call);
	g_queue_push_tail_link(&qmp->calls, &call->link);

	out->buf = qmp_format(qmp, command, args, call->id, &out->len);
	if (fd >= 0) {
		g_autoptr(GError) err = NULL;

		/* Appending duplicates FD, so the caller keeps its own. */
		out->fdmsg = g_unix_fd_message_new();
		if (!g_unix_fd_message_append_fd(
		    G_UNIX_FD_MESSAGE(out->fdmsg), fd, &err)) {
			qmp_out_free(out);
			qmp_fail_later(qmp, g_error_new(QMP_ERROR,
			    QMP_ERROR_CLOSED, "QMP socket %s: "
			    "cannot pass fd %d: %s", qmp->path, fd,
			    err->message));
			return;
		}
	}
	g_queue_push_tail(&qmp->out, out);

	if (idle) {
		GError *err = NULL;

		if (!qmp_flush(qmp, &err))
			qmp_fail_later(qmp, err);
	}
}

static gboolean
qmp_on_deferred_call(gpointer data)
{
	QmpCall *call = data;
	g_autoptr(GError) err = g_error_new(QMP_ERROR, QMP_ERROR_CLOSED,
	    "QMP connection to %s is closed", call->qmp->path);

	call->fn(call->qmp, NULL, err, call->user_data);
	return G_SOURCE_REMOVE;
}

static void
qmp_deferred_call_free(gpointer data)
{
	QmpCall *call = data;

	qmp_unref(call->qmp);
	g_free(call);
}

void
qmp_call_with_fd(Qmp *qmp, const char *command, JsonObject *args, int fd,
    QmpReplyFn fn, gpointer user_data)
{
	g_return_if_fail(qmp != NULL && command != NULL && fn != NULL);

	if (qmp->state == QMP_STATE_CLOSED) {
		/* Still answered from the main loop, and the call keeps the
		 * Qmp alive until then. */
		QmpCall *call = g_new0(QmpCall, 1);
		GSource *src = g_idle_source_new();

		call->qmp = qmp_ref(qmp);
		call->fn = fn;
		call->user_data = user_data;
		g_source_set_callback(src, qmp_on_deferred_call, call,
		    qmp_deferred_call_free);
		g_source_attach(src, qmp->ctx);
		g_source_unref(src);
		return;
	}
	qmp_send(qmp, command, args, fd, fn, user_data);
}

void
qmp_call(Qmp *qmp, const char *command, JsonObject *args, QmpReplyFn fn,
    gpointer user_data)
{
	qmp_call_with_fd(qmp, command, args, -1, fn, user_data);
}

/* ---- Reading -------------------------------------------------------- */

static gboolean
qmp_member_int(JsonObject *obj, const char *name, gint64 *out)
{
	JsonNode *n = json_object_get_member(obj, name);

	if (n == NULL || json_node_get_value_type(n) != G_TYPE_INT64)
		return FALSE;
	*out = json_node_get_int(n);
	return TRUE;
}

static const char *
qmp_member_str(JsonObject *obj, const char *name)
{
	JsonNode *n = json_object_get_member(obj, name);

	if (n == NULL || json_node_get_value_type(n) != G_TYPE_STRING)
		return NULL;
	return json_node_get_string(n);
}

static JsonObject *
qmp_member_obj(JsonObject *obj, const char *name)
{
	JsonNode *n = json_object_get_member(obj, name);

	if (n == NULL || !JSON_NODE_HOLDS_OBJECT(n))
		return NULL;
	return json_node_get_object(n);
}

/* The event's time: QEMU's timestamp, or the arrival time when QEMU sent
 * none, or one out of range (negative, microseconds past a second, or
 * seconds whose microseconds overflow 64 bits: the QMP fuzzer's find). */
static gint64
qmp_event_time(JsonObject *msg)
{
	JsonObject *ts = qmp_member_obj(msg, "timestamp");
	gint64 sec, usec;

	if (ts != NULL && qmp_member_int(ts, "seconds", &sec) &&
	    qmp_member_int(ts, "microseconds", &usec) && sec >= 0 &&
	    sec < G_MAXINT64 / G_USEC_PER_SEC - 1 && usec >= 0 &&
	    usec < G_USEC_PER_SEC)
		return sec * G_USEC_PER_SEC + usec;
	return g_get_real_time();
}

static GError *
qmp_command_error(JsonObject *msg)
{
	JsonObject *e = qmp_member_obj(msg, "error");
	const char *klass = e != NULL ? qmp_member_str(e, "class") : NULL;
	const char *desc = e != NULL ? qmp_member_str(e, "desc") : NULL;
	GError *err = g_error_new_literal(QMP_ERROR, QMP_ERROR_COMMAND,
	    desc != NULL ? desc : "QEMU reported an error without a description");

	qmp_error_get_private(err)->klass =
	    g_strdup(klass != NULL ? klass : "GenericError");
	return err;
}

static QmpLineKind
qmp_line_invalid(QmpLine *out, GError *error)
{
	out->error = error;
	return out->kind = QMP_LINE_INVALID;
}

QmpLineKind
qmp_parse_line(JsonParser *parser, const char *line, gsize len,
    gboolean greeting, QmpLine *out)
{
	g_autoptr(GError) err = NULL;
	const char *why;
	JsonObject *msg;

	memset(out, 0, sizeof *out);
	while (len > 0 && g_ascii_isspace(line[len - 1]))
		len--;
	if (len == 0)
		return out->kind = QMP_LINE_BLANK;
	if ((why = jsonscan_check(line, len, QMP_MAX_DEPTH)) != NULL)
		return qmp_line_invalid(out, g_error_new(QMP_ERROR,
		    QMP_ERROR_PROTOCOL, "bad JSON: %s", why));
	if (!json_parser_load_from_data(parser, line, len, &err))
		return qmp_line_invalid(out, g_error_new(QMP_ERROR,
		    QMP_ERROR_PROTOCOL, "bad JSON: %s", err->message));
	out->root = json_parser_steal_root(parser);
	if (out->root == NULL || !JSON_NODE_HOLDS_OBJECT(out->root))
		return qmp_line_invalid(out, g_error_new_literal(QMP_ERROR,
		    QMP_ERROR_PROTOCOL, "message is not an object"));
	msg = json_node_get_object(out->root);

	if (greeting) {
		if (qmp_member_obj(msg, "QMP") == NULL)
			return qmp_line_invalid(out, g_error_new_literal(
			    QMP_ERROR, QMP_ERROR_PROTOCOL,
			    "expected a greeting"));
		return out->kind = QMP_LINE_GREETING;
	}
	if ((out->event = qmp_member_str(msg, "event")) != NULL) {
		out->data = qmp_member_obj(msg, "data");
		out->timestamp_us = qmp_event_time(msg);
		return out->kind = QMP_LINE_EVENT;
	}
	if (json_object_has_member(msg, "return") ||
	    json_object_has_member(msg, "error")) {
		out->has_id = qmp_member_int(msg, "id", &out->id);
		out->ret = json_object_get_member(msg, "return");
		if (out->ret == NULL)
			out->error = qmp_command_error(msg);
		return out->kind = QMP_LINE_REPLY;
	}
	return qmp_line_invalid(out, g_error_new_literal(QMP_ERROR,
	    QMP_ERROR_PROTOCOL, "unexpected message"));
}

void
qmp_line_clear(QmpLine *line)
{
	g_clear_pointer(&line->root, json_node_unref);
	g_clear_error(&line->error);
	memset(line, 0, sizeof *line);
}

static void
qmp_handle_event(Qmp *qmp, const QmpLine *ev)
{
	for (QmpEventHandler *h = qmp->handlers; h->name != NULL; h++) {
		if (strcmp(h->name, ev->event) != 0 && strcmp(h->name, "*") != 0)
			continue;
		h->fn(qmp, ev->event, ev->data, ev->timestamp_us,
		    qmp->user_data);
		if (qmp->state != QMP_STATE_OPEN)
			return;
	}
}

static void
qmp_handle_reply(Qmp *qmp, const QmpLine *reply)
{
	QmpCall *call = NULL;

	if (!reply->has_id) {
		/* QEMU answers a line it could not parse without an id; we
		 * never send one, so there is nobody to tell. */
		g_debug("QMP %s: reply without id ignored", qmp->path);
		return;
	}
	for (GList *l = qmp->calls.head; l != NULL; l = l->next) {
		if (((QmpCall *)l->data)->id == reply->id) {
			call = l->data;
			break;
		}
	}
	if (call == NULL) {
		g_debug("QMP %s: late reply %" G_GINT64_FORMAT " dropped",
		    qmp->path, reply->id);
		return;
	}

	QmpReplyFn fn = call->fn;
	gpointer user_data = call->user_data;

	g_queue_unlink(&qmp->calls, &call->link);
	qmp_call_free(call);
	fn(qmp, reply->ret, reply->error, user_data);
}

static void
qmp_connect_negotiated(Qmp *qmp, JsonNode *ret, const GError *error,
    gpointer user_data)
{
	if (qmp->state == QMP_STATE_CLOSED)
		return;		/* whoever closed it reports to DONE */
	if (error != NULL) {
		qmp_fail(qmp, g_error_new(QMP_ERROR, QMP_ERROR_PROTOCOL,
		    "QMP %s: qmp_capabilities failed: %s", qmp->path,
		    error->message));
		return;
	}
	qmp_set_state(qmp, QMP_STATE_OPEN);
	qmp_source_clear(&qmp->connect_timer);
	/* The reference held since qmp_connect() goes to the callee. */
	g_steal_pointer(&qmp->done)(qmp, NULL, qmp->user_data);
}

static void
qmp_handle_greeting(Qmp *qmp)
{
	qmp_set_state(qmp, QMP_STATE_NEGOTIATING);
	qmp_send(qmp, "qmp_capabilities", NULL, -1, qmp_connect_negotiated,
	    NULL);
}

static void
qmp_handle_line(Qmp *qmp, const char *line, gsize len)
{
	QmpLine msg;

	switch (qmp_parse_line(qmp->parser, line, len,
	    qmp->state == QMP_STATE_GREETING, &msg)) {
	case QMP_LINE_BLANK:
		break;
	case QMP_LINE_GREETING:
		qmp_handle_greeting(qmp);
		break;
	case QMP_LINE_EVENT:
		/* QMP sends no event before negotiation; be lenient. */
		if (qmp->state == QMP_STATE_OPEN)
			qmp_handle_event(qmp, &msg);
		break;
	case QMP_LINE_REPLY:
		qmp_handle_reply(qmp, &msg);
		break;
	case QMP_LINE_INVALID:
		qmp_fail(qmp, g_error_new(QMP_ERROR, QMP_ERROR_PROTOCOL,
		    "QMP %s: %s", qmp->path, msg.error->message));
		break;
	}
	qmp_line_clear(&msg);
}

static GError *
qmp_too_large(Qmp *qmp)
{
	return g_error_new(QMP_ERROR, QMP_ERROR_TOO_LARGE,
	    "QMP %s: reply longer than %" G_GSIZE_FORMAT " bytes",
	    qmp->path, qmp->max_reply);
}

/* Handles every complete line in rbuf and keeps the unfinished rest. */
static void
qmp_process(Qmp *qmp)
{
	gsize start = 0;

	while (qmp->state != QMP_STATE_CLOSED) {
		const guint8 *data = qmp->rbuf->data;
		const guint8 *nl = memchr(data + qmp->rbuf_scanned, '\n',
		    qmp->rbuf->len - qmp->rbuf_scanned);

		if (nl == NULL) {
			qmp->rbuf_scanned = qmp->rbuf->len;
			break;
		}
		gsize end = nl - data;

		if (end - start > qmp->max_reply) {
			qmp_fail(qmp, qmp_too_large(qmp));
			return;
		}
		qmp->rbuf_scanned = end + 1;
		qmp_handle_line(qmp, (const char *)data + start, end - start);
		start = end + 1;
	}
	if (qmp->state == QMP_STATE_CLOSED)
		return;
	if (start == qmp->rbuf->len && start > 4 * QMP_READ_CHUNK) {
		/* Give back the memory of an unusually long reply. */
		g_byte_array_unref(qmp->rbuf);
		qmp->rbuf = g_byte_array_sized_new(QMP_READ_CHUNK);
	} else {
		g_byte_array_remove_range(qmp->rbuf, 0, start);
	}
	qmp->rbuf_scanned -= start;
	if (qmp->rbuf->len > qmp->max_reply)
		qmp_fail(qmp, qmp_too_large(qmp));
}

static gboolean
qmp_on_input(GSocket *sock, GIOCondition cond, gpointer data)
{
	Qmp *qmp = data;
	G_GNUC_UNUSED g_autoptr(Qmp) hold = qmp_ref(qmp);
	g_autoptr(GError) err = NULL;
	guint len = qmp->rbuf->len;
	gssize n;

	g_byte_array_set_size(qmp->rbuf, len + QMP_READ_CHUNK);
	n = g_socket_receive(sock, (char *)qmp->rbuf->data + len,
	    QMP_READ_CHUNK, NULL, &err);
	g_byte_array_set_size(qmp->rbuf, len + MAX(n, 0));

	if (n > 0) {
		qmp_process(qmp);
	} else if (n == 0) {
		qmp_fail(qmp, g_error_new(QMP_ERROR, QMP_ERROR_CLOSED,
		    "QMP %s: QEMU closed the connection", qmp->path));
	} else if (!g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
		qmp_fail(qmp, g_error_new(QMP_ERROR, QMP_ERROR_CLOSED,
		    "QMP %s: read failed: %s", qmp->path, err->message));
	}
	return G_SOURCE_CONTINUE;
}

/* ---- Connecting ----------------------------------------------------- */

static gboolean
qmp_on_connect_timeout(gpointer data)
{
	Qmp *qmp = data;
	G_GNUC_UNUSED g_autoptr(Qmp) hold = qmp_ref(qmp);

	qmp_fail(qmp, g_error_new(QMP_ERROR, QMP_ERROR_TIMEOUT,
	    "QMP %s: no %s within %u ms", qmp->path,
	    qmp->state == QMP_STATE_NEGOTIATING ?
	    "answer to qmp_capabilities" :
	    qmp->state == QMP_STATE_GREETING ? "greeting" : "connection",
	    qmp->connect_timeout_ms));
	return G_SOURCE_REMOVE;
}

static gboolean qmp_on_connect_retry(gpointer data);

/* Tries connect() once.  A unix socket never connects asynchronously on
 * Linux: connect() either completes or, when the listener's backlog is
 * full, fails with EAGAIN, which is retried until the deadline. */
static void
qmp_connect_attempt(Qmp *qmp)
{
	g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(qmp->path);
	g_autoptr(GError) err = NULL;

	if (!g_socket_connect(qmp->sock, addr, NULL, &err)) {
		if (g_error_matches(err, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK)) {
			qmp->retry_timer = qmp_attach(qmp,
			    g_timeout_source_new(QMP_CONNECT_RETRY_MS),
			    qmp_on_connect_retry, qmp);
			return;
		}
		g_prefix_error(&err, "QMP socket %s: ", qmp->path);
		qmp_fail_later(qmp, g_steal_pointer(&err));
		return;
	}
	qmp_set_state(qmp, QMP_STATE_GREETING);
	qmp->in_src = g_socket_create_source(qmp->sock,
	    G_IO_IN | G_IO_HUP | G_IO_ERR, NULL);
	qmp_attach(qmp, qmp->in_src,
	    G_SOURCE_FUNC(qmp_on_input), qmp);
}

static gboolean
qmp_on_connect_retry(gpointer data)
{
	Qmp *qmp = data;
	G_GNUC_UNUSED g_autoptr(Qmp) hold = qmp_ref(qmp);

	g_clear_pointer(&qmp->retry_timer, g_source_unref);
	qmp_connect_attempt(qmp);
	return G_SOURCE_REMOVE;
}

static QmpEventHandler *
qmp_copy_handlers(const QmpEventHandler *handlers)
{
	guint n = 0;

	while (handlers != NULL && handlers[n].name != NULL)
		n++;
	QmpEventHandler *copy = g_new0(QmpEventHandler, n + 1);
	for (guint i = 0; i < n; i++) {
		copy[i].name = g_strdup(handlers[i].name);
		copy[i].fn = handlers[i].fn;
	}
	return copy;
}

void
qmp_connect(const char *path, guint timeout_ms,
    const QmpEventHandler *handlers, QmpClosedFn closed, gpointer user_data,
    QmpConnectFn done)
{
	g_autoptr(GError) err = NULL;
	Qmp *qmp;

	g_return_if_fail(path != NULL && done != NULL);

	qmp = g_new0(Qmp, 1);
	g_ref_count_init(&qmp->ref);
	qmp->state = QMP_STATE_CONNECTING;
	qmp->path = g_strdup(path);
	qmp->ctx = g_main_context_ref_thread_default();
	qmp->rbuf = g_byte_array_sized_new(QMP_READ_CHUNK);
	qmp->max_reply = QMP_DEFAULT_MAX_REPLY;
	qmp->parser = json_parser_new();
	qmp->gen = json_generator_new();
	g_queue_init(&qmp->out);
	g_queue_init(&qmp->calls);
	qmp->next_id = 1;
	qmp->timeout_ms = QMP_DEFAULT_TIMEOUT_MS;
	qmp->connect_timeout_ms = timeout_ms;
	qmp->handlers = qmp_copy_handlers(handlers);
	qmp->closed = closed;
	qmp->done = done;
	qmp->user_data = user_data;

	if (timeout_ms > 0)
		qmp->connect_timer = qmp_attach(qmp,
		    g_timeout_source_new(timeout_ms),
		    qmp_on_connect_timeout, qmp);

	qmp->sock = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM,
	    G_SOCKET_PROTOCOL_DEFAULT, &err);
	if (qmp->sock == NULL) {
		g_prefix_error(&err, "QMP socket %s: ", path);
		qmp_fail_later(qmp, g_steal_pointer(&err));
		return;
	}
	g_socket_set_blocking(qmp->sock, FALSE);
	qmp_connect_attempt(qmp);
}
