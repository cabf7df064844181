/*
 * natives.c - the native functions and classes: clock() from the book,
 * plus natives that expose the collector to Lox programs.
 *
 *   clock()          seconds of processor time used, as a number
 *   gc()             run a full collection now, then the finalizers it queued
 *   gcStats()        print a one-line summary of spangc's statistics on
 *                    stderr (not stdout, so a program's own output stays
 *                    deterministic)
 *   WeakRef(obj)     a weak reference: .get() returns obj while something
 *                    else keeps it alive, nil once it has been collected
 *   openTemp()       a new, already unlinked temporary file, owned by the
 *                    returned object: .write(string), .read(), .close().
 *                    The file descriptor is closed when the program calls
 *                    close(), or by a finalizer once the object is garbage.
 *
 * Host resources. A TempFile owns a descriptor, a resource the collector
 * knows nothing about: spangc frees memory when memory runs short, not
 * descriptors when they run short. So openTemp allows at most
 * TEMP_FILES_MAX open files; when that many are open it collects, runs the
 * finalizers, and only then gives up. That is what keeps a program that
 * forgets to close files going, and what the weak_finalizers program tests.
 *
 * Finalizers run on the VM's thread, from gc_run_finalizers, which the VM
 * calls at its safepoints (vm.c) and gc() calls after collecting. They
 * only close descriptors: a finalizer must never run Lox code, since it
 * can run in the middle of any instruction that calls or loops.
 *
 * None of these names is used by the conformance suite, and a script that
 * defines a global with the same name simply replaces the native.
 */
#include "natives.h"

#include "intern.h"
#include "vm.h"

#include <errno.h>
#include <pthread.h>
#include <spangc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- clock, gc, gcStats ----------------------------------------------------- */

static bool native_clock(int argc, Value *args)
{
    (void)argc;
    args[-1] = NUMBER_VAL((double)clock() / CLOCKS_PER_SEC);
    return true;
}

/* A collection that finds everything the program has dropped: nothing
 * stale in the VM's stack or frames is left to keep an object alive
 * (gc_collect itself clears the dead part of the C stack below it). Then
 * the finalizers it queued run. */
static void collect_now(void)
{
    vm_clear_dead_slots();
    gc_collect();
    gc_run_finalizers();
}

static bool native_gc(int argc, Value *args)
{
    (void)argc;
    collect_now();
    args[-1] = NIL_VAL;
    return true;
}

void natives_print_gc_summary(FILE *out)
{
    gc_stats st;
    gc_get_stats(&st);
    fprintf(out,
            "gc: %llu collections, heap %.1f KiB in %llu objects (%.1f KiB from the OS), "
            "%llu allocated in total, pauses %.3f ms (max %.3f ms)\n",
            (unsigned long long)st.num_gc, st.heap_alloc / 1024.0,
            (unsigned long long)st.heap_objects, st.heap_sys / 1024.0,
            (unsigned long long)st.mallocs, st.pause_total_ns / 1e6, st.max_pause_ns / 1e6);
}

static bool native_gc_stats(int argc, Value *args)
{
    (void)argc;
    natives_print_gc_summary(stderr);
    args[-1] = NIL_VAL;
    return true;
}

/* ---- WeakRef ---------------------------------------------------------------------
 * The handle from gc_weak_new is itself a heap object, kept alive by the
 * WeakRef's pointer word; the target is not kept alive by the handle. */

typedef struct WeakRef {
    ObjForeign base;
    gc_weak *handle;
} WeakRef;

static const gc_type *weakref_type;
static ObjClass *weakref_class; /* static: a root, like every global */

static bool weakref_new(int argc, Value *args)
{
    (void)argc;
    if (!IS_OBJ(args[0]))
        return vm_native_error("WeakRef target must be an object.");
    gc_weak *handle = gc_weak_new(AS_OBJ(args[0]));
    if (!handle)
        lox_out_of_memory();
    WeakRef *ref = (WeakRef *)new_foreign(weakref_class, sizeof(WeakRef), weakref_type);
    ref->handle = handle;
    args[-1] = OBJ_VAL(ref);
    return true;
}

static bool weakref_get(int argc, Value *args)
{
    (void)argc;
    WeakRef *ref = (WeakRef *)AS_FOREIGN(args[-1]);
    void *target = gc_weak_get(ref->handle);
    args[-1] = target ? OBJ_VAL(target) : NIL_VAL;
    return true;
}

/* ---- TempFile ---------------------------------------------------------------- */

#define TEMP_FILES_MAX 64

typedef struct TempFile {
    ObjForeign base;
    int fd; /* -1 once closed */
} TempFile;

static const gc_type *tempfile_type;
static ObjClass *tempfile_class;
static int temp_files_open; /* descriptors held by TempFile objects */

static void tempfile_release(TempFile *file)
{
    if (file->fd >= 0) {
        close(file->fd);
        file->fd = -1;
        temp_files_open--;
    }
}

/* The VM's thread: the finalizers must run there (main.c turns spangc's
 * finalizer thread off), since temp_files_open is the VM's alone. */
static pthread_t vm_thread;

