/*
 * host-list: the hosts of the pool (one for a standalone ternd), from
 * host.get_all_records.
 */
#include "cli.h"

int
host_list_run(Cli *cli, int argc, char **argv)
{
  int rc;
  if (!cli_begin(cli, NULL, &argc, &argv, 0, 0, &rc))
    return rc;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) all = tern_get_all_records(cli->conn, "host", &error);
  if (!all)
    return cli_fail(error);
  g_autoptr(GPtrArray) hosts = cli_records_sorted(all);

  if (cli->json) {
    g_autoptr(JsonArray) a = json_array_new();
    for (guint i = 0; i < hosts->len; i++)
      json_array_add_object_element(a, json_object_ref(hosts->pdata[i]));
    g_autoptr(JsonNode) n = json_node_init_array(json_node_alloc(), a);
    cli_print_json(n);
    return CLI_EXIT_OK;
  }
  CliTable *t = cli_table_new("UUID", "NAME", "HOSTNAME", "MEM_TOTAL_MIB", "MEM_FREE_MIB", "VMS", NULL);
  for (guint i = 0; i < hosts->len; i++) {
    JsonObject *h = hosts->pdata[i];
    g_autofree char *total = cli_mib(h, "memory_total");
    g_autofree char *free_mib = cli_mib(h, "memory_free");
    JsonNode *vms = json_object_get_member(h, "resident_VMs");
    g_autofree char *nvms = g_strdup_printf("%u", vms && JSON_NODE_HOLDS_ARRAY(vms)
                                            ? json_array_get_length(json_node_get_array(vms)) : 0);
    cli_table_add(t, tern_record_get_string(h, "uuid"), tern_record_get_string(h, "name_label"),
                  tern_record_get_string(h, "hostname"), total, free_mib, nvms);
  }
  cli_table_print(t);
  return CLI_EXIT_OK;
}
