/*
 * test_kat KATFILE: run the ppbfl native field kernels (ppbfl_field.h) on the known-answer
 * vectors written by make_kat.py and compare every output and every returned max/top value.
 *
 * Each case runs three ways:
 *   whole   - one call over [lo, hi), output pre-filled with p (cells outside the range must
 *             keep it);
 *   split   - two calls over [lo, mid) and [mid, hi), as the threaded Python caller does;
 *             returned tops are combined with max, dot values with addition mod p;
 *   aliased - element-wise kernels only: out aliases a (and b), as ppbfl.field.ops allows.
 * Inputs are also checked to be unchanged after every call.
 *
 * Exit status: 0 all cases passed, 1 first mismatch (printed with details), 2 bad KAT file.
 * Plain C99; no dependency beyond libc.
 */
#include "ppbfl_field.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SIZEOF_INT128__) && !defined(PPBFL_PORTABLE)
#define KAT_PRODUCT_PATH "int128"
#else
#define KAT_PRODUCT_PATH "portable"
#endif

#if defined(__aarch64__)
#define KAT_ARCH "aarch64"
#elif defined(__arm__)
#define KAT_ARCH "arm (32-bit)"
#elif defined(__x86_64__)
#define KAT_ARCH "x86_64"
#elif defined(__i386__)
#define KAT_ARCH "x86 (32-bit)"
#else
#define KAT_ARCH "other"
#endif

#define MAX_ELEMS ((size_t)1 << 24) /* sanity bound on any array size read from the file */

/* ------------------------------------------------------------------------------------------ */
/* tokenizer                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static const char *kat_path;
static char *text;
static size_t text_len, pos;
static long line_no = 1;

static void bad_file(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "test_kat: %s:%ld: malformed KAT file: ", kat_path, line_no);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static void skip_space(void) {
    while (pos < text_len) {
        char ch = text[pos];
        if (ch == '\n') {
            line_no++;
            pos++;
        } else if (ch == ' ' || ch == '\t' || ch == '\r') {
            pos++;
        } else if (ch == '#') {
            while (pos < text_len && text[pos] != '\n') pos++;
        } else {
            break;
        }
    }
}

/* next whitespace-delimited word into buf; returns 0 at end of file */
static int next_word(char *buf, size_t cap) {
    size_t n = 0;
    skip_space();
    if (pos >= text_len) return 0;
    while (pos < text_len && text[pos] != ' ' && text[pos] != '\t' && text[pos] != '\r' && text[pos] != '\n') {
        if (n + 1 < cap) buf[n++] = text[pos];
        pos++;
    }
    buf[n] = '\0';
    return 1;
}

static uint64_t next_u64(const char *what) {
    uint64_t v = 0;
    size_t start;
    skip_space();
    start = pos;
    while (pos < text_len && text[pos] >= '0' && text[pos] <= '9') {
        unsigned digit = (unsigned)(text[pos] - '0');
        if (v > (UINT64_MAX - digit) / 10u) bad_file("%s does not fit in 64 bits", what);
        v = v * 10u + digit;
        pos++;
    }
    if (pos == start) bad_file("expected an unsigned decimal for %s", what);
    if (pos < text_len && text[pos] != ' ' && text[pos] != '\t' && text[pos] != '\r' && text[pos] != '\n')
        bad_file("junk after the number for %s", what);
    return v;
}

static size_t next_size(const char *what) {
    uint64_t v = next_u64(what);
    if (v > MAX_ELEMS) bad_file("%s = %" PRIu64 " is implausibly large", what, v);
    return (size_t)v;
}

static void *xmalloc(size_t count) {
    void *ptr = malloc(count ? count * sizeof(uint64_t) : sizeof(uint64_t));
    if (!ptr) {
        fprintf(stderr, "test_kat: out of memory\n");
        exit(2);
    }
    return ptr;
}

static uint64_t *read_array(size_t count, const char *what) {
    uint64_t *arr = xmalloc(count);
    size_t i;
    for (i = 0; i < count; i++) arr[i] = next_u64(what);
    return arr;
}

static uint64_t *copy_array(const uint64_t *src, size_t count) {
    uint64_t *arr = xmalloc(count);
    if (count) memcpy(arr, src, count * sizeof(uint64_t));
    return arr;
}

