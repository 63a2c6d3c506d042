/*
 * valid: checks for the strings that arrive from a peer or a client and
 * are about to name something on this host: uuids (which become run
 * directories), refs, and the paths of the files a VM boots from.
 *
 * Everything that forms a path from outside data passes through here
 * first, at the boundary where the data arrives (docs/api.md, "What is
 * validated", lists each place).  A file is opened only after lstat says it
 * is a regular file, and then with O_NONBLOCK and O_NOFOLLOW, so that a
 * FIFO, a device or a symbolic link named by a peer can neither block the
 * daemon's main loop nor lead it elsewhere.
 */
#pragma once

#include <glib.h>

/* A uuid in the strict 8-4-4-4-12 form of hex digits (either case). */
gboolean valid_uuid(const char *s);

/* A ref of the form "OpaqueRef:" followed by a valid uuid. */
gboolean valid_ref(const char *s);

/* Why PATH cannot name a file a VM uses, or NULL when it can: it must be
 * absolute, at most VALID_PATH_MAX bytes, without control characters or
 * commas (QEMU's option separator), and without "." or ".." components
 * or empty ones ("//").  A static string. */
#define VALID_PATH_MAX 1024
const char *valid_path_problem(const char *path);

/* Opens PATH read-only after checking that it is a well-formed path
 * (valid_path_problem) naming a regular file that is not a symbolic link;
 * never blocks on a FIFO or a device.  Returns the descriptor, or -1 with
 * *WHY set to a static phrase ("does not exist", "is a FIFO, not a regular
 * file", ...) that completes "PATH ...". */
int valid_open_regular(const char *path, const char **why);

/* Whether PATH names a regular file (valid_open_regular, closed again);
 * sets *WHY like it. */
gboolean valid_regular_file(const char *path, const char **why);
