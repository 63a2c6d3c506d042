/*
 * img: qemu-img as a child process, off the main loop.
 *
 * Creating, growing or chaining an image takes qemu-img a few
 * milliseconds on a local disk and arbitrarily long on a slow or hung
 * shared one, so the API never waits for it on the main loop: the child
 * runs under GSubprocess, its output is collected asynchronously, and a
 * deadline kills it (the caller sees the error, never a hang).
 */
#include "storage/storage.h"

#include <string.h>

typedef struct {
	GSubprocess *proc;
	StorageImgFn done;
	gpointer data;
	guint timer;
	gboolean timed_out;
	char *what;
} ImgRun;

static gboolean
storage_img_timeout(gpointer p)
{
	ImgRun *r = p;

	r->timer = 0;
	r->timed_out = TRUE;
	g_subprocess_force_exit(r->proc);
	return G_SOURCE_REMOVE;
}

static GError *
storage_img_status(GSubprocess *proc, const char *what, const char *err,
		   gboolean timed_out)
{
	if (timed_out)
		return g_error_new(G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
				   "%s: no answer within its deadline", what);
	if (g_subprocess_get_if_exited(proc) &&
	    g_subprocess_get_exit_status(proc) == 0)
		return NULL;
	g_autofree char *msg = g_strstrip(g_strdup(err ? err : ""));
	return g_error_new(G_IO_ERROR, G_IO_ERROR_FAILED, "%s failed: %s",
			   what, *msg ? msg : "no message");
}

static void
storage_img_finished(GObject *src, GAsyncResult *res, gpointer p)
{
	ImgRun *r = p;
	g_autofree char *out = NULL, *err = NULL;
	GError *e = NULL;

	if (r->timer)
		g_source_remove(r->timer);
	if (g_subprocess_communicate_utf8_finish(r->proc, res, &out, &err,
						 &e))
		e = storage_img_status(r->proc, r->what, err, r->timed_out);
	r->done(e ? NULL : (out ? out : ""), e, r->data);
	g_clear_error(&e);
	g_object_unref(r->proc);
	g_free(r->what);
	g_free(r);
}

static char *
storage_img_what(const char *const *argv)
{
	return g_strjoin(" ", argv[0], argv[1] ? argv[1] : "", NULL);
}

void
storage_img_run(const char *const *argv, guint timeout_s, StorageImgFn done,
		gpointer data)
{
	GError *e = NULL;
	GSubprocess *proc = g_subprocess_newv(argv,
		G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
		&e);

	if (proc == NULL) {
		done(NULL, e, data);
		g_error_free(e);
		return;
	}
	ImgRun *r = g_new0(ImgRun, 1);
	r->proc = proc;
	r->done = done;
	r->data = data;
	r->what = storage_img_what(argv);
	r->timer = g_timeout_add_seconds(timeout_s ? timeout_s
					 : STORAGE_IMG_TIMEOUT_S,
					 storage_img_timeout, r);
	g_subprocess_communicate_utf8_async(proc, NULL, NULL,
					    storage_img_finished, r);
}

char *
storage_img_run_sync(const char *const *argv, GError **error)
{
	g_autoptr(GSubprocess) proc = g_subprocess_newv(argv,
		G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
		error);
	g_autofree char *out = NULL, *err = NULL, *what = NULL;

	if (proc == NULL ||
	    !g_subprocess_communicate_utf8(proc, NULL, NULL, &out, &err,
					   error))
		return NULL;
	what = storage_img_what(argv);
	GError *e = storage_img_status(proc, what, err, FALSE);
	if (e != NULL) {
		g_propagate_error(error, e);
		return NULL;
	}
	return g_steal_pointer(&out);
}
