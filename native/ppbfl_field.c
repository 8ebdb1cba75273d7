/*
 * ppbfl native field kernels (see ppbfl_field.h for the contracts).
 *
 * p = 2^61 - 1: a product a*b < 2^122 is reduced with 2^61 = 1 (mod p):
 * (lo & p) + (lo >> 61) + (hi << 3) where lo/hi are the 64-bit halves, then one fold and one
 * conditional subtraction. Any other p is below 2^32, so a*b fits 64 bits and % reduces it.
 */
#include "ppbfl_field.h"

#define M61 ((uint64_t)0x1FFFFFFFFFFFFFFFULL)
#define MASK32 ((uint64_t)0xFFFFFFFFULL)
#define MASK29 ((uint64_t)0x1FFFFFFFULL)

#if defined(__SIZEOF_INT128__) && !defined(PPBFL_PORTABLE)
__extension__ typedef unsigned __int128 pf_u128; /* __extension__: no warning under -pedantic */

static inline uint64_t mul_m61(uint64_t a, uint64_t b) {
    pf_u128 product = (pf_u128)a * b;
    uint64_t lo = (uint64_t)product, hi = (uint64_t)(product >> 64);
    uint64_t s = (lo & M61) + (lo >> 61) + (hi << 3); /* hi < 2^58: hi << 3 < 2^61 */
    s = (s & M61) + (s >> 61);
    return s >= M61 ? s - M61 : s;
}
#else
static inline uint64_t mul_m61(uint64_t a, uint64_t b) {
    uint64_t a_hi = a >> 32, a_lo = a & MASK32, b_hi = b >> 32, b_lo = b & MASK32;
    uint64_t high = a_hi * b_hi;                 /* < 2^58, weight 2^64 = 8 (mod p) */
    uint64_t mid = a_hi * b_lo + a_lo * b_hi;    /* < 2^62, weight 2^32 */
    uint64_t low = a_lo * b_lo;                  /* < 2^64 */
    uint64_t s = (high << 3) + (mid >> 29) + ((mid & MASK29) << 32) + (low >> 61) + (low & M61);
    s = (s & M61) + (s >> 61);
    return s >= M61 ? s - M61 : s;
}
#endif

/* m61 is a compile-time constant at every call site below (the kernels dispatch once on
 * p == M61 into an always-inlined body), so each loop is specialised and branch-free. */
#define PF_INLINE static inline __attribute__((always_inline))

PF_INLINE uint64_t mulmod(uint64_t a, uint64_t b, uint64_t p, int m61) {
    return m61 ? mul_m61(a, b) : (a * b) % p;
}

/* a * x mod 2^61 - 1 for a small x < 2^32 (Horner steps multiply by a party's point) */
PF_INLINE uint64_t mul_small_m61(uint64_t a, uint64_t x) {
    uint64_t low = (a & MASK32) * x;  /* < 2^64 */
    uint64_t high = (a >> 32) * x;    /* < 2^61, weight 2^32 */
    uint64_t s = (low & M61) + (low >> 61) + (high >> 29) + ((high & MASK29) << 32);
    s = (s & M61) + (s >> 61);
    return s >= M61 ? s - M61 : s;
}

/* mode 1: p = 2^61 - 1 and x < 2^32; mode 2: p = 2^61 - 1; mode 0: p < 2^32 */
PF_INLINE uint64_t mul_point(uint64_t a, uint64_t x, uint64_t p, int mode) {
    return mode == 1 ? mul_small_m61(a, x) : mulmod(a, x, p, mode == 2);
}

static inline uint64_t addmod(uint64_t a, uint64_t b, uint64_t p) {
    uint64_t s = a + b;
    return s >= p ? s - p : s;
}

static inline uint64_t submod(uint64_t a, uint64_t b, uint64_t p) {
    return a >= b ? a - b : a + (p - b);
}

static inline uint64_t max2(uint64_t a, uint64_t b) { return a > b ? a : b; }

uint64_t pf_add_range(const uint64_t *a, const uint64_t *b, uint64_t *out, uint64_t p, size_t lo, size_t hi) {
    uint64_t top = 0;
    for (size_t i = lo; i < hi; i++) {
        uint64_t x = a[i], y = b[i];
        top = max2(top, max2(x, y));
        out[i] = addmod(x, y, p);
    }
    return top;
}

uint64_t pf_sub_range(const uint64_t *a, const uint64_t *b, uint64_t *out, uint64_t p, size_t lo, size_t hi) {
    uint64_t top = 0;
    for (size_t i = lo; i < hi; i++) {
        uint64_t x = a[i], y = b[i];
        top = max2(top, max2(x, y));
        out[i] = submod(x, y, p);
    }
    return top;
}

