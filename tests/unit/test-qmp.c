/*
 * test-qmp: the QMP client (src/qemu/qmp.c) against a scripted fake monitor
 * and, when it is installed, against real QEMU.
 *
 * The fake monitor runs in its own thread with blocking sockets and a
 * per-test script, so the client under test has the main loop to itself,
 * as it would in the daemon.  The scripts do what real QEMU cannot be made
 * to do on demand: stay silent, answer out of order, send an oversized
 * line, hang up mid-command.  Every wait runs the main loop until a
 * condition holds or a deadline passes; nothing sleeps.
 */
#include "qemu/qmp.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <gio/gio.h>
#include <gio/gunixfdmessage.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>

#define DEADLINE_MS 5000

/* ---- Waiting ---------------------------------------------------------- */

static gboolean
wait_expired(gpointer data)
{
	*(gboolean *)data = TRUE;
	return G_SOURCE_REMOVE;
}

/* Runs the main loop until *FLAG is set or MS pass; returns *FLAG. */
static gboolean
wait_for(const gboolean *flag, guint ms)
{
	gboolean expired = FALSE;
	GSource *t = g_timeout_source_new(ms);

	g_source_set_callback(t, wait_expired, &expired, NULL);
	g_source_attach(t, NULL);
	while (!*flag && !expired)
		g_main_context_iteration(NULL, TRUE);
	g_source_destroy(t);
	g_source_unref(t);
	return *flag;
}

/* ---- The fake monitor ------------------------------------------------- */

typedef struct FakeServer FakeServer;
typedef void (*FakeScript)(FakeServer *fs);

struct FakeServer {
	char *dir;
	char *path;
	GSocket *listener;
	GSocket *conn;
	GThread *thread;
	FakeScript script;
	GByteArray *buf;
	GArray *fds;		/* received with SCM_RIGHTS */
	char *fd_data;		/* what the script read from a passed fd */
};

static gpointer
fake_thread(gpointer data)
{
	FakeServer *fs = data;
	g_autoptr(GError) err = NULL;

	fs->conn = g_socket_accept(fs->listener, NULL, &err);
	g_assert_no_error(err);
	g_socket_set_blocking(fs->conn, TRUE);
	g_socket_set_timeout(fs->conn, 10);
	fs->script(fs);
	g_socket_close(fs->conn, NULL);
	return NULL;
}

static FakeServer *
fake_start(FakeScript script)
{
	FakeServer *fs = g_new0(FakeServer, 1);
	g_autoptr(GError) err = NULL;
	g_autoptr(GSocketAddress) addr = NULL;

	fs->dir = g_dir_make_tmp("test-qmp-XXXXXX", &err);
	g_assert_no_error(err);
	fs->path = g_build_filename(fs->dir, "qmp.sock", NULL);
	fs->buf = g_byte_array_new();
	fs->fds = g_array_new(FALSE, FALSE, sizeof(int));
	fs->script = script;
	fs->listener = g_socket_new(G_SOCKET_FAMILY_UNIX,
	    G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, &err);
	g_assert_no_error(err);
	addr = g_unix_socket_address_new(fs->path);
	g_socket_bind(fs->listener, addr, TRUE, &err);
	g_assert_no_error(err);
	g_socket_listen(fs->listener, &err);
	g_assert_no_error(err);
	g_socket_set_timeout(fs->listener, 10);
	fs->thread = g_thread_new("fake-qmp", fake_thread, fs);
	return fs;
}

/* Waits for the script to end (the client must have closed by now if the
 * script waits for EOF) and frees FS.  Returns what the script read from a
 * passed fd, or NULL. */
static char *
fake_finish(FakeServer *fs)
{
	char *fd_data;

	g_thread_join(fs->thread);
	fd_data = g_steal_pointer(&fs->fd_data);
	g_clear_object(&fs->conn);
	g_socket_close(fs->listener, NULL);
	g_object_unref(fs->listener);
	g_unlink(fs->path);
	g_rmdir(fs->dir);
	for (guint i = 0; i < fs->fds->len; i++)
		close(g_array_index(fs->fds, int, i));
	g_array_unref(fs->fds);
	g_byte_array_unref(fs->buf);
	g_free(fs->path);
	g_free(fs->dir);
	g_free(fs);
	return fd_data;
}

static gboolean
fake_send(FakeServer *fs, const char *line)
{
	g_autofree char *data = g_strconcat(line, "\n", NULL);
	gsize len = strlen(data), off = 0;

	while (off < len) {
		gssize n = g_socket_send(fs->conn, data + off, len - off,
		    NULL, NULL);
		if (n <= 0)
			return FALSE;
		off += n;
	}
	return TRUE;
}

