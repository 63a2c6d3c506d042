/*
 * jsonscan: a cheap pass over JSON text before json-glib parses it.
 *
 * json-glib's parser recurses once per nesting level and has no limit of
 * its own (100,000 '[' overflow the stack), so every JSON document that
 * arrives from the network is scanned first: by the JSON-RPC decoder and
 * by the migration channel, which parses a stranger's line before it has
 * looked at the token inside it.  The scan counts brackets outside
 * strings and must agree with the parser about where strings are;
 * json-glib also takes single-quoted strings and C comments, which the
 * scan cannot follow, so a quote or a slash outside a double-quoted
 * string is refused: strict JSON never has one.
 */
#pragma once

#include <glib.h>

/* NULL when TEXT (LEN bytes) nests no deeper than MAX_DEPTH brackets and
 * has no single quote or slash outside double-quoted strings; otherwise
 * a static sentence saying which rule it broke. */
const char *jsonscan_check(const char *text, gsize len, int max_depth);
