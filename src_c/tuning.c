/* tuning.c — fills the tuning table once and parses its environment overrides (tuning.h). */
#include "tuning.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

/* The defaults (tuning.h says why each). Caches are filled from cpu.h at init. */
fnn_tuning_t fnn_tuned = {
    131072,     /* par_min_work */
    4096,       /* reduce_block */
    2048,       /* opt_tile */
    2048,       /* vm_block */
    262144,     /* plan_direct_work */
    2097152,    /* gemm_par_min_work */
    16384,      /* gemm_small_work */
    4,          /* gemm_small_rows */
    16777216,   /* gemm_small_skinny */
    0, 0, 0,    /* gemm_mc, gemm_kc, gemm_nc: from the caches */
    32 * 1024, 1024 * 1024, 32 * 1024 * 1024,  /* l1, l2, l3 */
    1,          /* gemm_schedule: dynamic */
    65536,      /* team_min_work */
    1048576,    /* plan_team_min_work */
    128,        /* team_min_intensity */
    131072,     /* plan_split_min_work */
};
volatile int fnn_tuned_ready = 0;

enum { SRC_DEFAULT, SRC_CPU, SRC_TUNING, SRC_BLOCKS, SRC_SCHEDULE };
static const char *const source_names[] = {"default", "cpu", "FASTNN_TUNING", "FASTNN_GEMM_BLOCKS",
                                           "FASTNN_GEMM_SCHEDULE"};
static const char *const schedule_names[] = {"static", "dynamic", NULL};

#define GIB ((int64_t)1 << 30)
typedef struct {
    const char *name;
    size_t offset;
    int64_t lo, hi, multiple;
    const char *const *names;  /* named values (index = value), or NULL */
    int changes_bits;
} field;

#define F(name, lo, hi, mult, names, bits) {#name, offsetof(fnn_tuning_t, name), lo, hi, mult, names, bits}
static const field fields[] = {
    F(par_min_work, 0, (int64_t)1 << 62, 1, NULL, 0),
    F(reduce_block, 1, GIB, 1, NULL, 1),
    F(opt_tile, 16, GIB, 16, NULL, 0),
    F(vm_block, 1, GIB, 1, NULL, 0),
    F(plan_direct_work, 0, (int64_t)1 << 62, 1, NULL, 1),
    F(gemm_par_min_work, 0, (int64_t)1 << 62, 1, NULL, 0),
    F(gemm_small_work, 0, (int64_t)1 << 62, 1, NULL, 1),
    F(gemm_small_rows, 0, GIB, 1, NULL, 1),
    F(gemm_small_skinny, 0, (int64_t)1 << 62, 1, NULL, 1),
    F(gemm_mc, 0, 1 << 20, 1, NULL, 0),
    F(gemm_kc, 0, 1 << 20, 1, NULL, 1),
    F(gemm_nc, 0, 1 << 20, 1, NULL, 0),
    F(l1, 1024, GIB, 1, NULL, 1),
    F(l2, 1024, 64 * GIB, 1, NULL, 1),
    F(l3, 1024, 1024 * GIB, 1, NULL, 1),
    F(gemm_schedule, 0, 1, 1, schedule_names, 0),
    F(team_min_work, 0, (int64_t)1 << 62, 1, NULL, 0),
    F(plan_team_min_work, 0, (int64_t)1 << 62, 1, NULL, 0),
    F(team_min_intensity, 0, (int64_t)1 << 62, 1, NULL, 0),
    F(plan_split_min_work, 0, (int64_t)1 << 62, 1, NULL, 0),
};
#undef F
#define NFIELDS ((int)(sizeof fields / sizeof fields[0]))
static unsigned char g_source[NFIELDS];

static int64_t *slot(fnn_tuning_t *t, int i) { return (int64_t *)((char *)t + fields[i].offset); }

static int field_of(const char *name, size_t len)
{
    for (int i = 0; i < NFIELDS; i++)
        if (strlen(fields[i].name) == len && strncmp(fields[i].name, name, len) == 0)
            return i;
    return -1;
}

/* Parse one value for field i from s[0..len): a named value, or a decimal integer with an
 * optional K/M/G (binary) suffix. 0 and *out set when valid, -1 otherwise. */
static int parse_value(int i, const char *s, size_t len, int64_t *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, s, len);
    buf[len] = 0;
    if (fields[i].names)
        for (int k = 0; fields[i].names[k]; k++)
            if (strcmp(buf, fields[i].names[k]) == 0) {
                *out = k;
                return 0;
            }
    if (!((buf[0] >= '0' && buf[0] <= '9') || buf[0] == '-' || buf[0] == '+'))
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (errno || end == buf)
        return -1;
    int64_t scale = 1;
    if (*end == 'k' || *end == 'K') scale = (int64_t)1 << 10, end++;
    else if (*end == 'm' || *end == 'M') scale = (int64_t)1 << 20, end++;
    else if (*end == 'g' || *end == 'G') scale = (int64_t)1 << 30, end++;
    if (*end)
        return -1;
    if (v > INT64_MAX / scale || v < INT64_MIN / scale)
        return -1;
    v *= scale;
    const field *f = &fields[i];
    if (v < f->lo || v > f->hi || v % f->multiple)
        return -1;
    *out = v;
    return 0;
}

