/*
 * vdi-list: the virtual disks, from VDI.get_all_records (--sr SR: only
 * that SR's), with their SR's name, sizes in MiB and location.
 */
#include "cli.h"

int
vdi_list_run(Cli *cli, int argc, char **argv)
{
  g_autofree char *sr_arg = NULL;
  GOptionEntry entries[] = {
    { "sr", 0, 0, G_OPTION_ARG_STRING, &sr_arg, "Only this SR's (name, uuid, default, boot)", "SR" },
    { NULL },
  };
  int rc;
  if (!cli_begin(cli, entries, &argc, &argv, 0, 0, &rc))
    return rc;
  g_autofree char *sr = sr_arg ? cli_sr_ref(cli, sr_arg, &rc) : NULL;
  if (sr_arg && !sr)
    return rc;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonObject) all = tern_vdi_get_all_records(cli->conn, &error);
  g_autoptr(JsonObject) srs = all ? tern_sr_get_all_records(cli->conn, &error) : NULL;
  if (!srs)
    return cli_fail(error);
  g_autoptr(GPtrArray) vdis = cli_records_sorted(all);
  g_autoptr(JsonArray) out = json_array_new();
  CliTable *t = cli_table_new("UUID", "NAME", "SR", "SIZE_MIB", "USED_MIB", "TYPE", "LOCATION",
                              NULL);
  for (guint i = 0; i < vdis->len; i++) {
    JsonObject *v = vdis->pdata[i];
    const char *vsr = tern_record_get_string(v, "SR");
    if (sr && g_strcmp0(vsr, sr) != 0)
      continue;
    json_array_add_object_element(out, json_object_ref(v));
    JsonObject *srec = vsr && json_object_has_member(srs, vsr)
                       ? json_object_get_object_member(srs, vsr) : NULL;
    g_autofree char *size = cli_mib(v, "virtual_size");
    g_autofree char *used = cli_mib(v, "physical_utilisation");
    cli_table_add(t, tern_record_get_string(v, "uuid"), tern_record_get_string(v, "name_label"),
                  srec ? tern_record_get_string(srec, "name_label") : "-", size, used,
                  tern_record_get_string(v, "type"), tern_record_get_string(v, "location"));
  }
  if (cli->json) {
    g_autoptr(JsonNode) n = json_node_init_array(json_node_alloc(), out);
    cli_print_json(n);
    cli_table_free(t);
  } else {
    cli_table_print(t);
  }
  return CLI_EXIT_OK;
}
