/*
 * channel: the migration channel's framing.
 *
 * Between two ternd hosts a migration uses connections to the destination's
 * API port (the listener tells them from TLS by their first byte, 'T').
 * Every message is one line: a verb, a space, a JSON object, "\n".
 *
 *   control   src -> dst  TERN-MIGRATE/1 {token, migration_id, secret,
 *                                         facts, vm, options, live, test}
 *             dst -> src  READY {vm_ref, data_key, direct_uri, offline}
 *                         | REFUSED {error: [code, params...], blockers}
 *             dst -> src  RUNNING {resume_us} | FAILED {error}
 *             src -> dst  ABORT {reason} | DONE {}
 *   data      src -> dst  TERN-DATA/1 {data_key}
 *             dst -> src  OK {}     then the socket belongs to QEMU
 *   query     src -> dst  TERN-QUERY/1 {migration_id, secret}
 *             dst -> src  STATE {state}
 *   keepalive either way  PING {}, answered PONG {} (control channel)
 *
 * The sides speak in turn, so a reader never holds bytes that belong to
 * QEMU: on a data connection nothing follows "OK" until QEMU speaks.
 */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

/* Anyone may connect to the API port, and a channel's first line is read
 * and parsed before the token in it is checked: it is capped lower than
 * the lines after it, and every line's JSON is scanned for depth before
 * json-glib sees it (see common/jsonscan.h). */
#define CHAN_MAX_FIRST_LINE (256 * 1024)
#define CHAN_MAX_LINE (1024 * 1024)
#define CHAN_MAX_DEPTH 64
/* Every wait on a channel is bounded: a peer that sends nothing for
 * CHAN_DEADLINE_S fails the channel (G_IO_ERROR_TIMED_OUT).  Channels
 * that are quiet by nature (the control channel during the stream) keep
 * alive with "PING {}" every CHAN_PING_S, answered "PONG {}". */
#define CHAN_DEADLINE_S 30
#define CHAN_PING_S 10

typedef struct Chan Chan;

/* VERB and MSG are borrowed; both NULL when the peer went away (ERROR
 * says why, or is NULL at a clean end of stream). */
typedef void (*ChanFn)(Chan *chan, const char *verb, JsonObject *msg,
		       const GError *error, gpointer user_data);

/* Takes a reference on STREAM and starts reading. */
Chan *chan_new(GIOStream *stream, ChanFn fn, gpointer user_data);
/* Stops reading and drops the stream (closing it unless it was handed
 * over with chan_steal_fd). Safe from inside the callback. */
void chan_free(Chan *chan);
/* Queues one message; MSG is not consumed (NULL sends {}). */
void chan_send(Chan *chan, const char *verb, JsonObject *msg);
/* A duplicate of the socket's descriptor, for QEMU (caller closes). */
int chan_dup_fd(Chan *chan);
/* Frees the Chan but keeps the stream open and returns it (to wrap it
 * in TLS).  Call only when no read is pending (the peer waits). */
GIOStream *chan_steal_stream(Chan *chan);
/* The stream's output, for a synchronous write before a TLS switch. */
GOutputStream *chan_output(Chan *chan);
/* Stops reading, so that the next bytes are left for QEMU.  A paused
 * channel has no deadline. */
void chan_pause(Chan *chan);
/* Fails the channel when the peer sends nothing for SECONDS (0: never),
 * counted from now and from each read. */
void chan_set_deadline(Chan *chan, guint seconds);
/* Sends PING every CHAN_PING_S and answers the peer's PING with PONG;
 * neither reaches the handler.  Both ends of a channel must turn it on
 * (the control channel does, on both sides). */
void chan_set_keepalive(Chan *chan);

/* Connects to the ternd at URL ("https://host:port" or "http://...")
 * and calls DONE with a Chan or an error. */
typedef void (*ChanConnectFn)(Chan *chan, const GError *error,
			      gpointer user_data);
void chan_connect(const char *url, ChanFn fn, gpointer user_data,
		  ChanConnectFn done);

/* Splits "VERB {json}". Returns FALSE for anything else, and for JSON
 * nested deeper than CHAN_MAX_DEPTH (refused before it is parsed). */
gboolean chan_parse(const char *line, char **verb, JsonObject **msg);
