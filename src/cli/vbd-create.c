/*
 * vbd-create: attaches a VDI to a VM (VBD.create, a disk), at the next
 * free userdevice unless --userdevice says which, then prints the VBD's
 * uuid.
 */
#include <stdio.h>

#include "cli.h"

int
vbd_create_run(Cli *cli, int argc, char **argv)
{
  g_autofree char *userdevice = NULL;
  gboolean bootable = FALSE, read_only = FALSE;
  GOptionEntry entries[] = {
    { "userdevice", 0, 0, G_OPTION_ARG_STRING, &userdevice, "0..15 (default: the next free)", "N" },
    { "bootable", 0, 0, G_OPTION_ARG_NONE, &bootable, "Boot from this disk", NULL },
    { "read-only", 0, 0, G_OPTION_ARG_NONE, &read_only, "Attach read-only (mode RO)", NULL },
    { NULL },
  };
  int rc;
  if (!cli_begin(cli, entries, &argc, &argv, 2, 2, &rc))
    return rc;
  g_autofree char *vm = cli_vm_ref(cli, argv[0], &rc);
  if (!vm)
    return rc;
  g_autoptr(GError) error = NULL;
  g_autofree char *vdi = tern_resolve(cli->conn, "VDI", argv[1], &error);
  g_autofree char *ref = vdi ? tern_vbd_create(cli->conn, vm, vdi, userdevice, bootable,
                                               read_only, &error) : NULL;
  g_autofree char *uuid = ref ? tern_callf_string(cli->conn, &error, "VBD.get_uuid", "s", ref)
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
