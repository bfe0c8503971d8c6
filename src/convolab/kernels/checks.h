/*
 * The checked boundary: the only way Python reaches the kernels.
 *
 * A kernel trusts its pointers and integers; handed a buffer smaller than its integers say,
 * it reads or writes memory it does not own. Each entry point takes the arrays themselves
 * (any object with the buffer protocol: NumPy arrays), and before a kernel runs checks every
 * one against what the kernel will touch: C-contiguous, aligned, float32 (or int32), writable
 * where written, exactly the element count the integer arguments imply (computed without
 * overflow), no output overlapping another array (the kernels declare their pointers
 * restrict), every integer in [0, 2^31) and windows that start inside the image. A mismatch
 * raises KernelArgumentError (a ValueError) and nothing is called. The checks run in C, in
 * well under a microsecond: in Python they held the GIL long enough to slow two shard threads
 * by 15%. The GIL is released while a kernel runs.
 *
 * Every entry point is described once, as an Entry (its arrays, integers and options, in
 * argument order), and checked by one function, entry_take(). An array's element count is
 * written as the product of integer arguments by name ("N*Ho*Wo*ld"), or "=y" for as many
 * elements as array y, or "any" (the array that sets the count for the others). What a
 * product cannot say (windows inside the image, a row length, a filter limit) is the entry's
 * `geometry` check, which may add derived values for the sizes (the fused convolutions' Fp).
 * Element counts, not shapes: the ops hand the kernels reshaped views (im2col's matrix as 2-D
 * rows or as 6-D windows), so a count that matches is the contract, and the only one C needs.
 */
#ifndef CONVOLAB_CHECKS_H
#define CONVOLAB_CHECKS_H

#include <Python.h>

#include "kernels.h"

#define MAX_ARRAYS 8
#define MAX_VALUES 20  /* an entry's integer arguments and its derived values */
#define MAX_FACTORS 5
#define MAX_OPTIONS 4
#define NAME_LEN 16
#define MAX_THREADS 64  /* pool.h's POOL_MAX_THREADS (_ckernels.c checks that they agree) */

enum { F32, I32 };          /* an array's element type */
enum { IN, OUT };           /* read by the kernel, or written */
enum { NEEDED, OR_NONE };   /* None may stand for the array (an optional bias) */
enum { OPT_FLOAT, OPT_BOOL, OPT_THREADS };

typedef struct {
    const char *role;  /* its name in messages: "x", "cols" */
    int dtype, out, or_none;
    const char *size;  /* "N*H*W*C", "=y" or "any" (see above) */
} ArraySpec;

typedef struct {
    const char *name;
    int kind;          /* OPT_FLOAT (a C float), OPT_BOOL, OPT_THREADS (an int in [1, MAX_THREADS]) */
    int required;
    double fallback;   /* the value when left out */
} OptionSpec;

typedef struct Entry {
    const char *name;                  /* the Python name, and the kernel's in every message */
    ArraySpec arrays[MAX_ARRAYS];      /* the first arguments, in order */
    const char *ints;                  /* then the integer arguments: "N H W C kh kw ..." */
    OptionSpec options[MAX_OPTIONS];   /* then the options, in order */
    /* More checks on v (the integers, each already in [0, 2^31)); may set derived values
       v[nints...], named by `derived`, for the sizes. NULL: none. Returns -1 after fail(). */
    int (*geometry)(const char *kernel, long long *v);
    const char *derived;

    /* filled by entry_prepare() from the strings above */
    int narrays, nints, nvalues, noptions, nrequired;
    char value_names[MAX_VALUES][NAME_LEN];
    signed char factors[MAX_ARRAYS][MAX_FACTORS];  /* indices into v, -1 ends; SAME_AS(j): array j's count */
    char signature[512];               /* "im2col_f32(x, cols, N, ..., threads=1)": the docstring too */
} Entry;

/* One checked call: what entry_take() read and holds. */
typedef struct {
    long long v[MAX_VALUES];           /* the integers, then the derived values */
    Py_buffer view[MAX_ARRAYS];
    int held[MAX_ARRAYS];
    void *buf[MAX_ARRAYS];             /* each array's data; NULL for a None that OR_NONE allows */
    Py_ssize_t count[MAX_ARRAYS];      /* its elements */
    double opt[MAX_OPTIONS];           /* float and bool options */
    int threads;                       /* 1 unless an OPT_THREADS option says otherwise */
} Call;

/* Parses the description's strings once (at import); -1 with SystemError for a name that
   names nothing: a mistake in this extension, not in a call. */
INTERNAL int entry_prepare(Entry *e);

/* Reads args as e describes and checks every integer, option and array; on success the
   buffers are held until entry_release(). On failure nothing is held, an exception is set
   (TypeError for a wrong count or type of argument, KernelArgumentError for the rest) and
   it returns -1. */
INTERNAL int entry_take(const Entry *e, PyObject *args, Call *c);
INTERNAL void entry_release(const Entry *e, Call *c);

/* "compiled kernel <kernel>: <message>; nothing was called" as KernelArgumentError; returns -1 */
INTERNAL int fail(const char *kernel, const char *fmt, ...);
INTERNAL void set_kernel_error_class(PyObject *cls);  /* a ValueError subclass; the reference is taken */

/* Window geometry shared by im2col, col2im, pooling and the convolutions.
   g: N H W C kh kw sh sw pt pl Ho Wo */
INTERNAL int check_windows(const char *kernel, const long long *g);
INTERNAL int fits(const long long *g);  /* every window inside the unpadded image */

#endif