/* pointers to the k rows of a row-major (k, d) array (the row kernels' argument) */
static const uint64_t **row_pointers(const uint64_t *rows, size_t k, size_t d) {
    const uint64_t **ptrs = (const uint64_t **)xmalloc(k); /* a pointer is at most 8 bytes */
    size_t i;
    for (i = 0; i < k; i++) ptrs[i] = rows + i * d;
    return ptrs;
}

static void fill(uint64_t *arr, size_t count, uint64_t value) {
    size_t i;
    for (i = 0; i < count; i++) arr[i] = value;
}

static uint64_t max_u64(uint64_t x, uint64_t y) { return x > y ? x : y; }

/* first index where the arrays differ, or count */
static size_t first_diff(const uint64_t *x, const uint64_t *y, size_t count) {
    size_t i;
    for (i = 0; i < count; i++)
        if (x[i] != y[i]) return i;
    return count;
}

/* ------------------------------------------------------------------------------------------ */
/* reporting                                                                                  */
/* ------------------------------------------------------------------------------------------ */

enum { F_ADD, F_SUB, F_MUL, F_NEG, F_MULADD, F_SCALAR_MUL, F_DOT, F_ROWSUM, F_ROWDOTS, F_ROWDOTS4, F_MATMUL, F_HORNER,
       F_TERNARY, F_COUNT };
static const char *family_names[F_COUNT] = {"add", "sub", "mul", "neg", "muladd", "scalar_mul", "dot",
                                            "weighted_rowsum", "row_dots", "row_dots4", "matmul", "horner_share",
                                            "ternary"};
static unsigned long family_cases[F_COUNT], family_runs[F_COUNT];

static long case_line;       /* line of the record being run */
static const char *case_kernel;
static uint64_t case_p;
static const char *case_mode;

static void mismatch_header(const char *what) {
    printf("MISMATCH in %s (p = %" PRIu64 ", KAT line %ld, %s run): %s\n", case_kernel, case_p, case_line,
           case_mode, what);
}

static void mismatch_value(const char *what, uint64_t want, uint64_t got) {
    mismatch_header(what);
    printf("  expected %" PRIu64 "\n  got      %" PRIu64 "\n", want, got);
}

static void fail(void) {
    printf("FAILED\n");
    exit(1);
}

static void check_inputs_unchanged(const uint64_t *now, const uint64_t *orig, size_t count, const char *name) {
    size_t i = first_diff(now, orig, count);
    if (i < count) {
        char what[256];
        snprintf(what, sizeof what, "input %s[%zu] was modified", name, i);
        mismatch_value(what, orig[i], now[i]);
        fail();
    }
}

/* ------------------------------------------------------------------------------------------ */
/* element-wise kernels                                                                       */
/* ------------------------------------------------------------------------------------------ */

static uint64_t call_ew(int fam, const uint64_t *a, const uint64_t *b, const uint64_t *c, uint64_t s,
                        uint64_t *out, uint64_t p, size_t lo, size_t hi) {
    switch (fam) {
    case F_ADD: return pf_add_range(a, b, out, p, lo, hi);
    case F_SUB: return pf_sub_range(a, b, out, p, lo, hi);
    case F_MUL: return pf_mul_range(a, b, out, p, lo, hi);
    case F_NEG: return pf_neg_range(a, out, p, lo, hi);
    case F_MULADD: return pf_muladd_range(a, b, c, out, p, lo, hi);
    default: return pf_scalar_mul_range(a, s, out, p, lo, hi);
    }
}

static void ew_report(int fam, const uint64_t *a, const uint64_t *b, const uint64_t *c, uint64_t s, size_t i,
                      uint64_t want, uint64_t got) {
    char what[256];
    snprintf(what, sizeof what, "out[%zu]", i);
    mismatch_header(what);
    printf("  a[%zu] = %" PRIu64 "\n", i, a[i]);
    if (b) printf("  b[%zu] = %" PRIu64 "\n", i, b[i]);
    if (c) printf("  c[%zu] = %" PRIu64 "\n", i, c[i]);
    if (fam == F_SCALAR_MUL) printf("  s    = %" PRIu64 "\n", s);
    printf("  expected %" PRIu64 "\n  got      %" PRIu64 "\n", want, got);
    fail();
}

