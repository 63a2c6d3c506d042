/*
 * fuzz-qmp: libFuzzer target for the QMP client's reading of QEMU's output.
 *
 * QEMU is less trusted than the daemon (a guest can make it say things:
 * device names, error texts, its own crash), so what it writes on the
 * monitor is input.  The input is a stream of lines as QEMU would write
 * them; each goes through qmp_parse_line() the way qmp_handle_line() sends
 * it, the first as the greeting, until one is invalid (where the client
 * would close).  What the result promises is checked: the kind matches the
 * members, a command error carries its class, an invalid line an error.
 */
#include <string.h>

#include "fuzz.h"
#include "qemu/qmp.h"

static JsonParser *fuzz_qmp_parser;

static QmpLineKind
fuzz_qmp_line(const char *line, size_t len, gboolean greeting)
{
	QmpLine m;
	QmpLineKind kind = qmp_parse_line(fuzz_qmp_parser, line, len,
	    greeting, &m);

	FUZZ_CHECK(kind == m.kind, "the kind is returned and stored");
	switch (kind) {
	case QMP_LINE_BLANK:
		FUZZ_CHECK(m.root == NULL && m.error == NULL, "blank");
		break;
	case QMP_LINE_GREETING:
		FUZZ_CHECK(greeting && m.root != NULL, "greeting");
		break;
	case QMP_LINE_EVENT:
		FUZZ_CHECK(!greeting && m.event != NULL && m.error == NULL,
		    "event");
		if (m.data != NULL)
			(void)json_object_get_size(m.data);
		break;
	case QMP_LINE_REPLY:
		FUZZ_CHECK((m.ret == NULL) == (m.error != NULL),
		    "a reply is a value or an error");
		if (m.error != NULL) {
			g_autoptr(GError) copy = g_error_copy(m.error);

			FUZZ_CHECK(qmp_error_get_class(m.error) != NULL &&
			    strcmp(qmp_error_get_class(copy),
			    qmp_error_get_class(m.error)) == 0,
			    "a command error carries its class");
		}
		break;
	case QMP_LINE_INVALID:
		FUZZ_CHECK(m.error != NULL &&
		    m.error->code == QMP_ERROR_PROTOCOL, "invalid");
		break;
	}
	qmp_line_clear(&m);
	return kind;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char greeting[] = "{\"QMP\": {\"version\": {}, "
	    "\"capabilities\": []}}";
	static const char error[] = "{\"id\": 1, \"error\": "
	    "{\"class\": \"GenericError\", \"desc\": \"x\"}}";

	fuzz_qmp_parser = json_parser_new();
	fuzz_qmp_line(greeting, sizeof greeting - 1, TRUE);
	fuzz_qmp_line(error, sizeof error - 1, FALSE);
	fuzz_qmp_line("[", 1, FALSE);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	gboolean greeting = TRUE;

	while (p < end) {
		const char *nl = memchr(p, '\n', end - p);
		size_t len = (nl ? nl : end) - p;
		QmpLineKind kind = fuzz_qmp_line(p, len, greeting);

		/* Blank lines are skipped before the greeting as after it. */
		if (kind == QMP_LINE_INVALID)
			break;
		if (kind != QMP_LINE_BLANK)
			greeting = FALSE;
		if (nl == NULL)
			break;
		p = nl + 1;
	}
	return 0;
}
