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
  if (!cli_begin(cli, entries, &argc, &argv, 1, 1, &rc))
    return rc;
  g_autofree char *vm = cli_vm_ref(cli, argv[0], &rc);
  if (!vm)
    return rc;
  g_autoptr(JsonArray) params = json_array_new();
  json_array_add_string_element(params, vm);
  return cli_call_async(cli, force ? "VM.hard_reboot" : "VM.clean_reboot", params);
}
