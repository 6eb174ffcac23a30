/* losses.h — loss functions: the loss value and its gradient w.r.t. the
 * input in ONE pass over memory ("fused"), so training reads the predictions
 * once per step instead of twice.
 *
 * Every kernel:
 *   - writes the reduced loss (summed in double, in fixed FNN_REDUCE_BLOCK
 *     blocks added in index order: bitwise identical for any thread count)
 *     to *loss;
 *   - when grad != NULL, overwrites grad (input's shape, contiguous) with
 *     d(loss)/d(input) for that reduction; grad must not overlap x or y;
 *   - returns FNN_LOSS_OK, or FNN_LOSS_BAD_INPUT / FNN_LOSS_BAD_TARGET with
 *     *bad = the flat index of the first element (row, for cross-entropy)
 *     that is out of range. Then *loss and grad hold unspecified values; the
 *     caller raises. Range checks are fused into the pass, and a label is
 *     checked before it is used as an index.
 *   - NaN is not "out of range": it propagates to the loss.
 *
 * Arrays are contiguous; n = number of elements; reduction is fnn_reduction
 * ('mean' divides by n, or by rows for cross-entropy). n, rows, cols >= 1. */
#ifndef FASTNN_LOSSES_H
#define FASTNN_LOSSES_H
#include "common.h"

#define FNN_DECLARE_LOSSES(real, SFX)                                                        \
    /* mean((x−y)²); grad 2(x−y)/n. Never fails. */                                          \
    int fnn_mse_loss_fused_##SFX(int64_t n, double *loss, int64_t *bad, real *grad,          \
                                 const real *x, const real *y, int reduction);               \
    /* mean(|x−y|); grad sign(x−y)/n (0 at 0). Never fails. */                               \
    int fnn_l1_loss_fused_##SFX(int64_t n, double *loss, int64_t *bad, real *grad,           \
                                const real *x, const real *y, int reduction);                \
    /* −mean(y·max(log x, −100) + (1−y)·max(log1p(−x), −100));                               \
     * grad (x−y)/max((1−x)x, 1e-12)/n. x and y must be in [0, 1]. */                        \
    int fnn_bce_loss_fused_##SFX(int64_t n, double *loss, int64_t *bad, real *grad,          \
                                 const real *x, const real *y, int reduction);               \
    /* mean(max(x,0) − x·y + log1p(exp(−|x|))); grad (sigmoid(x)−y)/n. y in [0, 1]. */       \
    int fnn_bce_logits_loss_fused_##SFX(int64_t n, double *loss, int64_t *bad, real *grad,   \
                                        const real *x, const real *y, int reduction);        \
    /* x: logits [rows, cols]; labels [rows] in [0, cols).                                   \
     * loss_r = (1−ε)(lse_r − x[r,y_r]) + ε(lse_r − mean_c x[r,c]), lse = log Σ_c exp x[r,c]; \
     * grad = (softmax − ((1−ε)·onehot + ε/cols)) / rows ('mean'). */                        \
    int fnn_cross_entropy_fused_##SFX(int64_t rows, int64_t cols, double *loss, int64_t *bad, \
                                      real *grad, const real *x, const int64_t *labels,      \
                                      int reduction, double label_smoothing);                \
    /* Rows [r0, r1) of it when it sums one block (fnn_cross_entropy_one_block): their       \
     * gradient rows and each row's loss term in each[r]; the loss is their sum in row       \
     * order (over rows, for 'mean'). */                                                     \
    int fnn_cross_entropy_rows_##SFX(int64_t r0, int64_t r1, int64_t rows, int64_t cols,    \
                                     double *each, int64_t *bad, real *grad, const real *x, \
                                     const int64_t *labels, int reduction,                   \
                                     double label_smoothing);

/* Whether fnn_cross_entropy_fused sums rows × cols as one block of rows in order. */
int fnn_cross_entropy_one_block(int64_t rows, int64_t cols);

FNN_DECLARE_LOSSES(float, f32)
FNN_DECLARE_LOSSES(double, f64)

#endif
