#include "CRecKernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Eight floats: one AVX register, or two SSE/NEON registers on the baseline build.
typedef float v8f __attribute__((vector_size(32)));

// Each kernel is compiled twice on x86-64, once for x86-64-v3 (AVX2 + FMA) and once for the
// baseline; the loader picks one at start-up (function multi-versioning through an ifunc), so one
// binary runs everywhere and uses the wide instructions where the CPU has them.
#if defined(__x86_64__) && defined(__linux__)
#define MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MULTIVERSION
#endif

// Helpers are macros, not functions: a function taking or returning a 32-byte vector would have
// a different calling convention in the AVX2 clone than in the baseline one.

// An unaligned view of 8 floats; factor rows are only 4-byte aligned.
typedef float v8f_unaligned __attribute__((vector_size(32), aligned(4)));
#define LOAD8(p) (*(const v8f_unaligned *)(p))
#define STORE8(p, v) (*(v8f_unaligned *)(p) = (v))
#define SUM8(v) ((((v)[0] + (v)[4]) + ((v)[1] + (v)[5])) + (((v)[2] + (v)[6]) + ((v)[3] + (v)[7])))
#define SPLAT8(x) ((v8f){(x), (x), (x), (x), (x), (x), (x), (x)})
// Four accumulators shorten the dependency chain of fused multiply-adds four times; strides are
// multiples of 8, so up to three vectors remain for the tail.
#define DOT(a, b, stride) ({                                   \
    v8f acc0_ = {0}, acc1_ = {0}, acc2_ = {0}, acc3_ = {0};    \
    size_t f_ = 0;                                             \
    for (; f_ + 32 <= (stride); f_ += 32) {                    \
        acc0_ += LOAD8((a) + f_) * LOAD8((b) + f_);            \
        acc1_ += LOAD8((a) + f_ + 8) * LOAD8((b) + f_ + 8);    \
        acc2_ += LOAD8((a) + f_ + 16) * LOAD8((b) + f_ + 16);  \
        acc3_ += LOAD8((a) + f_ + 24) * LOAD8((b) + f_ + 24);  \
    }                                                          \
    for (; f_ < (stride); f_ += 8) {                           \
        acc1_ += LOAD8((a) + f_) * LOAD8((b) + f_);            \
    }                                                          \
    acc0_ += acc2_;                                            \
    acc1_ += acc3_;                                            \
    acc0_ += acc1_;                                            \
    SUM8(acc0_);                                               \
})

static inline float clip(float value, float low, float high) {
    return value < low ? low : (value > high ? high : value);
}

MULTIVERSION
void rec_sgd_epoch(const int32_t *users, const int32_t *items, const float *ratings, size_t count,
                   float global_mean, float *user_bias, float *item_bias,
                   float *user_factors, float *item_factors, size_t stride,
                   float learning_rate, float regularization) {
    const v8f lr = SPLAT8(learning_rate);
    const v8f reg = SPLAT8(regularization);
    for (size_t n = 0; n < count; n++) {
        const int32_t u = users[n];
        const int32_t i = items[n];
        float *p = user_factors + (size_t)u * stride;
        float *q = item_factors + (size_t)i * stride;
        const float err = ratings[n] - (global_mean + user_bias[u] + item_bias[i] + DOT(p, q, stride));
        user_bias[u] += learning_rate * (err - regularization * user_bias[u]);
        item_bias[i] += learning_rate * (err - regularization * item_bias[i]);
        const v8f e = SPLAT8(err);
        for (size_t f = 0; f < stride; f += 8) {
            const v8f pf = LOAD8(p + f);
            const v8f qf = LOAD8(q + f);
            STORE8(p + f, pf + lr * (e * qf - reg * pf));
            STORE8(q + f, qf + lr * (e * pf - reg * qf));
        }
    }
}

MULTIVERSION
void rec_predict_pairs(const int32_t *users, const int32_t *items, size_t count,
                       float global_mean, const float *user_bias, const float *item_bias,
                       const float *user_factors, const float *item_factors, size_t stride,
                       float low, float high, float *predictions) {
    for (size_t n = 0; n < count; n++) {
        const int32_t u = users[n];
        const int32_t i = items[n];
        float estimate = global_mean;
        if (u >= 0) estimate += user_bias[u];
        if (i >= 0) estimate += item_bias[i];
        if (u >= 0 && i >= 0) {
            estimate += DOT(user_factors + (size_t)u * stride, item_factors + (size_t)i * stride, stride);
        }
        predictions[n] = clip(estimate, low, high);
    }
}

