/*
 * The checked boundary's one checking function and its parts. See checks.h.
 */
#include "checks.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

static PyObject *KernelArgumentError = NULL;

void set_kernel_error_class(PyObject *cls) { Py_XSETREF(KernelArgumentError, cls); }

int fail(const char *kernel, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    PyErr_Format(KernelArgumentError ? KernelArgumentError : PyExc_ValueError,
                 "compiled kernel %s: %s; nothing was called", kernel, msg);
    return -1;
}

/* Integer arguments arrive as long long and must fit a C int, >= 0. */
static int check_ints(const char *kernel, const char *names, const long long *v, int n)
{
    /* names: space-separated, one per value */
    char buf[256];
    snprintf(buf, sizeof buf, "%s", names);
    char *save = NULL, *name = strtok_r(buf, " ", &save);
    for (int i = 0; i < n; i++, name = strtok_r(NULL, " ", &save))
        if (v[i] < 0 || v[i] > INT32_MAX)
            return fail(kernel, "`%s` must be an int in [0, 2**31); got %lld", name ? name : "?", v[i]);
    return 0;
}

int check_windows(const char *kernel, const long long *g)
{
    if (check_ints(kernel, "N H W C kh kw sh sw pt pl Ho Wo", g, 12) < 0) return -1;
    const long long H = g[1], W = g[2], kh = g[4], kw = g[5], sh = g[6], sw = g[7], pt = g[8], pl = g[9],
                    Ho = g[10], Wo = g[11];
    if (kh < 1 || kw < 1 || sh < 1 || sw < 1)
        return fail(kernel, "window (%lld, %lld) and strides (%lld, %lld) must be >= 1", kh, kw, sh, sw);
    if ((Ho && (Ho - 1) * sh - pt >= H) || (Wo && (Wo - 1) * sw - pl >= W))
        return fail(kernel, "an output of %lldx%lld windows at strides (%lld, %lld) starts past a %lldx%lld image",
                    Ho, Wo, sh, sw, H, W);
    if (pt >= kh || pl >= kw)
        return fail(kernel, "padding (%lld, %lld) is as large as the window (%lld, %lld)", pt, pl, kh, kw);
    if (H + 2 * kh > INT32_MAX || W + 2 * kw > INT32_MAX || (Ho - 1) * sh + kh > INT32_MAX
        || (Wo - 1) * sw + kw > INT32_MAX)
        return fail(kernel, "image and window sizes overflow a C int");
    return 0;
}

int fits(const long long *g)
{
    return g[8] == 0 && g[9] == 0 && (g[10] - 1) * g[6] + g[4] <= g[1] && (g[11] - 1) * g[7] + g[5] <= g[2];
}

/* ---- entry_prepare: the description's strings, parsed once ---- */

#define SAME_AS(j) (-2 - (j))  /* a factor meaning "array j's element count" */

static int bad_entry(const Entry *e, const char *what, const char *name)
{
    PyErr_Format(PyExc_SystemError, "convolab kernels: entry %s: %s '%s'", e->name, what, name);
    return -1;
}

/* Splits s at any of `seps` into at most max words, copied into store (kept by the caller). */
static int words(const char *s, const char *seps, char store[][NAME_LEN], int max)
{
    int n = 0;
    while (*s) {
        const size_t len = strcspn(s, seps);
        if (len) {
            if (n == max || len >= NAME_LEN) return -1;
            memcpy(store[n], s, len);
            store[n++][len] = 0;
        }
        s += len;
        if (*s) s++;
    }
    return n;
}