/* Next message from the client (owned), or NULL at EOF.  File descriptors
 * that come along are appended to fs->fds. */
static JsonObject *
fake_recv(FakeServer *fs)
{
	for (;;) {
		guint8 *nl = fs->buf->len == 0 ? NULL :
		    memchr(fs->buf->data, '\n', fs->buf->len);

		if (nl != NULL) {
			g_autoptr(JsonParser) p = json_parser_new();
			g_autoptr(GError) err = NULL;
			gsize len = nl - fs->buf->data;
			JsonObject *obj;

			json_parser_load_from_data(p, (char *)fs->buf->data,
			    len, &err);
			g_assert_no_error(err);
			g_byte_array_remove_range(fs->buf, 0, len + 1);
			g_assert_true(JSON_NODE_HOLDS_OBJECT(
			    json_parser_get_root(p)));
			obj = json_node_get_object(json_parser_get_root(p));
			return json_object_ref(obj);
		}

		char chunk[4096];
		GInputVector v = { chunk, sizeof(chunk) };
		GSocketControlMessage **msgs = NULL;
		gint nmsgs = 0;
		gssize n = g_socket_receive_message(fs->conn, NULL, &v, 1,
		    &msgs, &nmsgs, NULL, NULL, NULL);

		for (gint i = 0; i < nmsgs; i++) {
			if (G_IS_UNIX_FD_MESSAGE(msgs[i])) {
				gint nfds;
				g_autofree gint *fds =
				    g_unix_fd_message_steal_fds(
				    G_UNIX_FD_MESSAGE(msgs[i]), &nfds);
				g_array_append_vals(fs->fds, fds, nfds);
			}
			g_object_unref(msgs[i]);
		}
		g_free(msgs);
		if (n <= 0)
			return NULL;
		g_byte_array_append(fs->buf, (guint8 *)chunk, n);
	}
}

/* Receives one command, checks its name and returns it (owned). */
static JsonObject *
fake_expect(FakeServer *fs, const char *command)
{
	JsonObject *cmd = fake_recv(fs);

	g_assert_nonnull(cmd);
	g_assert_cmpstr(json_object_get_string_member(cmd, "execute"), ==,
	    command);
	g_assert_true(json_object_has_member(cmd, "id"));
	return cmd;
}

static void
fake_reply(FakeServer *fs, JsonObject *cmd, const char *ret)
{
	g_autofree char *line = g_strdup_printf(
	    "{\"return\": %s, \"id\": %" G_GINT64_FORMAT "}", ret,
	    json_object_get_int_member(cmd, "id"));

	fake_send(fs, line);
}

static void
fake_handshake(FakeServer *fs)
{
	fake_send(fs, "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, "
	    "\"minor\": 2, \"major\": 7}, \"package\": \"\"}, "
	    "\"capabilities\": [\"oob\"]}}");
	g_autoptr(JsonObject) cmd = fake_expect(fs, "qmp_capabilities");
	g_assert_false(json_object_has_member(cmd, "arguments"));
	fake_reply(fs, cmd, "{}");
}

static void
fake_wait_eof(FakeServer *fs)
{
	JsonObject *obj;

	while ((obj = fake_recv(fs)) != NULL)
		json_object_unref(obj);
}

/* ---- The client side -------------------------------------------------- */

typedef struct {
	Qmp *qmp;
	gboolean connect_done;
	GError *connect_error;
	int closed_count;
	gboolean closed;
	GError *closed_error;
	int seq;		/* orders events and replies */
	int event_seq;
	int events;
	int any_events;
	char *event_reason;
	gint64 event_ts;
	gboolean close_in_event;
	gboolean unref_in_closed;
} Client;

typedef struct {
	Client *c;
	gboolean done;
	int count;
	int seq;
	JsonNode *ret;
	GError *error;
	gint64 at;
} Result;

static void
client_clear(Client *c)
{
	if (c->qmp != NULL)
		qmp_close(c->qmp);
	g_clear_pointer(&c->qmp, qmp_unref);
	g_clear_error(&c->connect_error);
	g_clear_error(&c->closed_error);
	g_free(c->event_reason);
}

static void
result_clear(Result *r)
{
	g_clear_pointer(&r->ret, json_node_unref);
	g_clear_error(&r->error);
}

