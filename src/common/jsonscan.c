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
