/* plan.c — whole-step training plans (see plan.h): buffers and bookkeeping
 * here, the type-generic step in plan.inc (instantiated for float and double). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "plan.h"
#include "plan_internal.h"
#include "cpu.h"
#include "act_scalar.h"
#include "dense.h"
#include "losses.h"
#include "layers.h"
#include "optim.h"
#include "gemm/gemm.h"
#include "gemm/gemm_internal.h"
#include "team.h"

#if defined(_WIN32)
#include <malloc.h>
#endif

/* Library-wide counters, for tests (relaxed atomics: plans may run on several threads). */
static int64_t g_alloc_count = 0, g_split_steps = 0;

static int64_t counter_read(const int64_t *c)
{
#if defined(__GNUC__) || defined(__clang__)
    return __atomic_load_n(c, __ATOMIC_RELAXED);
#else
    return *c;
#endif
}

static void counter_bump(int64_t *c)
{
#if defined(__GNUC__) || defined(__clang__)
    __atomic_add_fetch(c, 1, __ATOMIC_RELAXED);
#else
    ++*c;
#endif
}

int64_t fnn_plan_alloc_count(void) { return counter_read(&g_alloc_count); }
void fnn_plan_count_alloc(void) { counter_bump(&g_alloc_count); }
int64_t fnn_plan_split_steps(void) { return counter_read(&g_split_steps); }
static void plan_count_split_step(void) { counter_bump(&g_split_steps); }  /* [thread 0 of a team] */

static void *plan_alloc64(size_t bytes)
{
    fnn_plan_count_alloc();
#if defined(_WIN32)
    return _aligned_malloc(bytes, 64);
#else
    void *q = NULL;
    if (posix_memalign(&q, 64, bytes ? bytes : 64) != 0)
        return NULL;
    return q;
#endif
}

static void plan_free64(void *q)
{
#if defined(_WIN32)
    _aligned_free(q);
#else
    free(q);
#endif
}

/* Whether layer L's products at this batch run on the direct loops. */
static int plan_layer_direct(int64_t batch, const fnn_plan_layer *L)
{
    return (double)batch * (double)L->in * (double)L->out <= FNN_PLAN_DIRECT_WORK;
}

/* The tiny path (plan.inc): every product on the direct loops, and the arena (n elements)
 * and every layer's output below the parallel threshold. */
static int plan_is_tiny(const fnn_plan *p, int64_t batch, int64_t n)
{
    if (n >= FNN_PAR_MIN_WORK)
        return 0;
    for (int64_t l = 0; l < p->nlayers; l++)
        if ((p->layers[l].kind == FNN_PLAN_DENSE && !plan_layer_direct(batch, &p->layers[l]))
            || batch * p->layers[l].out >= FNN_PAR_MIN_WORK)
            return 0;
    return 1;
}

/* Whether the plan's shape lets a tiny step split by hidden units on a team
 * (plan_split.inc): dense layers only, at least one hidden; each hidden layer at least two
 * 64-byte runs of units wide (a block per thread); every layer's input at least a 32-byte
 * vector wide (the tiny path's narrow kernels have no column blocks). */
static int plan_split_shape(const fnn_plan *p)
{
    const int64_t es = p->is_f64 ? (int64_t)sizeof(double) : (int64_t)sizeof(float);
    if (p->nlayers < 2)
        return 0;
    for (int64_t l = 0; l < p->nlayers; l++) {
        const fnn_plan_layer *L = &p->layers[l];
        if (L->kind != FNN_PLAN_DENSE || L->in * es < 32 || (l + 1 < p->nlayers && L->out * es < 128))
            return 0;
    }
    return 1;
}