int entry_prepare(Entry *e)
{
    char (*store)[NAME_LEN] = e->value_names;
    const int ni = words(e->ints ? e->ints : "", " ", store, MAX_VALUES);
    const int nd = ni < 0 ? -1 : words(e->derived ? e->derived : "", " ", store + ni, MAX_VALUES - ni);
    if (ni < 0 || nd < 0) return bad_entry(e, "too many or too long names in", e->ints);
    e->nints = ni;
    e->nvalues = ni + nd;
    e->narrays = 0;
    while (e->narrays < MAX_ARRAYS && e->arrays[e->narrays].role) e->narrays++;
    for (int a = 0; a < e->narrays; a++) {
        const char *size = e->arrays[a].size;
        signed char *f = e->factors[a];
        memset(f, -1, MAX_FACTORS);
        if (!strcmp(size, "any")) continue;
        if (size[0] == '=') {
            int j = 0;
            while (j < e->narrays && strcmp(e->arrays[j].role, size + 1)) j++;
            if (j == e->narrays || e->arrays[j].size[0] == '=') return bad_entry(e, "no array of any count named", size);
            f[0] = (signed char)SAME_AS(j);
            continue;
        }
        char fac[MAX_FACTORS][NAME_LEN];
        const int nf = words(size, "*", fac, MAX_FACTORS);
        if (nf < 1) return bad_entry(e, "a size of 1 to 5 factors, not", size);
        for (int k = 0; k < nf; k++) {
            int v = 0;
            while (v < e->nvalues && strcmp(e->value_names[v], fac[k])) v++;
            if (v == e->nvalues) return bad_entry(e, "no integer named", fac[k]);
            f[k] = (signed char)v;
        }
    }
    e->noptions = e->nrequired = 0;
    while (e->noptions < MAX_OPTIONS && e->options[e->noptions].name) {
        if (e->options[e->noptions].required) e->nrequired = e->noptions + 1;
        e->noptions++;
    }
    /* the signature, for messages and the docstring */
    char *s = e->signature;
    const size_t room = sizeof e->signature;
    size_t at = (size_t)snprintf(s, room, "%s(", e->name);
    for (int a = 0; a < e->narrays && at < room; a++)
        at += (size_t)snprintf(s + at, room - at, "%s%s", a ? ", " : "", e->arrays[a].role);
    for (int i = 0; i < e->nints && at < room; i++) at += (size_t)snprintf(s + at, room - at, ", %s", store[i]);
    for (int o = 0; o < e->noptions && at < room; o++) {
        const OptionSpec *op = &e->options[o];
        if (op->required) at += (size_t)snprintf(s + at, room - at, ", %s", op->name);
        else if (op->kind == OPT_BOOL) at += (size_t)snprintf(s + at, room - at, ", %s=%s", op->name, op->fallback ? "True" : "False");
        else at += (size_t)snprintf(s + at, room - at, ", %s=%g", op->name, op->fallback);
    }
    if (at < room) snprintf(s + at, room - at, ")");
    if (at >= room - 1) return bad_entry(e, "a signature too long for", e->name);
    return 0;
}

/* ---- entry_take: one call checked ---- */

/* r = the product of the factors (n of them), failing on overflow */
static int product(const char *kernel, Py_ssize_t *r, const long long *f, int n)
{
    long long t = 1;
    for (int i = 0; i < n; i++)
        if (__builtin_mul_overflow(t, f[i], &t)) t = LLONG_MAX;
    if (t > PY_SSIZE_T_MAX / 4) return fail(kernel, "the arguments describe an array larger than memory");
    *r = (Py_ssize_t)t;
    return 0;
}

/* Where array a's count comes from, for a message: "N*Ho*Wo*ld = 2*4*4*27" or "as many as y".
   Only when a check fails: formatting it on every call cost microseconds. */
static const char *count_source(const Entry *e, const Call *c, int a, char *buf, size_t room)
{
    size_t at = 0;
    buf[0] = 0;
    if (e->factors[a][0] < -1) {
        snprintf(buf, room, "as many as %s", e->arrays[-2 - e->factors[a][0]].role);
        return buf;
    }
    for (int pass = 0; pass < 2; pass++)
        for (int k = 0; k < MAX_FACTORS && e->factors[a][k] >= 0 && at < room; k++) {
            const int v = e->factors[a][k];
            at += pass ? (size_t)snprintf(buf + at, room - at, "%s%lld", k ? "*" : " = ", c->v[v])
                       : (size_t)snprintf(buf + at, room - at, "%s%s", k ? "*" : "", e->value_names[v]);
        }
    return buf;
}