static void run_elementwise(int fam) {
    uint64_t p = next_u64("p");
    size_t n = next_size("n"), lo = next_size("lo"), hi = next_size("hi");
    uint64_t s = 0, top_want, got_top, t1, t2;
    uint64_t *a, *b = NULL, *c = NULL, *want, *out, *a0, *b0 = NULL, *c0 = NULL, *alias_want;
    size_t mid, i, j;
    int nin = (fam == F_NEG || fam == F_SCALAR_MUL) ? 1 : (fam == F_MULADD ? 3 : 2);

    case_p = p;
    if (lo > hi || hi > n) bad_file("range [%zu, %zu) outside n = %zu", lo, hi, n);
    if (fam == F_SCALAR_MUL) s = next_u64("s");
    a = read_array(n, "a");
    if (nin >= 2) b = read_array(n, "b");
    if (nin >= 3) c = read_array(n, "c");
    top_want = next_u64("top");
    want = read_array(n, "out");
    a0 = copy_array(a, n);
    if (b) b0 = copy_array(b, n);
    if (c) c0 = copy_array(c, n);
    out = xmalloc(n);

    /* whole */
    case_mode = "whole";
    fill(out, n, p);
    got_top = call_ew(fam, a, b, c, s, out, p, lo, hi);
    i = first_diff(out, want, n);
    if (i < n) ew_report(fam, a, b, c, s, i, want[i], out[i]);
    if (got_top != top_want) {
        mismatch_value("returned max input", top_want, got_top);
        fail();
    }
    check_inputs_unchanged(a, a0, n, "a");
    if (b) check_inputs_unchanged(b, b0, n, "b");
    if (c) check_inputs_unchanged(c, c0, n, "c");

    /* split in two */
    case_mode = "split";
    mid = lo + (hi - lo) / 2;
    fill(out, n, p);
    t1 = call_ew(fam, a, b, c, s, out, p, lo, mid);
    t2 = call_ew(fam, a, b, c, s, out, p, mid, hi);
    i = first_diff(out, want, n);
    if (i < n) ew_report(fam, a, b, c, s, i, want[i], out[i]);
    if (max_u64(t1, t2) != top_want) {
        mismatch_value("max of the returned max inputs", top_want, max_u64(t1, t2));
        fail();
    }

    /* out aliases each input in turn: out = x (copy), call with x replaced by out */
    alias_want = xmalloc(n);
    for (j = 0; j < (size_t)nin; j++) {
        const uint64_t *orig = j == 0 ? a0 : (j == 1 ? b0 : c0);
        case_mode = j == 0 ? "aliased out=a" : (j == 1 ? "aliased out=b" : "aliased out=c");
        memcpy(out, orig, n * sizeof(uint64_t));
        for (i = 0; i < n; i++) alias_want[i] = (i >= lo && i < hi) ? want[i] : orig[i];
        got_top = call_ew(fam, j == 0 ? out : a, j == 1 ? out : b, j == 2 ? out : c, s, out, p, lo, hi);
        i = first_diff(out, alias_want, n);
        if (i < n) ew_report(fam, a0, b0, c0, s, i, alias_want[i], out[i]);
        if (got_top != top_want) {
            mismatch_value("returned max input", top_want, got_top);
            fail();
        }
    }
    family_runs[fam] += 2 + (unsigned long)nin;

    free(a); free(b); free(c); free(want); free(out); free(a0); free(b0); free(c0); free(alias_want);
}

/* ------------------------------------------------------------------------------------------ */
/* dot                                                                                        */
/* ------------------------------------------------------------------------------------------ */

