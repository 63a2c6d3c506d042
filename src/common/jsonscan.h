/*
 * jsonscan: one pass over JSON text before json-glib parses it.
 *
 * Every JSON document that arrives from the network or from QEMU is
 * scanned first: by the JSON-RPC decoder, by the migration channel (which
 * parses a stranger's line before it has looked at the token inside it)
 * and by the QMP client.  The scan refuses what json-glib 1.6 (Debian 12)
 * cannot be trusted with, each found by a probe or by tests/fuzz:
 *   - nesting deeper than the caller's limit: json-glib's parser recurses
 *     once per level with no limit of its own (500,000 '[' overflow the
 *     stack);
 *   - a single quote or a slash outside a double-quoted string: json-glib
 *     takes single-quoted strings and C comments, which the depth count
 *     cannot follow (strict JSON never has one);
 *   - a \u escape without four hex digits: json-glib reads on past the
 *     quote that ends the string for every other reader, the depth count
 *     included;
 *   - half a surrogate pair (a high \uD800-\uDBFF not followed by the
 *     escape of a low one, or a low one alone): json-glib leaks on a broken
 *     pair and decodes a lone half to bytes that are not UTF-8, which every
 *     reply carrying the record would then hold;
 *   - more than one top-level value ("1{...}", "{}{...}"): json-glib
 *     accepts the document and never frees one of the values.
 */
#pragma once

#include <glib.h>

/* NULL when json-glib may read TEXT's LEN bytes: nested no deeper than
 * MAX_DEPTH brackets and none of the above; otherwise a static sentence
 * saying which rule it broke. */
const char *jsonscan_check(const char *text, gsize len, int max_depth);
