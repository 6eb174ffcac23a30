/* plan_dw_update.c — dW = dZᵀ·X with the optimizer applied to each finished
 * tile (plan_internal.h), instantiated for float and double.
 *
 * When K = batch fits one KC block, every MR×NR tile of dW is final after a
 * single micro-kernel call: the driver packs dZᵀ and X as the GEMM does
 * (k-major micro-panels, zero padded), computes the tile into an L1 buffer and
 * updates the matching W tile and its optimizer state from it. dW never
 * reaches memory, and W, m, v are read and written once, in tiles that are in
 * L1 anyway. Threads own whole tiles (a fixed split of the B micro-panels), so
 * every element sees the same operations for any thread count. The tile's
 * values equal those of the unfused product (same packing, same micro-kernel,
 * one K block) and the update is the optimizer's own tile function
 * (optim_internal.h), so its bits are the step functions'. */
#include <math.h>
#include <string.h>
#include "plan_internal.h"
#include "gemm/gemm_internal.h"

/* Products this small run as the plan's direct loops on both paths. */
#define FNN_DWU_MIN_WORK FNN_PLAN_DIRECT_WORK
/* B panels per group: 8 × NR × KC (128 KiB for 16 × 256 floats) stays in L2
 * beside the A block. */
#define FNN_DWU_GROUP 8

#if defined(_MSC_VER)
#define FNN_DWU_ALIGN __declspec(align(64))
#define FNN_DWU_ALIGN_POST
#else
#define FNN_DWU_ALIGN
#define FNN_DWU_ALIGN_POST __attribute__((aligned(64)))
#endif

FNN_INLINE int64_t dwu_min(int64_t a, int64_t b) { return a < b ? a : b; }

#define real float
#define FNN_T(name) name##_f32
#define FNN_UKR_T fnn_ukr_f32
#define FNN_KS_UKR(ks) ((ks)->ukr_f32)
#define FNN_KS_BLOCKS(ks) (&(ks)->f32)
#include "plan_dw_update.inc"
#undef real
#undef FNN_T
#undef FNN_UKR_T
#undef FNN_KS_UKR
#undef FNN_KS_BLOCKS

#define real double
#define FNN_T(name) name##_f64
#define FNN_UKR_T fnn_ukr_f64
#define FNN_KS_UKR(ks) ((ks)->ukr_f64)
#define FNN_KS_BLOCKS(ks) (&(ks)->f64)
#include "plan_dw_update.inc"
