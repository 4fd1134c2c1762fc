/* Winograd F(2x2, 3x3) rows of the implicit convolution's forward driver (conv_implicit.c), so of the forward
 * pass and of the input gradient alike, on AVX-512.
 *
 * A 2x2 block of outputs (a tile) is A^T [ (B^T d B) (.) (G g G^T) ] A for its 4x4 input patch d and each
 * kernel slice g, where (.) multiplies position by position and sums over input channels. Per block of
 * output rows: the input transform writes V[pos][tile][c] for the 16 positions, 16 products
 * M[pos] = V[pos] (tiles x c) @ U[pos] (c x f) run on the segmented GEMM kernel, and the output transform
 * reads M back, adds the bias, activates, masks and sums while writing the rows. Vectors run over channels.
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1].
 * Every tile's arithmetic is fixed, so the bits do not depend on the blocks or the threads. */
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")

#include "fnn.h"
#include "act_internal.h"
#include "conv_implicit_internal.h"

#include <immintrin.h>

#include "avx512_tile.h"

/* Floats between the positions of V and M beyond their tiles: positions a power of two apart would fall on the
 * same few L1 sets. */
#define POS_PAD 16
#define ADD _mm512_add_ps
#define SUB _mm512_sub_ps

void fnn_conv_winograd_kernel_avx512(int64_t c, int64_t f, const float *kernel, float *u, int64_t lo, int64_t hi)
{
    const __m512 half = _mm512_set1_ps(0.5f);
    int64_t slice = c * f;
    for (int64_t off = 16 * lo; off < 16 * hi; off += 16) { /* (c_in, c_out) pairs, 16 at a time */
        __m512 g[9], t[12];
        for (int q = 0; q < 9; q++)
            g[q] = _mm512_loadu_ps(kernel + q * slice + off);
        for (int j = 0; j < 3; j++) { /* t = G g: rows of 3 */
            t[j] = g[j];
            t[3 + j] = _mm512_mul_ps(half, ADD(ADD(g[j], g[3 + j]), g[6 + j]));
            t[6 + j] = _mm512_mul_ps(half, ADD(SUB(g[j], g[3 + j]), g[6 + j]));
            t[9 + j] = g[6 + j];
        }
        for (int a = 0; a < 4; a++) { /* u = t G^T */
            const __m512 *r = t + 3 * a;
            __m512 out[4] = {r[0], _mm512_mul_ps(half, ADD(ADD(r[0], r[1]), r[2])),
                             _mm512_mul_ps(half, ADD(SUB(r[0], r[1]), r[2])), r[2]};
            for (int b = 0; b < 4; b++)
                _mm512_storeu_ps(u + (4 * a + b) * slice + off, out[b]);
        }
    }
}

int64_t fnn_conv_winograd_work(const conv_geom *g)
{
    return 16 * (CONV_WINOGRAD_CHUNK * (g->c + g->f) + 2 * POS_PAD);
}

/* B^T d for one column of a patch: the 4 pixels' channels [cc, cc + 16) (rows a row apart) into e. */
INLINE void column_transform(const float *const rows[4], int64_t off, int64_t cc, __m512 e[4])
{
    __m512 d0 = _mm512_loadu_ps(rows[0] + off + cc), d1 = _mm512_loadu_ps(rows[1] + off + cc);
    __m512 d2 = _mm512_loadu_ps(rows[2] + off + cc), d3 = _mm512_loadu_ps(rows[3] + off + cc);
    e[0] = SUB(d0, d2);
    e[1] = ADD(d1, d2);
    e[2] = SUB(d2, d1);
    e[3] = SUB(d1, d3);
}

/* V[pos][t][c] (positions sv floats apart, from v) for tiles tx0 .. tx0 + m - 1 of the row pair from output row r.
 * Adjacent tiles share two patch columns: each column's B^T d is made once, as the sweep reaches it. */