MULTIVERSION
void rec_score_items(const float *item_factors, const float *item_bias, size_t item_count,
                     size_t stride, const float *user_vector, float base, float low, float high,
                     float *scores) {
    for (size_t i = 0; i < item_count; i++) {
        scores[i] = clip(base + item_bias[i] + DOT(item_factors + i * stride, user_vector, stride), low, high);
    }
}

MULTIVERSION
void rec_gram(const float *factors, size_t rows, size_t stride, float *gram) {
    memset(gram, 0, stride * stride * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        const float *y = factors + r * stride;
        for (size_t a = 0; a < stride; a++) {
            const float ya = y[a];
            if (ya == 0) continue;
            const v8f s = SPLAT8(ya);
            float *row = gram + a * stride;
            for (size_t b = 0; b < stride; b += 8) {
                STORE8(row + b, LOAD8(row + b) + s * LOAD8(y + b));
            }
        }
    }
}

// out = sum over a of gw[a] gram[a] + scale * gw + sum over the row's columns n of w[n] y_n: the
// gram's rows (it is symmetric) and the observed rows, weighted, summed with the partial sums in
// registers, up to eight independent vectors of eight at a time. Neither a horizontal sum per
// output (as one dot product per output would need) nor a store per observed row.
#define ROW_SUM_CHUNK(out, gw, scale, w, b_, VECTORS) do {                                 \
    v8f c_[VECTORS];                                                                       \
    for (int j_ = 0; j_ < (VECTORS); j_++) c_[j_] = (v8f){0};                              \
    for (size_t a_ = 0; a_ < stride; a_++) {                                               \
        const v8f s_ = SPLAT8((gw)[a_]);                                                   \
        const float *g_ = gram + a_ * stride + (b_);                                       \
        for (int j_ = 0; j_ < (VECTORS); j_++) c_[j_] += s_ * LOAD8(g_ + 8 * j_);          \
    }                                                                                      \
    for (int32_t n_ = start; n_ < stop; n_++) {                                            \
        const v8f s_ = SPLAT8((w)[n_ - start]);                                            \
        const float *y_ = y + (size_t)columns[n_] * stride + (b_);                         \
        for (int j_ = 0; j_ < (VECTORS); j_++) c_[j_] += s_ * LOAD8(y_ + 8 * j_);          \
    }                                                                                      \
    const v8f r_ = SPLAT8(scale);                                                          \
    for (int j_ = 0; j_ < (VECTORS); j_++)                                                 \
        STORE8((out) + (b_) + 8 * j_, c_[j_] + r_ * LOAD8((gw) + (b_) + 8 * j_));          \
} while (0)

#define ROW_SUM(out, gw, scale, w) do {                                                    \
    size_t b_ = 0;                                                                         \
    for (; b_ + 64 <= stride; b_ += 64) ROW_SUM_CHUNK(out, gw, scale, w, b_, 8);           \
    for (; b_ + 32 <= stride; b_ += 32) ROW_SUM_CHUNK(out, gw, scale, w, b_, 4);           \
    for (; b_ + 16 <= stride; b_ += 16) ROW_SUM_CHUNK(out, gw, scale, w, b_, 2);           \
    for (; b_ < stride; b_ += 8) ROW_SUM_CHUNK(out, gw, scale, w, b_, 1);                  \
} while (0)

