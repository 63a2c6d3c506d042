/*
 * cli.h: what the files of the tern command share.
 *
 * tern is kvmtool-shaped: tern.c parses the global options and dispatches
 * through a static table to one file per subcommand (vm-list.c holds
 * vm_list_run, ...).  Every subcommand parses its own options with
 * cli_begin(), which also answers --help from the table's usage and opens
 * the connection, so a command body is: parse, resolve, call, print.
 *
 * Exit codes (docs/cli.md): 0 ok, 1 XAPI or server error, 2 usage error,
 * 3 connection or authentication failure.
 */
#pragma once

#include <tern/tern.h>

enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_SERVER = 1,
  CLI_EXIT_USAGE = 2,
  CLI_EXIT_CONNECT = 3,
};

typedef struct Cli Cli;

typedef struct {
  const char *name;
  int (*run)(Cli *cli, int argc, char **argv);
  const char *summary;
  const char *usage;      /* the arguments after the command name */
} CliCommand;

struct Cli {
  const CliCommand *cmd;  /* the command being run */
  TernConn *conn;         /* open and logged in after cli_begin() */
  /* Global options. */
  char *uri;
  char *user;
  char *password_file;
  char *fingerprint;
  gboolean insecure;
  gboolean json;
};

/* The command table, in tern.c. */
extern const CliCommand cli_commands[];
extern const gsize cli_n_commands;

/* Parses the command's options (ENTRIES may be NULL) and checks that the
 * positional arguments left number MIN..MAX (MAX < 0: no limit), then
 * connects and logs in.  On failure prints the reason and returns FALSE
 * with *RC set to the exit code; --help prints the usage and exits 0.
 * On success *ARGC and *ARGV hold the positional arguments, argv[0] first. */
gboolean cli_begin(Cli *cli, GOptionEntry *entries, int *argc, char ***argv,
                   int min, int max, int *rc);

/* Opens URI and logs in: as root with an empty password on a unix://
 * URI when USER is NULL; otherwise with USER and the password read from
 * PASSWORD_FILE or $TERN_PASSWORD.  Errors are TERN_ERROR_TRANSPORT,
 * TERN_ERROR_INVALID or the server's. */
TernConn *cli_open(const char *uri, const char *user, const char *password_file,
                   const char *fingerprint, gboolean insecure, GError **error);

/* Prints "tern: <message>" on stderr and returns the exit code for E. */
int cli_fail(const GError *e);

/* Prints "tern: <command>: <printf message>" and returns CLI_EXIT_USAGE. */
int cli_usage_error(Cli *cli, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

/* Resolves a VM argument, printing the error; NULL with *RC set. */
char *cli_vm_ref(Cli *cli, const char *who, int *rc);

/* Calls Async.METHOD(PARAMS) and waits for the task (a shutdown may take
 * longer than one HTTP request should), or METHOD itself when the server
 * has no Async form.  PARAMS is not consumed.  Prints any error and returns
 * the exit code. */
int cli_call_async(Cli *cli, const char *method, JsonArray *params);

/* The shape every VM command shares: cli_begin with ENTRIES and exactly one
 * positional argument, resolved to the VM's ref (caller frees); NULL with
 * *RC set on any failure. */
char *cli_begin_vm(Cli *cli, GOptionEntry *entries, int *argc, char ***argv,
                   int *rc);
/* cli_call_async of METHOD(vm, ARGS...) where ARGS are booleans, given as
 * a count and the values. */
int cli_vm_call(Cli *cli, const char *vm, const char *method, int nbool, ...);

/* Prints NODE as pretty JSON on stdout. */
void cli_print_json(JsonNode *node);
void cli_print_json_object(JsonObject *o);

/* A table for people: columns aligned, two spaces apart. */
typedef struct CliTable CliTable;
CliTable *cli_table_new(const char *first_header, ...) G_GNUC_NULL_TERMINATED;
/* Adds a row; the cells are copied, as many as there are headers. */
void cli_table_add(CliTable *t, ...);
/* Prints the table and frees it. */
void cli_table_print(CliTable *t);
/* Frees the table unprinted.  Accepts NULL. */
void cli_table_free(CliTable *t);

/* Records of a get_all_records map, as a list of JsonObject * sorted by
 * name_label then uuid, each with a "ref" member added.  Free with
 * g_ptr_array_unref. */
GPtrArray *cli_records_sorted(JsonObject *all);

/* A record field formatted for people: a string as it is, a set
 * comma-separated, a map as "k: v" lines; NULL when missing. */
char *cli_format_value(JsonNode *n);

/* Bytes (number or string field) to whole MiB, for tables. */
char *cli_mib(JsonObject *record, const char *field);

/* The handlers, one per file. */
int host_list_run(Cli *cli, int argc, char **argv);
int vm_list_run(Cli *cli, int argc, char **argv);
int vm_create_run(Cli *cli, int argc, char **argv);
int vm_destroy_run(Cli *cli, int argc, char **argv);
int vm_param_get_run(Cli *cli, int argc, char **argv);
int vm_param_set_run(Cli *cli, int argc, char **argv);
int task_list_run(Cli *cli, int argc, char **argv);
int event_watch_run(Cli *cli, int argc, char **argv);
int vm_start_run(Cli *cli, int argc, char **argv);
int vm_shutdown_run(Cli *cli, int argc, char **argv);
int vm_reboot_run(Cli *cli, int argc, char **argv);
int vm_pause_run(Cli *cli, int argc, char **argv);
int vm_unpause_run(Cli *cli, int argc, char **argv);
int vm_console_run(Cli *cli, int argc, char **argv);
int vm_migrate_run(Cli *cli, int argc, char **argv);
int sr_list_run(Cli *cli, int argc, char **argv);
int vdi_list_run(Cli *cli, int argc, char **argv);
int vdi_create_run(Cli *cli, int argc, char **argv);
int vdi_import_run(Cli *cli, int argc, char **argv);
int vbd_create_run(Cli *cli, int argc, char **argv);

/* The SR WHO names: a ref, uuid or name_label, or "default" (the pool's
 * default_SR) or "boot" (the boot SR, content_type kernel).  NULL with
 * *RC set when there is none. */
char *cli_sr_ref(Cli *cli, const char *who, int *rc);
