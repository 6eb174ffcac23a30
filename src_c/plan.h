/* plan.h — whole-step training plans: forward, loss, backward and the
 * optimizer update of a Sequential of dense layers in ONE C call, and a loop
 * of such steps over the mini-batches of an epoch.
 *
 * Network: L layers, layer l maps (batch, in_l) → (batch, out_l): dense
 *   z_l = x_l·W_lᵀ + b_l,  x_{l+1} = act_l(z_l)      (W_l is (out_l, in_l))
 * or a layer norm, batch norm or dropout (fnn_plan_layer.kind),
 * then a loss on x_L against the targets, then the optimizer on the flat
 * parameter arena that holds every W_l and b_l (at the offsets given).
 *
 * Buffers: the plan owns one workspace (activations, gradients, batch
 * gathering, GEMM packing) sized by fnn_plan_reserve for a batch capacity;
 * steps with batch <= capacity never allocate. Parameters, gradients and
 * optimizer state are NOT owned: the caller passes the arena pointers at each
 * call (they are the model's and the optimizer's own buffers).
 *
 * Two update paths:
 *   unfused (default): dW, db are written to the gradient arena (overwritten,
 *     as after zero_grad + backward), then one fused optimizer pass over the
 *     whole arena (optim.h). Bitwise equal to the PyTorch-style loop on the
 *     GEMM path.
 *   fused (FNN_PLAN_FUSED): for each layer dX is computed first with the old
 *     W, then every MR×NR tile of dW = dZᵀ·X is finished in one pass over K =
 *     batch and the optimizer updates W (and its state) from that tile while
 *     it is in L1; dW never reaches memory (SGD and Adam). Layers whose batch
 *     exceeds one K block, and RMSprop and Adagrad, take the unfused path
 *     for that layer: dW is written to the gradient arena and the layer's
 *     segment updated by the optimizer kernel right after its product.
 *     Otherwise the gradient arena is not written for W.
 *
 * Every step is bitwise reproducible for any thread count (threads split
 * rows/columns of products and element ranges of passes only). */
#ifndef FASTNN_PLAN_H
#define FASTNN_PLAN_H
#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct fnn_plan fnn_plan;

/* One layer: its kind (FNN_PLAN_DENSE … FNN_PLAN_DROPOUT, fastnn_enums.h), its width and
 * the member of the union named for its kind (only that member is read). Offsets are in
 * elements from the start of the layer's group's arena.
 * DENSE (u.dense): z = x·Wᵀ + b, y = act(z).
 * LAYER_NORM (u.norm): y = act((x − μ_r)·invstd_r·w + b) over each row (in == out).
 * BATCH_NORM (u.norm): training-mode batch normalisation (batch statistics, batch >= 2),
 *   then act; with running statistics, *nbt += 1 and running ← (1−m)·running + m·batch
 *   with m = momentum, or 1/nbt when momentum < 0 (PyTorch's momentum=None).
 * DROPOUT (u.dropout): y = keep ? x/(1−p) : 0 with layers.h's counter-based mask of the
 *   step's seed (in == out). Seeds come from fnn_plan_set_seeds. */
typedef struct {
    int64_t w_off;     /* W (out, in) row-major */
    int64_t b_off;     /* b (out), or -1 for no bias */
    int w_group, b_group;  /* parameter group (index into the arena and option arrays) of W, b */
    int act;           /* fnn_act */
    double act_param;  /* leaky_relu slope (>= 0) */
} fnn_plan_dense;

typedef struct {
    int64_t w_off, b_off;  /* the norm's weight (out) and bias (out); -1: none (no affine) */
    int w_group, b_group;  /* as fnn_plan_dense's */
    int act;           /* fnn_act applied after the norm: one differentiated from its output
                          (NONE, RELU, LEAKY_RELU, SIGMOID, TANH) */
    double act_param;  /* leaky_relu slope (>= 0) */
    double eps;
    double momentum;   /* batch norm (< 0: cumulative average) */
    void *running_mean, *running_var;  /* batch norm, of the plan's type; NULL: not tracked */
    int64_t *nbt;      /* batch norm's num_batches_tracked (with running statistics) */
} fnn_plan_norm;