static void
on_reply(Qmp *qmp, JsonNode *ret, const GError *error, gpointer data)
{
	Result *r = data;

	g_assert_true((ret == NULL) != (error == NULL));
	r->count++;
	r->done = TRUE;
	r->seq = r->c != NULL ? r->c->seq++ : 0;
	r->at = g_get_monotonic_time();
	if (ret != NULL)
		r->ret = json_node_copy(ret);
	if (error != NULL)
		r->error = g_error_copy(error);
}

static void
on_stop(Qmp *qmp, const char *event, JsonObject *data, gint64 ts,
    gpointer user_data)
{
	Client *c = user_data;

	g_assert_cmpstr(event, ==, "STOP");
	g_assert_nonnull(data);
	c->events++;
	c->event_seq = c->seq++;
	c->event_ts = ts;
	g_free(c->event_reason);
	c->event_reason = g_strdup(json_object_get_string_member(data,
	    "reason"));
	if (c->close_in_event)
		qmp_close(qmp);
}

static void
on_any(Qmp *qmp, const char *event, JsonObject *data, gint64 ts,
    gpointer user_data)
{
	Client *c = user_data;

	c->any_events++;
}

static const QmpEventHandler test_handlers[] = {
	{ .name = "STOP", .fn = on_stop },
	{ .name = "*", .fn = on_any },
	{ NULL },
};

static void
on_closed(Qmp *qmp, const GError *reason, gpointer user_data)
{
	Client *c = user_data;

	g_assert_nonnull(reason);
	c->closed_count++;
	c->closed = TRUE;
	g_clear_error(&c->closed_error);
	c->closed_error = g_error_copy(reason);
	if (c->unref_in_closed)
		g_clear_pointer(&c->qmp, qmp_unref);
}

static void
on_connected(Qmp *qmp, const GError *error, gpointer user_data)
{
	Client *c = user_data;

	g_assert_true((qmp == NULL) != (error == NULL));
	c->connect_done = TRUE;
	c->qmp = qmp;
	if (error != NULL)
		c->connect_error = g_error_copy(error);
}

static void
client_connect(Client *c, const char *path, guint timeout_ms)
{
	qmp_connect(path, timeout_ms, test_handlers, on_closed, c,
	    on_connected);
	g_assert_false(c->connect_done);	/* never synchronous */
	g_assert_true(wait_for(&c->connect_done, DEADLINE_MS));
}

static void
client_call(Client *c, const char *command, Result *r)
{
	r->c = c;
	qmp_call(c->qmp, command, NULL, on_reply, r);
	g_assert_false(r->done);
}

/* ---- Tests -------------------------------------------------------------- */

static void
script_handshake_only(FakeServer *fs)
{
	fake_handshake(fs);
	fake_wait_eof(fs);
}

static void
test_qmp_connect(void)
{
	FakeServer *fs = fake_start(script_handshake_only);
	Client c = { 0 };

	client_connect(&c, fs->path, DEADLINE_MS);
	g_assert_no_error(c.connect_error);
	g_assert_true(qmp_is_open(c.qmp));
	qmp_close(c.qmp);
	g_assert_false(qmp_is_open(c.qmp));
	qmp_close(c.qmp);		/* twice is fine */
	fake_finish(fs);
	g_assert_cmpint(c.closed_count, ==, 0);
	client_clear(&c);
}

static void
script_reply_event(FakeServer *fs)
{
	fake_handshake(fs);
	g_autoptr(JsonObject) a = fake_expect(fs, "query-status");
	g_autoptr(JsonObject) b = fake_expect(fs, "query-name");

	g_assert_cmpint(json_object_get_int_member(a, "id"), !=,
	    json_object_get_int_member(b, "id"));
	fake_send(fs, "{\"event\": \"STOP\", \"data\": {\"reason\": "
	    "\"paused\"}, \"timestamp\": {\"seconds\": 1700000000, "
	    "\"microseconds\": 123456}}");
	fake_send(fs, "{\"event\": \"RESUME\", \"timestamp\": "
	    "{\"seconds\": 1700000001, \"microseconds\": 0}}");
	/* Out of order, and the second reply split across writes. */
	fake_reply(fs, b, "{\"name\": \"vm1\"}");
	g_autofree char *line = g_strdup_printf("{\"return\": {\"status\": "
	    "\"paused\", \"running\": false}, \"id\": %" G_GINT64_FORMAT "}",
	    json_object_get_int_member(a, "id"));
	gsize half = strlen(line) / 2;
	g_socket_send(fs->conn, line, half, NULL, NULL);
	fake_send(fs, line + half);
	fake_wait_eof(fs);
}