fnn_plan *fnn_plan_create(int is_f64, int64_t nlayers, const fnn_plan_layer *layers, int loss,
                          int reduction, double label_smoothing)
{
    if (nlayers < 1)
        return NULL;
    fnn_plan *p = (fnn_plan *)calloc(1, sizeof *p);
    if (!p)
        return NULL;
    fnn_plan_count_alloc();
    p->is_f64 = is_f64;
    p->nlayers = nlayers;
    p->loss = loss;
    p->reduction = reduction;
    p->label_smoothing = label_smoothing;
    p->layers = (fnn_plan_layer *)malloc((size_t)nlayers * sizeof *layers);
    p->y = (void **)calloc((size_t)nlayers, sizeof(void *));
    p->z = (void **)calloc((size_t)nlayers, sizeof(void *));
    p->ws = fnn_workspace_create();
    fnn_plan_count_alloc();
    if (!p->layers || !p->y || !p->z || !p->ws) {
        fnn_plan_destroy(p);
        return NULL;
    }
    memcpy(p->layers, layers, (size_t)nlayers * sizeof *layers);
    int64_t maxw = layers[0].in, maxo = 0;
    for (int64_t l = 0; l < nlayers; l++) {
        if (layers[l].in > maxw) maxw = layers[l].in;
        if (layers[l].out > maxw) maxw = layers[l].out;
        if (layers[l].out > maxo) maxo = layers[l].out;
    }
    p->maxw = maxw;
    p->maxo = maxo;
    for (int64_t l = 0; l < nlayers; l++)
        p->ndrop += layers[l].kind == FNN_PLAN_DROPOUT;
    int64_t maxwt = 1;
    for (int64_t l = 0; l < nlayers; l++)
        if (layers[l].kind == FNN_PLAN_DENSE && layers[l].in * layers[l].out > maxwt)
            maxwt = layers[l].in * layers[l].out;
    /* + one vector of slack: the AVX2 transpose stores whole vectors (plan_forward_direct) */
    p->wt = plan_alloc64((size_t)(maxwt + 8) * (is_f64 ? sizeof(double) : sizeof(float)));
    p->wt2 = plan_alloc64((size_t)(layers[nlayers - 1].in * layers[nlayers - 1].out + 8)
                          * (is_f64 ? sizeof(double) : sizeof(float)));
    if (!p->wt || !p->wt2) {
        fnn_plan_destroy(p);
        return NULL;
    }
#if FNN_HAVE_X86_KERNELS
    /* The direct kernels' AVX2+FMA build runs where the GEMM runs its AVX2/AVX-512 kernels. */
    p->avx2 = fnn_cpu_avx2();
    p->avx512 = fnn_cpu_kernels() == FNN_KERNELS_AVX512;
#endif
    int64_t ng = 1;
    for (int64_t l = 0; l < nlayers; l++) {
        if (layers[l].kind == FNN_PLAN_DROPOUT)  /* no parameters */
            continue;
        const int wg = layers[l].kind == FNN_PLAN_DENSE ? layers[l].u.dense.w_group : layers[l].u.norm.w_group;
        const int bg = layers[l].kind == FNN_PLAN_DENSE ? layers[l].u.dense.b_group : layers[l].u.norm.b_group;
        if (wg < 0 || bg < 0) {
            fnn_plan_destroy(p);
            return NULL;
        }
        if (wg + 1 > ng) ng = wg + 1;
        if (bg + 1 > ng) ng = bg + 1;
    }
    p->ngroups = ng;
    p->ostep = (fnn_plan_opt *)calloc((size_t)(2 * ng), sizeof(fnn_plan_opt));
    fnn_plan_count_alloc();
    if (!p->ostep) {
        fnn_plan_destroy(p);
        return NULL;
    }
    p->orun = p->ostep + ng;
    const size_t kbytes = sizeof(fnn_opt_consts_f64) > sizeof(fnn_opt_consts_f32) ? sizeof(fnn_opt_consts_f64)
                                                                                   : sizeof(fnn_opt_consts_f32);
    p->split_consts = calloc((size_t)ng, kbytes);
    fnn_plan_count_alloc();
    if (!p->split_consts) {
        fnn_plan_destroy(p);
        return NULL;
    }
    p->in0 = layers[0].in;
    p->out_last = layers[nlayers - 1].out;
    p->act_width = p->in0;
    for (int64_t l = 0; l < nlayers; l++)
        p->act_width += layers[l].out;
    p->split_shape = plan_split_shape(p);
    return p;
}

