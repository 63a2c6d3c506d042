/*
 * vm-pause: VM.pause: freeze a running VM's vCPUs.
 */
#include "cli.h"

int
vm_pause_run(Cli *cli, int argc, char **argv)
{
  int rc;
  g_autofree char *vm = cli_begin_vm(cli, NULL, &argc, &argv, &rc);
  return vm ? cli_vm_call(cli, vm, "VM.pause", 0) : rc;
}
