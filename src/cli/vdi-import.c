/*
 * vdi-import: uploads a local file's bytes into a VDI with XAPI's
 * PUT /import_raw_vdi (libtern's tern_vdi_import streams it): a kernel or
 * an initrd into a VDI of the boot SR, or raw disk bytes into a qcow2 VDI.
 */
#include "cli.h"

int
vdi_import_run(Cli *cli, int argc, char **argv)
{
  int rc;
  if (!cli_begin(cli, NULL, &argc, &argv, 2, 2, &rc))
    return rc;
  g_autoptr(GError) error = NULL;
  g_autofree char *vdi = tern_resolve(cli->conn, "VDI", argv[0], &error);
  if (!vdi || !tern_vdi_import(cli->conn, vdi, argv[1], &error))
    return cli_fail(error);
  return CLI_EXIT_OK;
}