static void run_dot(void) {
    uint64_t p = next_u64("p");
    size_t n = next_size("n"), lo = next_size("lo"), hi = next_size("hi"), mid;
    uint64_t *a, *b, *a0, *b0, value_want, top_want, value, top, v1, v2, t1 = 0, t2 = 0, sum;

    case_p = p;
    if (lo > hi || hi > n) bad_file("range [%zu, %zu) outside n = %zu", lo, hi, n);
    a = read_array(n, "a");
    b = read_array(n, "b");
    value_want = next_u64("value");
    top_want = next_u64("top");
    a0 = copy_array(a, n);
    b0 = copy_array(b, n);

    case_mode = "whole";
    top = UINT64_MAX; /* the kernel must overwrite it */
    value = pf_dot_range(a, b, p, lo, hi, &top);
    if (value != value_want) {
        mismatch_value("returned dot product", value_want, value);
        printf("  (n = %zu, range [%zu, %zu); inputs on KAT line %ld)\n", n, lo, hi, case_line);
        fail();
    }
    if (top != top_want) {
        mismatch_value("*top (max input)", top_want, top);
        fail();
    }
    check_inputs_unchanged(a, a0, n, "a");
    check_inputs_unchanged(b, b0, n, "b");

    case_mode = "split";
    mid = lo + (hi - lo) / 2;
    v1 = pf_dot_range(a, b, p, lo, mid, &t1);
    v2 = pf_dot_range(a, b, p, mid, hi, &t2);
    if (v1 >= p || v2 >= p) {
        mismatch_value("partial dot product not reduced below p", p - 1, v1 >= p ? v1 : v2);
        fail();
    }
    sum = v1 + v2; /* both < p < 2^62: no overflow */
    if (sum >= p) sum -= p;
    if (sum != value_want) {
        mismatch_value("sum of the two partial dot products", value_want, sum);
        fail();
    }
    if (max_u64(t1, t2) != top_want) {
        mismatch_value("max of the partial *top values", top_want, max_u64(t1, t2));
        fail();
    }
    family_runs[F_DOT] += 2;
    free(a); free(b); free(a0); free(b0);
}

/* ------------------------------------------------------------------------------------------ */
/* weighted rowsum and matmul                                                                 */
/* ------------------------------------------------------------------------------------------ */

static void run_rowsum(void) {
    uint64_t p = next_u64("p");
    size_t k = next_size("k"), d = next_size("d"), lo = next_size("lo"), hi = next_size("hi"), mid, j, i;
    uint64_t *w, *rows, *want, *out, *w0, *rows0, top_want, top, t1, t2;
    const uint64_t **ptrs;

    case_p = p;
    if (lo > hi || hi > d) bad_file("range [%zu, %zu) outside d = %zu", lo, hi, d);
    if (k != 0 && d > MAX_ELEMS / k) bad_file("k * d too large");
    w = read_array(k, "weights");
    rows = read_array(k * d, "rows");
    top_want = next_u64("top");
    want = read_array(d, "out");
    w0 = copy_array(w, k);
    rows0 = copy_array(rows, k * d);
    out = xmalloc(d);

    ptrs = row_pointers(rows, k, d);
    for (int mode = 0; mode < 3; mode++) {
        case_mode = mode == 2 ? "separate rows" : mode ? "split" : "whole";
        fill(out, d, p);
        if (mode == 1) {
            mid = lo + (hi - lo) / 2;
            t1 = pf_weighted_rowsum_range(w, k, rows, d, out, p, lo, mid);
            t2 = pf_weighted_rowsum_range(w, k, rows, d, out, p, mid, hi);
            top = max_u64(t1, t2);
        } else if (mode == 2) {
            top = pf_weighted_rowsum_rows_range(w, k, ptrs, out, p, lo, hi);
        } else {
            top = pf_weighted_rowsum_range(w, k, rows, d, out, p, lo, hi);
        }
        j = first_diff(out, want, d);
        if (j < d) {
            char what[256];
            snprintf(what, sizeof what, "out[%zu] (k = %zu, d = %zu, range [%zu, %zu))", j, k, d, lo, hi);
            mismatch_header(what);
            for (i = 0; i < k; i++)
                printf("  weights[%zu] = %" PRIu64 ", rows[%zu][%zu] = %" PRIu64 "\n", i, w[i], i, j,
                       rows[i * d + j]);
            printf("  expected %" PRIu64 "\n  got      %" PRIu64 "\n", want[j], out[j]);
            fail();
        }
        if (top != top_want) {
            mismatch_value("returned max element of rows", top_want, top);
            fail();
        }
        check_inputs_unchanged(w, w0, k, "weights");
        check_inputs_unchanged(rows, rows0, k * d, "rows");
    }
    family_runs[F_ROWSUM] += 3;
    free(w); free(rows); free(want); free(out); free(w0); free(rows0); free(ptrs);
}

