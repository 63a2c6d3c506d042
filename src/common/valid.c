/*
 * valid: checks for uuids, refs and file paths that come from outside
 * (see valid.h).  Small on purpose: each check is one rule a reader can
 * hold in mind, and docs/api.md says where each is applied.
 */
#include "common/valid.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

gboolean
valid_uuid(const char *s)
{
	if (s == NULL || strlen(s) != 36)
		return FALSE;
	for (int i = 0; i < 36; i++) {
		gboolean dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? s[i] != '-' : !g_ascii_isxdigit(s[i]))
			return FALSE;
	}
	return TRUE;
}

gboolean
valid_ref(const char *s)
{
	return s != NULL && g_str_has_prefix(s, "OpaqueRef:") &&
	       valid_uuid(s + strlen("OpaqueRef:"));
}

const char *
valid_path_problem(const char *path)
{
	if (path == NULL || *path == 0)
		return "is empty";
	if (strlen(path) > VALID_PATH_MAX)
		return "is too long";
	if (path[0] != '/')
		return "is not an absolute path";
	for (const char *p = path; *p; p++)
		if ((guchar)*p < 0x20 || *p == 0x7f || *p == ',')
			return "has a control character or a comma";
	g_auto(GStrv) parts = g_strsplit(path + 1, "/", -1);
	for (guint i = 0; parts[i]; i++)
		if (*parts[i] == 0 || strcmp(parts[i], ".") == 0 ||
		    strcmp(parts[i], "..") == 0)
			return "has an empty, \".\" or \"..\" component";
	return NULL;
}

static const char *
valid_type_problem(mode_t mode)
{
	if (S_ISREG(mode))
		return NULL;
	if (S_ISLNK(mode))
		return "is a symbolic link, not a regular file";
	if (S_ISFIFO(mode))
		return "is a FIFO, not a regular file";
	if (S_ISDIR(mode))
		return "is a directory, not a regular file";
	if (S_ISBLK(mode) || S_ISCHR(mode))
		return "is a device, not a regular file";
	return "is not a regular file";
}

int
valid_open_regular(const char *path, const char **why)
{
	struct stat st;
	const char *bad = valid_path_problem(path);

	if (bad != NULL) {
		*why = bad;
		return -1;
	}
	/* lstat first: a FIFO or a device is never opened at all. */
	if (lstat(path, &st) != 0) {
		*why = errno == ENOENT ? "does not exist" : "cannot be read";
		return -1;
	}
	if ((*why = valid_type_problem(st.st_mode)) != NULL)
		return -1;
	/* It may have been swapped since: open without blocking or following
	 * and look again at what was opened. */
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		*why = errno == ELOOP ? "is a symbolic link, not a regular file"
				      : "cannot be read";
		return -1;
	}
	if (fstat(fd, &st) != 0 ||
	    (*why = valid_type_problem(st.st_mode)) != NULL) {
		if (*why == NULL)
			*why = "cannot be read";
		close(fd);
		return -1;
	}
	return fd;
}

gboolean
valid_regular_file(const char *path, const char **why)
{
	int fd = valid_open_regular(path, why);

	if (fd < 0)
		return FALSE;
	close(fd);
	return TRUE;
}
