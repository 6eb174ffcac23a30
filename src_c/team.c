/* team.c — the persistent team of one plan call (team.h). */
#include "team.h"

#if FNN_HAVE_TEAM
#if defined(_WIN32)
#include <windows.h>
#else
#include <sched.h>
#endif

static int64_t g_regions = 0, g_jobs = 0;
static int g_delay_tid = 0;
static int64_t g_delay_us = 0;

#define LOAD(p) __atomic_load_n((p), __ATOMIC_SEQ_CST)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_SEQ_CST)
#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_SEQ_CST)

/* Pause hint while spinning; after ~2000 rounds (tens of µs) give the core to
 * whatever else wants it, so a helper never starves the thread it waits for. */
static void team_wait(int *rounds)
{
    if (++*rounds < 2000) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        return;
    }
#if defined(_WIN32)
    SwitchToThread();
#else
    sched_yield();
#endif
}

static void team_delay(int tid)
{
    const int64_t us = __atomic_load_n(&g_delay_us, __ATOMIC_RELAXED);
    if (us <= 0 || tid != __atomic_load_n(&g_delay_tid, __ATOMIC_RELAXED))
        return;
    fnn_sleep_us(us);
}

/* A helper: join each job it sees open, until the region stops.
 *
 * Joining is a Dekker handshake with fnn_team_run (all sequentially
 * consistent): the helper counts itself in `active`, then checks that the job
 * it saw is still open. If it is, thread 0's closing store comes later in the
 * single order of these operations, so thread 0's wait on `active` sees the
 * helper and fn/arg stay put until it leaves. If not, it counts itself out
 * without touching the job. */
static void team_serve(fnn_team *t, int tid)
{
    int64_t seen = 0;
    int rounds = 0;
    for (;;) {
        const int64_t g = LOAD(&t->gen);
        if (LOAD(&t->stop))
            return;
        if (g == seen || (g & 1)) {
            team_wait(&rounds);
            continue;
        }
        rounds = 0;
        seen = g;
        team_delay(tid);
        ADD(&t->active, 1);
        if (LOAD(&t->gen) == g) {
            const fnn_team_fn fn = t->fn;
            void *const arg = t->arg;
            fn(arg, tid);
        }
        ADD(&t->active, -1);
    }
}

void fnn_team_run(fnn_team *t, fnn_team_fn fn, void *arg)
{
    if (!t) {
        fn(arg, 0);
        return;
    }
    t->fn = fn;
    t->arg = arg;
    const int64_t g = __atomic_load_n(&t->gen, __ATOMIC_RELAXED) + 1;  /* (only thread 0 writes it) closed (odd) → the next even number: open */
    STORE(&t->gen, g);
    t->jobs++;
    fn(arg, 0);
    STORE(&t->gen, g + 1);  /* closed: no helper joins from here on */
    int rounds = 0;
    while (LOAD(&t->active) != 0)
        team_wait(&rounds);
}

typedef struct {
    /* claimed by every thread: a line of its own on thread 0's stack (the alignment
     * rounds the struct up to the whole line) */
    _Alignas(64) int64_t next;
    int64_t n;
    fnn_team_chunk_fn chunk;
    void *ctx;
} team_for_job;

_Static_assert(sizeof(team_for_job) % 64 == 0 && sizeof(fnn_team) % 64 == 0, "whole cache lines");

static void team_for_run(void *arg, int tid)
{
    team_for_job *j = (team_for_job *)arg;
    for (;;) {
        const int64_t c = __atomic_fetch_add(&j->next, 1, __ATOMIC_RELAXED);
        if (c >= j->n)
            return;
        j->chunk(j->ctx, c, tid);
    }
}

void fnn_team_for(fnn_team *t, int64_t nchunks, fnn_team_chunk_fn chunk, void *ctx)
{
    if (!t || nchunks < 2) {
        for (int64_t c = 0; c < nchunks; c++)
            chunk(ctx, c, 0);
        return;
    }
    team_for_job j = {0, nchunks, chunk, ctx};
    fnn_team_run(t, team_for_run, &j);
}

int fnn_team_region(int nth, int (*body)(void *ctx, fnn_team *team), void *ctx)
{
    if (nth < 2)
        return body(ctx, NULL);
    fnn_team t;
    t.nth = nth;
    t.gen = 1;  /* closed: nothing posted yet */
    t.fn = NULL;
    t.arg = NULL;
    t.active = 0;
    t.stop = 0;
    t.jobs = 0;
    int ret = 0;
#pragma omp parallel num_threads(nth)
    {
        const int tid = omp_get_thread_num();
        if (tid == 0) {
            const int got = omp_get_num_threads();
            t.nth = got;
            if (got > 1)
                __atomic_add_fetch(&g_regions, 1, __ATOMIC_RELAXED);
            ret = body(ctx, got > 1 ? &t : NULL);
            STORE(&t.stop, 1);
        } else {
            team_serve(&t, tid);
        }
    }
    __atomic_add_fetch(&g_jobs, t.jobs, __ATOMIC_RELAXED);
    return ret;
}

void fnn_team_stats(int64_t *regions, int64_t *jobs)
{
    *regions = __atomic_load_n(&g_regions, __ATOMIC_RELAXED);
    *jobs = __atomic_load_n(&g_jobs, __ATOMIC_RELAXED);
}

void fnn_team_test_delay(int tid, int64_t us)
{
    __atomic_store_n(&g_delay_tid, tid, __ATOMIC_RELAXED);
    __atomic_store_n(&g_delay_us, us, __ATOMIC_RELAXED);
}

#else /* no team: every body runs alone */

void fnn_team_run(fnn_team *t, fnn_team_fn fn, void *arg)
{
    (void)t;
    fn(arg, 0);
}

void fnn_team_for(fnn_team *t, int64_t nchunks, fnn_team_chunk_fn chunk, void *ctx)
{
    (void)t;
    for (int64_t c = 0; c < nchunks; c++)
        chunk(ctx, c, 0);
}

int fnn_team_region(int nth, int (*body)(void *ctx, fnn_team *team), void *ctx)
{
    (void)nth;
    return body(ctx, NULL);
}

void fnn_team_stats(int64_t *regions, int64_t *jobs)
{
    *regions = 0;
    *jobs = 0;
}

void fnn_team_test_delay(int tid, int64_t us)
{
    (void)tid;
    (void)us;
}
#endif
