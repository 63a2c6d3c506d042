/*
 * jsontext: checks on JSON text made before json-glib reads it.
 *
 * json-glib 1.6 (Debian 12) leaks its string buffer (152 bytes per
 * document) when a \u escape of a high surrogate is followed by a \u
 * escape that is not a low surrogate ("\ud83d\u0041"): it rejects the
 * document but never frees what it had read.  Every decoder of JSON from
 * the network or from QEMU would leak on each such document, so each calls
 * jsontext_surrogates_ok() first.  It refuses only what json-glib refuses
 * anyway ("malformed surrogate pair"); found by tests/fuzz.
 */
#pragma once

#include <glib.h>

/* FALSE when TEXT's LEN bytes hold a \uD800-\uDBFF escape followed by a
 * \u escape outside \uDC00-\uDFFF. */
gboolean jsontext_surrogates_ok(const char *text, gsize len);