static void
test_qmp_reply_event(void)
{
	FakeServer *fs = fake_start(script_reply_event);
	Client c = { 0 };
	Result a = { 0 }, b = { 0 };

	client_connect(&c, fs->path, DEADLINE_MS);
	g_assert_no_error(c.connect_error);
	client_call(&c, "query-status", &a);
	client_call(&c, "query-name", &b);
	g_assert_true(wait_for(&a.done, DEADLINE_MS));
	g_assert_true(b.done);

	g_assert_no_error(a.error);
	g_assert_no_error(b.error);
	JsonObject *st = json_node_get_object(a.ret);
	g_assert_cmpstr(json_object_get_string_member(st, "status"), ==,
	    "paused");
	g_assert_cmpstr(json_object_get_string_member(
	    json_node_get_object(b.ret), "name"), ==, "vm1");

	g_assert_cmpint(c.events, ==, 1);
	g_assert_cmpint(c.any_events, ==, 2);	/* "*" sees STOP and RESUME */
	g_assert_cmpstr(c.event_reason, ==, "paused");
	g_assert_cmpint(c.event_ts, ==, G_GINT64_CONSTANT(1700000000123456));
	g_assert_cmpint(c.event_seq, <, b.seq);
	g_assert_cmpint(b.seq, <, a.seq);

	qmp_close(c.qmp);
	fake_finish(fs);
	g_assert_cmpint(a.count, ==, 1);
	g_assert_cmpint(b.count, ==, 1);
	g_assert_cmpint(c.closed_count, ==, 0);
	result_clear(&a);
	result_clear(&b);
	client_clear(&c);
}

static void
script_command_error(FakeServer *fs)
{
	fake_handshake(fs);
	g_autoptr(JsonObject) cmd = fake_expect(fs, "no-such-command");
	g_autofree char *line = g_strdup_printf("{\"id\": %" G_GINT64_FORMAT
	    ", \"error\": {\"class\": \"CommandNotFound\", \"desc\": "
	    "\"The command no-such-command has not been found\"}}",
	    json_object_get_int_member(cmd, "id"));

	fake_send(fs, line);
	fake_wait_eof(fs);
}

static void
test_qmp_command_error(void)
{
	FakeServer *fs = fake_start(script_command_error);
	Client c = { 0 };
	Result r = { 0 };

	client_connect(&c, fs->path, DEADLINE_MS);
	client_call(&c, "no-such-command", &r);
	g_assert_true(wait_for(&r.done, DEADLINE_MS));
	g_assert_error(r.error, QMP_ERROR, QMP_ERROR_COMMAND);
	g_assert_cmpstr(r.error->message, ==,
	    "The command no-such-command has not been found");
	g_assert_cmpstr(qmp_error_get_class(r.error), ==, "CommandNotFound");
	g_assert_null(r.ret);
	g_assert_true(qmp_is_open(c.qmp));	/* a QMP error is not fatal */

	qmp_close(c.qmp);
	fake_finish(fs);
	result_clear(&r);
	client_clear(&c);
}

static void
script_silent(FakeServer *fs)
{
	fake_handshake(fs);
	g_autoptr(JsonObject) first = fake_expect(fs, "query-status");
	/* Say nothing until the client sends its next command, which it
	 * does only after the first one timed out; then answer both. */
	g_autoptr(JsonObject) second = fake_expect(fs, "query-name");
	fake_reply(fs, first, "{\"status\": \"late\"}");
	fake_reply(fs, second, "{\"name\": \"vm1\"}");
	fake_wait_eof(fs);
}

static void
test_qmp_timeout(void)
{
	FakeServer *fs = fake_start(script_silent);
	Client c = { 0 };
	Result first = { 0 }, second = { 0 };

	client_connect(&c, fs->path, DEADLINE_MS);
	qmp_set_timeout(c.qmp, 200);
	gint64 start = g_get_monotonic_time();
	client_call(&c, "query-status", &first);
	g_assert_true(wait_for(&first.done, DEADLINE_MS));
	g_assert_error(first.error, QMP_ERROR, QMP_ERROR_TIMEOUT);
	g_assert_cmpint(first.at - start, >=, 200 * 1000);
	g_assert_cmpint(first.at - start, <, 2000 * 1000);
	g_assert_true(qmp_is_open(c.qmp));	/* a timeout is not fatal */

	/* The late reply to the first command is dropped silently. */
	client_call(&c, "query-name", &second);
	g_assert_true(wait_for(&second.done, DEADLINE_MS));
	g_assert_no_error(second.error);
	g_assert_cmpint(first.count, ==, 1);

	qmp_close(c.qmp);
	fake_finish(fs);
	result_clear(&first);
	result_clear(&second);
	client_clear(&c);
}