/* row_dots (fourth = 0) and row_dots4 (fourth = 1: a vector c and a fourth row of sums) */
static void run_row_dots(int fourth) {
    uint64_t p = next_u64("p");
    size_t k = next_size("k"), d = next_size("d"), lo = next_size("lo"), hi = next_size("hi"), mid, i;
    uint64_t squares = next_u64("squares");
    uint64_t *rows, *a, *b, *c = NULL, *want, *sums, *half, *rows0, *a0, *b0, *c0 = NULL, top_want, top, t2;
    size_t outputs = fourth ? 4 : 3;
    const uint64_t **ptrs;

    case_p = p;
    if (lo > hi || hi > d) bad_file("range [%zu, %zu) outside d = %zu", lo, hi, d);
    if (k != 0 && d > MAX_ELEMS / k) bad_file("k * d too large");
    if (squares > 1) bad_file("squares must be 0 or 1");
    rows = read_array(k * d, "rows");
    a = read_array(d, "a");
    b = read_array(d, "b");
    if (fourth) c = read_array(d, "c");
    top_want = next_u64("top");
    want = read_array(outputs * k, "sums");
    rows0 = copy_array(rows, k * d);
    a0 = copy_array(a, d);
    b0 = copy_array(b, d);
    if (fourth) c0 = copy_array(c, d);
    sums = xmalloc(outputs * k);
    half = xmalloc(outputs * k);
    ptrs = row_pointers(rows, k, d);

    for (int split = 0; split < 2; split++) {
        case_mode = split ? "split" : "whole";
        fill(sums, outputs * k, p);
        if (split) {
            mid = lo + (hi - lo) / 2;
            fill(half, outputs * k, p);
            top = fourth ? pf_row_dots4_range(ptrs, k, a, b, c, (int)squares, sums, p, lo, mid)
                         : pf_row_dots_range(ptrs, k, a, b, (int)squares, sums, p, lo, mid);
            t2 = fourth ? pf_row_dots4_range(ptrs, k, a, b, c, (int)squares, half, p, mid, hi)
                        : pf_row_dots_range(ptrs, k, a, b, (int)squares, half, p, mid, hi);
            top = max_u64(top, t2);
            for (i = 0; i < outputs * k; i++) {
                if (sums[i] >= p || half[i] >= p) {
                    mismatch_value("partial row sum not reduced below p", p - 1, sums[i] >= p ? sums[i] : half[i]);
                    fail();
                }
                sums[i] += half[i]; /* both < p < 2^62: no overflow */
                if (sums[i] >= p) sums[i] -= p;
            }
        } else {
            top = fourth ? pf_row_dots4_range(ptrs, k, a, b, c, (int)squares, sums, p, lo, hi)
                         : pf_row_dots_range(ptrs, k, a, b, (int)squares, sums, p, lo, hi);
        }
        i = first_diff(sums, want, outputs * k);
        if (i < outputs * k) {
            char what[256];
            snprintf(what, sizeof what, "sums[%zu][%zu] (k = %zu, d = %zu, range [%zu, %zu), squares %d)", i / (k ? k : 1),
                     i % (k ? k : 1), k, d, lo, hi, (int)squares);
            mismatch_value(what, want[i], sums[i]);
            fail();
        }
        if (top != top_want) {
            mismatch_value("returned max element of rows, a, b (and c)", top_want, top);
            fail();
        }
        check_inputs_unchanged(rows, rows0, k * d, "rows");
        check_inputs_unchanged(a, a0, d, "a");
        check_inputs_unchanged(b, b0, d, "b");
        if (fourth) check_inputs_unchanged(c, c0, d, "c");
    }
    family_runs[fourth ? F_ROWDOTS4 : F_ROWDOTS] += 2;
    free(rows); free(a); free(b); free(c); free(want); free(rows0); free(a0); free(b0); free(c0); free(sums); free(half);
    free(ptrs);
}