/* The finalizer: the object is unreachable, so nobody can use the file. */
static void tempfile_finalize(void *obj, void *arg)
{
    (void)arg;
    if (!pthread_equal(pthread_self(), vm_thread)) {
        fputs("lox: a finalizer ran on a thread other than the VM's\n", stderr);
        abort();
    }
    tempfile_release(obj);
}

static int make_temp_fd(void)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/lox-temp-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path); /* the descriptor is now the only way to the file */
    return fd;
}

static bool tempfile_open(int argc, Value *args)
{
    (void)argc;
    if (temp_files_open >= TEMP_FILES_MAX)
        collect_now(); /* finalizers of dropped files free descriptors */
    if (temp_files_open >= TEMP_FILES_MAX)
        return vm_native_error("Too many open temp files (%d).", TEMP_FILES_MAX);
    TempFile *file = (TempFile *)new_foreign(tempfile_class, sizeof(TempFile), tempfile_type);
    file->fd = make_temp_fd();
    if (file->fd < 0)
        return vm_native_error("Cannot create a temp file: %s.", strerror(errno));
    temp_files_open++;
    if (gc_set_finalizer(file, tempfile_finalize, NULL) != 0) {
        tempfile_release(file);
        lox_out_of_memory();
    }
    args[-1] = OBJ_VAL(file);
    return true;
}

static TempFile *open_receiver(Value *args)
{
    TempFile *file = (TempFile *)AS_FOREIGN(args[-1]);
    if (file->fd < 0) {
        vm_native_error("Temp file is closed.");
        return NULL;
    }
    return file;
}

static bool tempfile_write(int argc, Value *args)
{
    (void)argc;
    TempFile *file = open_receiver(args);
    if (!file)
        return false;
    if (!IS_STRING(args[0]))
        return vm_native_error("Can only write strings.");
    ObjString *s = AS_STRING(args[0]);
    if (lseek(file->fd, 0, SEEK_END) < 0 || write(file->fd, s->chars, (size_t)s->length) != s->length)
        return vm_native_error("Cannot write temp file: %s.", strerror(errno));
    args[-1] = NIL_VAL;
    return true;
}

/* The whole content, as a string. */
static bool tempfile_read(int argc, Value *args)
{
    (void)argc;
    TempFile *file = open_receiver(args);
    if (!file)
        return false;
    off_t size = lseek(file->fd, 0, SEEK_END);
    if (size < 0 || lseek(file->fd, 0, SEEK_SET) < 0)
        return vm_native_error("Cannot read temp file: %s.", strerror(errno));
    if (size > INT32_MAX - 1)
        return vm_native_error("Cannot read temp file: it is too long for a string.");
    char *buffer = lox_grow_atomic(NULL, (size_t)size + 1);
    ssize_t n = read(file->fd, buffer, (size_t)size);
    if (n < 0)
        return vm_native_error("Cannot read temp file: %s.", strerror(errno));
    if (n != size)
        return vm_native_error("Cannot read temp file: it changed while being read.");
    args[-1] = OBJ_VAL(string_copy(buffer, (int)n));
    return true;
}

/* Closing by hand releases the descriptor now and cancels the finalizer,
 * which has nothing left to do. */
static bool tempfile_close(int argc, Value *args)
{
    (void)argc;
    TempFile *file = (TempFile *)AS_FOREIGN(args[-1]);
    if (file->fd >= 0) {
        tempfile_release(file);
        gc_set_finalizer(file, NULL, NULL);
    }
    args[-1] = NIL_VAL;
    return true;
}

/* How many descriptors TempFile objects hold: what a test looks at to see
 * that close() and the finalizers gave them back. */
static bool tempfile_count(int argc, Value *args)
{
    (void)argc;
    args[-1] = NUMBER_VAL(temp_files_open);
    return true;
}

/* ---- installation -------------------------------------------------------------- */

void natives_install(void)
{
    vm_thread = pthread_self();
    /* Layouts are never freed (gc_type_new): made once, not at every
     * vm_reset, which made two more per program the fuzzer ran until, after
     * 700,000, gc_type_new had none left. */
    if (!weakref_type) {
        weakref_type = GC_TYPE(WeakRef, offsetof(WeakRef, base.klass), offsetof(WeakRef, handle));
        tempfile_type = GC_TYPE(TempFile, offsetof(TempFile, base.klass));
        if (!weakref_type || !tempfile_type)
            lox_out_of_memory();
    }

    vm_define_native("clock", native_clock, 0);
    vm_define_native("gc", native_gc, 0);
    vm_define_native("gcStats", native_gc_stats, 0);

    weakref_class = vm_native_class("WeakRef", weakref_new, 1);
    vm_define_method(weakref_class, "get", weakref_get, 0);
    vm_define_global("WeakRef", OBJ_VAL(weakref_class));

    /* TempFile objects come from openTemp only; the class has no global
     * name, so its constructor is only reachable through openTemp. */
    tempfile_class = vm_native_class("TempFile", tempfile_open, 0);
    vm_define_native("openTemp", tempfile_open, 0);
    vm_define_native("openTempCount", tempfile_count, 0);
    vm_define_method(tempfile_class, "write", tempfile_write, 1);
    vm_define_method(tempfile_class, "read", tempfile_read, 0);
    vm_define_method(tempfile_class, "close", tempfile_close, 0);
}
