/* plan_dw_update.c — dW = dZᵀ·X with the optimizer applied to each finished
 * tile (see plan_internal.h). Placeholder: no product is fused yet. */
#include "plan_internal.h"

int fnn_plan_dw_update_f32(int64_t out, int64_t in, int64_t batch, const float *dz,
                           const float *x, float *w, float *s0, float *s1, float *s2,
                           const fnn_plan_opt *o, fnn_workspace *ws)
{
    (void)out; (void)in; (void)batch; (void)dz; (void)x; (void)w; (void)s0; (void)s1; (void)s2;
    (void)o; (void)ws;
    return 1;
}

int fnn_plan_dw_update_f64(int64_t out, int64_t in, int64_t batch, const double *dz,
                           const double *x, double *w, double *s0, double *s1, double *s2,
                           const fnn_plan_opt *o, fnn_workspace *ws)
{
    (void)out; (void)in; (void)batch; (void)dz; (void)x; (void)w; (void)s0; (void)s1; (void)s2;
    (void)o; (void)ws;
    return 1;
}
