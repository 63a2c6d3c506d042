/*
 * confine: QEMU's unprivileged user, its seccomp sandbox, and the file
 * modes that let it read what it needs after dropping root (confine.h).
 *
 * The sandbox is "-sandbox on,obsolete=deny,resourcecontrol=deny".
 * libvirt also denies elevateprivileges and spawn, but libvirt drops
 * privileges and forks before it execs QEMU; QEMU 7.2 loads its filter
 * before -runas's setuid and before -daemonize's fork (design note 1 of
 * driver.c), and either set kills it there with SIGSYS.  What the two
 * sets would guard is covered otherwise: the filter sets no_new_privs, so
 * nothing QEMU could exec gains privileges, and -runas has already given
 * root up for good (setuid, setgid, initgroups) before the guest runs.
 */
#include "qemu/confine.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/xerr.h"

#define CONFINE_SANDBOX "on,obsolete=deny,resourcecontrol=deny"

void
confine_user_free(ConfineUser *u)
{
	if (u == NULL)
		return;
	g_free(u->name);
	g_free(u);
}

gboolean
confine_user(const ConfineConf *cf, ConfineUser **out, GError **error)
{
	const char *name = cf->user;
	struct passwd *pw;

	*out = NULL;
	if (name == NULL || *name == 0)
		return TRUE;
	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL) {
		g_autofree char *msg = g_strdup_printf(
			"QEMU's user %s does not exist: create it (tools/"
			"setup-deps.sh: useradd --system --no-create-home "
			"--shell /usr/sbin/nologin %s) or set [qemu] user = "
			"\"\" to run QEMU as ternd's user", name, name);
		xerr_set(error, "INTERNAL_ERROR", msg, NULL);
		return FALSE;
	}
	if (pw->pw_uid == 0) {
		g_autofree char *msg = g_strdup_printf(
			"QEMU's user %s is root: name an unprivileged user, or "
			"\"\"", name);
		xerr_set(error, "INTERNAL_ERROR", msg, NULL);
		return FALSE;
	}
	ConfineUser *u = g_new0(ConfineUser, 1);
	u->name = g_strdup(name);
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	*out = u;
	return TRUE;
}

static gboolean
confine_set(const char *path, gid_t gid, mode_t mode, GError **error)
{
	if ((gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) != 0) ||
	    chmod(path, mode) != 0) {
		g_autofree char *msg = g_strdup_printf(
			"cannot give %s to QEMU's group: %s", path,
			g_strerror(errno));
		xerr_set(error, "INTERNAL_ERROR", msg, NULL);
		return FALSE;
	}
	return TRUE;
}

gboolean
confine_vm_dir(const ConfineConf *cf, const char *dir, GError **error)
{
	g_autoptr(ConfineUser) u = NULL;
	g_autofree char *vms = g_build_filename(cf->run_dir, "vms", NULL);
	struct stat st;

	if (g_mkdir_with_parents(dir, 0700) != 0) {
		g_autofree char *msg = g_strdup_printf("mkdir %s: %s", dir,
						       g_strerror(errno));
		xerr_set(error, "INTERNAL_ERROR", msg, NULL);
		return FALSE;
	}
	if (!confine_user(cf, &u, error))
		return FALSE;
	if (u == NULL)
		return TRUE;
	/* The run directory is ternd's (its socket is 0600 inside); QEMU's
	 * group may pass through it, nothing more. */
	if (stat(cf->run_dir, &st) == 0 && !(st.st_mode & S_IXOTH) &&
	    !(st.st_gid == u->gid && (st.st_mode & S_IXGRP)) &&
	    !confine_set(cf->run_dir, u->gid,
			 (st.st_mode & 07777) | S_IXGRP, error))
		return FALSE;
	return confine_set(vms, u->gid, 0710, error) &&
	       confine_set(dir, u->gid, 0750, error);
}

gboolean
confine_share(const ConfineConf *cf, const char *path, mode_t mode, GError **error)
{
	g_autoptr(ConfineUser) u = NULL;

	g_return_val_if_fail((mode & 0007) == 0, FALSE);
	if (!confine_user(cf, &u, error))
		return FALSE;
	return confine_set(path, u ? u->gid : (gid_t)-1,
			   u ? mode : (mode & 0700), error);
}

void
confine_argv(const ConfineConf *cf, const ConfineUser *u, GPtrArray *argv)
{
	if (u != NULL) {
		g_ptr_array_add(argv, g_strdup("-runas"));
		g_ptr_array_add(argv, g_strdup(u->name));
	}
	if (cf->sandbox) {
		g_ptr_array_add(argv, g_strdup("-sandbox"));
		g_ptr_array_add(argv, g_strdup(CONFINE_SANDBOX));
	}
}
