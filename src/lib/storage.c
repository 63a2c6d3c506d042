/*
 * storage: typed calls for SRs, VDIs and VBDs (docs/storage.md), and
 * finding an object of any class from what a person types.  The upload of
 * a VDI's bytes (tern_vdi_import) is in conn.c, next to the transport.
 */
#include <tern/tern.h>

JsonObject *
tern_sr_get_all_records(TernConn *c, GError **error)
{
  return tern_get_all_records(c, "SR", error);
}

JsonObject *
tern_vdi_get_all_records(TernConn *c, GError **error)
{
  return tern_get_all_records(c, "VDI", error);
}

char *
tern_resolve(TernConn *c, const char *cls, const char *who, GError **error)
{
  g_autoptr(GError) local = NULL;
  g_autofree char *get_uuid = g_strdup_printf("%s.get_uuid", cls);
  g_autofree char *by_uuid = g_strdup_printf("%s.get_by_uuid", cls);
  g_autofree char *by_name = g_strdup_printf("%s.get_by_name_label", cls);

  if (g_str_has_prefix(who, "OpaqueRef:")) {
    g_autofree char *uuid = tern_callf_string(c, error, get_uuid, "s", who);
    return uuid ? g_strdup(who) : NULL;
  }
  if (g_uuid_string_is_valid(who)) {
    char *ref = tern_callf_string(c, &local, by_uuid, "s", who);
    if (ref || !tern_error_is(local, "UUID_INVALID")) {
      if (!ref)
        g_propagate_error(error, g_steal_pointer(&local));
      return ref;
    }
  }
  g_autoptr(JsonNode) r = tern_callf(c, error, by_name, "s", who);
  if (!r)
    return NULL;
  JsonArray *refs = JSON_NODE_HOLDS_ARRAY(r) ? json_node_get_array(r) : NULL;
  guint n = refs ? json_array_get_length(refs) : 0;
  if (n != 1) {
    if (n)
      g_set_error(error, TERN_ERROR, TERN_ERROR_AMBIGUOUS,
                  "%u %ss are named \"%s\": give a uuid instead", n, cls, who);
    else
      g_set_error(error, TERN_ERROR, TERN_ERROR_NOT_FOUND,
                  "no %s has the name, uuid or ref \"%s\"", cls, who);
    return NULL;
  }
  const char *ref = json_array_get_string_element(refs, 0);
  return g_strdup(ref ? ref : "");
}

char *
tern_vdi_create(TernConn *c, const char *sr, const char *name, gint64 size, GError **error)
{
  g_autoptr(JsonObject) rec = json_object_new();
  json_object_set_string_member(rec, "SR", sr);
  json_object_set_string_member(rec, "name_label", name ? name : "");
  json_object_set_int_member(rec, "virtual_size", size);
  json_object_set_string_member(rec, "type", "user");
  json_object_set_boolean_member(rec, "sharable", FALSE);
  json_object_set_boolean_member(rec, "read_only", FALSE);
  json_object_set_object_member(rec, "other_config", json_object_new());
  return tern_callf_string(c, error, "VDI.create", "o", rec);
}

char *
tern_vbd_create(TernConn *c, const char *vm, const char *vdi, const char *userdevice,
                gboolean bootable, gboolean read_only, GError **error)
{
  g_autoptr(JsonObject) rec = json_object_new();
  json_object_set_string_member(rec, "VM", vm);
  json_object_set_string_member(rec, "VDI", vdi);
  json_object_set_string_member(rec, "userdevice", userdevice ? userdevice : "autodetect");
  json_object_set_boolean_member(rec, "bootable", bootable);
  json_object_set_string_member(rec, "mode", read_only ? "RO" : "RW");
  json_object_set_string_member(rec, "type", "Disk");
  json_object_set_boolean_member(rec, "empty", FALSE);
  json_object_set_object_member(rec, "other_config", json_object_new());
  return tern_callf_string(c, error, "VBD.create", "o", rec);
}