static void
script_no_greeting(FakeServer *fs)
{
	fake_wait_eof(fs);
}

static void
test_qmp_connect_timeout(void)
{
	FakeServer *fs = fake_start(script_no_greeting);
	Client c = { 0 };
	gint64 start = g_get_monotonic_time();

	client_connect(&c, fs->path, 200);
	g_assert_error(c.connect_error, QMP_ERROR, QMP_ERROR_TIMEOUT);
	g_assert_null(c.qmp);
	g_assert_cmpint(g_get_monotonic_time() - start, <, 2000 * 1000);
	fake_finish(fs);	/* the client closed the socket */
	client_clear(&c);
}

static void
test_qmp_connect_missing(void)
{
	g_autofree char *dir = g_dir_make_tmp("test-qmp-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, "none.sock", NULL);
	Client c = { 0 };

	client_connect(&c, path, DEADLINE_MS);
	g_assert_error(c.connect_error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND);
	g_assert_nonnull(strstr(c.connect_error->message, path));
	g_rmdir(dir);
	client_clear(&c);
}

static void
script_too_large(FakeServer *fs)
{
	fake_handshake(fs);
	json_object_unref(fake_expect(fs, "query-status"));
	/* Never ends the line: the client must give up while reading. */
	g_autofree char *big = g_strnfill(64 * 1024, 'x');

	g_socket_send(fs->conn, "{\"return\": \"", 12, NULL, NULL);
	for (int i = 0; i < 64; i++)
		if (g_socket_send(fs->conn, big, 64 * 1024, NULL, NULL) <= 0)
			break;
	fake_wait_eof(fs);
}

static void
test_qmp_too_large(void)
{
	FakeServer *fs = fake_start(script_too_large);
	Client c = { 0 };
	Result r = { 0 };

	client_connect(&c, fs->path, DEADLINE_MS);
	qmp_set_max_reply(c.qmp, 100 * 1024);
	client_call(&c, "query-status", &r);
	g_assert_true(wait_for(&r.done, DEADLINE_MS));
	g_assert_error(r.error, QMP_ERROR, QMP_ERROR_TOO_LARGE);
	g_assert_true(c.closed);
	g_assert_cmpint(c.closed_count, ==, 1);
	g_assert_error(c.closed_error, QMP_ERROR, QMP_ERROR_TOO_LARGE);
	g_assert_false(qmp_is_open(c.qmp));
	fake_finish(fs);
	result_clear(&r);
	client_clear(&c);
}

static void
script_hangup(FakeServer *fs)
{
	fake_handshake(fs);
	json_object_unref(fake_expect(fs, "query-status"));
}

static void
test_qmp_hangup(void)
{
	FakeServer *fs = fake_start(script_hangup);
	Client c = { 0 };
	Result r = { 0 }, after = { 0 };

	client_connect(&c, fs->path, DEADLINE_MS);
	c.unref_in_closed = TRUE;	/* drops the last reference */
	Qmp *keep = qmp_ref(c.qmp);	/* ... but for this one */
	client_call(&c, "query-status", &r);
	g_assert_true(wait_for(&c.closed, DEADLINE_MS));
	g_assert_true(r.done);
	g_assert_error(r.error, QMP_ERROR, QMP_ERROR_CLOSED);
	g_assert_error(c.closed_error, QMP_ERROR, QMP_ERROR_CLOSED);
	g_assert_null(c.qmp);
	g_assert_false(qmp_is_open(keep));

	/* A call on a closed connection fails too, from the main loop. */
	after.c = &c;
	qmp_call(keep, "query-status", NULL, on_reply, &after);
	g_assert_false(after.done);
	qmp_unref(keep);		/* the pending failure holds its own */
	g_assert_true(wait_for(&after.done, DEADLINE_MS));
	g_assert_error(after.error, QMP_ERROR, QMP_ERROR_CLOSED);
	g_assert_cmpint(c.closed_count, ==, 1);
	g_assert_cmpint(r.count, ==, 1);

	fake_finish(fs);
	result_clear(&r);
	result_clear(&after);
	client_clear(&c);
}

static void
script_event_then_wait(FakeServer *fs)
{
	fake_handshake(fs);
	g_autoptr(JsonObject) cmd = fake_expect(fs, "query-status");
	fake_send(fs, "{\"event\": \"STOP\", \"data\": {\"reason\": \"x\"}, "
	    "\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}}");
	fake_reply(fs, cmd, "{}");	/* after close: must not be seen */
	fake_wait_eof(fs);
}

/* An event handler closes the connection and drops the last reference
 * while the client is dispatching. */
static void
test_qmp_close_in_callback(void)
{
	FakeServer *fs = fake_start(script_event_then_wait);
	Client c = { 0 };
	Result r = { 0 };

	client_connect(&c, fs->path, DEADLINE_MS);
	c.close_in_event = TRUE;
	client_call(&c, "query-status", &r);
	g_assert_true(wait_for(&r.done, DEADLINE_MS));
	g_assert_error(r.error, QMP_ERROR, QMP_ERROR_CLOSED);
	g_assert_cmpint(c.events, ==, 1);
	g_assert_cmpint(c.any_events, ==, 0);	/* stopped after close */
	g_assert_cmpint(c.closed_count, ==, 0);	/* explicit close */
	g_clear_pointer(&c.qmp, qmp_unref);
	fake_finish(fs);
	g_assert_cmpint(r.count, ==, 1);
	result_clear(&r);
	client_clear(&c);
}

static void
script_unref_pending(FakeServer *fs)
{
	fake_handshake(fs);
	json_object_unref(fake_expect(fs, "query-status"));
	fake_wait_eof(fs);
}

/* Dropping the last reference fails the pending calls. */
static void
test_qmp_unref_pending(void)
{
	FakeServer *fs = fake_start(script_unref_pending);
	Client c = { 0 };
	Result r = { 0 };

	client_connect(&c, fs->path, DEADLINE_MS);
	client_call(&c, "query-status", &r);
	g_clear_pointer(&c.qmp, qmp_unref);
	g_assert_true(r.done);
	g_assert_error(r.error, QMP_ERROR, QMP_ERROR_CLOSED);
	fake_finish(fs);
	result_clear(&r);
	client_clear(&c);
}

static void
script_getfd(FakeServer *fs)
{
	fake_handshake(fs);
	g_autoptr(JsonObject) cmd = fake_expect(fs, "getfd");
	char data[64] = { 0 };

	g_assert_cmpuint(fs->fds->len, ==, 1);
	g_assert_cmpstr(json_object_get_string_member(
	    json_object_get_object_member(cmd, "arguments"), "fdname"), ==,
	    "pipe0");
	g_assert_cmpint(read(g_array_index(fs->fds, int, 0), data,
	    sizeof(data) - 1), >, 0);
	fs->fd_data = g_strdup(data);
	fake_reply(fs, cmd, "{}");
	fake_wait_eof(fs);
}

static void
test_qmp_fd_passing(void)
{
	FakeServer *fs = fake_start(script_getfd);
	Client c = { 0 };
	Result r = { 0 };
	g_autoptr(JsonObject) args = json_object_new();
	int p[2];

	client_connect(&c, fs->path, DEADLINE_MS);
	g_assert_cmpint(pipe(p), ==, 0);
	g_assert_cmpint(write(p[1], "hello", 5), ==, 5);
	close(p[1]);
	json_object_set_string_member(args, "fdname", "pipe0");
	r.c = &c;
	qmp_call_with_fd(c.qmp, "getfd", args, p[0], on_reply, &r);
	close(p[0]);			/* not consumed, and duplicated */
	g_assert_true(wait_for(&r.done, DEADLINE_MS));
	g_assert_no_error(r.error);
	/* ARGS was not consumed either. */
	g_assert_cmpstr(json_object_get_string_member(args, "fdname"), ==,
	    "pipe0");

	qmp_close(c.qmp);
	g_autofree char *seen = fake_finish(fs);
	g_assert_cmpstr(seen, ==, "hello");
	result_clear(&r);
	client_clear(&c);
}

/* ---- Real QEMU ---------------------------------------------------------- */

/* QEMU does not outlive a test that aborts. */
static void
qemu_child_setup(gpointer data)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void
test_qmp_real_qemu(void)
{
	g_autofree char *qemu = g_find_program_in_path("qemu-system-x86_64");
	g_autoptr(GError) err = NULL;

	if (qemu == NULL) {
		g_test_skip("qemu-system-x86_64 not installed");
		return;
	}

	/* tern creates the monitor socket and hands QEMU the listening fd,
	 * so it can connect at once: no waiting for QEMU to create it. */
	g_autofree char *dir = g_dir_make_tmp("test-qmp-XXXXXX", &err);
	g_assert_no_error(err);
	g_autofree char *path = g_build_filename(dir, "qmp.sock", NULL);
	g_autoptr(GSocket) listener = g_socket_new(G_SOCKET_FAMILY_UNIX,
	    G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, &err);
	g_assert_no_error(err);
	g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
	g_socket_bind(listener, addr, TRUE, &err);
	g_assert_no_error(err);
	g_socket_listen(listener, &err);
	g_assert_no_error(err);

	g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
	    G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
	g_subprocess_launcher_take_fd(l, dup(g_socket_get_fd(listener)), 3);
	g_subprocess_launcher_set_child_setup(l, qemu_child_setup, NULL, NULL);
	g_autoptr(GSubprocess) proc = g_subprocess_launcher_spawn(l, &err,
	    qemu, "-machine", "none", "-accel", "tcg", "-nodefaults",
	    "-display", "none", "-S",
	    "-chardev", "socket,id=mon,fd=3,server=on,wait=off",
	    "-mon", "chardev=mon,mode=control", NULL);
	g_assert_no_error(err);
	g_socket_close(listener, NULL);

	Client c = { 0 };
	Result status = { 0 }, version = { 0 }, quit = { 0 };

	client_connect(&c, path, DEADLINE_MS);
	g_assert_no_error(c.connect_error);

	client_call(&c, "query-status", &status);
	client_call(&c, "query-version", &version);
	g_assert_true(wait_for(&version.done, DEADLINE_MS));
	g_assert_true(status.done);
	g_assert_no_error(status.error);
	g_assert_no_error(version.error);
	JsonObject *st = json_node_get_object(status.ret);
	g_assert_cmpstr(json_object_get_string_member(st, "status"), ==,
	    "prelaunch");
	g_assert_false(json_object_get_boolean_member(st, "running"));
	JsonObject *v = json_object_get_object_member(
	    json_node_get_object(version.ret), "qemu");
	g_assert_cmpint(json_object_get_int_member(v, "major"), >=, 2);
	g_assert_true(json_object_has_member(v, "minor"));

	/* Round trips, one at a time, to measure the client's overhead. */
	const int rounds = 2000;
	gint64 t0 = g_get_monotonic_time();
	for (int i = 0; i < rounds; i++) {
		Result r = { 0 };

		client_call(&c, "query-status", &r);
		g_assert_true(wait_for(&r.done, DEADLINE_MS));
		g_assert_no_error(r.error);
		result_clear(&r);
	}
	g_test_message("query-status round trip: %.1f us",
	    (double)(g_get_monotonic_time() - t0) / rounds);

	/* An unknown command is a QMP error with QEMU's class. */
	Result bad = { 0 };
	client_call(&c, "no-such-command", &bad);
	g_assert_true(wait_for(&bad.done, DEADLINE_MS));
	g_assert_error(bad.error, QMP_ERROR, QMP_ERROR_COMMAND);
	g_assert_cmpstr(qmp_error_get_class(bad.error), ==, "CommandNotFound");

	client_call(&c, "quit", &quit);
	g_assert_true(wait_for(&c.closed, DEADLINE_MS));
	g_assert_cmpint(c.closed_count, ==, 1);
	g_assert_error(c.closed_error, QMP_ERROR, QMP_ERROR_CLOSED);
	/* "quit" is answered before QEMU hangs up, or fails with CLOSED. */
	g_assert_true(quit.done);
	g_assert_true(quit.error == NULL ||
	    g_error_matches(quit.error, QMP_ERROR, QMP_ERROR_CLOSED));

	g_subprocess_wait(proc, NULL, &err);
	g_assert_no_error(err);
	g_assert_true(g_subprocess_get_successful(proc));
	g_unlink(path);
	g_rmdir(dir);
	result_clear(&status);
	result_clear(&version);
	result_clear(&bad);
	result_clear(&quit);
	client_clear(&c);
}

/* qmp_parse_line() alone, as the fuzzer reaches it: the kinds of line,
 * and the documents json-glib leaks on refused before it reads them
 * (found by tests/fuzz/fuzz-qmp). */
static void
test_qmp_parse_line(void)
{
	g_autoptr(JsonParser) parser = json_parser_new();
	static const char greeting[] = "{\"QMP\": {\"version\": {}, "
	    "\"capabilities\": [\"oob\"]}}";
	static const char event[] = "{\"timestamp\": {\"seconds\": 2, "
	    "\"microseconds\": 5}, \"event\": \"STOP\"}";
	static const char err[] = "{\"id\": 5, \"error\": {\"class\": "
	    "\"CommandNotFound\", \"desc\": \"no\"}}";
	static const char broken[] = "{\"return\": \"\\ud83d\\u0041\", "
	    "\"id\": 1}";
	QmpLine m;

	g_assert_cmpint(qmp_parse_line(parser, " \r\n", 3, TRUE, &m), ==,
	    QMP_LINE_BLANK);
	qmp_line_clear(&m);
	g_assert_cmpint(qmp_parse_line(parser, greeting, strlen(greeting),
	    TRUE, &m), ==, QMP_LINE_GREETING);
	qmp_line_clear(&m);
	g_assert_cmpint(qmp_parse_line(parser, event, strlen(event), TRUE,
	    &m), ==, QMP_LINE_INVALID);
	g_assert_cmpstr(m.error->message, ==, "expected a greeting");
	qmp_line_clear(&m);
	g_assert_cmpint(qmp_parse_line(parser, event, strlen(event), FALSE,
	    &m), ==, QMP_LINE_EVENT);
	g_assert_cmpstr(m.event, ==, "STOP");
	g_assert_cmpint(m.timestamp_us, ==, 2 * G_USEC_PER_SEC + 5);
	qmp_line_clear(&m);
	g_assert_cmpint(qmp_parse_line(parser, err, strlen(err), FALSE, &m),
	    ==, QMP_LINE_REPLY);
	g_assert_true(m.has_id);
	g_assert_cmpint(m.id, ==, 5);
	g_assert_null(m.ret);
	g_assert_error(m.error, QMP_ERROR, QMP_ERROR_COMMAND);
	g_assert_cmpstr(qmp_error_get_class(m.error), ==, "CommandNotFound");
	qmp_line_clear(&m);
	g_assert_cmpint(qmp_parse_line(parser, broken, strlen(broken), FALSE,
	    &m), ==, QMP_LINE_INVALID);
	g_assert_cmpstr(m.error->message, ==, "bad JSON: broken surrogate pair");
	qmp_line_clear(&m);
	g_assert_cmpint(qmp_parse_line(parser, "1{\"return\": {}}", 15, FALSE,
	    &m), ==, QMP_LINE_INVALID);
	g_assert_cmpstr(m.error->message, ==, "bad JSON: more than one JSON value");
	qmp_line_clear(&m);

	/* A timestamp whose microseconds overflow 64 bits (the fuzzer's
	 * find: signed overflow) or out of range is replaced by the
	 * arrival time. */
	static const char *const odd[] = {
		"{\"timestamp\": {\"seconds\": 17962158215841, "
		"\"microseconds\": 5}, \"event\": \"STOP\"}",
		"{\"timestamp\": {\"seconds\": 2, \"microseconds\": "
		"-1}, \"event\": \"STOP\"}",
		"{\"timestamp\": {\"seconds\": 2, \"microseconds\": "
		"1000000}, \"event\": \"STOP\"}",
	};
	for (guint i = 0; i < G_N_ELEMENTS(odd); i++) {
		gint64 before = g_get_real_time();
		g_assert_cmpint(qmp_parse_line(parser, odd[i], strlen(odd[i]),
		    FALSE, &m), ==, QMP_LINE_EVENT);
		g_assert_cmpint(m.timestamp_us, >=, before);
		g_assert_cmpint(m.timestamp_us, <=, g_get_real_time());
		qmp_line_clear(&m);
	}
}

int
main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/qmp/parse-line", test_qmp_parse_line);
	g_test_add_func("/qmp/connect", test_qmp_connect);
	g_test_add_func("/qmp/connect-timeout", test_qmp_connect_timeout);
	g_test_add_func("/qmp/connect-missing", test_qmp_connect_missing);
	g_test_add_func("/qmp/reply-event", test_qmp_reply_event);
	g_test_add_func("/qmp/command-error", test_qmp_command_error);
	g_test_add_func("/qmp/timeout", test_qmp_timeout);
	g_test_add_func("/qmp/too-large", test_qmp_too_large);
	g_test_add_func("/qmp/hangup", test_qmp_hangup);
	g_test_add_func("/qmp/close-in-callback", test_qmp_close_in_callback);
	g_test_add_func("/qmp/unref-pending", test_qmp_unref_pending);
	g_test_add_func("/qmp/fd-passing", test_qmp_fd_passing);
	g_test_add_func("/qmp/real-qemu", test_qmp_real_qemu);
	return g_test_run();
}
