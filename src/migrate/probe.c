/*
 * probe: how fast does the migration channel carry bytes right now?
 *
 * The source opens one more connection to the destination's port, says
 * "TERN-PROBE/1 {token, bytes}", waits for "GO", pushes that many bytes
 * and reads back "PROBED {bytes, us}": the destination's own clock from
 * the first byte to the last.  The token (from host.migrate_receive)
 * authorises one probe, which marks it probed but leaves it good for the
 * migration that follows (VM.migrate_check, then VM.migrate_send): a
 * probe cannot be replayed, and costs the destination at most
 * PROBE_MAX_BYTES of reading per token.
 */
#include "migrate/migrate-int.h"

#include <string.h>

#include "common/xerr.h"

#define PROBE_CHUNK (1024 * 1024)
#define PROBE_MAX_BYTES (256 * 1024 * 1024)

static guint8 probe_zeros[PROBE_CHUNK];

/* ---- Destination ---------------------------------------------------- */

typedef struct {
	GIOStream *stream;
	gint64 remaining;
	gint64 total;
	gint64 t0;
	guint8 buf[256 * 1024];
} Sink;

static void
sink_free(Sink *k)
{
	g_io_stream_close(k->stream, NULL, NULL);
	g_object_unref(k->stream);
	g_free(k);
}

static void sink_read(Sink *k);

static void
sink_read_done(GObject *src, GAsyncResult *res, gpointer data)
{
	Sink *k = data;
	gssize n = g_input_stream_read_finish(G_INPUT_STREAM(src), res, NULL);

	if (n <= 0) {
		sink_free(k);
		return;
	}
	if (k->t0 == 0)
		k->t0 = g_get_monotonic_time();
	k->remaining -= n;
	if (k->remaining > 0) {
		sink_read(k);
		return;
	}
	g_autofree char *line = g_strdup_printf(
		"PROBED {\"bytes\": %" G_GINT64_FORMAT ", \"us\": %"
		G_GINT64_FORMAT "}\n", k->total,
		MAX(g_get_monotonic_time() - k->t0, 1));
	g_output_stream_write_all(g_io_stream_get_output_stream(k->stream),
				  line, strlen(line), NULL, NULL, NULL);
	sink_free(k);
}

static void
sink_read(Sink *k)
{
	g_input_stream_read_async(g_io_stream_get_input_stream(k->stream),
				  k->buf, MIN((gint64)sizeof k->buf,
					      k->remaining),
				  G_PRIORITY_DEFAULT, NULL, sink_read_done, k);
}

void
migrate_probe_accept(Chan *c, JsonObject *msg, gboolean token_ok)
{
	gint64 bytes = json_object_get_int_member_with_default(msg, "bytes",
							       0);

	if (!token_ok || bytes <= 0 || bytes > PROBE_MAX_BYTES) {
		chan_free(c);
		return;
	}
	GOutputStream *out = chan_output(c);
	if (!g_output_stream_write_all(out, "GO {}\n", 6, NULL, NULL, NULL)) {
		chan_free(c);
		return;
	}
	Sink *k = g_new0(Sink, 1);
	k->stream = chan_steal_stream(c);
	k->remaining = k->total = bytes;
	sink_read(k);
}

/* ---- Source --------------------------------------------------------- */

typedef struct {
	char *token;
	gint64 bytes;
	gint64 sent;
	GIOStream *stream;
	ProbeFn done;
	gpointer data;
} Push;

static void
push_end(Push *p, double bps)
{
	p->done(bps, p->data);
	if (p->stream) {
		g_io_stream_close(p->stream, NULL, NULL);
		g_object_unref(p->stream);
	}
	g_free(p->token);
	g_free(p);
}

static void
push_on_result(Chan *c, const char *verb, JsonObject *msg,
	       const GError *error, gpointer data)
{
	Push *p = data;
	double bps = 0;

	if (verb != NULL && strcmp(verb, "PROBED") == 0) {
		gint64 us = json_object_get_int_member_with_default(msg, "us",
								    0);
		if (us > 0)
			bps = p->bytes / (us / 1e6);
	}
	chan_free(c);
	push_end(p, bps);
}

static void push_more(Push *p);

static void
push_wrote(GObject *src, GAsyncResult *res, gpointer data)
{
	Push *p = data;
	gsize n = 0;

	if (!g_output_stream_write_all_finish(G_OUTPUT_STREAM(src), res, &n,
					      NULL))
		return push_end(p, 0);
	p->sent += n;
	push_more(p);
}

static void
push_more(Push *p)
{
	if (p->sent >= p->bytes) {
		GIOStream *s = g_steal_pointer(&p->stream);
		chan_new(s, push_on_result, p);
		g_object_unref(s);
		return;
	}
	g_output_stream_write_all_async(
		g_io_stream_get_output_stream(p->stream), probe_zeros,
		MIN((gint64)PROBE_CHUNK, p->bytes - p->sent),
		G_PRIORITY_DEFAULT, NULL, push_wrote, p);
}

static void
push_on_go(Chan *c, const char *verb, JsonObject *msg, const GError *error,
	   gpointer data)
{
	Push *p = data;

	if (verb == NULL || strcmp(verb, "GO") != 0) {
		chan_free(c);
		return push_end(p, 0);
	}
	p->stream = chan_steal_stream(c);
	push_more(p);
}

static void
push_connected(Chan *c, const GError *error, gpointer data)
{
	Push *p = data;
	g_autoptr(JsonObject) m = json_object_new();

	if (error != NULL)
		return push_end(p, 0);
	json_object_set_string_member(m, "token", p->token);
	json_object_set_int_member(m, "bytes", p->bytes);
	/* Synchronous: the stream is taken over after GO, and a queued
	 * write must not be pending then. */
	g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), m);
	g_autofree char *text = json_to_string(n, FALSE);
	g_autofree char *line = g_strdup_printf("TERN-PROBE/1 %s\n", text);
	if (!g_output_stream_write_all(chan_output(c), line, strlen(line),
				       NULL, NULL, NULL)) {
		chan_free(c);
		push_end(p, 0);
	}
}

void
migrate_probe(const char *url, const char *token, gint64 bytes, ProbeFn done,
	      gpointer data)
{
	Push *p = g_new0(Push, 1);

	p->token = g_strdup(token);
	p->bytes = MIN(bytes, PROBE_MAX_BYTES);
	p->done = done;
	p->data = data;
	chan_connect(url, push_on_go, p, push_connected);
}