typedef struct {
    double p;          /* drop probability, 0 < p < 1 */
} fnn_plan_dropout;

typedef struct {
    int kind;          /* FNN_PLAN_DENSE, _LAYER_NORM, _BATCH_NORM or _DROPOUT */
    int64_t in, out;
    union {
        fnn_plan_dense dense;      /* DENSE */
        fnn_plan_norm norm;        /* LAYER_NORM, BATCH_NORM */
        fnn_plan_dropout dropout;  /* DROPOUT */
    } u;
} fnn_plan_layer;

/* Layer kinds FNN_PLAN_DENSE…, losses FNN_PLAN_MSE…, optimizers FNN_PLAN_SGD…: fastnn_enums.h
 * (via common.h). */

/* Hyper-parameters of one step (of the first step, for fnn_plan_run). */
typedef struct {
    int kind;
    double lr, weight_decay;
    int maximize;
    /* SGD (momentum: also RMSprop's) */
    double momentum, dampening;
    int nesterov;
    int sgd_mode;    /* fnn_sgd_mode of this step; run() moves FIRST to LATER after it */
    /* Adam / AdamW (eps: also RMSprop's and Adagrad's) */
    double beta1, beta2, eps;
    int amsgrad, decoupled;
    int64_t step;    /* t of this step (>= 1; Adam, Adagrad); run() adds one per batch */
    /* RMSprop */
    double alpha;
    int centered;
    /* Adagrad */
    double lr_decay;
    /* scikit-learn's conventions (fastnn.sklearn), all off at 0: */
    int wd_per_row;      /* the step's decay is weight_decay / rows of its batch */
    int eps_sklearn;     /* Adam: eps_t = eps / sqrt(1 − β2^t) at step t (scikit-learn adds eps to
                            sqrt(v), not to sqrt(v̂)) */
    double l2_loss;      /* the step's loss gains l2_loss · ½ · decay · Σθ² over the group, θ
                            before the update (0: the loss alone) */
} fnn_plan_opt;

/* Parameter groups: a plan's dense and norm layers name the group of their W and b
 * (w_group, b_group of fnn_plan_dense and fnn_plan_norm); groups are numbered 0 .. G−1 with G =
 * 1 + the largest index. The arena and option arguments of the calls below
 * are arrays of G entries: group g's parameters live in arena a[g] and are
 * updated with o[g] (the optimizer kind is the same for all groups). Each
 * group's flat buffers are updated by one optimizer pass, as the eager
 * optimizer updates each group's arena.
 *
 * The arena and the optimizer state buffers (n elements each, same layout).
 *   SGD:     state0 momentum_buffer
 *   Adam:    state0 exp_avg, state1 exp_avg_sq, state2 max_exp_avg_sq (amsgrad)
 *   RMSprop: state0 square_avg, state1 grad_avg (centered), state2 momentum_buffer (momentum > 0)
 *   Adagrad: state0 sum
 * Unused ones may be NULL. */
typedef struct {
    int64_t n;
    void *params, *grads, *state0, *state1, *state2;
} fnn_plan_arena;

/* Flags of a step. */
#define FNN_PLAN_CHECK_FINITE 1  /* stop before the update on a non-finite loss or gradient,
                                    report non-finite parameters after it */
#define FNN_PLAN_FUSED 2         /* update W in the dW epilogue where possible */

/* Status codes FNN_PLAN_BAD_INPUT … FNN_PLAN_HOOK_FAILED: fastnn_enums.h. */

/* A plan over `nlayers` layers (copied) for one dtype (is_f64), a loss
 * and its reduction (fnn_reduction) and label smoothing (cross-entropy).
 * NULL when out of memory (or a group index is negative). */
fnn_plan *fnn_plan_create(int is_f64, int64_t nlayers, const fnn_plan_layer *layers, int loss,
                          int reduction, double label_smoothing);