void fnn_plan_destroy(fnn_plan *p)
{
    if (!p)
        return;
    plan_free64(p->buf);
    plan_free64(p->wt);
    plan_free64(p->wt2);
    fnn_workspace_destroy(p->ws);
    free(p->layers);
    free(p->y);
    free(p->z);
    free(p->ostep);
    free(p->split_consts);
    free(p);
}

/* Lays out every per-batch buffer in one block (each on a 64-byte boundary). */
int fnn_plan_reserve(fnn_plan *p, int64_t batch)
{
    if (batch <= p->cap)
        return FNN_OK;
    const size_t es = p->is_f64 ? sizeof(double) : sizeof(float);
    size_t off = 0;
#define PLAN_TAKE(elems, esize) (off += (((size_t)(elems) * (esize) + 63) / 64 * 64), off - (((size_t)(elems) * (esize) + 63) / 64 * 64))
    size_t oy[FNN_PLAN_MAX_LAYERS_STACK], oz[FNN_PLAN_MAX_LAYERS_STACK];
    size_t *py = oy, *pz = oz;
    if (p->nlayers > FNN_PLAN_MAX_LAYERS_STACK) {
        py = (size_t *)malloc((size_t)p->nlayers * sizeof(size_t));
        pz = (size_t *)malloc((size_t)p->nlayers * sizeof(size_t));
        if (!py || !pz) {
            free(py == oy ? NULL : py);
            free(pz == oz ? NULL : pz);
            return FNN_ENOMEM;
        }
    }
    for (int64_t l = 0; l < p->nlayers; l++) {
        py[l] = PLAN_TAKE(batch * p->layers[l].out, es);
        /* GELU differentiates from z: keep it. */
        const fnn_plan_layer *L = &p->layers[l];
        const int act = L->kind == FNN_PLAN_DENSE ? L->u.dense.act : FNN_ACT_NONE;
        pz[l] = L->kind == FNN_PLAN_DROPOUT ? PLAN_TAKE(batch * L->out, 1)
                : L->kind == FNN_PLAN_LAYER_NORM ? PLAN_TAKE(2 * batch, es)
                : L->kind == FNN_PLAN_BATCH_NORM ? PLAN_TAKE(2 * L->out, es)
                : (act == FNN_ACT_GELU || act == FNN_ACT_GELU_TANH) ? PLAN_TAKE(batch * L->out, es)
                                                                    : (size_t)-1;
    }
    const size_t og0 = PLAN_TAKE(batch * p->maxw, es);
    const size_t og1 = PLAN_TAKE(batch * p->maxw, es);
    const size_t odz = PLAN_TAKE(batch * p->maxo, es);
    const size_t odz2 = PLAN_TAKE(batch * p->maxo, es);
    const size_t orl = PLAN_TAKE(batch, sizeof(double));
    const size_t oxg = PLAN_TAKE(batch * p->in0, es);
    const size_t oyg = PLAN_TAKE(batch * (p->loss == FNN_PLAN_CE ? 1 : p->out_last), 8);
#undef PLAN_TAKE
    void *buf = plan_alloc64(off);
    if (!buf) {
        if (py != oy) { free(py); free(pz); }
        return FNN_ENOMEM;
    }
    plan_free64(p->buf);
    p->buf = buf;
    p->buf_bytes = off;
    char *base = (char *)buf;
    for (int64_t l = 0; l < p->nlayers; l++) {
        p->y[l] = base + py[l];
        p->z[l] = pz[l] == (size_t)-1 ? NULL : base + pz[l];
    }
    p->g0 = base + og0;
    p->g1 = base + og1;
    p->dz = base + odz;
    p->dz2 = base + odz2;
    p->row_loss = base + orl;
    p->xg = base + oxg;
    p->yg = base + oyg;
    p->cap = batch;
    if (py != oy) { free(py); free(pz); }
    return FNN_OK;
}

int64_t fnn_plan_capacity(const fnn_plan *p) { return p->cap; }

void fnn_plan_set_seeds(fnn_plan *p, const uint64_t *seeds) { p->seeds = seeds; }

void fnn_plan_set_grad_hook(fnn_plan *p, fnn_plan_grad_hook fn, void *ctx)  /* [grad hook] */
{
    p->grad_hook = fn;
    p->grad_hook_ctx = ctx;
}

