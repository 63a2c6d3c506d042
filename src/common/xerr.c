/*
 * xerr: XAPI error codes and parameters packed into a GError (see xerr.h).
 * The message holds the code and the parameters separated by the ASCII unit
 * separator, which no parameter may contain (it is replaced by a space).
 */
#include "common/xerr.h"

#include <string.h>

#define XERR_SEP '\x1f'

G_DEFINE_QUARK(tern-xapi-error-quark, xerr)

static void
xerr_append_clean(GString *s, const char *p)
{
	for (; *p; p++)
		g_string_append_c(s, *p == XERR_SEP ? ' ' : *p);
}

void
xerr_setv(GError **error, const char *code, const char *const *params)
{
	if (error == NULL)
		return;
	g_autoptr(GString) s = g_string_new(code);
	for (guint i = 0; params != NULL && params[i] != NULL; i++) {
		g_string_append_c(s, XERR_SEP);
		xerr_append_clean(s, params[i]);
	}
	g_set_error_literal(error, TERN_XAPI_ERROR, 0, s->str);
}

static GPtrArray *
xerr_collect(va_list ap)
{
	GPtrArray *v = g_ptr_array_new();
	const char *p;

	while ((p = va_arg(ap, const char *)) != NULL)
		g_ptr_array_add(v, (gpointer)p);
	g_ptr_array_add(v, NULL);
	return v;
}

void
xerr_set(GError **error, const char *code, ...)
{
	va_list ap;

	va_start(ap, code);
	g_autoptr(GPtrArray) v = xerr_collect(ap);
	va_end(ap);
	xerr_setv(error, code, (const char *const *)v->pdata);
}

GError *
xerr_new(const char *code, ...)
{
	GError *e = NULL;
	va_list ap;

	va_start(ap, code);
	g_autoptr(GPtrArray) v = xerr_collect(ap);
	va_end(ap);
	xerr_setv(&e, code, (const char *const *)v->pdata);
	return e;
}

void
xerr_split(const GError *error, char **code, GStrv *params)
{
	if (error->domain != TERN_XAPI_ERROR) {
		*code = g_strdup("INTERNAL_ERROR");
		*params = g_new0(char *, 2);
		(*params)[0] = g_strdup(error->message);
		return;
	}
	char sep[2] = { XERR_SEP, 0 };
	g_auto(GStrv) parts = g_strsplit(error->message, sep, -1);
	*code = g_strdup(parts[0]);
	*params = g_strdupv(parts + 1);
}

gboolean
xerr_is(const GError *error, const char *code)
{
	if (error == NULL || error->domain != TERN_XAPI_ERROR)
		return FALSE;
	size_t n = strlen(code);
	return strncmp(error->message, code, n) == 0 &&
	       (error->message[n] == 0 || error->message[n] == XERR_SEP);
}