/* ternary: the validity projections. Record: p k d row_bytes stream[(k + 1) row_bytes] g[d] (int64 as
 * two's complement) sigma[k] small y[k] (two's complement) v[d]. Runs prepare, the projections over
 * all rows and split in two row ranges, and the combination over all columns. */
static void run_ternary(void) {
    uint64_t p = next_u64("p");
    size_t k = next_size("k"), d = next_size("d"), rb = next_size("row_bytes"), i;
    uint64_t *bytes, *g, *sigma, *want_y, *want_v, *h, *v, small_want;
    uint8_t *stream;
    int64_t *y;
    int small;

    case_p = p;
    if (rb != 8 * ((d + 63) / 64)) bad_file("row_bytes %zu != 8 ceil(d / 64)", rb);
    if (k > 256 || (k + 1) > MAX_ELEMS / (rb ? rb : 1)) bad_file("k too large");
    bytes = read_array((k + 1) * rb, "stream");
    g = read_array(d, "g");
    sigma = read_array(k, "sigma");
    small_want = next_u64("small");
    want_y = read_array(k, "y");
    want_v = read_array(d, "v");
    stream = (uint8_t *)malloc((k + 1) * rb + 1);
    if (!stream) bad_file("out of memory");
    for (i = 0; i < (k + 1) * rb; i++) {
        if (bytes[i] > 255) bad_file("stream byte %zu = %" PRIu64 " is not a byte", i, bytes[i]);
        stream[i] = (uint8_t)bytes[i];
    }
    h = xmalloc(d + 1);
    v = xmalloc(d + 1);
    y = (int64_t *)xmalloc(k + 1);
    case_mode = "whole";
    small = pf_ternary_prepare(stream, d, (const int64_t *)g, h);
    if ((uint64_t)small != small_want) {
        mismatch_value("prepare: 32-bit lanes (sum |g| < 2^31)", small_want, (uint64_t)small);
        fail();
    }
    for (int split = 0; split < 2; split++) {
        size_t mid = split ? k / 2 : k;
        case_mode = split ? "split" : "whole";
        for (i = 0; i < k; i++) y[i] = (int64_t)p; /* overwritten below */
        if (small) {
            pf_ternary_project32(stream + rb, rb, d, (const uint32_t *)(const void *)h, y, 0, mid);
            pf_ternary_project32(stream + rb, rb, d, (const uint32_t *)(const void *)h, y, mid, k);
        } else {
            pf_ternary_project64(stream + rb, rb, d, h, y, 0, mid);
            pf_ternary_project64(stream + rb, rb, d, h, y, mid, k);
        }
        for (i = 0; i < k; i++)
            if ((uint64_t)y[i] != want_y[i]) {
                char what[128];
                snprintf(what, sizeof what, "projection y[%zu] (k = %zu, d = %zu, two's complement)", i, k, d);
                mismatch_value(what, want_y[i], (uint64_t)y[i]);
                fail();
            }
    }
    case_mode = "whole";
    fill(v, d, p);
    pf_ternary_combine(stream, k, d, sigma, v, p, 0, d);
    i = first_diff(v, want_v, d);
    if (i < d) {
        char what[128];
        snprintf(what, sizeof what, "combination v[%zu] (k = %zu, d = %zu)", i, k, d);
        mismatch_value(what, want_v[i], v[i]);
        fail();
    }
    family_runs[F_TERNARY] += 3;
    free(bytes); free(g); free(sigma); free(want_y); free(want_v); free(stream); free(h); free(v); free(y);
}

