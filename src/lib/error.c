/*
 * error: the TERN_ERROR domain and XAPI errors inside a GError.
 *
 * An XAPI error is a code plus a list of string parameters.  GLib's
 * extended errors (G_DEFINE_EXTENDED_ERROR) let a GError carry private
 * data that survives g_error_copy(), so the code and parameters travel
 * with the error and callers read them back with tern_error_code() and
 * tern_error_params() instead of parsing the message.  The message itself
 * is written for people: "CODE: name=value, ..." using the parameter names
 * of the API brief where this file knows them.
 */
#include <tern/tern.h>

typedef struct {
  char *code;
  GStrv params;
} TernErrorPrivate;

static void
tern_error_private_init(TernErrorPrivate *priv)
{
  priv->code = NULL;
  priv->params = NULL;
}

static void
tern_error_private_copy(const TernErrorPrivate *src, TernErrorPrivate *dest)
{
  dest->code = g_strdup(src->code);
  dest->params = g_strdupv(src->params);
}

static void
tern_error_private_clear(TernErrorPrivate *priv)
{
  g_clear_pointer(&priv->code, g_free);
  g_clear_pointer(&priv->params, g_strfreev);
}

G_DEFINE_EXTENDED_ERROR(TernError, tern_error)

/* Parameter names of the XAPI errors a user is likely to meet, so the
 * message reads "vm=OpaqueRef:..., expected=Halted" rather than a bare list. */
static const struct {
  const char *code;
  const char *names[5];
} error_names[] = {
  { "SESSION_AUTHENTICATION_FAILED", { "user", "message" } },
  { "SESSION_INVALID", { "session" } },
  { "HANDLE_INVALID", { "class", "ref" } },
  { "UUID_INVALID", { "class", "uuid" } },
  { "MESSAGE_METHOD_UNKNOWN", { "method" } },
  { "MESSAGE_PARAMETER_COUNT_MISMATCH", { "method", "expected", "received" } },
  { "FIELD_TYPE_ERROR", { "field" } },
  { "VM_BAD_POWER_STATE", { "vm", "expected", "actual" } },
  { "OTHER_OPERATION_IN_PROGRESS", { "class", "ref", "operation" } },
  { "OPERATION_NOT_ALLOWED", { "reason" } },
  { "HOST_NOT_ENOUGH_FREE_MEMORY", { "needed", "available" } },
  { "VM_INCOMPATIBLE_WITH_THIS_HOST", { "vm", "host", "reason" } },
  { "VM_MIGRATE_FAILED", { "vm", "source", "destination", "message" } },
  { "TASK_CANCELLED", { "task" } },
  { "RBAC_PERMISSION_DENIED", { "permission", "message" } },
  { "INTERNAL_ERROR", { "message" } },
};

static char *
error_format(const char *code, const char *const *params)
{
  const char *const *names = NULL;
  for (gsize i = 0; i < G_N_ELEMENTS(error_names); i++)
    if (g_str_equal(error_names[i].code, code))
      names = error_names[i].names;

  GString *s = g_string_new(code);
  for (guint i = 0; params && params[i]; i++) {
    g_string_append(s, i == 0 ? ": " : ", ");
    if (names && i < G_N_ELEMENTS(error_names[0].names) && names[i])
      g_string_append_printf(s, "%s=", names[i]);
    g_string_append(s, params[i]);
  }
  return g_string_free(s, FALSE);
}

void
tern_error_set_xapi(GError **error, const char *code, const char *const *params)
{
  if (!error)
    return;
  g_autofree char *msg = error_format(code, params);
  GError *e = g_error_new_literal(TERN_ERROR, TERN_ERROR_XAPI, msg);
  TernErrorPrivate *priv = tern_error_get_private(e);
  priv->code = g_strdup(code);
  priv->params = g_strdupv((GStrv)params);
  if (!priv->params)
    priv->params = g_new0(char *, 1);
  g_propagate_error(error, e);
}

const char *
tern_error_code(const GError *e)
{
  if (!e || !g_error_matches(e, TERN_ERROR, TERN_ERROR_XAPI))
    return NULL;
  return tern_error_get_private(e)->code;
}

GStrv
tern_error_params(const GError *e)
{
  if (!tern_error_code(e))
    return g_new0(char *, 1);
  return g_strdupv(tern_error_get_private(e)->params);
}

gboolean
tern_error_is(const GError *e, const char *code)
{
  const char *c = tern_error_code(e);
  return c && g_str_equal(c, code);
}
