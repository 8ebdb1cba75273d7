/*
 * ppbfl native field kernels: arithmetic in GF(p) on uint64 arrays, p = 2^61 - 1 or a prime
 * below 2^32. Same contracts as ppbfl/field/numba_kernels.py: inputs reduced into [0, p),
 * outputs fully reduced, work on the half-open index range [lo, hi) so the caller can split a
 * call over threads. Element-wise kernels return the largest input element they read, so the
 * caller can check "< p" without a second pass (inputs >= p give garbage, never UB).
 *
 * 2D arrays are row-major and C-contiguous: rows (k, d) has element (i, j) at rows[i * d + j].
 *
 * The 61-bit product uses unsigned __int128 where the compiler has it (x86_64, aarch64) and a
 * portable 32-bit split otherwise (32-bit ARM); PPBFL_PORTABLE forces the split path.
 */
#ifndef PPBFL_FIELD_H
#define PPBFL_FIELD_H

#include <stddef.h>
#include <stdint.h>

uint64_t pf_add_range(const uint64_t *a, const uint64_t *b, uint64_t *out, uint64_t p, size_t lo, size_t hi);
uint64_t pf_sub_range(const uint64_t *a, const uint64_t *b, uint64_t *out, uint64_t p, size_t lo, size_t hi);
uint64_t pf_neg_range(const uint64_t *a, uint64_t *out, uint64_t p, size_t lo, size_t hi);
uint64_t pf_mul_range(const uint64_t *a, const uint64_t *b, uint64_t *out, uint64_t p, size_t lo, size_t hi);
uint64_t pf_muladd_range(const uint64_t *a, const uint64_t *b, const uint64_t *c, uint64_t *out, uint64_t p,
                         size_t lo, size_t hi);
uint64_t pf_scalar_mul_range(const uint64_t *a, uint64_t s, uint64_t *out, uint64_t p, size_t lo, size_t hi);
/* returns sum a[i] b[i] mod p over [lo, hi) (hi - lo < 2^32); *top receives the largest input */
uint64_t pf_dot_range(const uint64_t *a, const uint64_t *b, uint64_t p, size_t lo, size_t hi, uint64_t *top);
/* out[j] = sum_i weights[i] rows[i, j]; rows (k, d); returns the largest element of rows read */
uint64_t pf_weighted_rowsum_range(const uint64_t *weights, size_t k, const uint64_t *rows, size_t d,
                                  uint64_t *out, uint64_t p, size_t lo, size_t hi);
/* the same over k separate rows: rows[i] points at row i (at least hi elements) */
uint64_t pf_weighted_rowsum_rows_range(const uint64_t *weights, size_t k, const uint64_t *const *rows,
                                       uint64_t *out, uint64_t p, size_t lo, size_t hi);
/* one pass over k separate rows for columns [lo, hi) (hi - lo < 2^32): sums is (3, k) with
 * sums[i] = <row_i, a>, sums[k + i] = <row_i, b>, sums[2k + i] = <row_i, row_i> (0 unless
 * squares); returns the largest element of the rows, a and b read */
uint64_t pf_row_dots_range(const uint64_t *const *rows, size_t k, const uint64_t *a, const uint64_t *b,
                           int squares, uint64_t *sums, uint64_t p, size_t lo, size_t hi);
/* the same with a fourth vector c: sums is (4, k), sums[3k + i] = <row_i, c>; returns the largest
 * element of the rows, a, b and c read */
uint64_t pf_row_dots4_range(const uint64_t *const *rows, size_t k, const uint64_t *a, const uint64_t *b,
                            const uint64_t *c, int squares, uint64_t *sums, uint64_t p, size_t lo, size_t hi);
/* out[r, j] = sum_i matrix[r, i] rows[i, j]; matrix (m, k), rows (k, d), out (m, d) */
void pf_matmul_range(const uint64_t *matrix, size_t m, size_t k, const uint64_t *rows, size_t d, uint64_t *out,
                     uint64_t p, size_t lo, size_t hi);
/* Shamir evaluation for block columns c in [lo, hi), j = col0 + c:
 * out[i, j] = secret[j] + sum_{k=1}^{degree} coeffs[k-1, c] points[i]^k; coeffs (degree, width), out (n, d) */
void pf_horner_share_range(const uint64_t *secret, const uint64_t *coeffs, size_t degree, size_t width,
                           const uint64_t *points, size_t n, uint64_t *out, size_t d, uint64_t p, size_t col0,
                           size_t lo, size_t hi);

/* Ternary projections of the input-validity check: R[j, i] = mask_j[i] (sign[i] ? -1 : 1), bit strings
 * of 8 ceil(d / 64) bytes (row_bytes), bit i = bit i % 8 of byte i / 8. The stream holds the sign
 * string, then the k mask strings.
 * prepare: h_i = sign[i] ? -g_i : g_i; returns 1 and writes d uint32 (two's complement) to h when
 * sum |g_i| < 2^31, else returns 0 and writes d uint64 (h must hold d uint64); d < 2^32.
 * project32 / project64: y[j] = sum_i mask_j[i] h_i for rows j in [lo, hi) (masks: the k strings);
 * exact for project32 after prepare returned 1, modulo 2^64 for project64.
 * combine: out[i] = sum_j sigma[j] R[j, i] mod p for columns [lo, hi) (lo a multiple of 2048, hi a
 * multiple of 2048 or d), sigma[j] < p, k <= 256; p = 2^61 - 1 or p < 2^32. */
int pf_ternary_prepare(const uint8_t *signs, size_t d, const int64_t *g, void *h);
void pf_ternary_project32(const uint8_t *masks, size_t row_bytes, size_t d, const uint32_t *h, int64_t *y,
                          size_t lo, size_t hi);
void pf_ternary_project64(const uint8_t *masks, size_t row_bytes, size_t d, const uint64_t *h, int64_t *y,
                          size_t lo, size_t hi);
void pf_ternary_combine(const uint8_t *stream, size_t k, size_t d, const uint64_t *sigma, uint64_t *out, uint64_t p,
                        size_t lo, size_t hi);

#endif