uint64_t pf_neg_range(const uint64_t *a, uint64_t *out, uint64_t p, size_t lo, size_t hi) {
    uint64_t top = 0;
    for (size_t i = lo; i < hi; i++) {
        uint64_t x = a[i];
        top = max2(top, x);
        out[i] = submod(0, x, p);
    }
    return top;
}

PF_INLINE uint64_t mul_body(const uint64_t *a, const uint64_t *b, uint64_t *out, uint64_t p, size_t lo,
                            size_t hi, int m61) {
    uint64_t top = 0;
    for (size_t i = lo; i < hi; i++) {
        uint64_t x = a[i], y = b[i];
        top = max2(top, max2(x, y));
        out[i] = mulmod(x, y, p, m61);
    }
    return top;
}

uint64_t pf_mul_range(const uint64_t *a, const uint64_t *b, uint64_t *out, uint64_t p, size_t lo, size_t hi) {
    return p == M61 ? mul_body(a, b, out, M61, lo, hi, 1) : mul_body(a, b, out, p, lo, hi, 0);
}

PF_INLINE uint64_t muladd_body(const uint64_t *a, const uint64_t *b, const uint64_t *c, uint64_t *out, uint64_t p,
                               size_t lo, size_t hi, int m61) {
    uint64_t top = 0;
    for (size_t i = lo; i < hi; i++) {
        uint64_t x = a[i], y = b[i], z = c[i];
        top = max2(top, max2(x, max2(y, z)));
        out[i] = addmod(mulmod(x, y, p, m61), z, p);
    }
    return top;
}

uint64_t pf_muladd_range(const uint64_t *a, const uint64_t *b, const uint64_t *c, uint64_t *out, uint64_t p,
                         size_t lo, size_t hi) {
    return p == M61 ? muladd_body(a, b, c, out, M61, lo, hi, 1) : muladd_body(a, b, c, out, p, lo, hi, 0);
}

PF_INLINE uint64_t scalar_mul_body(const uint64_t *a, uint64_t s, uint64_t *out, uint64_t p, size_t lo, size_t hi,
                                   int m61) {
    uint64_t top = 0;
    for (size_t i = lo; i < hi; i++) {
        uint64_t x = a[i];
        top = max2(top, x);
        out[i] = mulmod(x, s, p, m61);
    }
    return top;
}

uint64_t pf_scalar_mul_range(const uint64_t *a, uint64_t s, uint64_t *out, uint64_t p, size_t lo, size_t hi) {
    return p == M61 ? scalar_mul_body(a, s, out, M61, lo, hi, 1) : scalar_mul_body(a, s, out, p, lo, hi, 0);
}

/* (high * 2^32 + low) mod p for the split sums of dot_halves */
PF_INLINE uint64_t halves_mod(uint64_t high, uint64_t low, uint64_t p, int m61) {
    return addmod(mulmod(high % p, ((uint64_t)1 << 32) % p, p, m61), low % p, p);
}

/* adds the split-half sums of x[j] * y[j] for j in [lo, hi) to acc[0] (high) and acc[1] (low) */
PF_INLINE uint64_t dot_halves(const uint64_t *x, const uint64_t *y, uint64_t p, size_t lo, size_t hi,
                              uint64_t *acc, int m61) {
    uint64_t high = 0, low = 0, top = 0;
    for (size_t j = lo; j < hi; j++) {
        uint64_t u = x[j], v = y[j];
        top = max2(top, max2(u, v));
        uint64_t product = mulmod(u, v, p, m61);
        high += product >> 32;
        low += product & MASK32;
    }
    acc[0] += high;
    acc[1] += low;
    return top;
}

PF_INLINE uint64_t dot_body(const uint64_t *a, const uint64_t *b, uint64_t p, size_t lo, size_t hi,
                            uint64_t *top_out, int m61) {
    uint64_t acc[2] = {0, 0};
    *top_out = dot_halves(a, b, p, lo, hi, acc, m61);
    return halves_mod(acc[0], acc[1], p, m61);
}

uint64_t pf_dot_range(const uint64_t *a, const uint64_t *b, uint64_t p, size_t lo, size_t hi, uint64_t *top_out) {
    return p == M61 ? dot_body(a, b, M61, lo, hi, top_out, 1) : dot_body(a, b, p, lo, hi, top_out, 0);
}