/* Take obj's buffer as array a of e: C-contiguous, aligned, float32 (or int32), writable if
   written, n elements (n < 0: any count). */
static int arr_get(Call *c, const Entry *e, int a, PyObject *obj, Py_ssize_t n)
{
    const ArraySpec *s = &e->arrays[a];
    const char *kernel = e->name, *role = s->role, *want = s->dtype == I32 ? "int32" : "float32";
    Py_buffer *v = &c->view[a];
    if (PyObject_GetBuffer(obj, v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (s->out ? PyBUF_WRITABLE : 0)) < 0) {
        PyErr_Clear();
        if (!PyObject_CheckBuffer(obj))
            return fail(kernel, "%s must be a %s NumPy array%s; got %s", role, want, s->or_none ? " or None" : "",
                        Py_TYPE(obj)->tp_name);
        Py_buffer probe;  /* say which requirement failed */
        if (s->out && PyObject_GetBuffer(obj, &probe, PyBUF_C_CONTIGUOUS) == 0) {
            PyBuffer_Release(&probe);
            return fail(kernel, "%s is written to but is read-only", role);
        }
        PyErr_Clear();
        return fail(kernel, "%s must be C-contiguous (a %s array)", role, want);
    }
    c->held[a] = 1;
    const char *f = v->format ? v->format : "B";
    if (*f == '<' || *f == '=' || *f == '@') f++;
    int ok = v->itemsize == 4 && f[0] && !f[1] &&
             (s->dtype == I32 ? (f[0] == 'i' || (f[0] == 'l' && sizeof(long) == 4)) : f[0] == 'f');
    if (!ok) return fail(kernel, "%s must be %s; got format '%s'", role, want, v->format ? v->format : "B");
    if (((uintptr_t)v->buf & 3u) != 0) return fail(kernel, "%s must be aligned", role);
    if (n >= 0 && v->len != n * 4) {
        char why[160];
        return fail(kernel, "%s has %zd elements; the arguments need %zd (%s)", role, v->len / 4, n,
                    count_source(e, c, a, why, sizeof why));
    }
    c->buf[a] = v->buf;
    c->count[a] = v->len / 4;
    return 0;
}

/* No output overlaps any other array (None entries skipped). */
static int disjoint(const Entry *e, const Call *c)
{
    for (int i = 0; i < e->narrays; i++) {
        if (!e->arrays[i].out || !c->buf[i]) continue;
        const char *a0 = c->buf[i], *a1 = a0 + c->view[i].len;
        for (int j = 0; j < e->narrays; j++) {
            if (j == i || !c->buf[j]) continue;
            const char *b0 = c->buf[j], *b1 = b0 + c->view[j].len;
            if (a0 < b1 && b0 < a1) return fail(e->name, "%s overlaps %s in memory", e->arrays[i].role, e->arrays[j].role);
        }
    }
    return 0;
}