MULTIVERSION
void rec_als_solve_rows(const int32_t *offsets, const int32_t *columns, const float *confidence,
                        size_t begin, size_t end, float *x, const float *y, size_t stride,
                        const float *gram, float regularization, int cg_steps) {
    size_t longest = 1;
    for (size_t row = begin; row < end; row++) {
        const size_t count = (size_t)(offsets[row + 1] - offsets[row]);
        if (count > longest) longest = count;
    }
    // r, p, Ap, -x, and one weight per observed column of the longest row.
    float *scratch = malloc((4 * stride + longest) * sizeof(float));
    if (scratch == NULL) return;
    float *r = scratch, *p = scratch + stride, *ap = scratch + 2 * stride, *minus_x = scratch + 3 * stride;
    float *w = scratch + 4 * stride;
    for (size_t row = begin; row < end; row++) {
        float *xr = x + row * stride;
        const int32_t start = offsets[row], stop = offsets[row + 1];
        // r = b - A x with b = sum of c y_c and A = gram + λI + sum of (c - 1) y_c y_cᵀ:
        // r = -(gram + λI) x + sum of (c - (c - 1) y_c . x) y_c.
        for (int32_t n = start; n < stop; n++) {
            const float c = confidence[n];
            w[n - start] = c - (c - 1) * DOT(y + (size_t)columns[n] * stride, xr, stride);
        }
        for (size_t f = 0; f < stride; f += 8) STORE8(minus_x + f, -LOAD8(xr + f));
        ROW_SUM(r, minus_x, regularization, w);
        memcpy(p, r, stride * sizeof(float));
        float rs_old = DOT(r, r, stride);
        for (int step = 0; step < cg_steps && rs_old > 1e-20f; step++) {
            // Ap = (gram + λI) p + sum of (c - 1) (y_c . p) y_c.
            for (int32_t n = start; n < stop; n++) {
                w[n - start] = (confidence[n] - 1) * DOT(y + (size_t)columns[n] * stride, p, stride);
            }
            ROW_SUM(ap, p, regularization, w);
            const float pap = DOT(p, ap, stride);
            if (!(pap > 0)) break;
            const float alpha = rs_old / pap;
            const v8f va = SPLAT8(alpha);
            for (size_t f = 0; f < stride; f += 8) {
                STORE8(xr + f, LOAD8(xr + f) + va * LOAD8(p + f));
                STORE8(r + f, LOAD8(r + f) - va * LOAD8(ap + f));
            }
            const float rs_new = DOT(r, r, stride);
            const v8f beta = SPLAT8(rs_new / rs_old);
            for (size_t f = 0; f < stride; f += 8) STORE8(p + f, LOAD8(r + f) + beta * LOAD8(p + f));
            rs_old = rs_new;
        }
    }
    free(scratch);
}

// Four doubles: one AVX register. Rows of the n x n matrices are only 8-byte aligned.
typedef double v4d __attribute__((vector_size(32)));
typedef double v4d_unaligned __attribute__((vector_size(32), aligned(8)));
#define LOAD4D(p) (*(const v4d_unaligned *)(p))
#define STORE4D(p, v) (*(v4d_unaligned *)(p) = (v))
#define SPLAT4D(x) ((v4d){(x), (x), (x), (x)})
// The dot product of `m` doubles (any m), two accumulators.
#define DOTD(a, b, m) ({                                          \
    v4d s0_ = {0}, s1_ = {0};                                     \
    size_t k_ = 0;                                                \
    for (; k_ + 8 <= (m); k_ += 8) {                              \
        s0_ += LOAD4D((a) + k_) * LOAD4D((b) + k_);               \
        s1_ += LOAD4D((a) + k_ + 4) * LOAD4D((b) + k_ + 4);       \
    }                                                             \
    s0_ += s1_;                                                   \
    double t_ = (s0_[0] + s0_[2]) + (s0_[1] + s0_[3]);            \
    for (; k_ < (m); k_++) t_ += (a)[k_] * (b)[k_];               \
    t_;                                                           \
})

void rec_ease_gram_rows(const int32_t *offsets, const int32_t *items, size_t users, size_t n,
                        size_t begin, size_t end, double *gram) {
    for (size_t u = 0; u < users; u++) {
        const int32_t start = offsets[u], stop = offsets[u + 1];
        for (int32_t x = start; x < stop; x++) {
            const size_t i = (size_t)items[x];
            if (i < begin) continue;
            if (i >= end) break; // items are ascending
            double *row = gram + i * n;
            for (int32_t y = start; y <= x; y++) row[items[y]] += 1;
        }
    }
}