size_t fnn_plan_bytes(const fnn_plan *p) { return p->buf_bytes + fnn_workspace_bytes(p->ws); }

const void *fnn_plan_output(const fnn_plan *p) { return p->nlayers ? p->y[p->nlayers - 1] : NULL; }


#define real float
#define FNN_UINT uint32_t
#define FNN_INF_BITS 0x7f800000u
#define FNN_T(name) name##_f32
#define FNN_SQRT sqrtf
#define FNN_ACT_FN fnn_act_f32
#define FNN_ACT_GRAD fnn_act_grad_f32
#define FNN_VM_ACT fnn_vm_act_f32
#define FNN_VM_ACT_BACKWARD fnn_vm_act_backward_f32
#include "plan_instance.inc"
#undef real
#undef FNN_UINT
#undef FNN_INF_BITS
#undef FNN_T
#undef FNN_ACT_FN
#undef FNN_ACT_GRAD
#undef FNN_VM_ACT
#undef FNN_VM_ACT_BACKWARD
#undef FNN_SQRT

#define real double
#define FNN_UINT uint64_t
#define FNN_INF_BITS 0x7ff0000000000000u
#define FNN_T(name) name##_f64
#define FNN_SQRT sqrt
#define FNN_ACT_FN fnn_act_f64
#define FNN_ACT_GRAD fnn_act_grad_f64
#define FNN_VM_ACT fnn_vm_act_f64
#define FNN_VM_ACT_BACKWARD fnn_vm_act_backward_f64
#include "plan_instance.inc"
#undef real
#undef FNN_T
#undef FNN_ACT_FN
#undef FNN_ACT_GRAD
#undef FNN_VM_ACT
#undef FNN_VM_ACT_BACKWARD

/* ------------------------------------------------------------------ the persistent team */

static int g_team_mode = FNN_PLAN_TEAM_AUTO;

void fnn_plan_set_team_mode(int mode) { g_team_mode = mode; }
int fnn_plan_team_mode(void) { return g_team_mode; }

/* Work a step can hand to a team: the multiply-adds of its products that split on one
 * (packed products from FNN_TEAM_MIN_WORK: forward, dW and, past the first layer, dX)
 * and its optimizer elements at their cost. */
static double plan_team_work(const fnn_plan *p, int64_t batch, int64_t nparams)
{
    double w = 0.0;
    for (int64_t l = 0; l < p->nlayers; l++) {
        const fnn_plan_layer *L = &p->layers[l];
        const double prod = (double)batch * (double)L->in * (double)L->out;
        if (L->kind == FNN_PLAN_DENSE && !plan_layer_direct(batch, L) && prod >= FNN_TEAM_MIN_WORK)
            w += prod * (l > 0 ? 3.0 : 2.0);
    }
    if (nparams >= 2 * FNN_OPT_TILE)
        w += (double)nparams * FNN_COST_ARITH;
    return w;
}

static int64_t plan_nparams(const fnn_plan_arena *a, int64_t ngroups)
{
    int64_t n = 0;
    for (int64_t g = 0; g < ngroups; g++)
        n += a[g].n;
    return n;
}

int fnn_plan_splits(const fnn_plan *p, int64_t batch, const fnn_plan_arena *a)
{
    return p->split_shape && plan_is_tiny(p, batch, plan_nparams(a, p->ngroups));
}

/* A split tiny step's multiply-adds: forward and dW, and dX past the first layer. */
static double plan_split_work(const fnn_plan *p, int64_t batch)
{
    double w = 0.0;
    for (int64_t l = 0; l < p->nlayers; l++)
        w += (double)batch * (double)p->layers[l].in * (double)p->layers[l].out * (l > 0 ? 3.0 : 2.0);
    return w;
}

/* Threads for a call of `steps` steps (plan.h): a team when each step has enough work to
 * split (below plan_team_min_work the data a helper must fetch from the other core's
 * cache costs about what the split saves: a 64-128-10 step at batch 32 runs 14 µs
 * slower on two cores) and the call enough to pay the one fork that opens it (four
 * times that), else 1 (every kernel then forks as it would alone). Not with a gradient
 * hook (its allreduce waits on other processes: helpers would spin through it) nor
 * fused (the fused dW update keeps its own split). */
