/*
 * vm-unpause: VM.unpause: resume a paused VM.
 */
#include "cli.h"

int
vm_unpause_run(Cli *cli, int argc, char **argv)
{
  int rc;
  g_autofree char *vm = cli_begin_vm(cli, NULL, &argc, &argv, &rc);
  return vm ? cli_vm_call(cli, vm, "VM.unpause", 0) : rc;
}
