/*
 * confine: what keeps a QEMU from holding root's authority over the host.
 *
 * QEMU is started as root (it opens the kernel, disks, console log, QMP
 * socket and pidfile then) and told to become an unprivileged system user
 * (-runas, [qemu] user, "tern-qemu" by default) and to load its seccomp
 * filter (-sandbox).  Whatever it opens later, after dropping root (the
 * migration's TLS credentials, read when QMP adds them), must be readable
 * by that user and nobody else: the run directories are given the user's
 * group and group-only modes (confine_share), never world access.
 */
#pragma once

#include <sys/types.h>

#include <glib.h>

/* What confinement is configured ([qemu] user and sandbox), and where the
 * VMs' run directories are; the caller's settings, not copied. */
typedef struct {
	const char *user;         /* "" = QEMU keeps ternd's user */
	const char *run_dir;
	gboolean sandbox;         /* -sandbox on,... */
} ConfineConf;

/* The user QEMU runs as, or NULL (and no error) when [qemu] user is "":
 * QEMU then keeps ternd's own user.  A configured user that does not
 * exist is an error naming it and how to create it. */
typedef struct {
	char *name;
	uid_t uid;
	gid_t gid;
} ConfineUser;
void confine_user_free(ConfineUser *u);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(ConfineUser, confine_user_free)
gboolean confine_user(const ConfineConf *cf, ConfineUser **out, GError **error);

/* Makes the VM directory DIR (and the run directory above it) reachable by
 * QEMU's user: DIR and <run_dir>/vms get its group and modes 0750 / 0710;
 * the run directory gets group traversal only if others cannot traverse
 * it already.  Without a QEMU user the directories stay 0700. */
gboolean confine_vm_dir(const ConfineConf *cf, const char *dir, GError **error);

/* Gives PATH, made by ternd for QEMU to read after it dropped root, the
 * QEMU user's group and MODE (which must grant nothing to others). */
gboolean confine_share(const ConfineConf *cf, const char *path, mode_t mode,
		       GError **error);

/* Appends -runas and -sandbox to ARGV as configured. */
void confine_argv(const ConfineConf *cf, const ConfineUser *u, GPtrArray *argv);
