/*
 * vm-start: VM.start(vm, start_paused, force=false); --paused starts it paused.
 */
#include "cli.h"

int
vm_start_run(Cli *cli, int argc, char **argv)
{
  gboolean paused = FALSE;
  GOptionEntry entries[] = {
    { "paused", 0, 0, G_OPTION_ARG_NONE, &paused, "Start with vCPUs paused", NULL },
    { NULL },
  };
  int rc;
  g_autofree char *vm = cli_begin_vm(cli, entries, &argc, &argv, &rc);
  return vm ? cli_vm_call(cli, vm, "VM.start", 2, paused, FALSE) : rc;
}
