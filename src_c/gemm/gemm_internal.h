/* gemm_internal.h — what the driver, the CPU dispatch and the micro-kernels
 * share. Not part of the public API. */
#ifndef FASTNN_GEMM_INTERNAL_H
#define FASTNN_GEMM_INTERNAL_H

#include "gemm.h"

/* ISA-specific functions carry their own target attribute, so the file is
 * compiled for the baseline architecture and the kernels are only called
 * after CPUID says they can run. Other compilers/architectures build the
 * portable kernels only. */
#if FNN_HAVE_X86_KERNELS /* cpu.h */
#define FNN_TARGET_AVX2 __attribute__((target("avx2,fma")))
#define FNN_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,fma")))
#endif

/* The epilogue the micro-kernel applies itself on the last K block: only the
 * cheap activations (none, ReLU, leaky ReLU), bias and a row-major z. The
 * driver sends everything else through a tile in L1 and the scalar merge. */
typedef struct {
    const void *bias;   /* NR entries for this tile, or NULL */
    void *z;            /* pre-activation tile, row stride ldz, unit column stride; or NULL */
    int64_t ldz;
    int act;            /* FNN_ACT_NONE, FNN_ACT_RELU or FNN_ACT_LEAKY_RELU */
    double param;
} fnn_ukr_ep;

/* Micro-kernel contract (one signature for every ISA and type):
 *   acc[MR,NR] = Σ_p a[p*MR + i] · b[p*NR + j]     (packed, zero-padded panels)
 *   c[i*ldc + j] = alpha·acc + beta·c   (c not read when beta == 0), then ep.
 * The tile is always full: a ragged panel takes the smallest tile shape that
 * holds it (fnn_blocks), and the part of that tile past C's edge goes through
 * a temporary in the driver. */
typedef void (*fnn_ukr_f32)(int64_t k, const float *a, const float *b, float *c, int64_t ldc,
                            float alpha, float beta, const fnn_ukr_ep *ep);
typedef void (*fnn_ukr_f64)(int64_t k, const double *a, const double *b, double *c, int64_t ldc,
                            double alpha, double beta, const fnn_ukr_ep *ep);

/* The same kernel reading A unpacked, row-major: a[i*lda + p] (lda != 0). */
typedef void (*fnn_ukr_direct_f32)(int64_t k, const float *a, int64_t lda, const float *b, float *c,
                                   int64_t ldc, float alpha, float beta, const fnn_ukr_ep *ep);
typedef void (*fnn_ukr_direct_f64)(int64_t k, const double *a, int64_t lda, const double *b, double *c,
                                   int64_t ldc, double alpha, double beta, const fnn_ukr_ep *ep);

/* Blocked dot products for products too narrow in N for the micro-kernel
 * (dot_avx2.c): s[i*lds + j] = Σ_p a[i*lda + p]·b[j*ldb + p], A's rows and
 * B's columns contiguous along k. Each element's summation order depends on
 * k only. */
typedef void (*fnn_dot_f32)(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                            int64_t ldb, float *s, int64_t lds);
typedef void (*fnn_dot_f64)(int64_t m, int64_t n, int64_t k, const double *a, int64_t lda, const double *b,
                            int64_t ldb, double *s, int64_t lds);

/* Products below FNN_GEMM_PAR_MIN_WORK (tuning.h) multiply-adds run on one
 * thread. Waking and joining a sleeping team costs 15–35 µs on a KVM guest
 * (see FNN_PAR_FOR_COST in common.h), what one core does in ~2^20
 * multiply-adds; a split saves half the product, so it pays from about twice
 * that. */

/* Largest MR·NR of any kernel (the driver's edge-tile buffer). */
#define FNN_UKR_MAX_TILE 512

/* Tile sizes of a kernel set: mw[0] = mr > mw[1] > … heights and nw[0] = nr
 * > nw[1] > … widths (nmw, nnw of them). A product's ragged last panel of A
 * (of B) is packed at the smallest height (width) that holds it and run by the
 * kernel of that shape, instead of a full tile of zeros: 100 columns are
 * 32+32+32+8, not 4×32. Every shape sums each element over k in the same
 * order, so the shape never changes a bit. */
#define FNN_UKR_SHAPES 3
typedef struct {
    int64_t mr, nr, mc, kc, nc;
    int nmw, nnw;
    int64_t mw[FNN_UKR_SHAPES], nw[FNN_UKR_SHAPES];
} fnn_blocks;

/* Index of the smallest of w[0] > w[1] > … (n of them) that holds r ≤ w[0]. */
FNN_INLINE int fnn_tile_shape(const int64_t *w, int n, int64_t r)
{
    int c = 0;
    while (c + 1 < n && w[c + 1] >= r)
        c++;
    return c;
}

/* The height (width) the last panel of `total` rows (columns) is packed at. */
FNN_INLINE int64_t fnn_last_panel(const int64_t *w, int n, int64_t total)
{
    const int64_t r = total % w[0];
    return r ? w[fnn_tile_shape(w, n, r)] : w[0];
}

/* Packing helper: dst[p*W + i] = src[i*ld + p] for i < W, p < kc — W
 * unit-stride lines read side by side (row-major A panels, transposed B
 * panels). SIMD versions may write up to 8 elements past the end of the
 * W×kc block (the packing buffers keep that slack; later panels overwrite it). */
typedef void (*fnn_interleave_f32)(int64_t W, int64_t kc, const float *src, int64_t ld, float *dst);
typedef void (*fnn_interleave_f64)(int64_t W, int64_t kc, const double *src, int64_t ld, double *dst);

