/*
 * sr-list: the storage repositories, from SR.get_all_records, with their
 * sizes in MiB (statvfs of the directory for a file SR) and VDI counts.
 */
#include "cli.h"

int
sr_list_run(Cli *cli, int argc, char **argv)
{
  int rc;
  if (!cli_begin(cli, NULL, &argc, &argv, 0, 0, &rc))
    return rc;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) all = tern_sr_get_all_records(cli->conn, &error);
  if (!all)
    return cli_fail(error);
  if (cli->json) {
    g_autoptr(JsonNode) n = json_node_init_object(json_node_alloc(), all);
    cli_print_json(n);
    return CLI_EXIT_OK;
  }
  g_autoptr(GPtrArray) srs = cli_records_sorted(all);
  CliTable *t = cli_table_new("UUID", "NAME", "TYPE", "CONTENT", "SHARED", "SIZE_MIB",
                              "USED_MIB", "VDIS", NULL);
  for (guint i = 0; i < srs->len; i++) {
    JsonObject *sr = srs->pdata[i];
    g_autofree char *size = cli_mib(sr, "physical_size");
    g_autofree char *used = cli_mib(sr, "physical_utilisation");
    JsonArray *vdis = json_object_has_member(sr, "VDIs")
                      ? json_object_get_array_member(sr, "VDIs") : NULL;
    g_autofree char *n = g_strdup_printf("%u", vdis ? json_array_get_length(vdis) : 0);
    cli_table_add(t, tern_record_get_string(sr, "uuid"), tern_record_get_string(sr, "name_label"),
                  tern_record_get_string(sr, "type"), tern_record_get_string(sr, "content_type"),
                  json_object_get_boolean_member_with_default(sr, "shared", FALSE) ? "yes" : "no",
                  size, used, n);
  }
  cli_table_print(t);
  return CLI_EXIT_OK;
}
