/*
 * vm-reboot: VM.clean_reboot, or VM.hard_reboot with --force.
 */
#include "cli.h"

int
vm_reboot_run(Cli *cli, int argc, char **argv)
{
  gboolean force = FALSE;
  GOptionEntry entries[] = {
    { "force", 0, 0, G_OPTION_ARG_NONE, &force, "Reset at once (hard_reboot)", NULL },
    { NULL },
  };
  int rc;
  g_autofree char *vm = cli_begin_vm(cli, entries, &argc, &argv, &rc);
  return vm ? cli_vm_call(cli, vm, force ? "VM.hard_reboot" : "VM.clean_reboot", 0) : rc;
}
