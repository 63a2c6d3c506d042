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
  if (!cli_begin(cli, entries, &argc, &argv, 1, 1, &rc))
    return rc;
  g_autofree char *vm = cli_vm_ref(cli, argv[0], &rc);
  if (!vm)
    return rc;
  g_autoptr(JsonArray) params = json_array_new();
  json_array_add_string_element(params, vm);
  return cli_call_async(cli, force ? "VM.hard_shutdown" : "VM.clean_shutdown", params);
}
