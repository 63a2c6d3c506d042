/*
 * vm-console: prints the tail of the VM's serial console
 * (VM.get_console_log, a tern addition).  With --follow it polls every
 * 200 ms and prints only what is new, until the VM halts or Ctrl-C.
 *
 * The server returns a window of at most max_bytes ending at the newest
 * byte, so "what is new" is found by locating the end of the previous
 * window in the new one: the last CONSOLE_ANCHOR bytes printed are searched
 * for, latest occurrence first, and what follows them is new.  If they are
 * not found (more than a window went by), the whole new window is printed.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define CONSOLE_MAX_BYTES 65536
#define CONSOLE_ANCHOR 256
#define CONSOLE_POLL_US (200 * 1000)

/* Where the new bytes of NOW begin, given the previous window PREV. */
static gsize
vm_console_new_from(const char *prev, const char *now)
{
  gsize plen = strlen(prev), nlen = strlen(now);
  if (plen == 0)
    return 0;
  gsize alen = MIN(plen, CONSOLE_ANCHOR);
  const char *anchor = prev + plen - alen;
  /* The latest occurrence of the anchor in NOW. */
  const char *found = NULL;
  for (const char *p = now; (p = memmem(p, nlen - (gsize)(p - now), anchor, alen)); p++)
    found = p;
  return found ? (gsize)(found - now) + alen : 0;
}

static char *
vm_console_read(Cli *cli, const char *vm, GError **error)
{
  return tern_callf_string(cli->conn, error, "VM.get_console_log", "si", vm,
                           (gint64)CONSOLE_MAX_BYTES);
}

int
vm_console_run(Cli *cli, int argc, char **argv)
{
  gboolean follow = FALSE;
  GOptionEntry entries[] = {
    { "follow", 'f', 0, G_OPTION_ARG_NONE, &follow, "Keep printing new output until the VM halts", NULL },
    { NULL },
  };
  int rc;
  if (!cli_begin(cli, entries, &argc, &argv, 1, 1, &rc))
    return rc;
  g_autofree char *vm = cli_vm_ref(cli, argv[0], &rc);
  if (!vm)
    return rc;
  g_autoptr(GError) error = NULL;
  g_autofree char *prev = vm_console_read(cli, vm, &error);
  if (!prev)
    return cli_fail(error);
  fputs(prev, stdout);
  fflush(stdout);

  while (follow) {
    g_usleep(CONSOLE_POLL_US);
    g_autofree char *state = tern_callf_string(cli->conn, &error, "VM.get_power_state", "s", vm);
    if (!state)
      return cli_fail(error);
    g_autofree char *now = vm_console_read(cli, vm, &error);
    if (!now)
      return cli_fail(error);
    fputs(now + vm_console_new_from(prev, now), stdout);
    fflush(stdout);
    g_free(prev);
    prev = g_steal_pointer(&now);
    if (g_str_equal(state, "Halted"))
      break;
  }
  return CLI_EXIT_OK;
}