void fnn_plan_destroy(fnn_plan *p);
/* Size the workspace for batches of up to `batch` rows (grows only). */
int fnn_plan_reserve(fnn_plan *p, int64_t batch);
int64_t fnn_plan_capacity(const fnn_plan *p);
/* Bytes held by the plan's own buffers and its GEMM workspace. */
size_t fnn_plan_bytes(const fnn_plan *p);
/* Number of heap allocations every plan has made since the library loaded
 * (plan buffers and GEMM workspace growth), for tests of "no allocation per step". */
int64_t fnn_plan_alloc_count(void);
/* Steps every plan has run split by hidden units on a team (plan_split.inc), for tests
 * and explain. */
int64_t fnn_plan_split_steps(void);
/* The network's output (batch, out_L) of the last step: valid until the next call. */
const void *fnn_plan_output(const fnn_plan *p);

/* Dropout seeds: one per dropout layer (in layer order) for fnn_plan_step, or
 * (b1 − b0) rows of them for fnn_plan_run (row r for batch b0 + r). The array
 * must stay valid during the calls that use it. */
void fnn_plan_set_seeds(fnn_plan *p, const uint64_t *seeds);

/* [grad hook] Data-parallel training: fn(ctx, n, grads, batch) is called once per
 * step after backward and before the non-finite gradient check and the update,
 * with the gradient arena (n elements of the plan's type, `batch` rows computed
 * on this process); it may rewrite the gradients in place (an allreduce).
 * Nonzero stops the step with FNN_PLAN_HOOK_FAILED. With CHECK_FINITE, a step
 * whose loss is not finite still calls it (with grads[0] set to NaN, so every
 * process sees a non-finite gradient and stops at the same step). The fused
 * update is not used while a hook is set. fn NULL removes it. */
typedef int (*fnn_plan_grad_hook)(void *ctx, int64_t n, void *grads, int64_t batch);
void fnn_plan_set_grad_hook(fnn_plan *p, fnn_plan_grad_hook fn, void *ctx);

/* One training step on x (batch, in_0) and y (batch, out_L) of the plan's
 * type, or int64 labels (batch) for cross-entropy. Writes the loss (as the
 * loss kernel reports it, in double) to *loss and, on BAD_INPUT/BAD_TARGET,
 * the offending index to *bad. 1 <= batch <= capacity. */
int fnn_plan_step(fnn_plan *p, int64_t batch, const void *x, const void *y,
                  const fnn_plan_arena *a, const fnn_plan_opt *o, int flags,
                  double *loss, int64_t *bad);

/* Steps for batches b0 .. b1-1 of an epoch over X (n, in_0), Y (n, …):
 * batch b holds samples perm[b·bs .. min((b+1)·bs, n)) (perm NULL: in order),
 * gathered into the plan's buffers (no copy without perm). losses[b - b0]
 * receives each batch's loss. o->step / o->sgd_mode describe batch b0 and
 * advance by one per batch. Stops at the first failing batch: *done is the
 * number of batches completed (their updates applied), the status that of
 * the failing one. Needs capacity >= bs. */
int fnn_plan_run(fnn_plan *p, int64_t n, int64_t bs, const void *X, const void *Y,
                 const int64_t *perm, int64_t b0, int64_t b1, const fnn_plan_arena *a,
                 const fnn_plan_opt *o, int flags, double *losses, int64_t *done, int64_t *bad);

/* ------------------------------------------------------------------ fit's side
 * Metrics counted inside the plan, a forward-only evaluation, and runs of many
 * epochs in one call: what fastnn.fit needs so that no Python runs between steps. */

/* Accuracy counted after each step's forward pass (fnn_plan_set_metric):
 * ARGMAX: row i is right when the first index of its largest output (NaN counts
 *   as largest, as numpy.argmax) equals the int64 label; counted = rows.
 * THRESHOLD: element i is right when (out > threshold) == (target > 0.5);
 *   counted = elements. */