// Cholesky–Banachiewicz by blocks of rows: L[i][j] = (A[i][j] - L[i][0..<j] . L[j][0..<j]) / L[j][j].
// Row j's prefix is read once for four rows of the range at a time (four independent sums), and the
// rows of the range stay in cache.
MULTIVERSION
void rec_cholesky_panel(double *a, size_t n, size_t block, size_t begin, size_t end) {
    for (size_t j = 0; j < block; j++) {
        const double *lj = a + j * n;
        size_t i = begin;
        for (; i + 4 <= end; i += 4) {
            double *l0 = a + i * n, *l1 = l0 + n, *l2 = l1 + n, *l3 = l2 + n;
            v4d s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
            size_t k = 0;
            for (; k + 4 <= j; k += 4) {
                const v4d q = LOAD4D(lj + k);
                s0 += LOAD4D(l0 + k) * q;
                s1 += LOAD4D(l1 + k) * q;
                s2 += LOAD4D(l2 + k) * q;
                s3 += LOAD4D(l3 + k) * q;
            }
            double t0 = (s0[0] + s0[2]) + (s0[1] + s0[3]), t1 = (s1[0] + s1[2]) + (s1[1] + s1[3]);
            double t2 = (s2[0] + s2[2]) + (s2[1] + s2[3]), t3 = (s3[0] + s3[2]) + (s3[1] + s3[3]);
            for (; k < j; k++) {
                t0 += l0[k] * lj[k];
                t1 += l1[k] * lj[k];
                t2 += l2[k] * lj[k];
                t3 += l3[k] * lj[k];
            }
            l0[j] = (l0[j] - t0) / lj[j];
            l1[j] = (l1[j] - t1) / lj[j];
            l2[j] = (l2[j] - t2) / lj[j];
            l3[j] = (l3[j] - t3) / lj[j];
        }
        for (; i < end; i++) {
            double *li = a + i * n;
            li[j] = (li[j] - DOTD(li, lj, j)) / lj[j];
        }
    }
}

MULTIVERSION
size_t rec_cholesky_diagonal(double *a, size_t n, size_t block, size_t end) {
    for (size_t i = block; i < end; i++) {
        double *li = a + i * n;
        for (size_t j = block; j < i; j++) {
            const double *lj = a + j * n;
            li[j] = (li[j] - DOTD(li, lj, j)) / lj[j];
        }
        const double pivot = li[i] - DOTD(li, li, i);
        if (!(pivot > 0) || !isfinite(pivot)) return i + 1;
        li[i] = sqrt(pivot);
    }
    return 0;
}

// Sixteen right-hand sides at once (the unit vectors of sixteen consecutive rows), as four vectors
// of four: each row of L is read once for the sixteen, and the sums of two rows of L at a time are
// eight independent chains.
#define INVERSE_BLOCK 16

