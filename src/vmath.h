/* Branch-free float math that GCC auto-vectorises: exp, sigmoid, tanh, the normal cdf/pdf (for gelu) and
 * log1p on [0, 1]. No libm call, no table, no branch: every choice is a select, so a loop calling these
 * compiles to SIMD code for whatever instruction set the including file targets (see ew_*.c).
 *
 * Selects go through vm_select (a bitwise blend) rather than ?: when an arm is computed or the result feeds
 * more arithmetic: GCC likes to move that arithmetic into the arms of a ?:, which under its default
 * -ftrapping-math then may not be if-converted, and the loop stays scalar.
 *
 * Accuracy (measured against double precision on every 7th float): exp within 1 ulp, log1p 2, sigmoid,
 * tanh and the normal pdf 2.5 ulp; the normal cdf 5e-7 relative, lower tail included. Overflow gives +inf,
 * underflow 0 (results below FLT_MIN may be flushed), NaN in gives NaN out. The polynomial coefficients
 * are our own near-minimax fits (weighted least squares on Chebyshev nodes against 40-digit references).
 */
#ifndef FNN_VMATH_H
#define FNN_VMATH_H

#include <stdint.h>
#include <string.h>

static inline uint32_t vm_bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline float vm_float(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* c ? a : b with both arms evaluated (c is 0 or 1). */
static inline float vm_select(int c, float a, float b)
{
    uint32_t m = (uint32_t) - (int32_t)c;
    return vm_float((vm_bits(a) & m) | (vm_bits(b) & ~m));
}

#define VM_SHIFTER 12582912.0f /* 1.5 * 2^23: adding it rounds to an integer in the low mantissa bits */

/* e^r - 1 = r + r^2 P(r) for |r| <= ln2/2. */
static inline float vm_expm1_poly(float r)
{
    float p = 0.00137514074f;
    p = p * r + 0.00836891588f;
    p = p * r + 0.0416695327f;
    p = p * r + 0.166665182f;
    p = p * r + 0.499999881f;
    return p * (r * r) + r;
}

/* 2^n for n in [-126, 127]. */
static inline float vm_exp2i(int32_t n)
{
    return vm_float((uint32_t)(n + 127) << 23);
}

/* hi + lo = n ln2 + r with |r| <= ln2/2, lo a small correction that carries precision beyond hi's float
 * (-0.0f for none: adding -0 folds away). ln2 is split in two (Cody-Waite) so that hi - n * 0.693359375f
 * is exact. */
static inline float vm_exp_reduce(float hi, float lo, int32_t *n)
{
    float t = (hi + lo) * 1.44269504f + VM_SHIFTER;
    *n = (int32_t)(vm_bits(t) - vm_bits(VM_SHIFTER));
    float nf = t - VM_SHIFTER;
    float r = (hi - nf * 0.693359375f) + lo;
    return r + nf * 2.12194440e-4f;
}

/* e^(hi + lo) for hi + lo in [-87.3, 88.3], where 2^n is a normal float: no range handling; NaN
 * propagates. */
static inline float vm_exp_core(float hi, float lo)
{
    int32_t n;
    float r = vm_exp_reduce(hi, lo, &n);
    return (vm_expm1_poly(r) + 1.0f) * vm_exp2i(n);
}

/* e^x for any x: 2^n is applied as two factors 2^n1 2^n2, so results near the overflow and underflow
 * thresholds need no special case. NaN propagates through the arithmetic. */
static inline float vm_expf(float x)
{
    float xc = vm_select(x > 89.0f, 89.0f, x); /* the clamps keep NaN */
    xc = vm_select(xc < -104.0f, -104.0f, xc);
    int32_t n;
    float r = vm_exp_reduce(xc, -0.0f, &n);
    int32_t n1 = n >> 1, n2 = n - n1;
    return (vm_expm1_poly(r) + 1.0f) * vm_exp2i(n1) * vm_exp2i(n2);
}

/* 1 / (1 + e^-x). Beyond the clamps e^-x is either negligible next to 1 or so large that the result is
 * below FLT_MIN (a denormal, flushed to 0 inside the kernels). */
static inline float vm_sigmoidf(float x)
{
    float u = vm_select(-x > 88.3f, 88.3f, -x); /* the clamps keep NaN */
    u = vm_select(u < -87.3f, -87.3f, u);
    return 1.0f / (1.0f + vm_exp_core(u, -0.0f));
}

/* tanh|x| = -m / (2 + m) with m = expm1(-2|x|) = 2^n (e^r - 1) + (2^n - 1): relative accuracy near 0
 * without a separate polynomial. tanh is +-1 in float beyond |x| = 10. */
static inline float vm_tanhf(float x)
{
    float u = -2.0f * __builtin_fabsf(x);
    u = vm_select(u < -20.0f, -20.0f, u); /* keeps NaN */
    int32_t n;
    float r = vm_exp_reduce(u, -0.0f, &n);
    float s = vm_exp2i(n);
    float m = s * vm_expm1_poly(r) + (s - 1.0f);
    return __builtin_copysignf(-m / (2.0f + m), x);
}

/* -x^2/2 as hi + lo with hi exact: x = xh + xl, xh keeping the top 12 significant bits so xh^2 is exact. The
 * Gaussian tails need this: rounding -x^2/2 (down to -85) to float would cost ~1e-5 relative accuracy. */
static inline void vm_neg_half_square(float x, float *hi, float *lo)
{
    float xh = vm_float(vm_bits(x) & 0xfffff000u);
    float xl = x - xh;
    *hi = -0.5f * (xh * xh);
    *lo = -0.5f * (xl * (x + xh));
}

/* Standard normal cdf Phi(x) = erfc(|x| / sqrt 2) / 2 for x < 0 (1 minus that for x >= 0), with
 * erfc(a) = t exp(-a^2 + P(t)), t = 1 / (1 + a/2): relative accuracy in the far lower tail, where
 * 1 + erf(x / sqrt 2) would cancel. Beyond |x| = 13, Phi is 1 or below FLT_MIN (flushed to 0). */
static inline float vm_normcdf(float x)
{
    float xc = vm_select(x > 13.0f, 13.0f, x); /* the clamps keep NaN */
    xc = vm_select(xc < -13.0f, -13.0f, xc);
    float hi, lo;
    vm_neg_half_square(xc, &hi, &lo);
    float t = 1.0f / (1.0f + 0.353553391f * __builtin_fabsf(xc));
    float p = 0.144930214f;
    p = p * t - 0.6808272f;
    p = p * t + 1.15673375f;
    p = p * t - 0.696251869f;
    p = p * t - 0.0802804306f;
    p = p * t + 0.00126758637f;
    p = p * t + 0.0346027985f;
    p = p * t + 0.3866404f;
    p = p * t + 0.998632789f;
    p = p * t - 1.26544797f;
    float h = 0.5f * t * vm_exp_core(hi, lo + p);
    h = vm_select(x < -13.0f, 0.0f, h);
    return vm_select(x < 0.0f, h, 1.0f - h);
}

/* Standard normal pdf phi(x) = exp(-x^2/2) / sqrt(2 pi), taken as 0 beyond |x| = 13.1 (phi(13.1) is
 * 2.4e-38, and FLT_MIN is reached at 13.19). */
static inline float vm_normpdf(float x)
{
    int far = __builtin_fabsf(x) > 13.1f; /* false for NaN, which propagates */
    float xc = vm_select(far, 0.0f, x);
    float hi, lo;
    vm_neg_half_square(xc, &hi, &lo);
    return vm_select(far, 0.0f, 0.398942280f * vm_exp_core(hi, lo));
}

/* log(1 + u) for u in [0, 1] (u = exp(-|z|) in the binary cross-entropy). 1 + u = 2^k m with m in
 * [sqrt 1/2, sqrt 2]; log m = log1p(f), f = m - 1 exact, by f - f^2/2 + f^3 R(f); the rounding error of
 * 1 + u is added back as c / (1 + u), so tiny u keep full relative accuracy. */
static inline float vm_log1pf_unit(float u)
{
    float v = 1.0f + u;
    float c = u - (v - 1.0f);
    int big = v > 1.41421356f;
    float m = vm_select(big, 0.5f * v, v);
    float k = vm_select(big, 0.693147181f, 0.0f);
    float f = m - 1.0f;
    float r = -0.0736286789f;
    r = r * f + 0.126203269f;
    r = r * f - 0.13202104f;
    r = r * f + 0.142271146f;
    r = r * f - 0.166213706f;
    r = r * f + 0.19999826f;
    r = r * f - 0.250008523f;
    r = r * f + 0.333333552f;
    float lf = f - 0.5f * f * f + f * f * f * r;
    return k + (lf + c / v);
}

#endif