static void input_transform(const conv_winograd *w, int64_t r, int64_t tx0, int64_t m, float *v, int64_t sv)
{
    const conv_geom *g = &w->g;
    int64_t c = g->c, n = r / g->oh, iy0 = r % g->oh - g->pt, ix0 = 2 * tx0 - g->pl;
    const float *rows[4];
    for (int a = 0; a < 4; a++) {
        int64_t iy = iy0 + a;
        rows[a] = iy >= 0 && iy < g->h ? w->x + (n * g->h + iy) * g->w * c : NULL;
    }
    for (int64_t cc = 0; cc < c; cc += 16) {
        __m512 col[4][4]; /* the window's columns, by column index mod 4 */
        for (int64_t k = 0; k < 2 * m + 2; k++) {
            int64_t ix = ix0 + k;
            const float *pix[4];
            for (int a = 0; a < 4; a++) /* a pixel in the padding reads zeros */
                pix[a] = rows[a] && ix >= 0 && ix < g->w ? rows[a] + ix * c : w->zeros;
            column_transform(pix, 0, cc, col[k & 3]);
            if (k < 3 || (k & 1) == 0)
                continue;
            int64_t t = (k - 3) / 2; /* columns k - 3 .. k are tile t's */
            const __m512 *e0 = col[(k - 3) & 3], *e1 = col[(k - 2) & 3], *e2 = col[(k - 1) & 3], *e3 = col[k & 3];
            for (int a = 0; a < 4; a++) { /* (B^T d) B, row a */
                float *o = v + 4 * a * sv + t * c + cc;
                _mm512_storeu_ps(o, SUB(e0[a], e2[a]));
                _mm512_storeu_ps(o + sv, ADD(e1[a], e2[a]));
                _mm512_storeu_ps(o + 2 * sv, SUB(e2[a], e1[a]));
                _mm512_storeu_ps(o + 3 * sv, SUB(e1[a], e3[a]));
            }
        }
    }
}

/* M[pos] = V[pos] @ U[pos] for the m tiles, in tiles of balanced heights of at most dk.mr rows. */
static void products(const conv_winograd *w, const float *v, int64_t sv, float *mm, int64_t sm, int64_t m)
{
    const conv_geom *g = &w->g;
    int64_t c = g->c, f = g->f, mr = w->dk.mr, n_tiles = (m + mr - 1) / mr;
    const fnn_tile_epilogue ep = {0, NULL, FNN_ACT_LINEAR, 0.0f};
    for (int64_t pos = 0; pos < 16; pos++)
        for (int64_t j = 0; j < f; j += w->dk.nr) {
            int64_t nr = conv_min64(w->dk.nr, f - j);
            for (int64_t s = 0; s < n_tiles; s++) {
                int64_t t0 = m * s / n_tiles, t1 = m * (s + 1) / n_tiles;
                fnn_conv_seg seg = {v + pos * sv + t0 * c, w->u + pos * c * f + j, c, c};
                fnn_conv_seg_tile_avx512(1, &seg, 1, f, mm + pos * sm + t0 * f + j, f, t1 - t0, nr, &ep, NULL,
                                         NULL, 0);
            }
        }
}

/* Output rows r, r + 1, columns 2 tx0 .. 2 (tx0 + m) - 1 (tiles 0 .. m - 1 of M, positions sm floats apart, from
 * mm) into dst's rows from r: the bias and activation, relu_y's mask, and the row sums (pixel after pixel,
 * added once per call). */
static void output_transform(const conv_winograd *w, const fnn_tile_epilogue *ep, int64_t r, int64_t tx0,
                             const float *mm, int64_t m, int64_t sm, float *dst)
{
    const conv_geom *g = &w->g;
    int64_t f = g->f, row = g->ow * f;
    const float *relu_y = w->relu_y ? w->relu_y + r * row : NULL;
    for (int64_t jj = 0; jj < f; jj += 16) {
        __m512d sums[2][2] = {{_mm512_setzero_pd(), _mm512_setzero_pd()}, {_mm512_setzero_pd(), _mm512_setzero_pd()}};
        for (int64_t t = 0; t < m; t++) {
            __m512 q[16], s[8];
            for (int p = 0; p < 16; p++)
                q[p] = _mm512_loadu_ps(mm + p * sm + t * f + jj);
            for (int b = 0; b < 4; b++) { /* A^T M, column b */
                s[b] = ADD(ADD(q[b], q[4 + b]), q[8 + b]);
                s[4 + b] = SUB(SUB(q[4 + b], q[8 + b]), q[12 + b]);
            }
            for (int i = 0; i < 2; i++) {
                const __m512 *x = s + 4 * i;
                __m512 out[2] = {ADD(ADD(x[0], x[1]), x[2]), SUB(SUB(x[1], x[2]), x[3])};
                for (int j = 0; j < 2; j++) {
                    int64_t at = i * row + (2 * (tx0 + t) + j) * f + jj;
                    __m512 y = epilogue_vec(out[j], ep, jj, (__mmask16)0xFFFF);
                    if (relu_y)
                        y = _mm512_maskz_mov_ps(
                            _mm512_cmp_ps_mask(_mm512_loadu_ps(relu_y + at), _mm512_setzero_ps(), _CMP_GT_OQ), y);
                    _mm512_storeu_ps(dst + at, y);
                    if (w->row_sums) {
                        sums[i][0] = _mm512_add_pd(sums[i][0], _mm512_cvtps_pd(_mm512_castps512_ps256(y)));
                        sums[i][1] = _mm512_add_pd(sums[i][1], _mm512_cvtps_pd(_mm512_extractf32x8_ps(y, 1)));
                    }
                }
            }
        }
        for (int i = 0; w->row_sums && i < 2; i++) {
            double *d = w->row_sums + (r + i) * f + jj;
            _mm512_storeu_pd(d, _mm512_add_pd(_mm512_loadu_pd(d), sums[i][0]));
            _mm512_storeu_pd(d + 8, _mm512_add_pd(_mm512_loadu_pd(d + 8), sums[i][1]));
        }
    }
}

