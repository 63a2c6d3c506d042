/*
 * xerr: XAPI errors carried in a GError.
 *
 * tern follows GLib's convention: the function that fails sets a GError and
 * its callers pass it up untouched.  An XAPI error is a code plus a list of
 * string parameters (API.md, "Errors"); GError has only a message, so this
 * module packs the code and parameters into the message of an error in the
 * TERN_XAPI_ERROR domain and unpacks them again in the RPC layer, which is
 * the only place that turns an error into a wire reply.  Any other GError
 * reaches the wire as INTERNAL_ERROR with its message.
 */
#pragma once

#include <glib.h>

#define TERN_XAPI_ERROR (xerr_quark())
GQuark xerr_quark(void);

/* Sets *error to the XAPI error CODE with the NULL-terminated string
 * parameters that follow.  A NULL parameter list means no parameters. */
void xerr_set(GError **error, const char *code, ...) G_GNUC_NULL_TERMINATED;

/* Same, with the parameters in a NULL-terminated vector. */
void xerr_setv(GError **error, const char *code, const char *const *params);

/* Builds a new error (for callers that must hand one over). */
GError *xerr_new(const char *code, ...) G_GNUC_NULL_TERMINATED;

/* Splits any GError into an XAPI code and parameters.  Errors outside the
 * TERN_XAPI_ERROR domain become INTERNAL_ERROR [message].  Both outputs are
 * newly allocated. */
void xerr_split(const GError *error, char **code, GStrv *params);

/* TRUE when ERROR is the XAPI error CODE. */
gboolean xerr_is(const GError *error, const char *code);
