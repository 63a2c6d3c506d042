/*
 * vm-shutdown: VM.clean_shutdown (ACPI power button), or VM.hard_shutdown with
 * --force.
 */
#include "cli.h"

int
vm_shutdown_run(Cli *cli, int argc, char **argv)
{
  gboolean force = FALSE;
  GOptionEntry entries[] = {
    { "force", 0, 0, G_OPTION_ARG_NONE, &force, "Power off at once (hard_shutdown)", NULL },
    { NULL },
  };
  int rc;
  g_autofree char *vm = cli_begin_vm(cli, entries, &argc, &argv, &rc);
  return vm ? cli_vm_call(cli, vm, force ? "VM.hard_shutdown" : "VM.clean_shutdown", 0) : rc;
}