static void run_matmul(void) {
    uint64_t p = next_u64("p");
    size_t m = next_size("m"), k = next_size("k"), d = next_size("d"), lo = next_size("lo"), hi = next_size("hi");
    size_t mid, idx, i;
    uint64_t *matrix, *rows, *want, *out, *matrix0, *rows0;

    case_p = p;
    if (lo > hi || hi > d) bad_file("range [%zu, %zu) outside d = %zu", lo, hi, d);
    if ((m != 0 && k > MAX_ELEMS / m) || (k != 0 && d > MAX_ELEMS / k) || (m != 0 && d > MAX_ELEMS / m))
        bad_file("matrix sizes too large");
    matrix = read_array(m * k, "matrix");
    rows = read_array(k * d, "rows");
    want = read_array(m * d, "out");
    matrix0 = copy_array(matrix, m * k);
    rows0 = copy_array(rows, k * d);
    out = xmalloc(m * d);

    for (int split = 0; split < 2; split++) {
        case_mode = split ? "split" : "whole";
        fill(out, m * d, p);
        if (split) {
            mid = lo + (hi - lo) / 2;
            pf_matmul_range(matrix, m, k, rows, d, out, p, lo, mid);
            pf_matmul_range(matrix, m, k, rows, d, out, p, mid, hi);
        } else {
            pf_matmul_range(matrix, m, k, rows, d, out, p, lo, hi);
        }
        idx = first_diff(out, want, m * d);
        if (idx < m * d) {
            size_t r = idx / d, j = idx % d;
            char what[256];
            snprintf(what, sizeof what, "out[%zu][%zu] (m = %zu, k = %zu, d = %zu, range [%zu, %zu))", r, j, m,
                     k, d, lo, hi);
            mismatch_header(what);
            for (i = 0; i < k; i++)
                printf("  matrix[%zu][%zu] = %" PRIu64 ", rows[%zu][%zu] = %" PRIu64 "\n", r, i,
                       matrix[r * k + i], i, j, rows[i * d + j]);
            printf("  expected %" PRIu64 "\n  got      %" PRIu64 "\n", want[idx], out[idx]);
            fail();
        }
        check_inputs_unchanged(matrix, matrix0, m * k, "matrix");
        check_inputs_unchanged(rows, rows0, k * d, "rows");
    }
    family_runs[F_MATMUL] += 2;
    free(matrix); free(rows); free(want); free(out); free(matrix0); free(rows0);
}

/* ------------------------------------------------------------------------------------------ */
/* horner share                                                                               */
/* ------------------------------------------------------------------------------------------ */

static void run_horner(void) {
    uint64_t p = next_u64("p");
    size_t degree = next_size("degree"), width = next_size("width"), n = next_size("n"), d = next_size("d");
    size_t col0 = next_size("col0"), lo = next_size("lo"), hi = next_size("hi"), mid, idx, kk;
    uint64_t *secret, *coeffs, *points, *want, *out, *secret0, *coeffs0, *points0;

    case_p = p;
    if (lo > hi || hi > width || col0 > d || width > d - col0)
        bad_file("bad horner_share shape: width %zu, d %zu, col0 %zu, range [%zu, %zu)", width, d, col0, lo, hi);
    if ((degree != 0 && width > MAX_ELEMS / degree) || (n != 0 && d > MAX_ELEMS / n))
        bad_file("horner_share sizes too large");
    secret = read_array(d, "secret");
    coeffs = read_array(degree * width, "coeffs");
    points = read_array(n, "points");
    want = read_array(n * d, "out");
    secret0 = copy_array(secret, d);
    coeffs0 = copy_array(coeffs, degree * width);
    points0 = copy_array(points, n);
    out = xmalloc(n * d);

    for (int split = 0; split < 2; split++) {
        case_mode = split ? "split" : "whole";
        fill(out, n * d, p);
        if (split) {
            mid = lo + (hi - lo) / 2;
            pf_horner_share_range(secret, coeffs, degree, width, points, n, out, d, p, col0, lo, mid);
            pf_horner_share_range(secret, coeffs, degree, width, points, n, out, d, p, col0, mid, hi);
        } else {
            pf_horner_share_range(secret, coeffs, degree, width, points, n, out, d, p, col0, lo, hi);
        }
        idx = first_diff(out, want, n * d);
        if (idx < n * d) {
            size_t i = idx / d, j = idx % d;
            char what[256];
            snprintf(what, sizeof what,
                     "out[%zu][%zu] (degree %zu, width %zu, n %zu, d %zu, col0 %zu, range [%zu, %zu))", i, j,
                     degree, width, n, d, col0, lo, hi);
            mismatch_header(what);
            printf("  points[%zu] = %" PRIu64 ", secret[%zu] = %" PRIu64 "\n", i, points[i], j, secret[j]);
            if (j >= col0 && j - col0 < width)
                for (kk = 0; kk < degree; kk++)
                    printf("  coeffs[%zu][%zu] (x^%zu) = %" PRIu64 "\n", kk, j - col0, kk + 1,
                           coeffs[kk * width + (j - col0)]);
            else
                printf("  (column %zu is outside the block: the kernel must not write it)\n", j);
            printf("  expected %" PRIu64 "\n  got      %" PRIu64 "\n", want[idx], out[idx]);
            fail();
        }
        check_inputs_unchanged(secret, secret0, d, "secret");
        check_inputs_unchanged(coeffs, coeffs0, degree * width, "coeffs");
        check_inputs_unchanged(points, points0, n, "points");
    }
    family_runs[F_HORNER] += 2;
    free(secret); free(coeffs); free(points); free(want); free(out);
    free(secret0); free(coeffs0); free(points0);
}

