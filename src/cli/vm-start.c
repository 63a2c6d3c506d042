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
  if (!cli_begin(cli, entries, &argc, &argv, 1, 1, &rc))
    return rc;
  g_autofree char *vm = cli_vm_ref(cli, argv[0], &rc);
  if (!vm)
    return rc;
  g_autoptr(JsonArray) params = json_array_new();
  json_array_add_string_element(params, vm);
  json_array_add_boolean_element(params, paused);
  json_array_add_boolean_element(params, FALSE);
  return cli_call_async(cli, "VM.start", params);
}