/* out[j] += w * row[j] mod p for j in [lo, hi); returns the largest row element read */
PF_INLINE uint64_t accumulate_row(const uint64_t *row, uint64_t w, uint64_t *out, uint64_t p, size_t lo, size_t hi,
                                  int m61) {
    uint64_t top = 0;
    for (size_t j = lo; j < hi; j++) {
        uint64_t x = row[j];
        top = max2(top, x);
        out[j] = addmod(out[j], mulmod(x, w, p, m61), p);
    }
    return top;
}

PF_INLINE uint64_t rowsum_body(const uint64_t *weights, size_t k, const uint64_t *rows, size_t d, uint64_t *out,
                               uint64_t p, size_t lo, size_t hi, int m61) {
    uint64_t top = 0;
    for (size_t j = lo; j < hi; j++) out[j] = 0;
    for (size_t i = 0; i < k; i++) top = max2(top, accumulate_row(rows + i * d, weights[i], out, p, lo, hi, m61));
    return top;
}

uint64_t pf_weighted_rowsum_range(const uint64_t *weights, size_t k, const uint64_t *rows, size_t d,
                                  uint64_t *out, uint64_t p, size_t lo, size_t hi) {
    return p == M61 ? rowsum_body(weights, k, rows, d, out, M61, lo, hi, 1)
                    : rowsum_body(weights, k, rows, d, out, p, lo, hi, 0);
}

PF_INLINE uint64_t rowsum_rows_body(const uint64_t *weights, size_t k, const uint64_t *const *rows, uint64_t *out,
                                    uint64_t p, size_t lo, size_t hi, int m61) {
    uint64_t top = 0;
    for (size_t j = lo; j < hi; j++) out[j] = 0;
    for (size_t i = 0; i < k; i++) top = max2(top, accumulate_row(rows[i], weights[i], out, p, lo, hi, m61));
    return top;
}

uint64_t pf_weighted_rowsum_rows_range(const uint64_t *weights, size_t k, const uint64_t *const *rows,
                                       uint64_t *out, uint64_t p, size_t lo, size_t hi) {
    return p == M61 ? rowsum_rows_body(weights, k, rows, out, M61, lo, hi, 1)
                    : rowsum_rows_body(weights, k, rows, out, p, lo, hi, 0);
}


/* Each row is walked in tiles of ROW_TILE columns: the three products of a tile run as three
 * simple loops (each vectorises; one loop computing all three does not), the second and third
 * reading the row tile from L1. */
#define ROW_TILE 2048
#define COMBINE_TILE 2048 /* a multiple of 32 */

PF_INLINE uint64_t row_dots_body(const uint64_t *const *rows, size_t k, const uint64_t *a, const uint64_t *b,
                                 const uint64_t *c, uint64_t *sums, uint64_t p, size_t lo, size_t hi, int m61,
                                 int squares, int fourth) {
    uint64_t top = 0;
    for (size_t i = 0; i < k; i++) {
        const uint64_t *row = rows[i];
        uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t t0 = lo; t0 < hi; t0 += ROW_TILE) {
            size_t t1 = hi - t0 < ROW_TILE ? hi : t0 + ROW_TILE;
            top = max2(top, dot_halves(row, a, p, t0, t1, acc, m61));
            top = max2(top, dot_halves(row, b, p, t0, t1, acc + 2, m61));
            if (squares) dot_halves(row, row, p, t0, t1, acc + 4, m61);
            if (fourth) top = max2(top, dot_halves(row, c, p, t0, t1, acc + 6, m61));
        }
        sums[i] = halves_mod(acc[0], acc[1], p, m61);
        sums[k + i] = halves_mod(acc[2], acc[3], p, m61);
        sums[2 * k + i] = halves_mod(acc[4], acc[5], p, m61);
        if (fourth) sums[3 * k + i] = halves_mod(acc[6], acc[7], p, m61);
    }
    return top;
}

uint64_t pf_row_dots_range(const uint64_t *const *rows, size_t k, const uint64_t *a, const uint64_t *b,
                           int squares, uint64_t *sums, uint64_t p, size_t lo, size_t hi) {
    if (p == M61)
        return squares ? row_dots_body(rows, k, a, b, a, sums, M61, lo, hi, 1, 1, 0)
                       : row_dots_body(rows, k, a, b, a, sums, M61, lo, hi, 1, 0, 0);
    return squares ? row_dots_body(rows, k, a, b, a, sums, p, lo, hi, 0, 1, 0)
                   : row_dots_body(rows, k, a, b, a, sums, p, lo, hi, 0, 0, 0);
}