int fnn_plan_team_threads(const fnn_plan *p, int64_t batch, const fnn_plan_arena *a, int64_t steps, int flags)
{
    const int nt = fnn_get_num_threads();
    if (g_team_mode == FNN_PLAN_TEAM_OFF || nt < 2 || p->grad_hook || (flags & FNN_PLAN_FUSED))
        return 1;
    const int64_t nparams = plan_nparams(a, p->ngroups);
    if (p->split_shape && plan_is_tiny(p, batch, nparams)) {  /* the tiny step, split by units */
        if (g_team_mode == FNN_PLAN_TEAM_ALWAYS)
            return nt;
        const double need = FNN_PLAN_SPLIT_MIN_WORK;
        return need > 0.0 && plan_split_work(p, batch) >= need && steps >= 8 ? nt : 1;
    }
    const double w = plan_team_work(p, batch, nparams);
    if (w <= 0.0)
        return 1;
    if (g_team_mode == FNN_PLAN_TEAM_ALWAYS)
        return nt;
    const double need = FNN_PLAN_TEAM_MIN_WORK;
    /* multiply-adds per activation element (tuning.h: team_min_intensity says why) */
    const double intensity = w / ((double)batch * (double)p->act_width);
    return need > 0.0 && w >= need && w * (double)steps >= 4.0 * need && intensity >= FNN_TEAM_MIN_INTENSITY ? nt : 1;
}

/* One public call's arguments, for the team's thread 0. */
typedef struct {
    fnn_plan *p;
    int64_t batch, n, bs, b0, b1;
    const void *x, *y;
    const int64_t *perm;
    const fnn_plan_arena *a;
    const fnn_plan_opt *o;
    int flags;
    double *loss;
    int64_t *done, *bad;
    fnn_plan_epochs *r;
} plan_call;

static int plan_call_on(plan_call *c, fnn_team *team, int (*fn)(plan_call *))
{
    c->p->team = team;
    fnn_workspace_set_team(c->p->ws, team);
    const int st = fn(c);
    c->p->team = NULL;
    fnn_workspace_set_team(c->p->ws, NULL);
    return st;
}

static int plan_step_call(plan_call *c)
{
    fnn_plan *p = c->p;
    return p->is_f64 ? plan_step_f64(p, c->batch, (const double *)c->x, c->y, c->a, c->o, c->flags, c->loss, c->bad)
                     : plan_step_f32(p, c->batch, (const float *)c->x, c->y, c->a, c->o, c->flags, c->loss, c->bad);
}
static int plan_step_body(void *ctx, fnn_team *team) { return plan_call_on((plan_call *)ctx, team, plan_step_call); }

static int plan_run_call(plan_call *c)
{
    fnn_plan *p = c->p;
    return p->is_f64 ? plan_run_f64(p, c->n, c->bs, (const double *)c->x, c->y, c->perm, c->b0, c->b1, c->a, c->o,
                                    c->flags, c->loss, c->done, c->bad)
                     : plan_run_f32(p, c->n, c->bs, (const float *)c->x, c->y, c->perm, c->b0, c->b1, c->a, c->o,
                                    c->flags, c->loss, c->done, c->bad);
}
static int plan_run_body(void *ctx, fnn_team *team) { return plan_call_on((plan_call *)ctx, team, plan_run_call); }

static int plan_epochs_call(plan_call *c)
{
    fnn_plan *p = c->p;
    return p->is_f64 ? plan_run_epochs_f64(p, c->r, c->b0, c->b1, c->a, c->o, c->flags, c->done, c->bad)
                     : plan_run_epochs_f32(p, c->r, c->b0, c->b1, c->a, c->o, c->flags, c->done, c->bad);
}
static int plan_epochs_body(void *ctx, fnn_team *team) { return plan_call_on((plan_call *)ctx, team, plan_epochs_call); }

/* ------------------------------------------------------------------ calls */