enum { FNN_PLAN_METRIC_NONE = 0, FNN_PLAN_METRIC_ARGMAX = 1, FNN_PLAN_METRIC_THRESHOLD = 2 };
void fnn_plan_set_metric(fnn_plan *p, int metric, double threshold);
/* The last fnn_plan_step's count (0, 0 without a metric). */
void fnn_plan_last_count(const fnn_plan *p, int64_t *correct, int64_t *counted);

/* Forward pass and loss only (no gradient kept, nothing updated) over X (n rows)
 * in batches of bs <= capacity, as fit's evaluation sums them: *loss_sum =
 * Σ_batches loss (rounded to the plan's type) × rows (mean reduction) or × 1
 * (sum); the metric's counts summed. Dense and layer-norm layers only (batch
 * norm and dropout behave differently in eval mode: the caller evaluates
 * those models itself). Allocates nothing. */
int fnn_plan_evaluate(fnn_plan *p, int64_t n, int64_t bs, const void *X, const void *Y,
                      const fnn_plan_arena *a, double *loss_sum, int64_t *correct,
                      int64_t *counted, int64_t *bad);

/* A run of epochs over the same data: step s (0-based from the run's start)
 * is batch s % steps of epoch s / steps, holding samples perms[e·n + b·bs ...]
 * (perms NULL: in order), as fnn_plan_run. Per epoch e of the run (arrays
 * indexed by e, zeroed by the caller):
 *   loss_sum[e]  Σ loss (rounded to the plan's type) × rows (mean) or × 1 (sum)
 *   correct[e], counted[e]  the metric's counts (NULL: none)
 *   val_*[e]     fnn_plan_evaluate on (Xv, Yv) after the epoch's last step,
 *                in the same call (nval 0: none)
 * *last_loss: the loss of the last step run (the failing one on an error). */
typedef struct {
    int64_t n, bs, steps;
    const void *X, *Y;
    const int64_t *perms;
    int64_t nval, vbs;
    const void *Xv, *Yv;
    double *loss_sum;
    int64_t *correct, *counted;
    double *val_loss_sum;
    int64_t *val_correct, *val_counted;
    double last_loss;
} fnn_plan_epochs;

/* Steps s0 .. s1-1 of the run (the optimizer's o->step / sgd_mode describe step
 * s0). Stops at the first failing step as fnn_plan_run: *done = steps
 * completed (a NONFINITE_PARAM step counts as done). Dropout seeds: row
 * s - s0 of fnn_plan_set_seeds. Needs capacity >= max(bs, vbs). */
int fnn_plan_run_epochs(fnn_plan *p, fnn_plan_epochs *r, int64_t s0, int64_t s1,
                        const fnn_plan_arena *a, const fnn_plan_opt *o, int flags,
                        int64_t *done, int64_t *bad);

/* ------------------------------------------------------------------ threads
 * A call whose steps have enough parallel work (tuning.h: plan_team_min_work) runs
 * them in one parallel region, a persistent team (team.h), instead of a fork per
 * product and pass; results are the same bits either way. The mode is global:
 * AUTO (default) decides by that work, OFF never opens a team, ALWAYS opens one
 * whenever a step has anything to split (for tests and benchmarks). */
enum { FNN_PLAN_TEAM_OFF = 0, FNN_PLAN_TEAM_AUTO = 1, FNN_PLAN_TEAM_ALWAYS = 2 };
void fnn_plan_set_team_mode(int mode);
int fnn_plan_team_mode(void);
/* The threads a call of `steps` steps at this batch size would run on: its team's size, or
 * 1 when it would run without one (its kernels then fork on their own). */
int fnn_plan_team_threads(const fnn_plan *p, int64_t batch, const fnn_plan_arena *a, int64_t steps, int flags);
/* Whether a step at this batch size, on a team, splits by hidden units (plan_split.inc:
 * small networks whose products all run on the direct loops). */
int fnn_plan_splits(const fnn_plan *p, int64_t batch, const fnn_plan_arena *a);

#ifdef __cplusplus
}
#endif
#endif
