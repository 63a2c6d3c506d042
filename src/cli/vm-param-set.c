/*
 * vm-param-set: sets VM fields, one PARAM=VALUE argument each, in order:
 *
 *   name_label=N, name_description=D   VM.set_<field>
 *   tags=a,b,c                         VM.set_tags (empty VALUE clears)
 *   MAP:KEY=VALUE                      VM.remove_from_<MAP>(KEY), then
 *                                      VM.add_to_<MAP>(KEY, VALUE) unless
 *                                      VALUE is empty (XAPI's add refuses
 *                                      an existing key)
 *   any other FIELD=VALUE              VM.set_<FIELD>, VALUE converted to
 *                                      the type the record has for FIELD
 */
#include <string.h>

#include "cli.h"

static JsonArray *
vm_param_set_split(const char *value)
{
  JsonArray *a = json_array_new();
  g_auto(GStrv) items = g_strsplit(value, ",", -1);
  for (guint i = 0; items[i]; i++) {
    char *item = g_strstrip(items[i]);
    if (*item)
      json_array_add_string_element(a, item);
  }
  return a;
}

/* The value for FIELD, typed like the record's current value. */
static JsonNode *
vm_param_set_value(Cli *cli, JsonObject *rec, const char *field, const char *value, int *rc)
{
  JsonNode *cur = json_object_get_member(rec, field);
  if (!cur) {
    *rc = cli_usage_error(cli, "VM has no field \"%s\"", field);
    return NULL;
  }
  if (JSON_NODE_HOLDS_ARRAY(cur)) {
    g_autoptr(JsonArray) a = vm_param_set_split(value);
    return json_node_init_array(json_node_alloc(), a);
  }
  GType t = JSON_NODE_HOLDS_VALUE(cur) ? json_node_get_value_type(cur) : G_TYPE_STRING;
  if (t == G_TYPE_INT64) {
    gint64 v;
    if (!g_ascii_string_to_signed(value, 10, G_MININT64, G_MAXINT64, &v, NULL)) {
      *rc = cli_usage_error(cli, "%s takes an integer, not \"%s\"", field, value);
      return NULL;
    }
    return json_node_init_int(json_node_alloc(), v);
  }
  if (t == G_TYPE_BOOLEAN) {
    if (!g_str_equal(value, "true") && !g_str_equal(value, "false")) {
      *rc = cli_usage_error(cli, "%s takes true or false, not \"%s\"", field, value);
      return NULL;
    }
    return json_node_init_boolean(json_node_alloc(), g_str_equal(value, "true"));
  }
  if (t == G_TYPE_DOUBLE)
    return json_node_init_double(json_node_alloc(), g_ascii_strtod(value, NULL));
  if (JSON_NODE_HOLDS_OBJECT(cur)) {
    *rc = cli_usage_error(cli, "%s is a map: use %s:KEY=VALUE", field, field);
    return NULL;
  }
  return json_node_init_string(json_node_alloc(), value);
}

static int
vm_param_set_one(Cli *cli, const char *vm, JsonObject *rec, const char *arg)
{
  g_autoptr(GError) error = NULL;
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg)
    return cli_usage_error(cli, "expected PARAM=VALUE, not \"%s\"", arg);
  g_autofree char *param = g_strndup(arg, (gsize)(eq - arg));
  const char *value = eq + 1;
  char *colon = strchr(param, ':');

  if (colon) {
    *colon = '\0';
    const char *key = colon + 1;
    g_autofree char *remove = g_strdup_printf("VM.remove_from_%s", param);
    g_autofree char *add = g_strdup_printf("VM.add_to_%s", param);
    g_autoptr(JsonNode) r = tern_callf(cli->conn, &error, remove, "ss", vm, key);
    if (!r)
      return cli_fail(error);
    if (*value) {
      g_autoptr(JsonNode) r2 = tern_callf(cli->conn, &error, add, "sss", vm, key, value);
      if (!r2)
        return cli_fail(error);
    }
    return CLI_EXIT_OK;
  }
  int rc = CLI_EXIT_OK;
  g_autoptr(JsonNode) v = NULL;
  if (g_str_equal(param, "tags")) {
    g_autoptr(JsonArray) tags = vm_param_set_split(value);
    v = json_node_init_array(json_node_alloc(), tags);
  } else if (g_str_equal(param, "name_label") || g_str_equal(param, "name_description")) {
    v = json_node_init_string(json_node_alloc(), value);
  } else if (!(v = vm_param_set_value(cli, rec, param, value, &rc))) {
    return rc;
  }
  g_autofree char *setter = g_strdup_printf("VM.set_%s", param);
  g_autoptr(JsonNode) r = tern_callf(cli->conn, &error, setter, "sn", vm, v);
  return r ? CLI_EXIT_OK : cli_fail(error);
}

int
vm_param_set_run(Cli *cli, int argc, char **argv)
{
  int rc;
  if (!cli_begin(cli, NULL, &argc, &argv, 2, -1, &rc))
    return rc;
  g_autofree char *vm = cli_vm_ref(cli, argv[0], &rc);
  if (!vm)
    return rc;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) rec = tern_get_record(cli->conn, "VM", vm, &error);
  if (!rec)
    return cli_fail(error);
  for (int i = 1; i < argc; i++)
    if ((rc = vm_param_set_one(cli, vm, rec, argv[i])) != CLI_EXIT_OK)
      return rc;
  return CLI_EXIT_OK;
}
