/*
 * vdi-create: VDI.create in an SR (--sr; the pool's default SR when not
 * given) of --size MiB, then prints the new VDI's uuid.  In the boot SR
 * the VDI is a raw file named --name, for PV_kernel (fill it with
 * tern vdi-import).
 */
#include <stdio.h>

#include "cli.h"

int
vdi_create_run(Cli *cli, int argc, char **argv)
{
  g_autofree char *name = NULL, *sr_arg = NULL;
  gint size_mib = 0;
  GOptionEntry entries[] = {
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "name_label (required)", "NAME" },
    { "size", 0, 0, G_OPTION_ARG_INT, &size_mib, "virtual_size in MiB (required)", "MiB" },
    { "sr", 0, 0, G_OPTION_ARG_STRING, &sr_arg, "SR (name, uuid, default, boot)", "SR" },
    { NULL },
  };
  int rc;
  if (!cli_begin(cli, entries, &argc, &argv, 0, 0, &rc))
    return rc;
  if (!name || !*name)
    return cli_usage_error(cli, "--name is required");
  if (size_mib <= 0)
    return cli_usage_error(cli, "--size must be a positive number of MiB");
  g_autofree char *sr = cli_sr_ref(cli, sr_arg ? sr_arg : "default", &rc);
  if (!sr)
    return rc;
  g_autoptr(GError) error = NULL;
  g_autofree char *ref = tern_vdi_create(cli->conn, sr, name, (gint64)size_mib << 20, &error);
  g_autofree char *uuid = ref ? tern_callf_string(cli->conn, &error, "VDI.get_uuid", "s", ref)
                              : NULL;
  if (!uuid)
    return cli_fail(error);
  if (cli->json) {
    g_autoptr(JsonObject) o = json_object_new();
    json_object_set_string_member(o, "ref", ref);
    json_object_set_string_member(o, "uuid", uuid);
    cli_print_json_object(o);
  } else {
    printf("%s\n", uuid);
  }
  return CLI_EXIT_OK;
}
