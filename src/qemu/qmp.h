/*
 * qmp: an asynchronous QMP client on the GLib main loop.
 *
 * This is the transport half of tern's QEMU monitor, shaped like libvirt's
 * qemu_monitor.c: it owns the unix socket, frames the line-based JSON
 * protocol, matches replies to commands by "id", times commands out and
 * dispatches asynchronous events from a table.  It knows nothing about what
 * the commands mean; typed helpers live in another file and are built on
 * qmp_call().
 *
 * Everything runs in the thread-default main context that was current when
 * qmp_connect() was called, and a Qmp must only be used from that thread.
 * No function here blocks and no callback is ever called from inside
 * qmp_connect() or qmp_call(): results always arrive from the main loop.
 *
 * Lifetime.  A Qmp is reference counted.  qmp_connect() hands its DONE
 * callback a reference the callee owns.  Callbacks may drop references or
 * call qmp_close() freely: the client holds its own reference while it
 * dispatches.  Dropping the last reference closes the connection first,
 * exactly like qmp_close().
 *
 * Errors.  Failures of the protocol are in the QMP_ERROR domain.  Failing to
 * reach the socket at all is reported with GIO's own error (G_IO_ERROR_*),
 * its message prefixed with the socket path.  When QEMU answers a command
 * with {"error": {"class": C, "desc": D}}, the call fails with
 * QMP_ERROR_COMMAND, the message is exactly D and qmp_error_get_class()
 * returns C (the class travels with the GError, also through
 * g_error_copy()).
 */
#pragma once

#include <glib.h>
#include <json-glib/json-glib.h>

#define QMP_ERROR (qmp_error_quark())
GQuark qmp_error_quark(void);

typedef enum {
	QMP_ERROR_TIMEOUT,	/* no reply (or greeting) within the deadline */
	QMP_ERROR_CLOSED,	/* connection closed, by either side */
	QMP_ERROR_PROTOCOL,	/* QEMU sent something that is not QMP */
	QMP_ERROR_COMMAND,	/* QEMU answered with an error object */
	QMP_ERROR_TOO_LARGE,	/* a line from QEMU exceeded the size cap */
} QmpErrorCode;

/* The QMP error class ("GenericError", "CommandNotFound", ...) of a
 * QMP_ERROR_COMMAND error; NULL for any other error. */
const char *qmp_error_get_class(const GError *error);

#define QMP_DEFAULT_TIMEOUT_MS 10000
#define QMP_DEFAULT_MAX_REPLY (8 * 1024 * 1024)

typedef struct Qmp Qmp;

/* RET is the command's "return" value, borrowed for the duration of the
 * call (json_node_ref() it to keep it); NULL exactly when ERROR is set. */
typedef void (*QmpReplyFn)(Qmp *qmp, JsonNode *ret, const GError *error,
    gpointer user_data);

/* DATA is the event's "data" member (borrowed), or NULL when the event has
 * none.  TIMESTAMP_US is QEMU's timestamp in microseconds since the epoch,
 * or the local time of arrival if QEMU sent none. */
typedef void (*QmpEventFn)(Qmp *qmp, const char *event, JsonObject *data,
    gint64 timestamp_us, gpointer user_data);

/* Called once when the connection ends by itself (EOF, socket error,
 * protocol error, oversized reply); never for qmp_close(). */
typedef void (*QmpClosedFn)(Qmp *qmp, const GError *reason,
    gpointer user_data);

/* On success QMP is a new reference owned by the callee and ERROR is NULL;
 * on failure QMP is NULL. */
typedef void (*QmpConnectFn)(Qmp *qmp, const GError *error,
    gpointer user_data);

/* One entry of an event table.  NAME is a QMP event name ("STOP",
 * "SHUTDOWN", ...) or "*", which matches every event.  Every matching entry
 * is called, in table order. */
typedef struct {
	const char *name;
	QmpEventFn fn;
} QmpEventHandler;

/* Connects to the QMP unix socket PATH, reads the greeting, negotiates
 * capabilities and then calls DONE.  The whole exchange must finish within
 * TIMEOUT_MS (0 means no limit) or DONE gets QMP_ERROR_TIMEOUT.  HANDLERS is
 * an event table terminated by {NULL}, or NULL; it is copied.  USER_DATA is
 * passed to DONE, to the event handlers and to CLOSED (which may be NULL). */