static int take_options(const Entry *e, PyObject *args, Py_ssize_t first, Call *c)
{
    const Py_ssize_t given = PyTuple_GET_SIZE(args) - first;
    c->threads = 1;
    for (int o = 0; o < e->noptions; o++) {
        const OptionSpec *op = &e->options[o];
        c->opt[o] = op->fallback;
        if (o >= given) {
            if (op->kind == OPT_THREADS) c->threads = (int)op->fallback;
            continue;
        }
        PyObject *item = PyTuple_GET_ITEM(args, first + o);
        if (op->kind == OPT_FLOAT) {
            const double d = PyFloat_AsDouble(item);
            if (d == -1.0 && PyErr_Occurred()) goto wrong_type;
            c->opt[o] = (float)d;
        } else if (op->kind == OPT_BOOL) {
            const int t = PyObject_IsTrue(item);
            if (t < 0) return -1;
            c->opt[o] = t;
        } else {
            int overflow = 0;
            const long long t = PyLong_AsLongLongAndOverflow(item, &overflow);
            if (t == -1 && PyErr_Occurred()) goto wrong_type;
            if (overflow) return fail(e->name, "%s must be in [1, %d]; got an int past 2**63", op->name, MAX_THREADS);
            if (t < 1 || t > MAX_THREADS) return fail(e->name, "%s must be in [1, %d]; got %lld", op->name, MAX_THREADS, t);
            c->threads = (int)t;
        }
        continue;
    wrong_type:
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "compiled kernel %s: %s must be %s; got %s", e->name, op->name,
                     op->kind == OPT_FLOAT ? "a float" : "an int", Py_TYPE(item)->tp_name);
        return -1;
    }
    return 0;
}

int entry_take(const Entry *e, PyObject *args, Call *c)
{
    const char *k = e->name;
    const Py_ssize_t n = PyTuple_GET_SIZE(args), lead = e->narrays + e->nints;
    for (int a = 0; a < e->narrays; a++) {
        c->held[a] = 0;
        c->buf[a] = NULL;
        c->count[a] = 0;
    }
    if (n < lead + e->nrequired || n > lead + e->noptions) {
        PyErr_Format(PyExc_TypeError, "compiled kernel %s takes %zd to %zd arguments, %s; got %zd", k,
                     lead + e->nrequired, lead + e->noptions, e->signature, n);
        return -1;
    }
    /* the integers, each in [0, 2^31) */
    for (int i = 0; i < e->nints; i++) {
        PyObject *item = PyTuple_GET_ITEM(args, e->narrays + i);
        int overflow = 0;
        c->v[i] = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (c->v[i] == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "compiled kernel %s: `%s` must be an int; got %s", k, e->value_names[i],
                         Py_TYPE(item)->tp_name);
            return -1;
        }
        if (overflow)
            return fail(k, "`%s` must be an int in [0, 2**31); got one %s", e->value_names[i],
                        overflow > 0 ? "past 2**63" : "below -2**63");
        if (c->v[i] < 0 || c->v[i] > INT32_MAX)
            return fail(k, "`%s` must be an int in [0, 2**31); got %lld", e->value_names[i], c->v[i]);
    }
    if (take_options(e, args, lead, c) < 0) return -1;
    if (e->geometry && e->geometry(k, c->v) < 0) return -1;
    /* every count the integers imply, before any array is looked at */
    Py_ssize_t want[MAX_ARRAYS];
    for (int a = 0; a < e->narrays; a++) {
        const signed char *f = e->factors[a];
        want[a] = -1;
        if (f[0] < -1) continue;  /* as another array */
        if (f[0] == -1) continue;  /* any */
        long long vals[MAX_FACTORS];
        int nf = 0;
        while (nf < MAX_FACTORS && f[nf] >= 0) { vals[nf] = c->v[f[nf]]; nf++; }
        if (product(k, &want[a], vals, nf) < 0) return -1;
    }
    /* the arrays: those of a count of their own first, then those sized as another */
    for (int pass = 0; pass < 2; pass++)
        for (int a = 0; a < e->narrays; a++) {
            const signed char f0 = e->factors[a][0];
            if ((f0 < -1) != pass) continue;
            PyObject *obj = PyTuple_GET_ITEM(args, a);
            if (obj == Py_None && e->arrays[a].or_none) continue;
            if (arr_get(c, e, a, obj, pass ? c->count[-2 - f0] : want[a]) < 0) goto failed;
        }
    if (disjoint(e, c) < 0) goto failed;
    return 0;
failed:
    entry_release(e, c);
    return -1;
}

void entry_release(const Entry *e, Call *c)
{
    for (int a = 0; a < e->narrays; a++)
        if (c->held[a]) {
            PyBuffer_Release(&c->view[a]);
            c->held[a] = 0;
        }
}
