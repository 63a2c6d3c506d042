/*
 * tern: the command-line client of ternd, built on libtern only.
 *
 *   tern [-c URI] [--user U] [--password-file F] [--json] COMMAND [ARGS...]
 *
 * This file holds the global options and the command table; each command
 * lives in its own file (kvmtool style).  Adding a command is one file,
 * one handler declaration in cli.h and one row below.
 */
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

const CliCommand cli_commands[] = {
  { .name = "host-list", .run = host_list_run,
    .summary = "List hosts with memory and resident VM count", .usage = "" },
  { .name = "vm-list", .run = vm_list_run,
    .summary = "List VMs (templates excluded)", .usage = "" },
  { .name = "vm-create", .run = vm_create_run,
    .summary = "Create a VM and print its uuid", .usage = "--name NAME" },
  { .name = "vm-destroy", .run = vm_destroy_run,
    .summary = "Destroy a halted VM", .usage = "VM" },
  { .name = "vm-param-get", .run = vm_param_get_run,
    .summary = "Print one field of a VM record", .usage = "VM PARAM" },
  { .name = "vm-param-set", .run = vm_param_set_run,
    .summary = "Set VM fields (PARAM=VALUE, MAP:KEY=VALUE)", .usage = "VM PARAM=VALUE..." },
  { .name = "task-list", .run = task_list_run,
    .summary = "List tasks with status and progress", .usage = "" },
  { .name = "event-watch", .run = event_watch_run,
    .summary = "Print events as they arrive", .usage = "" },
  { .name = "vm-start", .run = vm_start_run,
    .summary = "Start a VM", .usage = "VM" },
  { .name = "vm-shutdown", .run = vm_shutdown_run,
    .summary = "Shut a VM down (clean, or hard with --force)", .usage = "VM" },
  { .name = "vm-reboot", .run = vm_reboot_run,
    .summary = "Reboot a VM (clean, or hard with --force)", .usage = "VM" },
  { .name = "vm-pause", .run = vm_pause_run,
    .summary = "Pause a running VM", .usage = "VM" },
  { .name = "vm-unpause", .run = vm_unpause_run,
    .summary = "Resume a paused VM", .usage = "VM" },
  { .name = "vm-console", .run = vm_console_run,
    .summary = "Print the VM's serial console (--follow to keep reading)", .usage = "VM" },
  { .name = "vm-migrate", .run = vm_migrate_run,
    .summary = "Migrate a VM to another host", .usage = "VM --to URI" },
  { .name = "sr-list", .run = sr_list_run,
    .summary = "List storage repositories with their sizes", .usage = "" },
  { .name = "vdi-list", .run = vdi_list_run,
    .summary = "List virtual disks (--sr SR for one SR's)", .usage = "" },
  { .name = "vdi-create", .run = vdi_create_run,
    .summary = "Create a virtual disk and print its uuid", .usage = "--name NAME --size MiB" },
  { .name = "vdi-import", .run = vdi_import_run,
    .summary = "Upload a file's bytes into a VDI (PUT /import_raw_vdi)", .usage = "VDI FILE" },
  { .name = "vbd-create", .run = vbd_create_run,
    .summary = "Attach a VDI to a VM and print the VBD's uuid", .usage = "VM VDI" },
};
const gsize cli_n_commands = G_N_ELEMENTS(cli_commands);

static char *
tern_command_list(void)
{
  GString *s = g_string_new("Commands:\n");
  for (gsize i = 0; i < cli_n_commands; i++)
    g_string_append_printf(s, "  %-14s %s\n", cli_commands[i].name, cli_commands[i].summary);
  g_string_append(s, "\nRun 'tern COMMAND --help' for a command's options.\n"
                     "Without -c, tern uses $TERN_SOCKET or /run/tern/ternd.sock as root.\n"
                     "Exit codes: 0 ok, 1 server error, 2 usage error, 3 connection or login failure.");
  return g_string_free(s, FALSE);
}

int
main(int argc, char **argv)
{
  Cli cli = { 0 };
  GOptionEntry entries[] = {
    { "connect", 'c', 0, G_OPTION_ARG_STRING, &cli.uri,
      "Server URI: unix:///path, https://host:port or http://host:port", "URI" },
    { "user", 0, 0, G_OPTION_ARG_STRING, &cli.user, "User name (or $TERN_USER)", "U" },
    { "password-file", 0, 0, G_OPTION_ARG_FILENAME, &cli.password_file,
      "File holding the password (or $TERN_PASSWORD)", "F" },
    { "fingerprint", 0, 0, G_OPTION_ARG_STRING, &cli.fingerprint,
      "SHA-256 fingerprint of the server's TLS certificate", "HEX" },
    { "insecure", 0, 0, G_OPTION_ARG_NONE, &cli.insecure,
      "Accept any TLS certificate (tests only)", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &cli.json, "Print JSON for scripts", NULL },
    { NULL },
  };
  setlocale(LC_ALL, "");
  g_set_prgname("tern");

  g_autoptr(GOptionContext) ctx = g_option_context_new("COMMAND [ARGS...]");
  g_autofree char *list = tern_command_list();
  g_option_context_set_summary(ctx, "Drive a ternd host (Xen Management API).");
  g_option_context_set_description(ctx, list);
  g_option_context_add_main_entries(ctx, entries, NULL);
  g_option_context_set_strict_posix(ctx, TRUE);
  g_autoptr(GError) error = NULL;
  if (!g_option_context_parse(ctx, &argc, &argv, &error)) {
    fprintf(stderr, "tern: %s\n", error->message);
    return CLI_EXIT_USAGE;
  }
  if (argc < 2) {
    g_autofree char *help = g_option_context_get_help(ctx, TRUE, NULL);
    fputs(help, stderr);
    return CLI_EXIT_USAGE;
  }
  if (!cli.user && g_getenv("TERN_USER"))
    cli.user = g_strdup(g_getenv("TERN_USER"));

  const char *name = argv[1];
  for (gsize i = 0; i < cli_n_commands; i++) {
    if (g_str_equal(cli_commands[i].name, name)) {
      cli.cmd = &cli_commands[i];
      int rc = cli.cmd->run(&cli, argc - 1, argv + 1);
      if (cli.conn) {
        tern_logout(cli.conn);
        tern_conn_free(cli.conn);
      }
      g_free(cli.uri);
      g_free(cli.user);
      g_free(cli.password_file);
      g_free(cli.fingerprint);
      return rc;
    }
  }
  fprintf(stderr, "tern: unknown command \"%s\" (see tern --help)\n", name);
  return CLI_EXIT_USAGE;
}
