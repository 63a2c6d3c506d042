/*
 * migrate: the client side of VM migration (MIGRATION.md).
 *
 * Two ways to drive it, as in libvirt:
 *
 *   managed (tern_vm_migrate, cf. virDomainMigrate): the client holds a
 *     session on both hosts.  It asks the destination for a single-use
 *     token with host.migrate_receive and hands the resulting map to the
 *     source in VM.migrate_send; the source never sees destination
 *     credentials.
 *
 *   p2p (tern_vm_migrate_to_uri, cf. virDomainMigrateToURI): the client
 *     talks only to the source and gives it the destination's URL and
 *     credentials; the source daemon obtains the token itself.  The
 *     options carry "control": "p2p".
 *
 * Both call Async.VM.migrate_send and wait for the task, whose progress
 * and other_config report the migration's figures to the caller's
 * TernProgressFn.  The task's result is the VM's ref on the destination.
 */
#include <string.h>

#include <tern/tern.h>

void
tern_migrate_params_init(TernMigrateParams *p)
{
  *p = (TernMigrateParams)TERN_MIGRATE_PARAMS_INIT;
}

static void
migrate_set_uint(JsonObject *o, const char *key, guint v)
{
  g_autofree char *s = g_strdup_printf("%u", v);
  json_object_set_string_member(o, key, s);
}

JsonObject *
tern_migrate_params_to_options(const TernMigrateParams *p)
{
  TernMigrateParams defaults = TERN_MIGRATE_PARAMS_INIT;
  if (!p)
    p = &defaults;
  JsonObject *o = json_object_new();
  if (p->extra) {
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, p->extra);
    while (g_hash_table_iter_next(&it, &k, &v))
      json_object_set_string_member(o, k, v ? v : "");
  }
  if (p->mode)
    json_object_set_string_member(o, "mode", p->mode);
  json_object_set_string_member(o, "secure", p->secure ? "true" : "false");
  if (p->bandwidth_mib)
    migrate_set_uint(o, "bandwidth", p->bandwidth_mib);
  if (p->downtime_ms)
    migrate_set_uint(o, "downtime", p->downtime_ms);
  if (p->dest_name)
    json_object_set_string_member(o, "dest_name", p->dest_name);
  if (p->paused)
    json_object_set_string_member(o, "paused", "true");
  if (p->max_duration_s)
    migrate_set_uint(o, "max_duration", p->max_duration_s);
  return o;
}

JsonObject *
tern_vm_migrate_receive(TernConn *dst, const TernMigrateParams *p, GError **error)
{
  const char *session = tern_conn_session(dst);
  g_autofree char *host = tern_callf_string(dst, error, "session.get_this_host", "s",
                                            session ? session : "");
  if (!host)
    return NULL;
  g_autoptr(JsonObject) options = tern_migrate_params_to_options(p);
  return tern_callf_object(dst, error, "host.migrate_receive", "sso", host,
                           "OpaqueRef:NULL", options);
}

/* The task result is the destination ref.  XAPI itself wraps a task result
 * in XML-RPC ("<value>OpaqueRef:...</value>"); accept that form too. */
static char *
migrate_result_ref(char *result)
{
  const char *open = "<value>", *close = "</value>";
  if (g_str_has_prefix(result, open) && g_str_has_suffix(result, close)) {
    char *inner = g_strndup(result + strlen(open),
                            strlen(result) - strlen(open) - strlen(close));
    g_free(result);
    return inner;
  }
  return result;
}

/* Async.VM.migrate_send on SRC, then waits.  Does not consume its maps. */
static char *
migrate_src_send(TernConn *src, const char *vm, JsonObject *dest, JsonObject *options,
                 gboolean live, TernProgressFn progress, gpointer user_data,
                 GError **error)
{
  g_autofree char *task = tern_callf_string(src, error, "Async.VM.migrate_send", "sobooo",
                                            vm, dest, live, NULL, NULL, options);
  if (!task)
    return NULL;
  char *result = tern_task_wait(src, task, progress, user_data, error);
  return result ? migrate_result_ref(result) : NULL;
}

char *
tern_vm_migrate(TernConn *src, TernConn *dst, const char *vm,
                const TernMigrateParams *p, TernProgressFn progress,
                gpointer user_data, GError **error)
{
  TernMigrateParams defaults = TERN_MIGRATE_PARAMS_INIT;
  if (!p)
    p = &defaults;
  g_autoptr(JsonObject) dest = tern_vm_migrate_receive(dst, p, error);
  if (!dest)
    return NULL;
  g_autoptr(JsonObject) options = tern_migrate_params_to_options(p);
  return migrate_src_send(src, vm, dest, options, p->live, progress, user_data, error);
}

JsonObject *
tern_migrate_p2p_dest(const char *dest_uri, const char *user, const char *password,
                      const TernMigrateParams *p)
{
  JsonObject *dest = json_object_new();
  json_object_set_string_member(dest, "url", dest_uri);
  json_object_set_string_member(dest, "user", user ? user : "");
  json_object_set_string_member(dest, "password", password ? password : "");
  if (p && p->dest_fingerprint)
    json_object_set_string_member(dest, "fingerprint", p->dest_fingerprint);
  if (p && p->dest_trust_on_first_use)
    json_object_set_string_member(dest, "trust_on_first_use", "true");
  return dest;
}

char *
tern_vm_migrate_to_uri(TernConn *src, const char *dest_uri, const char *user,
                       const char *password, const char *vm,
                       const TernMigrateParams *p, TernProgressFn progress,
                       gpointer user_data, GError **error)
{
  TernMigrateParams defaults = TERN_MIGRATE_PARAMS_INIT;
  if (!p)
    p = &defaults;
  g_autoptr(JsonObject) dest = tern_migrate_p2p_dest(dest_uri, user, password, p);
  g_autoptr(JsonObject) options = tern_migrate_params_to_options(p);
  json_object_set_string_member(options, "control", "p2p");
  return migrate_src_send(src, vm, dest, options, p->live, progress, user_data, error);
}
