/*
 * The kernels' own threads: one op's batch split over the cores, with a hand-off of about a
 * microsecond.
 *
 * nn/threads.py first split ops on Python threads (concurrent.futures). On this project's
 * machines waking a Python thread and handing it the GIL costs 54-59 us a hand-off, and a
 * ResNet-20 training step at batch 32 splits about 200 kernel calls (python
 * benchmarks/handoff.py prints both). Here the hand-off is a store to a shared counter that a
 * spinning worker sees within a microsecond (0.2 us measured the same way); no Python object,
 * lock or GIL is involved.
 *
 * pool_run(task, ctx, nparts) calls task(ctx, p, nparts) once for each part p in [0, nparts):
 * part 0 on the calling thread, part p on worker p, and returns when every part is done. What
 * a part computes depends only on (p, nparts), never on which thread runs it or when, so the
 * results for a given number of parts are the same on every run (partial sums are added by
 * the caller, in part order).
 *
 * After a job the workers spin for CONVOLAB_SPIN_US microseconds (default 300; 0 sleeps at
 * once), yielding the core to any other runnable thread, then sleep on a condition variable;
 * the next job wakes them. OpenMP runtimes do the same (GOMP_SPINCOUNT, KMP_BLOCKTIME).
 *
 * One job at a time: a second caller arriving while a job runs (another Python thread) runs
 * all of its parts itself, in order, with the same results. After fork() the child starts
 * with no workers.
 */
#ifndef CONVOLAB_POOL_H
#define CONVOLAB_POOL_H

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define POOL_MAX_THREADS 64

typedef void (*pool_task)(void *ctx, int part, int nparts);

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;
    int workers;                /* started; touched only by the thread that holds `busy` */
    _Atomic unsigned long gen;  /* bumped once per job */
    _Atomic int left;           /* workers that have not finished the current job */
    _Atomic int sleepers;       /* workers waiting on `wake` */
    _Atomic int busy;           /* a job is being run */
    long spin_ns;
    pool_task task;             /* the current job, written before `gen` is bumped */
    void *ctx;
    int nparts;
} pool = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, 0, 0, -1, NULL, NULL, 0};

/* jobs run in more than one part, and their parts (the tests read these: pool_counts()) */
static _Atomic unsigned long long pool_split_jobs, pool_split_parts;

static inline void pool_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long pool_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Wait until `gen` moves past `seen`: spin for pool.spin_ns, then sleep. Returns the new gen. */
static unsigned long pool_wait(unsigned long seen)
{
    unsigned long g;
    long start = -1;
    for (unsigned spins = 1;; spins++) {
        if ((g = atomic_load_explicit(&pool.gen, memory_order_acquire)) != seen) return g;
        if (spins % 64) { pool_relax(); continue; }
        long now = pool_now_ns();
        if (start < 0) start = now;
        if (now - start >= pool.spin_ns) break;
        sched_yield();  /* let a runnable thread on this core go first */
    }
    pthread_mutex_lock(&pool.mu);
    atomic_fetch_add(&pool.sleepers, 1);
    while ((g = atomic_load(&pool.gen)) == seen) pthread_cond_wait(&pool.wake, &pool.mu);
    atomic_fetch_sub(&pool.sleepers, 1);
    pthread_mutex_unlock(&pool.mu);
    return g;
}

typedef struct { int me; unsigned long seen; } PoolStart;

static void *pool_worker(void *arg)
{
    PoolStart start = *(PoolStart *)arg;
    free(arg);
    unsigned long seen = start.seen;
    for (;;) {
        seen = pool_wait(seen);
        /* The job cannot change under us: the caller waits for every worker (left == 0)
           before it writes the next one. */
        if (start.me < pool.nparts) pool.task(pool.ctx, start.me, pool.nparts);
        atomic_fetch_sub_explicit(&pool.left, 1, memory_order_release);
    }
    return NULL;
}

static void pool_after_fork_child(void)
{
    pthread_mutex_init(&pool.mu, NULL);
    pthread_cond_init(&pool.wake, NULL);
    pool.workers = 0;
    atomic_store(&pool.left, 0);
    atomic_store(&pool.sleepers, 0);
    atomic_store(&pool.busy, 0);
}

/* Start workers until there are `want` (called with `busy` held). Returns how many run. */
static int pool_grow(int want)
{
    if (pool.spin_ns < 0) {
        const char *s = getenv("CONVOLAB_SPIN_US");
        long us = s && *s ? strtol(s, NULL, 10) : 300;
        pool.spin_ns = (us < 0 ? 0 : us) * 1000L;
        pthread_atfork(NULL, NULL, pool_after_fork_child);
    }
    while (pool.workers < want) {
        PoolStart *arg = malloc(sizeof *arg);
        if (!arg) break;
        arg->me = pool.workers + 1;
        arg->seen = atomic_load(&pool.gen);
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, pool_worker, arg);
        pthread_attr_destroy(&attr);
        if (rc != 0) { free(arg); break; }
        pool.workers++;
    }
    return pool.workers;
}

/* task(ctx, p, nparts) for every p in [0, nparts), part 0 here and the others on the workers. */
static void pool_run(pool_task task, void *ctx, int nparts)
{
    int expected = 0;
    if (nparts > POOL_MAX_THREADS) nparts = POOL_MAX_THREADS;
    if (nparts > 1) {
        atomic_fetch_add(&pool_split_jobs, 1);
        atomic_fetch_add(&pool_split_parts, (unsigned long long)nparts);
    }
    if (nparts <= 1 || !atomic_compare_exchange_strong(&pool.busy, &expected, 1)) {
        for (int p = 0; p < nparts; p++) task(ctx, p, nparts);
        return;
    }
    int workers = pool_grow(nparts - 1);
    pool.task = task;
    pool.ctx = ctx;
    pool.nparts = nparts;
    atomic_store(&pool.left, workers);
    atomic_fetch_add(&pool.gen, 1);  /* sequentially consistent: ordered before the load below */
    if (atomic_load(&pool.sleepers) > 0) {
        pthread_mutex_lock(&pool.mu);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.mu);
    }
    task(ctx, 0, nparts);
    for (int p = workers + 1; p < nparts; p++) task(ctx, p, nparts);  /* workers that could not start */
    for (unsigned spins = 1; atomic_load_explicit(&pool.left, memory_order_acquire) > 0; spins++) {
        if (spins % 64) pool_relax();
        else sched_yield();
    }
    atomic_store(&pool.busy, 0);
}

/* The images [lo, hi) of part p of a batch of n split into nparts contiguous runs. */
static inline void pool_span(long n, int p, int nparts, long *lo, long *hi)
{
    *lo = n * p / nparts;
    *hi = n * (p + 1) / nparts;
}

#endif