static void warn_value(const char *env, int i, const char *s, size_t len, int64_t kept)
{
    const field *f = &fields[i];
    fprintf(stderr, "fastnn: %s: %s=%.*s is not valid (expected ", env, f->name, (int)len, s);
    if (f->names)
        fprintf(stderr, "%s or %s", f->names[0], f->names[1]);
    else if (f->multiple > 1)
        fprintf(stderr, "a multiple of %lld in [%lld, %lld]", (long long)f->multiple, (long long)f->lo,
                (long long)f->hi);
    else
        fprintf(stderr, "an integer in [%lld, %lld]", (long long)f->lo, (long long)f->hi);
    fprintf(stderr, "); keeping %lld\n", (long long)kept);
}

/* [s, e) without its leading and trailing blanks. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && (**s == ' ' || **s == '\t')) (*s)++;
    while (*e > *s && ((*e)[-1] == ' ' || (*e)[-1] == '\t')) (*e)--;
}

/* One "key=value" item of FASTNN_TUNING, [p, end): sets the field, or warns. */
static void apply_item(fnn_tuning_t *t, const char *p, const char *end)
{
    const char *eq = memchr(p, '=', (size_t)(end - p));
    const char *k0 = p, *k1 = eq ? eq : end, *v0 = eq ? eq + 1 : end, *v1 = end;
    trim(&k0, &k1);
    trim(&v0, &v1);
    if (k1 == k0 && !eq)
        return;  /* an empty item (",,", a trailing comma) */
    const int i = field_of(k0, (size_t)(k1 - k0));
    int64_t v;
    if (i < 0) {
        fprintf(stderr, "fastnn: FASTNN_TUNING: unknown key '%.*s' ignored (keys:", (int)(k1 - k0), k0);
        for (int j = 0; j < NFIELDS; j++)
            fprintf(stderr, " %s", fields[j].name);
        fprintf(stderr, ")\n");
    } else if (!eq || parse_value(i, v0, (size_t)(v1 - v0), &v) != 0) {
        warn_value("FASTNN_TUNING", i, v0, (size_t)(v1 - v0), *slot(t, i));
    } else {
        *slot(t, i) = v;
        g_source[i] = SRC_TUNING;
    }
}

/* FASTNN_TUNING="key=value,key=value" (',' or ';' between items). */
static void apply_tuning_env(fnn_tuning_t *t, const char *env)
{
    const char *p = env;
    while (*p) {
        const char *end = p;
        while (*end && *end != ',' && *end != ';') end++;
        apply_item(t, p, end);
        p = *end ? end + 1 : end;
    }
}

/* FASTNN_GEMM_BLOCKS="mc,kc,nc" (all positive), the older spelling of gemm_mc/kc/nc. */
static void apply_blocks_env(fnn_tuning_t *t, const char *env)
{
    long mc, kc, nc;
    char tail;
    if (sscanf(env, "%ld,%ld,%ld%c", &mc, &kc, &nc, &tail) == 3 && mc > 0 && kc > 0 && nc > 0 &&
        mc <= (1 << 20) && kc <= (1 << 20) && nc <= (1 << 20)) {
        t->gemm_mc = mc, t->gemm_kc = kc, t->gemm_nc = nc;
        g_source[field_of("gemm_mc", 7)] = g_source[field_of("gemm_kc", 7)] = SRC_BLOCKS;
        g_source[field_of("gemm_nc", 7)] = SRC_BLOCKS;
    } else {
        fprintf(stderr, "fastnn: FASTNN_GEMM_BLOCKS=%s is not \"mc,kc,nc\" (three positive integers "
                        "up to 1048576); blocks from the caches\n", env);
    }
}

const fnn_tuning_t *fnn_tuning_init(void)
{
    /* Racing first callers build the same table; each writes it whole before the flag. */
    fnn_tuning_t t = fnn_tuned;
    memset(g_source, SRC_DEFAULT, sizeof g_source);
    int64_t caches[3];
    fnn_cpu_caches(caches);
    t.l1 = caches[0], t.l2 = caches[1], t.l3 = caches[2];
    g_source[field_of("l1", 2)] = g_source[field_of("l2", 2)] = g_source[field_of("l3", 2)] = SRC_CPU;
    const char *env = getenv("FASTNN_GEMM_BLOCKS");
    if (env && *env)
        apply_blocks_env(&t, env);
    env = getenv("FASTNN_GEMM_SCHEDULE");
    if (env && *env) {
        const int i = field_of("gemm_schedule", 13);
        int64_t v;
        if (parse_value(i, env, strlen(env), &v) == 0) {
            t.gemm_schedule = v;
            g_source[i] = SRC_SCHEDULE;
        } else {
            warn_value("FASTNN_GEMM_SCHEDULE", i, env, strlen(env), t.gemm_schedule);
        }
    }
    env = getenv("FASTNN_TUNING");
    if (env)
        apply_tuning_env(&t, env);
    fnn_tuned = t;
    fnn_tuned_ready = 1;
    return &fnn_tuned;
}

int fnn_tuning_row_at(int i, fnn_tuning_row *out)
{
    const fnn_tuning_t *t = fnn_tuning();
    if (i < 0 || i >= NFIELDS)
        return -1;
    out->name = fields[i].name;
    out->value = *slot((fnn_tuning_t *)t, i);
    out->value_name = fields[i].names ? fields[i].names[out->value] : NULL;
    out->source = source_names[g_source[i]];
    out->changes_bits = fields[i].changes_bits;
    return 0;
}
