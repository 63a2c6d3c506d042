/*
 * jsonscan: the nesting and strictness scan run before json-glib parses
 * anything a peer sent (see jsonscan.h).
 */
#include "common/jsonscan.h"

const char *
jsonscan_check(const char *text, gsize len, int max_depth)
{
	int depth = 0;
	gboolean in_string = FALSE;

	for (gsize i = 0; i < len; i++) {
		char c = text[i];

		if (in_string) {
			/* json-glib reads on past a quote after a short \u
			 * escape: where strings end would not agree. */
			if (c == '\\' && i + 1 < len && text[i + 1] == 'u' &&
			    (i + 6 > len || !g_ascii_isxdigit(text[i + 2]) ||
			    !g_ascii_isxdigit(text[i + 3]) ||
			    !g_ascii_isxdigit(text[i + 4]) ||
			    !g_ascii_isxdigit(text[i + 5])))
				return "\\u escape without four hex digits";
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = FALSE;
			continue;
		}
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
			depth--;
			break;
		case '\'':
		case '/':
			return "not strict JSON (quote or comment outside a "
			       "string)";
		default:
			break;
		}
	}
	return NULL;
}
