/* plan_internal.h — the plan's private state, shared by plan.c and the fused
 * dW-update driver (plan_dw_update.c). */
#ifndef FASTNN_PLAN_INTERNAL_H
#define FASTNN_PLAN_INTERNAL_H
#include "plan.h"
#include "gemm/gemm.h"
#include "optim_internal.h"

#define FNN_PLAN_MAX_LAYERS_STACK 64

/* Products of at most FNN_PLAN_DIRECT_WORK (tuning.h) multiply-adds run as
 * direct loops (no packing, no threads, vectorised over the contiguous output
 * dimension); a network whose products all are, with an arena below the
 * parallel threshold, takes the tiny path: the whole step without a parallel
 * region. */

struct fnn_plan {
    int is_f64;
    int64_t nlayers;
    fnn_plan_layer *layers;
    int loss, reduction;
    double label_smoothing;
    int64_t in0, out_last, maxw, maxo;
    int64_t act_width;    /* in0 + every layer's width: activation elements per row (the team's rule) */
    int64_t cap;          /* batch capacity of the buffers below */
    void *buf;            /* one block holding everything below */
    size_t buf_bytes;
    void **y;             /* y[l]: layer l's output (cap, out_l) */
    void **z;             /* z[l]: pre-activation (GELU only), or a norm's mean and invstd,
                             or a dropout mask (uint8, cap × out), else NULL */
    void *g0, *g1;        /* ping-pong dY / dX (cap, maxw) */
    void *dz;             /* dZ = dY ⊙ act'(·) (cap, maxo) */
    void *dz2;            /* a second dZ (cap, maxo): the split step alternates them (plan_split.inc) */
    void *xg, *yg;        /* gathered batch (epoch with shuffling) */
    fnn_workspace *ws;    /* GEMM packing */
    void *wt;             /* Wᵀ of one layer, for the direct forward of small layers */
    void *wt2;            /* the head's Wᵀ in the split step (plan_split.inc) */
    void *row_loss;       /* the split step's cross-entropy terms per row (cap doubles) */
    int avx2;             /* run the direct kernels' AVX2+FMA build */
    int avx512;           /* and their products' AVX-512 build */
    int64_t ndrop;        /* dropout layers */
    const uint64_t *seeds, *seed_cur;  /* all seeds / this step's row */
    int64_t tiny_batch, tiny_n;  /* plan_is_tiny's last question (batch 0: none yet) */
    int tiny;                    /* and its answer */
    int split_shape;             /* a tiny step may split by hidden units (plan.c: plan_split_shape) */
    int metric;                  /* FNN_PLAN_METRIC_*: counted after each forward */
    double metric_threshold;
    int64_t last_correct, last_counted;  /* the last step's counts */
    int64_t ngroups;             /* parameter groups (plan.h) */
    fnn_plan_opt *ostep;         /* ngroups: this step's options (per-row decay, Adam's eps applied) */
    fnn_plan_opt *orun;          /* ngroups: run()'s options of the next batch */
    fnn_plan_grad_hook grad_hook;  /* [grad hook] between backward and update (NULL: none) */
    void *grad_hook_ctx;
    fnn_team *team;              /* the persistent team of the call in progress (NULL: none) */
    void *split_consts;          /* ngroups optimizer constants, the split step's (plan_split.inc) */
};

void fnn_plan_count_alloc(void);

/* A group's options as the optimizer's per-step constants (optim_internal.h): the
 * one translation of fnn_plan_opt, for the plan's updates and the fused dW update. */
#define FNN_DEFINE_PLAN_OPT_PREPARE(SFX)                                                          \
    FNN_INLINE void fnn_plan_opt_prepare_##SFX(fnn_opt_consts_##SFX *k, const fnn_plan_opt *o)     \
    {                                                                                             \
        switch (o->kind) {                                                                        \
        case FNN_PLAN_SGD:                                                                        \
            fnn_sgd_prepare_##SFX(k, o->lr, o->momentum, o->dampening, o->weight_decay,           \
                                  o->sgd_mode, o->nesterov, o->maximize);                          \
            break;                                                                                \
        case FNN_PLAN_RMSPROP:                                                                    \
            fnn_rmsprop_prepare_##SFX(k, o->lr, o->alpha, o->eps, o->weight_decay, o->momentum,   \
                                      o->centered, o->maximize);                                  \
            break;                                                                                \
        case FNN_PLAN_ADAGRAD:                                                                    \
            fnn_adagrad_prepare_##SFX(k, o->step, o->lr, o->lr_decay, o->weight_decay, o->eps,    \
                                      o->maximize);                                               \
            break;                                                                                \
        default:                                                                                  \
            fnn_adam_prepare_##SFX(k, o->step, o->lr, o->beta1, o->beta2, o->eps,                 \
                                   o->weight_decay, o->amsgrad, o->maximize, o->decoupled);       \
        }                                                                                         \
    }
FNN_DEFINE_PLAN_OPT_PREPARE(f32)
FNN_DEFINE_PLAN_OPT_PREPARE(f64)

/* Fused dW + optimizer update of one layer (plan_dw_update.c):
 *   dW = dZᵀ·X (out × in, K = batch), then W ← update(W, dW, state) tile by tile.
 * Returns FNN_OK, or 1 when this product can't be fused or the optimizer is
 * RMSprop or Adagrad (the caller takes the unfused path), or FNN_ENOMEM.
 * state pointers point at the layer's W segment of each state buffer (NULL
 * when unused). */
int fnn_plan_dw_update_f32(int64_t out, int64_t in, int64_t batch, const float *dz,
                           const float *x, float *w, float *s0, float *s1, float *s2,
                           const fnn_plan_opt *o, fnn_workspace *ws);
int fnn_plan_dw_update_f64(int64_t out, int64_t in, int64_t batch, const double *dz,
                           const double *x, double *w, double *s0, double *s1, double *s2,
                           const fnn_plan_opt *o, fnn_workspace *ws);

#endif
