/*
 * vm-destroy: VM.destroy.  The server refuses a VM that is not halted
 * (VM_BAD_POWER_STATE); tern does not shut it down first.
 */
#include "cli.h"

int
vm_destroy_run(Cli *cli, int argc, char **argv)
{
  int rc;
  g_autofree char *vm = cli_begin_vm(cli, NULL, &argc, &argv, &rc);
  if (!vm)
    return rc;
  g_autoptr(GError) error = NULL;
  g_autoptr(JsonNode) r = tern_callf(cli->conn, &error, "VM.destroy", "s", vm);
  return r ? CLI_EXIT_OK : cli_fail(error);
}