/* Asks for the input rows of the row pair from output row r (if any) while the products run: the transforms
 * alone would wait on memory for them. */
static void prefetch_pair(const conv_winograd *w, int64_t r, int64_t r_end)
{
    const conv_geom *g = &w->g;
    if (r >= r_end)
        return;
    int64_t n = r / g->oh, iy0 = r % g->oh - g->pt, bytes = g->w * g->c * (int64_t)sizeof(float);
    for (int64_t iy = conv_max64(iy0, 0); iy < conv_min64(iy0 + 4, g->h); iy++) {
        const char *row = (const char *)(w->x + (n * g->h + iy) * g->w * g->c);
        for (int64_t b = 0; b < bytes; b += 64)
            _mm_prefetch(row + b, _MM_HINT_T0);
    }
}

void fnn_conv_winograd_rows_avx512(const conv_winograd *w, int64_t r0, int64_t r1, float *dst, float *work)
{
    const conv_geom *g = &w->g;
    int64_t tw = g->ow / 2, row = g->ow * g->f;
    float *v = work, *mm = work + 16 * (CONV_WINOGRAD_CHUNK * g->c + POS_PAD);
    int in_registers = w->act == FNN_ACT_LINEAR || w->act == FNN_ACT_RELU || w->act == FNN_ACT_LEAKY_RELU;
    const fnn_tile_epilogue ep = {0, w->bias, in_registers ? w->act : FNN_ACT_LINEAR, w->alpha};
    if (tw <= CONV_WINOGRAD_CHUNK) { /* whole row pairs a chunk */
        int64_t per = conv_max64(1, CONV_WINOGRAD_CHUNK / tw);
        for (int64_t r = r0; r < r1; r += 2 * per) {
            int64_t pairs = conv_min64(per, (r1 - r) / 2), m = pairs * tw;
            int64_t sv = m * g->c + POS_PAD, sm = m * g->f + POS_PAD;
            for (int64_t q = 0; q < pairs; q++)
                input_transform(w, r + 2 * q, 0, tw, v + q * tw * g->c, sv);
            for (int64_t q = 0; q < per; q++)
                prefetch_pair(w, r + 2 * (per + q), r1);
            products(w, v, sv, mm, sm, m);
            for (int64_t q = 0; q < pairs; q++)
                output_transform(w, &ep, r + 2 * q, 0, mm + q * tw * g->f, tw, sm, dst + (r + 2 * q - r0) * row);
        }
    } else { /* each row pair in chunks of tiles */
        for (int64_t r = r0; r < r1; r += 2)
            for (int64_t tx0 = 0; tx0 < tw; tx0 += CONV_WINOGRAD_CHUNK) {
                int64_t m = conv_min64(CONV_WINOGRAD_CHUNK, tw - tx0);
                int64_t sv = m * g->c + POS_PAD, sm = m * g->f + POS_PAD;
                input_transform(w, r, tx0, m, v, sv);
                products(w, v, sv, mm, sm, m);
                output_transform(w, &ep, r, tx0, mm, m, sm, dst + (r - r0) * row);
            }
    }
    if (!in_registers)
        fnn_act_block((r1 - r0) * g->ow, g->f, dst, g->f, NULL, w->act, w->alpha);
}
