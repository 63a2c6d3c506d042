/*
 * jsontext: checks on JSON text made before json-glib reads it (see
 * jsontext.h for why).
 */
#include "common/jsontext.h"

#include <string.h>

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

/* NULL when every escape in TEXT is one of JSON's, every \u escape has
 * four hex digits and is no half of
 * a surrogate pair without the other half (a high surrogate \uD800-\uDBFF
 * not followed by the \u escape of a low one \uDC00-\uDFFF, or a low one
 * alone); otherwise why not.  json-glib takes fewer or other characters
 * than four hex digits and reads on: "\u12"a" is one string to it, two
 * to a scan, which would then count brackets it does not see. */
static const char *
jsontext_escapes(const char *text, gsize len)
{
	for (gsize i = 0; i + 1 < len; i++) {
		if (text[i] != '\\')
			continue;
		if (text[i + 1] != 'u') {
			/* json-glib also takes GScanner's octal and other
			 * escapes ("\200" is byte 0x80, not UTF-8). */
			if (strchr("\"\\/bfnrt", text[i + 1]) == NULL ||
			    text[i + 1] == 0)
				return "not a JSON escape";
			i++;		/* a two-character escape */
			continue;
		}
		int u = i + 6 <= len ? jsontext_hex4(text + i + 2) : -1;

		if (u < 0)
			return "\\u escape without four hex digits";
		i += 5;
		if (u >= 0xDC00 && u <= 0xDFFF)
			return "broken surrogate pair";
		if (u < 0xD800 || u > 0xDBFF)
			continue;
		int lo = i + 7 <= len && text[i + 1] == '\\' &&
		    text[i + 2] == 'u' ? jsontext_hex4(text + i + 3) : -1;

		if (lo < 0xDC00 || lo > 0xDFFF)
			return "broken surrogate pair";
		i += 6;
	}
	return NULL;
}

static gboolean
jsontext_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The offset just past the string whose opening quote is at I, or LEN. */
static gsize
jsontext_skip_string(const char *text, gsize len, gsize i)
{
	for (i++; i < len; i++) {
		if (text[i] == '\\')
			i++;
		else if (text[i] == '"')
			return i + 1;
	}
	return len;
}

/* FALSE when something other than white space follows the first JSON
 * value in TEXT.  A value that does not end is json-glib's to refuse. */
static gboolean
jsontext_single_value(const char *text, gsize len)
{
	gsize i = 0;

	while (i < len && jsontext_is_space(text[i]))
		i++;
	if (i == len)
		return TRUE;
	if (text[i] == '{' || text[i] == '[') {
		gsize depth = 0;

		while (i < len) {
			char c = text[i];

			if (c == '"') {
				i = jsontext_skip_string(text, len, i);
				continue;
			}
			i++;
			if (c == '{' || c == '[')
				depth++;
			else if ((c == '}' || c == ']') && --depth == 0)
				break;
		}
		if (depth != 0)
			return TRUE;
	} else if (text[i] == '"') {
		i = jsontext_skip_string(text, len, i);
	} else {
		while (i < len && (g_ascii_isalnum(text[i]) ||
		    text[i] == '-' || text[i] == '+' || text[i] == '.'))
			i++;
	}
	while (i < len && jsontext_is_space(text[i]))
		i++;
	return i == len;
}

const char *
jsontext_refuse(const char *text, gsize len)
{
	if (!jsontext_single_value(text, len))
		return "more than one JSON value";
	return jsontext_escapes(text, len);
}