void qmp_connect(const char *path, guint timeout_ms,
    const QmpEventHandler *handlers, QmpClosedFn closed, gpointer user_data,
    QmpConnectFn done);

Qmp *qmp_ref(Qmp *qmp);
void qmp_unref(Qmp *qmp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Qmp, qmp_unref)

/* Sends COMMAND with the arguments ARGS (NULL for none; not consumed).  FN
 * is called exactly once, later, from the main loop: with the reply, a
 * QMP_ERROR_COMMAND error, QMP_ERROR_TIMEOUT, or the error that ended the
 * connection (QMP_ERROR_CLOSED after EOF, qmp_close() or when QMP was
 * already closed; QMP_ERROR_TOO_LARGE or QMP_ERROR_PROTOCOL when QEMU's
 * output ended it).  A reply arriving after the timeout is dropped. */
void qmp_call(Qmp *qmp, const char *command, JsonObject *args,
    QmpReplyFn fn, gpointer user_data);

/* Same, and passes FD with SCM_RIGHTS along with the first byte of the
 * command, as "getfd" and "add-fd" expect.  FD is duplicated, not consumed:
 * the caller may close it as soon as this returns. */
void qmp_call_with_fd(Qmp *qmp, const char *command, JsonObject *args,
    int fd, QmpReplyFn fn, gpointer user_data);

/* The deadline for each later command; 0 means none.  Default
 * QMP_DEFAULT_TIMEOUT_MS. */
void qmp_set_timeout(Qmp *qmp, guint timeout_ms);

/* The longest line accepted from QEMU.  A longer one closes the connection
 * with QMP_ERROR_TOO_LARGE, failing every pending call.  Default
 * QMP_DEFAULT_MAX_REPLY. */
void qmp_set_max_reply(Qmp *qmp, gsize bytes);

/* Closes the connection; pending calls fail with QMP_ERROR_CLOSED, their
 * callbacks running before qmp_close() (or the last qmp_unref()) returns.
 * The closed callback is not called.  Safe to call twice. */
void qmp_close(Qmp *qmp);

gboolean qmp_is_open(Qmp *qmp);

/* ---- One line of QEMU's output, apart from the transport ----------- */

/* What a line from QEMU is.  qmp_parse_line() is everything the client
 * reads into a line, with no socket and no Qmp, so that the unit tests and
 * the fuzzer (tests/fuzz/fuzz-qmp.c) reach it directly. */
typedef enum {
	QMP_LINE_BLANK,		/* only white space: ignored */
	QMP_LINE_GREETING,	/* {"QMP": {...}}, the first line */
	QMP_LINE_EVENT,		/* {"event": NAME, ...} */
	QMP_LINE_REPLY,		/* {"return": ...} or {"error": ...} */
	QMP_LINE_INVALID,	/* not QMP; ERROR says why */
} QmpLineKind;

typedef struct {
	QmpLineKind kind;
	JsonNode *root;		/* owned: the whole message, or NULL */
	const char *event;	/* EVENT: the name (borrowed from ROOT) */
	JsonObject *data;	/* EVENT: "data" (borrowed), or NULL */
	gint64 timestamp_us;	/* EVENT: as QmpEventFn's TIMESTAMP_US */
	gboolean has_id;	/* REPLY: it has an integer "id"... */
	gint64 id;		/* ...which is this */
	JsonNode *ret;		/* REPLY: "return" (borrowed), or NULL */
	GError *error;		/* owned.  REPLY without "return": the
				 * QMP_ERROR_COMMAND error; INVALID: a
				 * QMP_ERROR_PROTOCOL error */
} QmpLine;

/* Reads the LEN bytes of LINE (no newline needed, trailing white space
 * ignored) into OUT, which the caller clears with qmp_line_clear().
 * GREETING says the line is the first of the connection, which must be the
 * greeting.  PARSER is any JsonParser, reused between lines. */
QmpLineKind qmp_parse_line(JsonParser *parser, const char *line, gsize len,
    gboolean greeting, QmpLine *out);
void qmp_line_clear(QmpLine *line);
