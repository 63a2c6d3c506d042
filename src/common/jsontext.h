/*
 * jsontext: checks on JSON text made before json-glib reads it.
 *
 * json-glib 1.6 (Debian 12) leaks on two kinds of document, both found by
 * tests/fuzz:
 *   - more than one top-level value ("1{...}", "{}{...}"): it accepts the
 *     document and never frees one of the values, so a body of N bytes
 *     leaks about N bytes' worth of nodes;
 *   - a \u escape of a high surrogate followed by a \u escape that is not a
 *     low surrogate ("\ud83d\u0041"): it rejects the document but leaks
 *     its string buffer (152 bytes).
 * And it reads a \u escape without four hex digits on past the quote
 * that ends the string for every other reader (jsonscan's depth count
 * included: a body of 1 MB "[" behind such an escape overflowed json-glib's
 * stack); and it decodes a lone surrogate ("\ud83d" not followed by a low
 * one) and GScanner's octal escapes ("\200") into bytes that are not
 * UTF-8, which a reply would then carry to every client that reads the
 * record.  All of these are refused by
 * jsontext_refuse(), which every decoder of JSON from the network or from
 * QEMU calls first (QEMU itself never writes a lone surrogate).
 */
#pragma once

#include <glib.h>

/* NULL when json-glib may read TEXT's LEN bytes; otherwise why not, as a
 * static string ("more than one JSON value", "broken surrogate pair",
 * "\u escape without four hex digits", "not a JSON escape"). */
const char *jsontext_refuse(const char *text, gsize len);
