/*
 * jsonscan: the scan run before json-glib parses anything a peer or QEMU
 * sent (see jsonscan.h for what it refuses and why).
 *
 * One pass, one state: inside a string (escapes checked there) or
 * outside (brackets counted, and the end of the first top-level value
 * noted so that anything but white space after it is refused).
 */
#include "common/jsonscan.h"

#include <string.h>

/* The value of the four hex digits at P (LEFT bytes readable), or -1. */
static int
jsonscan_hex4(const char *p, gsize left)
{
	int v = 0;

	if (left < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		int d = g_ascii_xdigit_value(p[i]);

		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* Checks the escape whose backslash is at TEXT[*I] and moves *I to its
 * last byte; NULL when json-glib reads it as every other reader does. */
static const char *
jsonscan_escape(const char *text, gsize len, gsize *i)
{
	gsize at = *i;

	if (at + 1 >= len)
		return NULL;		/* unterminated: json-glib refuses it */
	if (text[at + 1] != 'u') {
		/* json-glib also takes GScanner's octal and other escapes
		 * ("\200" is byte 0x80, not UTF-8). */
		if (text[at + 1] == 0 ||
		    strchr("\"\\/bfnrt", text[at + 1]) == NULL)
			return "not a JSON escape";
		*i = at + 1;		/* a two-character escape */
		return NULL;
	}
	int u = jsonscan_hex4(text + at + 2, len - at - 2);
	if (u < 0)
		return "\\u escape without four hex digits";
	*i = at + 5;
	if (u >= 0xDC00 && u <= 0xDFFF)
		return "broken surrogate pair";
	if (u < 0xD800 || u > 0xDBFF)
		return NULL;
	gboolean next_u = at + 7 < len && text[at + 6] == '\\' &&
			  text[at + 7] == 'u';
	int lo = next_u ? jsonscan_hex4(text + at + 8, len - at - 8) : -1;
	if (next_u && lo < 0)
		return "\\u escape without four hex digits";
	if (lo < 0xDC00 || lo > 0xDFFF)
		return "broken surrogate pair";
	*i = at + 11;
	return NULL;
}

static gboolean
jsonscan_is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

const char *
jsonscan_check(const char *text, gsize len, int max_depth)
{
	int depth = 0;
	gboolean in_string = FALSE;
	gboolean in_scalar = FALSE;	/* a top-level number or literal */
	gboolean ended = FALSE;		/* the top-level value is complete */

	for (gsize i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			if (c == '\\') {
				const char *why = jsonscan_escape(text, len,
								  &i);
				if (why != NULL)
					return why;
			} else if (c == '"') {
				in_string = FALSE;
				ended = depth == 0;
			}
			continue;
		}
		if (jsonscan_is_space(c)) {
			if (in_scalar)
				ended = TRUE;
			in_scalar = FALSE;
			continue;
		}
		if (depth == 0 && (ended || (in_scalar && (c == '"' ||
		    c == '[' || c == '{'))))
			return "more than one JSON value";
		switch (c) {
		case '"':
			in_string = TRUE;
			break;
		case '[':
		case '{':
			if (++depth > max_depth)
				return "JSON nested too deeply";
			break;
		case ']':
		case '}':
			if (--depth == 0)
				ended = TRUE;
			break;
		case '\'':
		case '/':
			return "not strict JSON (quote or comment outside a "
			       "string)";
		default:
			if (depth == 0)
				in_scalar = TRUE;
			break;
		}
	}
	return NULL;
}
