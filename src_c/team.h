/* team.h — a persistent team for one plan call: one OpenMP parallel region for
 * a whole training step (or a run of steps) instead of a fork per product.
 *
 * Thread 0 runs the step itself, as it would run alone. Where a phase has
 * parallel work (a product's tiles, the optimizer's tiles, the dZ/db column
 * blocks) it posts a job; the other threads, spinning between jobs, join it
 * and claim its chunks from a shared counter; thread 0 works on the chunks
 * too and, once none is left to claim, waits only for the threads still inside
 * the job. A thread the OS has descheduled therefore holds up no one: it finds
 * the job closed when it wakes and waits for the next. Each chunk is computed
 * whole by whichever thread claims it, in an order fixed by its index, so
 * results are the same bits for any team size and any schedule.
 *
 * Between jobs the helpers spin (with the CPU's pause hint), then yield their
 * core to other work after ~50 µs; when the region ends they go back to the
 * OpenMP pool, which sleeps (OMP_WAIT_POLICY=PASSIVE, fastnn/__init__.py).
 *
 * Needs OpenMP and the GCC/Clang atomic builtins; elsewhere fnn_team_region
 * runs the body alone (team NULL). */
#ifndef FASTNN_TEAM_H
#define FASTNN_TEAM_H
#include "common.h"

#if defined(_OPENMP) && (defined(__GNUC__) || defined(__clang__))
#define FNN_HAVE_TEAM 1
#else
#define FNN_HAVE_TEAM 0
#endif

/* A job's work on thread tid: claim chunks until none is left, then return. */
typedef void (*fnn_team_fn)(void *arg, int tid);

typedef struct fnn_team {
    /* The job slot, on a cache line of its own: the struct lives on thread 0's stack, whose
     * neighbouring writes would otherwise take the line from the spinning helpers (the
     * alignment also rounds the struct's size up to whole lines, so nothing follows on
     * it). gen is even while a job is open (2, 4, ...), odd once closed; fn and arg change
     * only while the slot is closed and no helper is inside it. */
    _Alignas(64) int64_t gen;
    fnn_team_fn fn;
    void *arg;
    int active;              /* helpers inside the open job */
    int stop;                /* the region is ending */
    int64_t jobs;            /* jobs posted in this region (fnn_team_stats) */
    int nth;                 /* threads in the region (>= 2) */
} fnn_team;

/* body(ctx, team) on a team of up to nth threads: thread 0 runs body, the
 * others serve its jobs. team is NULL when only one thread came up (or
 * nth < 2, or no team support): body then runs alone. Returns body's value. */
int fnn_team_region(int nth, int (*body)(void *ctx, fnn_team *team), void *ctx);

/* [thread 0] Run a job on the team: fn(arg, 0) here and fn(arg, tid) on every
 * helper that joins before it is done; returns once every chunk is finished.
 * team NULL: fn(arg, 0) alone. */
void fnn_team_run(fnn_team *team, fnn_team_fn fn, void *arg);

/* A job of nchunks independent chunks: chunk(ctx, c, tid) for c in
 * [0, nchunks), each on exactly one thread. */
typedef void (*fnn_team_chunk_fn)(void *ctx, int64_t c, int tid);
void fnn_team_for(fnn_team *team, int64_t nchunks, fnn_team_chunk_fn chunk, void *ctx);

/* Regions opened and jobs posted since the library loaded (tests, explain). */
void fnn_team_stats(int64_t *regions, int64_t *jobs);

/* Test hook: helper `tid` (> 0) sleeps `us` µs before joining each job it sees
 * (it then mostly finds the job closed: the late-helper path); us = 0 turns it
 * off. Shows that results do not depend on who does the work. */
void fnn_team_test_delay(int tid, int64_t us);

#endif
