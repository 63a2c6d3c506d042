/*
 * object: reading XAPI objects: whole records, typed fields, and finding a
 * VM from what a person types (a name, a uuid or a ref).
 */
#include <stdlib.h>

#include <tern/tern.h>

JsonObject *
tern_get_all_records(TernConn *c, const char *cls, GError **error)
{
  g_autofree char *method = g_strdup_printf("%s.get_all_records", cls);
  return tern_callf_object(c, error, method, "");
}

JsonObject *
tern_get_record(TernConn *c, const char *cls, const char *ref, GError **error)
{
  g_autofree char *method = g_strdup_printf("%s.get_record", cls);
  return tern_callf_object(c, error, method, "s", ref);
}

JsonObject *
tern_vm_get_all_records(TernConn *c, GError **error)
{
  return tern_get_all_records(c, "VM", error);
}

gint64
tern_record_get_int(JsonObject *record, const char *field, gint64 default_value)
{
  JsonNode *n = record ? json_object_get_member(record, field) : NULL;
  if (!n || !JSON_NODE_HOLDS_VALUE(n))
    return default_value;
  GType t = json_node_get_value_type(n);
  if (t == G_TYPE_INT64)
    return json_node_get_int(n);
  if (t == G_TYPE_DOUBLE)
    return (gint64)json_node_get_double(n);
  if (t == G_TYPE_STRING) {
    gint64 v;
    if (g_ascii_string_to_signed(json_node_get_string(n), 10, G_MININT64, G_MAXINT64, &v, NULL))
      return v;
  }
  return default_value;
}

const char *
tern_record_get_string(JsonObject *record, const char *field)
{
  JsonNode *n = record ? json_object_get_member(record, field) : NULL;
  if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string(n);
}

char *
tern_vm_resolve(TernConn *c, const char *who, GError **error)
{
  g_autoptr(GError) local = NULL;

  if (g_str_has_prefix(who, "OpaqueRef:")) {
    g_autofree char *uuid = tern_callf_string(c, error, "VM.get_uuid", "s", who);
    return uuid ? g_strdup(who) : NULL;
  }
  if (g_uuid_string_is_valid(who)) {
    char *ref = tern_callf_string(c, &local, "VM.get_by_uuid", "s", who);
    if (ref)
      return ref;
    /* A name may look like a uuid; only "no such uuid" falls through. */
    if (!tern_error_is(local, "UUID_INVALID")) {
      g_propagate_error(error, g_steal_pointer(&local));
      return NULL;
    }
  }
  g_autoptr(JsonNode) r = tern_callf(c, error, "VM.get_by_name_label", "s", who);
  if (!r)
    return NULL;
  if (!JSON_NODE_HOLDS_ARRAY(r)) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_PROTOCOL,
                "VM.get_by_name_label: expected a set of refs");
    return NULL;
  }
  JsonArray *refs = json_node_get_array(r);
  guint n = json_array_get_length(refs);
  if (n == 0) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_NOT_FOUND,
                "no VM has the name, uuid or ref \"%s\"", who);
    return NULL;
  }
  if (n > 1) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_AMBIGUOUS,
                "%u VMs are named \"%s\": give a uuid instead", n, who);
    return NULL;
  }
  const char *ref = json_node_get_string(json_array_get_element(refs, 0));
  if (!ref) {
    g_set_error(error, TERN_ERROR, TERN_ERROR_PROTOCOL,
                "VM.get_by_name_label: expected a set of refs");
    return NULL;
  }
  return g_strdup(ref);
}