typedef struct {
    int id;               /* FNN_KERNELS_* */
    const char *name;
    fnn_ukr_f32 ukr_f32;
    fnn_ukr_f64 ukr_f64;
    fnn_ukr_direct_f32 ukr_direct_f32;
    fnn_ukr_direct_f64 ukr_direct_f64;
    /* [a][b]: the kernel of an mw[a] × nw[b] tile ([0][0]: the ones above). */
    fnn_ukr_f32 ukw_f32[FNN_UKR_SHAPES][FNN_UKR_SHAPES];
    fnn_ukr_f64 ukw_f64[FNN_UKR_SHAPES][FNN_UKR_SHAPES];
    fnn_ukr_direct_f32 ukdw_f32[FNN_UKR_SHAPES][FNN_UKR_SHAPES];
    fnn_ukr_direct_f64 ukdw_f64[FNN_UKR_SHAPES][FNN_UKR_SHAPES];
    fnn_interleave_f32 interleave_f32;  /* NULL: the portable loop */
    fnn_interleave_f64 interleave_f64;
    fnn_dot_f32 dot_f32;                /* NULL: narrow products use the micro-kernel */
    fnn_dot_f64 dot_f64;
    fnn_blocks f32, f64;  /* MR, NR fixed by the kernel; MC, KC, NC from the caches */
} fnn_kernel_set;

/* Pack an mc×kc block of A into the active set's MR-row micro-panels
 * (dst[q·MR·kc + p·MR + i], last panel zero-padded), or a kc×nc block of B
 * into NR-column panels (dst[q·NR·kc + p·NR + j]), as the GEMM driver does.
 * dst needs 64 bytes of slack past the block (SIMD packers). */
void fnn_gemm_pack_a_f32(int64_t mc, int64_t kc, const float *a, int64_t rs_a, int64_t cs_a, float *dst);
void fnn_gemm_pack_a_f64(int64_t mc, int64_t kc, const double *a, int64_t rs_a, int64_t cs_a, double *dst);
void fnn_gemm_pack_b_f32(int64_t kc, int64_t nc, const float *b, int64_t rs_b, int64_t cs_b, float *dst);
void fnn_gemm_pack_b_f64(int64_t kc, int64_t nc, const double *b, int64_t rs_b, int64_t cs_b, double *dst);

/* A kernel set's tile shapes (mc, kc, nc are sized later, from the caches),
 * with ukr_* and ukr_direct_* taken from the [0][0] entries of its filled
 * shape tables. */
void fnn_kernel_set_shapes(fnn_kernel_set *ks, fnn_blocks f32, fnn_blocks f64);

/* The active set (initialised on first call). */
const fnn_kernel_set *fnn_gemm_active(void);

/* Kernel definitions per ISA: fill ukr_* and mr/nr. */
void fnn_kernels_portable(fnn_kernel_set *ks);
#if FNN_HAVE_X86_KERNELS
void fnn_interleave_avx2_f32(int64_t W, int64_t kc, const float *src, int64_t ld, float *dst);
void fnn_interleave_avx2_f64(int64_t W, int64_t kc, const double *src, int64_t ld, double *dst);
void fnn_kernels_avx2(fnn_kernel_set *ks);
void fnn_dot_avx2_f32(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                      int64_t ldb, float *s, int64_t lds);
void fnn_dot_avx2_f64(int64_t m, int64_t n, int64_t k, const double *a, int64_t lda, const double *b,
                      int64_t ldb, double *s, int64_t lds);
int fnn_gemm_selftest_packers(void);
void fnn_kernels_avx512(fnn_kernel_set *ks);
#endif


/* Tile scheduling (schedule.c). Dynamic claiming needs OpenMP threads and
 * the GCC/Clang atomic builtins; elsewhere products run static. */
#if defined(_OPENMP) && (defined(__GNUC__) || defined(__clang__))
#define FNN_HAVE_GEMM_DYNAMIC 1
#else
#define FNN_HAVE_GEMM_DYNAMIC 0
#endif
#define FNN_SCHED_STATIC 0
#define FNN_SCHED_DYNAMIC 1
/* The schedule products use now (FNN_SCHED_*). */
int fnn_gemm_schedule(void);
/* Test hook (fnn_gemm_test_delay): thread fnn_gemm_delay_tid sleeps
 * fnn_gemm_delay_us before each tile; zero cost while fnn_gemm_delay_us is 0. */
extern int fnn_gemm_delay_tid;
extern int64_t fnn_gemm_delay_us;
void fnn_gemm_delay_now(void);
#define FNN_GEMM_TEST_DELAY(tid)                                                  \
    do {                                                                          \
        if (fnn_gemm_delay_us && (tid) == fnn_gemm_delay_tid)                     \
            fnn_gemm_delay_now();                                                 \
    } while (0)
#if FNN_HAVE_GEMM_DYNAMIC
#define FNN_FETCH_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define FNN_LOAD_ACQ(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define FNN_STORE_REL(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define FNN_CAS(p, expect, v) \
    __atomic_compare_exchange_n((p), (expect), (v), 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)
#endif
/* Packed B held whole for a dynamic product up to this many bytes; larger
 * B run static. */
#define FNN_GEMM_DYN_B_MAX ((size_t)32 << 20)
/* Per-thread A kept packed over all K blocks of one M block (reused by the
 * thread's next tile in the same rows) up to this many bytes. */
#define FNN_GEMM_DYN_A_MAX ((size_t)4 << 20)

#endif
