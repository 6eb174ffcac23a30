/* layers.c — instantiates layers.inc for float and double. */
#include <math.h>
#include "layers.h"

/* Features per column block in the (n, c) reductions: each block is one
 * thread's work, its columns summed over rows in row order. 16 floats are one
 * cache line, so a row of a block is read with one line fetch. */
#define FNN_COL_BLOCK 16

#define real float
#define FNN_T(name) name##_f32
#include "layers.inc"
#undef real
#undef FNN_T

#define real double
#define FNN_T(name) name##_f64
#include "layers.inc"