int fnn_plan_step(fnn_plan *p, int64_t batch, const void *x, const void *y,
                  const fnn_plan_arena *a, const fnn_plan_opt *o, int flags,
                  double *loss, int64_t *bad)
{
    if (batch < 1 || batch > p->cap)
        return FNN_ENOMEM;
    const size_t before = fnn_workspace_bytes(p->ws);
    p->seed_cur = p->seeds;
    plan_call c = {p, batch, 0, 0, 0, 0, x, y, NULL, a, o, flags, loss, NULL, bad, NULL};
    const int st = fnn_team_region(fnn_plan_team_threads(p, batch, a, 1, flags), plan_step_body, &c);
    p->last_correct = p->last_counted = 0;
    if (p->metric && (st == FNN_OK || st == FNN_PLAN_NONFINITE_PARAM)) {
        if (p->is_f64)
            plan_count_f64(p, batch, y, &p->last_correct, &p->last_counted);
        else
            plan_count_f32(p, batch, y, &p->last_correct, &p->last_counted);
    }
    if (fnn_workspace_bytes(p->ws) != before)
        fnn_plan_count_alloc();
    return st;
}

int fnn_plan_run(fnn_plan *p, int64_t n, int64_t bs, const void *X, const void *Y,
                 const int64_t *perm, int64_t b0, int64_t b1, const fnn_plan_arena *a,
                 const fnn_plan_opt *o, int flags, double *losses, int64_t *done, int64_t *bad)
{
    *done = 0;
    if (bs < 1 || bs > p->cap)
        return FNN_ENOMEM;
    const size_t before = fnn_workspace_bytes(p->ws);
    plan_call c = {p, 0, n, bs, b0, b1, X, Y, perm, a, o, flags, losses, done, bad, NULL};
    const int st = fnn_team_region(fnn_plan_team_threads(p, bs, a, b1 - b0, flags), plan_run_body, &c);
    if (fnn_workspace_bytes(p->ws) != before)
        fnn_plan_count_alloc();
    return st;
}

void fnn_plan_set_metric(fnn_plan *p, int metric, double threshold)
{
    p->metric = metric;
    p->metric_threshold = threshold;
}

void fnn_plan_last_count(const fnn_plan *p, int64_t *correct, int64_t *counted)
{
    *correct = p->last_correct;
    *counted = p->last_counted;
}

int fnn_plan_evaluate(fnn_plan *p, int64_t n, int64_t bs, const void *X, const void *Y,
                      const fnn_plan_arena *a, double *loss_sum, int64_t *correct,
                      int64_t *counted, int64_t *bad)
{
    *loss_sum = 0.0;
    *correct = *counted = 0;
    *bad = -1;
    if (bs < 1 || bs > p->cap)
        return FNN_ENOMEM;
    const size_t before = fnn_workspace_bytes(p->ws);
    const int st = p->is_f64 ? plan_evaluate_f64(p, n, bs, (const double *)X, Y, a, loss_sum, correct, counted, bad)
                             : plan_evaluate_f32(p, n, bs, (const float *)X, Y, a, loss_sum, correct, counted, bad);
    if (fnn_workspace_bytes(p->ws) != before)
        fnn_plan_count_alloc();
    return st;
}

int fnn_plan_run_epochs(fnn_plan *p, fnn_plan_epochs *r, int64_t s0, int64_t s1,
                        const fnn_plan_arena *a, const fnn_plan_opt *o, int flags,
                        int64_t *done, int64_t *bad)
{
    *done = 0;
    *bad = -1;
    if (r->bs < 1 || r->bs > p->cap || r->steps < 1 || (r->nval > 0 && (r->vbs < 1 || r->vbs > p->cap)))
        return FNN_ENOMEM;
    const size_t before = fnn_workspace_bytes(p->ws);
    plan_call c = {p, 0, 0, 0, s0, s1, NULL, NULL, NULL, a, o, flags, NULL, done, bad, r};
    const int st = fnn_team_region(fnn_plan_team_threads(p, r->bs, a, s1 - s0, flags), plan_epochs_body, &c);
    if (fnn_workspace_bytes(p->ws) != before)
        fnn_plan_count_alloc();
    return st;
}
