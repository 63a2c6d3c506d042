/*
 * fuzz-channel: libFuzzer target for the migration channel's framing and
 * message parser.
 *
 * The input is what a peer writes on a connection to the API port after
 * the listener has taken it for a migration channel: anyone who can reach
 * the port can send it.  Two passes per input:
 *   1. every '\n'-separated piece through chan_parse() alone, which must
 *      return a verb and an object exactly when it says TRUE;
 *   2. the whole input through a real Chan over a memory stream (the same
 *      read loop, line buffer and cap as on a socket), whose owner answers
 *      each message and frees the channel from inside its callback on
 *      "DONE", as the migration engine does.  The run must end (the
 *      channel reports the end of the stream or an error) and leave nothing
 *      behind.
 */
#include <string.h>

#include "fuzz.h"
#include "migrate/channel.h"

typedef struct {
	gboolean ended;
	guint messages;
} FuzzChan;

static void
fuzz_channel_on_message(Chan *chan, const char *verb, JsonObject *msg,
    const GError *error, gpointer user_data)
{
	FuzzChan *f = user_data;

	if (verb == NULL) {
		FUZZ_CHECK(msg == NULL, "no message at the end");
		f->ended = TRUE;
		chan_free(chan);
		return;
	}
	FUZZ_CHECK(msg != NULL && error == NULL && verb[0] != 0, "a message");
	f->messages++;
	if (strcmp(verb, "DONE") == 0) {
		f->ended = TRUE;
		chan_free(chan);
		return;
	}
	chan_send(chan, "OK", msg);
}

static void
fuzz_channel_parse_lines(const char *data, size_t size)
{
	const char *p = data, *end = data + size;

	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		g_autofree char *line = g_strndup(p, (nl ? nl : end) - p);
		g_autofree char *verb = NULL;
		JsonObject *msg = NULL;

		if (chan_parse(line, &verb, &msg)) {
			FUZZ_CHECK(verb != NULL && verb[0] != 0 && msg != NULL,
			    "parsed means a verb and an object");
			json_object_unref(msg);
		}
		if (nl == NULL)
			break;
		p = nl + 1;
	}
}

static void
fuzz_channel_stream(const uint8_t *data, size_t size)
{
	g_autoptr(GInputStream) in = g_memory_input_stream_new_from_data(
	    g_memdup2(data, size), size, g_free);
	g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable();
	g_autoptr(GIOStream) io = g_simple_io_stream_new(in, out);
	FuzzChan f = { 0 };

	chan_new(io, fuzz_channel_on_message, &f);
	while (!f.ended)
		g_main_context_iteration(NULL, TRUE);
	/* Let the reads and writes a freed channel still waits on finish,
	 * so that it is destroyed before the leak check. */
	while (g_main_context_iteration(NULL, FALSE))
		;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char warm[] = "READY {\"vm_ref\":\"OpaqueRef:x\"}\n"
	    "DONE {}\n";

	fuzz_channel_parse_lines(warm, sizeof warm - 1);
	fuzz_channel_stream((const uint8_t *)warm, sizeof warm - 1);
	fuzz_channel_stream((const uint8_t *)"x", 1);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_channel_parse_lines((const char *)data, size);
	fuzz_channel_stream(data, size);
	return 0;
}