MULTIVERSION
void rec_cholesky_inverse_rows(double *a, size_t n, size_t begin, size_t end, double *diagonal) {
    double *y = malloc(n * INVERSE_BLOCK * sizeof(double));
    if (y == NULL) {
        for (size_t row = begin; row < end; row++) diagonal[row] = NAN; // the caller sees a non-finite weight
        return;
    }
    for (size_t c = begin; c < end; c += INVERSE_BLOCK) {
        const size_t lanes = end - c < INVERSE_BLOCK ? end - c : INVERSE_BLOCK;
        // Forward: L y = e. Rows before c are zero, and only the rows from c on are needed: P is
        // symmetric, so row c of P's upper triangle is its column c from the diagonal down.
        for (size_t i = c; i < n; i++) {
            const double *li = a + i * n;
            v4d s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, u0 = {0}, u1 = {0}, u2 = {0}, u3 = {0};
            size_t k = c;
            for (; k + 2 <= i; k += 2) {
                const double *yk = y + (k - c) * INVERSE_BLOCK;
                const v4d l = SPLAT4D(li[k]), m = SPLAT4D(li[k + 1]);
                s0 += l * LOAD4D(yk);
                s1 += l * LOAD4D(yk + 4);
                s2 += l * LOAD4D(yk + 8);
                s3 += l * LOAD4D(yk + 12);
                u0 += m * LOAD4D(yk + INVERSE_BLOCK);
                u1 += m * LOAD4D(yk + INVERSE_BLOCK + 4);
                u2 += m * LOAD4D(yk + INVERSE_BLOCK + 8);
                u3 += m * LOAD4D(yk + INVERSE_BLOCK + 12);
            }
            for (; k < i; k++) {
                const double *yk = y + (k - c) * INVERSE_BLOCK;
                const v4d l = SPLAT4D(li[k]);
                s0 += l * LOAD4D(yk);
                s1 += l * LOAD4D(yk + 4);
                s2 += l * LOAD4D(yk + 8);
                s3 += l * LOAD4D(yk + 12);
            }
            double unit[INVERSE_BLOCK] = {0};
            if (i - c < lanes) unit[i - c] = 1;
            const v4d d = SPLAT4D(li[i]);
            double *yi = y + (i - c) * INVERSE_BLOCK;
            STORE4D(yi, (LOAD4D(unit) - s0 - u0) / d);
            STORE4D(yi + 4, (LOAD4D(unit + 4) - s1 - u1) / d);
            STORE4D(yi + 8, (LOAD4D(unit + 8) - s2 - u2) / d);
            STORE4D(yi + 12, (LOAD4D(unit + 12) - s3 - u3) / d);
        }
        // Back: Lᵀ p = y, by columns of Lᵀ (rows of L), from the last row up to c.
        for (size_t i = n; i-- > c;) {
            const double *li = a + i * n;
            double *yi = y + (i - c) * INVERSE_BLOCK;
            const v4d d = SPLAT4D(li[i]);
            const v4d p0 = LOAD4D(yi) / d, p1 = LOAD4D(yi + 4) / d, p2 = LOAD4D(yi + 8) / d, p3 = LOAD4D(yi + 12) / d;
            STORE4D(yi, p0);
            STORE4D(yi + 4, p1);
            STORE4D(yi + 8, p2);
            STORE4D(yi + 12, p3);
            for (size_t k = c; k < i; k++) {
                double *yk = y + (k - c) * INVERSE_BLOCK;
                const v4d l = SPLAT4D(li[k]);
                STORE4D(yk, LOAD4D(yk) - l * p0);
                STORE4D(yk + 4, LOAD4D(yk + 4) - l * p1);
                STORE4D(yk + 8, LOAD4D(yk + 8) - l * p2);
                STORE4D(yk + 12, LOAD4D(yk + 12) - l * p3);
            }
        }
        for (size_t lane = 0; lane < lanes; lane++) {
            const size_t row = c + lane;
            diagonal[row] = y[(row - c) * INVERSE_BLOCK + lane];
            double *upper = a + row * n;
            for (size_t i = row + 1; i < n; i++) upper[i] = y[(i - c) * INVERSE_BLOCK + lane];
        }
    }
    free(y);
}

void rec_ease_weights_rows(const double *a, const double *diagonal, size_t n, size_t begin,
                           size_t end, float *weights) {
    for (size_t i = begin; i < end; i++) {
        float *wi = weights + i * n;
        for (size_t j = 0; j < i; j++) wi[j] = (float)(-a[j * n + i] / diagonal[j]);
        wi[i] = 0;
        const double *upper = a + i * n;
        for (size_t j = i + 1; j < n; j++) wi[j] = (float)(-upper[j] / diagonal[j]);
    }
}

MULTIVERSION
void rec_ease_scores(const float *weights, size_t n, const int32_t *rated, size_t count,
                     float *scores) {
    memset(scores, 0, n * sizeof(float));
    for (size_t x = 0; x < count; x++) {
        const float *row = weights + (size_t)rated[x] * n;
        size_t f = 0;
        for (; f + 8 <= n; f += 8) STORE8(scores + f, LOAD8(scores + f) + LOAD8(row + f));
        for (; f < n; f++) scores[f] += row[f];
    }
}

size_t rec_count_nonfinite(const void *values, size_t count) {
    const unsigned char *bytes = values;
    size_t nonfinite = 0;
    for (size_t n = 0; n < count; n++) {
        uint32_t bits;
        memcpy(&bits, bytes + 4 * n, 4);
        // All exponent bits set: infinity or NaN.
        nonfinite += (bits & 0x7f800000u) == 0x7f800000u;
    }
    return nonfinite;
}

const char *rec_kernel_isa(void) {
#if defined(__x86_64__) && defined(__linux__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        return "avx2+fma";
    }
#endif
    return "baseline";
}
