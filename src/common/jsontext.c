/*
 * jsontext: checks on JSON text made before json-glib reads it (see
 * jsontext.h for why).
 */
#include "common/jsontext.h"

/* The value of the four hex digits at P, or -1 when they are not four hex
 * digits. */
static int
jsontext_hex4(const char *p)
{
	int v = 0;

	for (int i = 0; i < 4; i++) {
		int d = g_ascii_xdigit_value(p[i]);

		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

gboolean
jsontext_surrogates_ok(const char *text, gsize len)
{
	for (gsize i = 0; i + 1 < len; i++) {
		if (text[i] != '\\')
			continue;
		if (text[i + 1] != 'u' || i + 6 > len) {
			i++;		/* a two-character escape */
			continue;
		}
		int u = jsontext_hex4(text + i + 2);

		i += 5;
		if (u < 0xD800 || u > 0xDBFF)
			continue;
		/* A high surrogate: json-glib leaks when a \u escape follows
		 * that is not a low surrogate (any other byte is fine). */
		if (i + 2 < len && text[i + 1] == '\\' && text[i + 2] == 'u') {
			int lo = i + 7 <= len ? jsontext_hex4(text + i + 3) : -1;

			if (lo < 0xDC00 || lo > 0xDFFF)
				return FALSE;
		}
	}
	return TRUE;
}
