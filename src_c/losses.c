/* losses.c — instantiates losses.inc for float and double.
 *
 * Per-element loss terms and gradients are computed in double for both types
 * (one rounding of the gradient at the end): the loss is reported to the
 * user and compared across runs, so its accuracy matters more than the few
 * extra cycles per element of double transcendental functions. */
#include <math.h>
#include "losses.h"

/* How many reduction blocks are processed per parallel region: their sums
 * live on the stack (no allocation) and are added in index order after the
 * region, so the total never depends on the thread count. */
#define FNN_LOSS_BATCH 256

/* Element-wise loss kinds (private to this file). */
enum { LOSS_MSE = 0, LOSS_L1 = 1, LOSS_BCE = 2, LOSS_BCE_LOGITS = 3 };

#define real float
#define FNN_T(name) name##_f32
#include "losses.inc"
#undef real
#undef FNN_T

#define real double
#define FNN_T(name) name##_f64
#include "losses.inc"
