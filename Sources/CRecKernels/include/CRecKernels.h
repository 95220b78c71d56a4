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

/// How many of the `count` floats at `values` (any alignment, little-endian IEEE 754) are NaN or
/// infinite: the check of trained and loaded parameters, fast even in a debug build.
size_t rec_count_nonfinite(const void *values, size_t count);

/// The instruction set the kernels run with on this CPU: "avx2+fma" or "baseline".
const char *rec_kernel_isa(void);

#endif