/* ------------------------------------------------------------------------------------------ */

static void load(const char *path) {
    FILE *fh = fopen(path, "rb");
    long size;
    if (!fh) {
        fprintf(stderr, "test_kat: cannot open %s\n", path);
        exit(2);
    }
    if (fseek(fh, 0, SEEK_END) != 0 || (size = ftell(fh)) < 0 || fseek(fh, 0, SEEK_SET) != 0) {
        fprintf(stderr, "test_kat: cannot size %s\n", path);
        exit(2);
    }
    text = malloc((size_t)size + 1);
    if (!text || fread(text, 1, (size_t)size, fh) != (size_t)size) {
        fprintf(stderr, "test_kat: cannot read %s\n", path);
        exit(2);
    }
    fclose(fh);
    text[size] = '\0';
    text_len = (size_t)size;
}

int main(int argc, char **argv) {
    char word[64];
    uint64_t declared, total = 0;
    int fam;

    if (argc != 2) {
        fprintf(stderr, "usage: %s KATFILE\n", argv[0]);
        return 2;
    }
    kat_path = argv[1];
    printf("test_kat: product path: %s\n", KAT_PRODUCT_PATH);
    printf("test_kat: target %s, sizeof(void*) = %u, sizeof(size_t) = %u\n", KAT_ARCH, (unsigned)sizeof(void *),
           (unsigned)sizeof(size_t));
    load(kat_path);

    if (!next_word(word, sizeof word) || strcmp(word, "ppbfl-kat") != 0) bad_file("missing 'ppbfl-kat' header");
    if (next_u64("format version") != 1) bad_file("unsupported format version");
    declared = next_u64("case count");

    for (;;) {
        if (!next_word(word, sizeof word)) bad_file("missing 'end' record (truncated file?)");
        case_line = line_no;
        case_kernel = word;
        if (strcmp(word, "end") == 0) {
            uint64_t end_count = next_u64("end count");
            if (end_count != declared || total != declared)
                bad_file("case count mismatch: header %" PRIu64 ", end %" PRIu64 ", read %" PRIu64, declared,
                         end_count, total);
            if (next_word(word, sizeof word)) bad_file("data after the 'end' record");
            break;
        }
        for (fam = 0; fam < F_COUNT; fam++)
            if (strcmp(word, family_names[fam]) == 0) break;
        if (fam == F_COUNT) bad_file("unknown record '%s'", word);
        case_kernel = family_names[fam];
        switch (fam) {
        case F_DOT: run_dot(); break;
        case F_ROWSUM: run_rowsum(); break;
        case F_ROWDOTS: run_row_dots(0); break;
        case F_ROWDOTS4: run_row_dots(1); break;
        case F_TERNARY: run_ternary(); break;
        case F_MATMUL: run_matmul(); break;
        case F_HORNER: run_horner(); break;
        default: run_elementwise(fam); break;
        }
        family_cases[fam]++;
        total++;
    }

    for (fam = 0; fam < F_COUNT; fam++) {
        printf("  %-16s %4lu cases, %4lu kernel runs: ok\n", family_names[fam], family_cases[fam], family_runs[fam]);
        if (family_cases[fam] == 0) {
            printf("test_kat: no cases for %s in %s\nFAILED\n", family_names[fam], kat_path);
            return 1;
        }
    }
    printf("ALL %" PRIu64 " CASES PASSED (%s, %s)\n", total, KAT_PRODUCT_PATH, KAT_ARCH);
    free(text);
    return 0;
}