uint64_t pf_row_dots4_range(const uint64_t *const *rows, size_t k, const uint64_t *a, const uint64_t *b,
                            const uint64_t *c, int squares, uint64_t *sums, uint64_t p, size_t lo, size_t hi) {
    if (p == M61)
        return squares ? row_dots_body(rows, k, a, b, c, sums, M61, lo, hi, 1, 1, 1)
                       : row_dots_body(rows, k, a, b, c, sums, M61, lo, hi, 1, 0, 1);
    return squares ? row_dots_body(rows, k, a, b, c, sums, p, lo, hi, 0, 1, 1)
                   : row_dots_body(rows, k, a, b, c, sums, p, lo, hi, 0, 0, 1);
}

void pf_matmul_range(const uint64_t *matrix, size_t m, size_t k, const uint64_t *rows, size_t d, uint64_t *out,
                     uint64_t p, size_t lo, size_t hi) {
    for (size_t r = 0; r < m; r++) pf_weighted_rowsum_range(matrix + r * k, k, rows, d, out + r * d, p, lo, hi);
}

PF_INLINE void horner_body(const uint64_t *secret, const uint64_t *coeffs, size_t degree, size_t width,
                           const uint64_t *points, size_t n, uint64_t *out, size_t d, uint64_t p, size_t col0,
                           size_t lo, size_t hi, int mode) {
    for (size_t i = 0; i < n; i++) {
        uint64_t x = points[i];
        uint64_t *row = out + i * d + col0;
        if (degree == 0) {
            for (size_t c = lo; c < hi; c++) row[c] = secret[col0 + c];
            continue;
        }
        const uint64_t *top = coeffs + (degree - 1) * width;
        for (size_t c = lo; c < hi; c++) row[c] = top[c];
        for (size_t k = degree - 1; k-- > 0;) {
            const uint64_t *add = coeffs + k * width;
            for (size_t c = lo; c < hi; c++) row[c] = addmod(mul_point(row[c], x, p, mode), add[c], p);
        }
        for (size_t c = lo; c < hi; c++) row[c] = addmod(mul_point(row[c], x, p, mode), secret[col0 + c], p);
    }
}

void pf_horner_share_range(const uint64_t *secret, const uint64_t *coeffs, size_t degree, size_t width,
                           const uint64_t *points, size_t n, uint64_t *out, size_t d, uint64_t p, size_t col0,
                           size_t lo, size_t hi) {
    int small_points = 1;
    for (size_t i = 0; i < n; i++) small_points &= points[i] <= MASK32;
    if (p == M61 && small_points)
        horner_body(secret, coeffs, degree, width, points, n, out, d, M61, col0, lo, hi, 1);
    else if (p == M61)
        horner_body(secret, coeffs, degree, width, points, n, out, d, M61, col0, lo, hi, 2);
    else
        horner_body(secret, coeffs, degree, width, points, n, out, d, p, col0, lo, hi, 0);
}

/* ---- ternary projections of the input-validity check (ppbfl/defense/validity.py) ----
 * A bit string of d bits is stored in 8 * ceil(d / 64) bytes, bit i = bit i % 8 of byte i / 8.
 * Words are assembled from bytes (little-endian by definition, on any host). The inner loops
 * take one 32-bit word of a mask and its 32 values: bit t moved to the sign position and
 * shifted back arithmetically is an all-ones/all-zeros lane mask, so each loop is and + add
 * over the values, which GCC vectorises (measured 0.28 ms for k = 40, d = 1e5 on AVX2). */

