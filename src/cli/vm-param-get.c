/*
 * vm-param-get: one field of VM.get_record.  PARAM is a field name
 * (memory_static_max) or MAP:KEY for one key of a map field
 * (other_config:owner).  Maps print as "k: v" lines, sets comma-separated.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int
vm_param_get_run(Cli *cli, int argc, char **argv)
{
  int rc;
  if (!cli_begin(cli, NULL, &argc, &argv, 2, 2, &rc))
    return rc;
  g_autofree char *vm = cli_vm_ref(cli, argv[0], &rc);
  if (!vm)
    return rc;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) rec = tern_get_record(cli->conn, "VM", vm, &error);
  if (!rec)
    return cli_fail(error);

  g_auto(GStrv) parts = g_strsplit(argv[1], ":", 2);
  JsonNode *n = json_object_get_member(rec, parts[0]);
  if (!n)
    return cli_usage_error(cli, "VM has no field \"%s\"", parts[0]);
  if (parts[1]) {
    if (!JSON_NODE_HOLDS_OBJECT(n))
      return cli_usage_error(cli, "field \"%s\" is not a map", parts[0]);
    n = json_object_get_member(json_node_get_object(n), parts[1]);
    if (!n) {
      fprintf(stderr, "tern: %s has no key \"%s\"\n", parts[0], parts[1]);
      return CLI_EXIT_SERVER;
    }
  }
  if (cli->json) {
    cli_print_json(n);
  } else {
    g_autofree char *text = cli_format_value(n);
    printf("%s\n", text ? text : "");
  }
  return CLI_EXIT_OK;
}
