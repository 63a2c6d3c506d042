/*
 * vm-create: VM.create with the fields given on the command line (the
 * server fills in the rest), then prints the new VM's uuid.  Memory is
 * given in MiB and sent in bytes, as XAPI's memory fields are.  The
 * kernel and initrd are files of the host's boot SR, named by file name
 * (`tern vdi-import` uploads one); a path is refused here already.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

int
vm_create_run(Cli *cli, int argc, char **argv)
{
  g_autofree char *name = NULL, *description = NULL, *kernel = NULL, *initrd = NULL, *args = NULL;
  gint memory_mib = 0, vcpus = 0;
  GOptionEntry entries[] = {
    { "name", 0, 0, G_OPTION_ARG_STRING, &name, "name_label (required)", "NAME" },
    { "description", 0, 0, G_OPTION_ARG_STRING, &description, "name_description", "D" },
    { "memory", 0, 0, G_OPTION_ARG_INT, &memory_mib, "Memory in MiB", "MiB" },
    { "vcpus", 0, 0, G_OPTION_ARG_INT, &vcpus, "Number of vCPUs", "N" },
    { "kernel", 0, 0, G_OPTION_ARG_STRING, &kernel, "Kernel for direct boot: a file of the boot SR (PV_kernel)", "NAME" },
    { "initrd", 0, 0, G_OPTION_ARG_STRING, &initrd, "Initial ramdisk: a file of the boot SR (PV_ramdisk)", "NAME" },
    { "args", 0, 0, G_OPTION_ARG_STRING, &args, "Kernel command line (PV_args)", "STR" },
    { NULL },
  };
  int rc;
  if (!cli_begin(cli, entries, &argc, &argv, 0, 0, &rc))
    return rc;
  if (!name || !*name)
    return cli_usage_error(cli, "--name is required");
  if ((kernel && strchr(kernel, '/')) || (initrd && strchr(initrd, '/')))
    return cli_usage_error(cli, "--kernel and --initrd name files of the host's boot SR "
                           "(e.g. vmlinuz), not paths; upload one with tern vdi-import");
  if (memory_mib < 0 || vcpus < 0)
    return cli_usage_error(cli, "--memory and --vcpus must be positive");

  g_autoptr(JsonObject) rec = json_object_new();
  json_object_set_string_member(rec, "name_label", name);
  json_object_set_string_member(rec, "name_description", description ? description : "");
  if (memory_mib) {
    gint64 bytes = (gint64)memory_mib * 1024 * 1024;
    json_object_set_int_member(rec, "memory_static_max", bytes);
    json_object_set_int_member(rec, "memory_dynamic_max", bytes);
  }
  if (vcpus) {
    json_object_set_int_member(rec, "VCPUs_max", vcpus);
    json_object_set_int_member(rec, "VCPUs_at_startup", vcpus);
  }
  if (kernel)
    json_object_set_string_member(rec, "PV_kernel", kernel);
  if (initrd)
    json_object_set_string_member(rec, "PV_ramdisk", initrd);
  if (args)
    json_object_set_string_member(rec, "PV_args", args);

  g_autoptr(GError) error = NULL;
  g_autofree char *ref = tern_callf_string(cli->conn, &error, "VM.create", "o", rec);
  if (!ref)
    return cli_fail(error);
  g_autofree char *uuid = tern_callf_string(cli->conn, &error, "VM.get_uuid", "s", ref);
  if (!uuid)
    return cli_fail(error);
  if (cli->json) {
    g_autoptr(JsonObject) o = json_object_new();
    json_object_set_string_member(o, "ref", ref);
    json_object_set_string_member(o, "uuid", uuid);
    cli_print_json_object(o);
  } else {
    printf("%s\n", uuid);
  }
  return CLI_EXIT_OK;
}
