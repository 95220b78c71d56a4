#ifndef CRECKERNELS_H
#define CRECKERNELS_H

#include <stddef.h>
#include <stdint.h>

/// Factor matrices are row-major with a row stride that is a multiple of 8 floats; the padding
/// floats are zero and stay zero under every update.

/// One epoch of Surprise's biased SVD stochastic gradient descent over `count` ratings, in order.
void rec_sgd_epoch(const int32_t *users, const int32_t *items, const float *ratings, size_t count,
                   float global_mean, float *user_bias, float *item_bias,
                   float *user_factors, float *item_factors, size_t stride,
                   float learning_rate, float regularization);

/// Predictions for `count` (user, item) pairs; an index below zero is an unknown user or item
/// whose terms are dropped from the sum. Results are clipped to [low, high].
void rec_predict_pairs(const int32_t *users, const int32_t *items, size_t count,
                       float global_mean, const float *user_bias, const float *item_bias,
                       const float *user_factors, const float *item_factors, size_t stride,
                       float low, float high, float *predictions);

/// Scores of every item for one user vector: base + item_bias[i] + q_i . p, clipped to [low, high].
void rec_score_items(const float *item_factors, const float *item_bias, size_t item_count,
                     size_t stride, const float *user_vector, float base, float low, float high,
                     float *scores);

/// The Gram matrix `Yᵀ Y` of `rows` factor rows, written as `stride * stride` floats (row-major;
/// padding rows and columns are zero).
void rec_gram(const float *factors, size_t rows, size_t stride, float *gram);

/// Implicit ALS (Hu, Koren & Volinsky 2008) for rows `begin..<end` of `x`, each by `cg_steps` steps
/// of conjugate gradient from its current value (Takács, Pilászy & Tikk 2011) toward the solution
/// of `(YᵀY + Yᵀ(C_r − I)Y + λI) x_r = Yᵀ C_r 1`. Row r's observed columns are
/// `columns[offsets[r]..<offsets[r + 1]]` with confidences `confidence[...]` (each at least 1).
/// Rows of `x` in the range are only written by this call, so disjoint ranges may run in parallel.
void rec_als_solve_rows(const int32_t *offsets, const int32_t *columns, const float *confidence,
                        size_t begin, size_t end, float *x, const float *y, size_t stride,
                        const float *gram, float regularization, int cg_steps);

/// EASE (Steck 2019), step 1: rows `begin..<end` of the lower triangle (columns 0...row) of the
/// item Gram matrix `XᵀX` of a binary user-item matrix, into `gram` (`n * n` doubles, row-major,
/// zeroed by the caller). User u's items are `items[offsets[u]..<offsets[u + 1]]`, ascending and
/// distinct. Rows in the range are only written by this call.
void rec_ease_gram_rows(const int32_t *offsets, const int32_t *items, size_t users, size_t n,
                        size_t begin, size_t end, double *gram);

/// Cholesky factorisation `A = L Lᵀ` of a symmetric positive definite `n * n` matrix (row-major,
/// lower triangle read and overwritten by L), by blocks of rows. Step a: for rows
/// `begin..<end` of the block that starts at row `block`, the columns before `block` (every row
/// before `block` must be final). Disjoint row ranges of one block may run in parallel.
void rec_cholesky_panel(double *a, size_t n, size_t block, size_t begin, size_t end);

/// Cholesky, step b: the columns `block...row` of rows `block..<end` (after step a for them).
/// Returns 0, or the 1-based row whose pivot is not positive (the matrix is not positive definite).
size_t rec_cholesky_diagonal(double *a, size_t n, size_t block, size_t end);

/// The inverse `P = A⁻¹` from the factor L in the lower triangle of `a`: rows `begin..<end` of
/// P's strict upper triangle are written into the strict upper triangle of `a` (which L leaves
/// free), and `diagonal[row] = P[row][row]`. Disjoint row ranges may run in parallel.
void rec_cholesky_inverse_rows(double *a, size_t n, size_t begin, size_t end, double *diagonal);

/// EASE, last step: rows `begin..<end` of `B = I - P diagMat(1 / diag(P))` with `diag(B) = 0`, i.e.
/// `B[i][j] = -P[i][j] / P[j][j]`, from P as `rec_cholesky_inverse_rows` leaves it, into `weights`
/// (`n * n` floats, row-major).
void rec_ease_weights_rows(const double *a, const double *diagonal, size_t n, size_t begin,
                           size_t end, float *weights);

/// EASE scores of every item for a user who interacted with `count` items: the sum of their rows
/// of `weights` (`n * n`), into `scores` (`n` floats).
void rec_ease_scores(const float *weights, size_t n, const int32_t *rated, size_t count,
                     float *scores);

/// How many of the `count` floats at `values` (any alignment, little-endian IEEE 754) are NaN or
/// infinite: the check of trained and loaded parameters, fast even in a debug build.
size_t rec_count_nonfinite(const void *values, size_t count);

/// The instruction set the kernels run with on this CPU: "avx2+fma" or "baseline".
const char *rec_kernel_isa(void);

#endif
