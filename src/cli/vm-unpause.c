/*
 * vm-unpause: VM.unpause: resume a paused VM.
 */
#include "cli.h"

int
vm_unpause_run(Cli *cli, int argc, char **argv)
{
  int rc;
  if (!cli_begin(cli, NULL, &argc, &argv, 1, 1, &rc))
    return rc;
  g_autofree char *vm = cli_vm_ref(cli, argv[0], &rc);
  if (!vm)
    return rc;
  g_autoptr(JsonArray) params = json_array_new();
  json_array_add_string_element(params, vm);
  return cli_call_async(cli, "VM.unpause", params);
}