static inline uint32_t load_le32(const uint8_t *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static inline uint32_t bit_of(const uint8_t *bits, size_t i) { return (bits[i >> 3] >> (i & 7)) & 1u; }

/* all ones when bit t of x is set (t < 32) */
#define LANE_MASK32(x, t) ((uint32_t)((int32_t)((x) << (31 - (t))) >> 31))

int pf_ternary_prepare(const uint8_t *signs, size_t d, const int64_t *g, void *h) {
    uint64_t l1 = 0; /* sum of min(|g_i|, 2^32): below 2^64 for d < 2^32, and below 2^31 iff sum |g_i| is */
    for (size_t i = 0; i < d; i++) {
        uint64_t a = g[i] < 0 ? 0 - (uint64_t)g[i] : (uint64_t)g[i];
        l1 += a < MASK32 ? a : MASK32;
    }
    int small = l1 < ((uint64_t)1 << 31);
    if (small) {
        uint32_t *h32 = (uint32_t *)h;
        for (size_t i = 0; i < d; i++) {
            uint32_t v = (uint32_t)g[i], s = 0u - bit_of(signs, i);
            h32[i] = (v ^ s) - s;
        }
    } else {
        uint64_t *h64 = (uint64_t *)h;
        for (size_t i = 0; i < d; i++) {
            uint64_t v = (uint64_t)g[i], s = 0 - (uint64_t)bit_of(signs, i);
            h64[i] = (v ^ s) - s;
        }
    }
    return small;
}

void pf_ternary_project32(const uint8_t *masks, size_t row_bytes, size_t d, const uint32_t *h, int64_t *y,
                          size_t lo, size_t hi) {
    size_t words = d >> 5;
    for (size_t j = lo; j < hi; j++) {
        const uint8_t *m = masks + j * row_bytes;
        uint32_t acc = 0;
        for (size_t w = 0; w < words; w++) {
            uint32_t x = load_le32(m + 4 * w);
            const uint32_t *hw = h + 32 * w;
            for (unsigned t = 0; t < 32; t++) acc += hw[t] & LANE_MASK32(x, t);
        }
        for (size_t i = 32 * words; i < d; i++) acc += h[i] & (0u - bit_of(m, i));
        y[j] = (int64_t)(int32_t)acc; /* exact: |y_j| <= sum |g_i| < 2^31 */
    }
}

void pf_ternary_project64(const uint8_t *masks, size_t row_bytes, size_t d, const uint64_t *h, int64_t *y,
                          size_t lo, size_t hi) {
    size_t words = d >> 5;
    for (size_t j = lo; j < hi; j++) {
        const uint8_t *m = masks + j * row_bytes;
        uint64_t acc = 0;
        for (size_t w = 0; w < words; w++) {
            uint32_t x = load_le32(m + 4 * w);
            const uint64_t *hw = h + 32 * w;
            for (unsigned t = 0; t < 32; t++) acc += hw[t] & (uint64_t)(int64_t)(int32_t)LANE_MASK32(x, t);
        }
        for (size_t i = 32 * words; i < d; i++) acc += h[i] & (0 - (uint64_t)bit_of(m, i));
        y[j] = (int64_t)acc; /* the sum modulo 2^64: exact while sum |g_i| < 2^63 */
    }
}

PF_INLINE void combine_body(const uint8_t *signs, const uint8_t *masks, size_t row_bytes, size_t k,
                            const uint64_t *sigma, uint64_t *out, uint64_t p, size_t lo, size_t hi, int m61) {
    uint64_t acc[COMBINE_TILE];
    for (size_t t0 = lo; t0 < hi; t0 += COMBINE_TILE) {
        size_t t1 = hi - t0 < COMBINE_TILE ? hi : t0 + COMBINE_TILE, n = t1 - t0;
        size_t words = n >> 5; /* t0 is a multiple of 32: the words of the tile are whole bytes */
        for (size_t c = 0; c < n; c++) acc[c] = 0;
        for (size_t j = 0; j < k; j++) {
            const uint8_t *m = masks + j * row_bytes + (t0 >> 3);
            uint64_t s = sigma[j];
            for (size_t w = 0; w < words; w++) {
                uint32_t x = load_le32(m + 4 * w);
                uint64_t *aw = acc + 32 * w;
                for (unsigned t = 0; t < 32; t++) aw[t] += s & (uint64_t)(int64_t)(int32_t)LANE_MASK32(x, t);
            }
            for (size_t c = 32 * words; c < n; c++) acc[c] += s & (0 - (uint64_t)bit_of(masks + j * row_bytes, t0 + c));
            /* p = 2^61 - 1: terms < 2^61, fold every 7 rows so acc < 2^61 + 8 + 7 (2^61 - 1) < 2^64 */
            if (m61 && j % 7 == 6)
                for (size_t c = 0; c < n; c++) acc[c] = (acc[c] & M61) + (acc[c] >> 61);
        }
        for (size_t c = 0; c < n; c++) {
            /* p < 2^32: k <= 256 terms < 2^32, no overflow */
            uint64_t a = m61 ? (acc[c] & M61) + (acc[c] >> 61) : acc[c] % p;
            if (m61) a = a >= M61 ? a - M61 : a;
            out[t0 + c] = bit_of(signs, t0 + c) && a ? p - a : a;
        }
    }
}

void pf_ternary_combine(const uint8_t *stream, size_t k, size_t d, const uint64_t *sigma, uint64_t *out, uint64_t p,
                        size_t lo, size_t hi) {
    size_t row_bytes = 8 * ((d + 63) / 64);
    if (p == M61)
        combine_body(stream, stream + row_bytes, row_bytes, k, sigma, out, M61, lo, hi, 1);
    else
        combine_body(stream, stream + row_bytes, row_bytes, k, sigma, out, p, lo, hi, 0);
}
