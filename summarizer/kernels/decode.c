/* Decode-step kernels for T5 on the CPU, at decode batch sizes (summarizer/fast_decode.py).
 *
 * At batch 1 a decode step reads every weight once and does one multiply-add per weight, so
 * the step runs at the speed weights stream from memory. torch's fp32 path (MKL sgemv) reaches
 * about 40% of that speed on the AMD EPYC machines this project runs on; this loop, compiled
 * with -O3 -march=native, reaches over 90% (benchmarks/README.md). Weights stay where
 * nn.Linear keeps them (row-major, out x in): no copy, no repacking.
 *
 * Each output is one dot product, summed in a different order than MKL's, so results agree
 * with torch to float rounding (~1e-6 relative), not bit for bit. The same holds for the
 * attention, norm and activation below, which save the dozens of small torch ops (each a few
 * microseconds of dispatch) that a layer's step would otherwise cost.
 */
#include <math.h>

/* glibc's vector versions (libmvec), which math.h declares only under -ffast-math: that flag
 * would also switch the whole process to flush-to-zero when the library loads. */
float expf(float) __attribute__((__simd__("notinbranch")));
float tanhf(float) __attribute__((__simd__("notinbranch")));
#include <stddef.h>

/* One query per (row, head) against `length` cached keys/values: softmax(q.k + bias) . v, as
 * scaled_dot_product_attention computes it for T5 (scale 1, the relative position bias or the
 * padding mask as an additive bias). Keys and values of one (row, head) are `length` x `d`
 * contiguous; `*_row` and `*_head` are the strides in floats (a bias stride of 0 broadcasts).
 * q and out are rows x heads x d, the layout the projections before and after use. */
/* One (row, head): `d` is a parameter, but inlined with the constant 64 (every T5 size) the
 * compiler unrolls the dot products into a few vector instructions. */
static inline void attend_head(const float *restrict qh, const float *restrict kh, const float *restrict vh,
                               const float *restrict bh, float *restrict oh, float *restrict scores,
                               long length, long d) {
    float top = -__builtin_inff();
    for (long j = 0; j < length; j++) {
        const float *kj = kh + j * d;
        float s = 0.0f;
        #pragma omp simd reduction(+:s)
        for (long i = 0; i < d; i++) s += qh[i] * kj[i];
        s += bh[j];
        scores[j] = s;
        if (s > top) top = s;
    }
    float total = 0.0f;
    #pragma omp simd
    for (long j = 0; j < length; j++) scores[j] = expf(scores[j] - top);
    for (long j = 0; j < length; j++) total += scores[j];
    for (long i = 0; i < d; i++) oh[i] = 0.0f;
    for (long j = 0; j < length; j++) {
        const float p = scores[j] / total;
        const float *vj = vh + j * d;
        #pragma omp simd
        for (long i = 0; i < d; i++) oh[i] += p * vj[i];
    }
}

void attend_rows(const float *restrict q, const float *restrict k, const float *restrict v,
                 const float *restrict bias, float *restrict out, long rows, long heads, long length, long d,
                 long kv_row, long kv_head, long bias_row, long bias_head, int threads) {
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (long rh = 0; rh < rows * heads; rh++) {
        const long r = rh / heads, h = rh % heads;
        const float *qh = q + rh * d;
        const float *kh = k + r * kv_row + h * kv_head;
        const float *vh = v + r * kv_row + h * kv_head;
        const float *bh = bias + r * bias_row + h * bias_head;
        float scores[length];  /* one head's softmax, on this thread's stack */
        if (d == 64)
            attend_head(qh, kh, vh, bh, out + rh * d, scores, length, 64);
        else
            attend_head(qh, kh, vh, bh, out + rh * d, scores, length, d);
    }
}

/* T5's RMS norm (no mean subtraction, no bias): y = weight * x / sqrt(mean(x^2) + eps). */
void rms_norm_rows(const float *restrict x, const float *restrict weight, float *restrict y,
                   long rows, long width, float eps) {
    for (long r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float sum = 0.0f;
        #pragma omp simd reduction(+:sum)
        for (long i = 0; i < width; i++) sum += xr[i] * xr[i];
        const float scale = 1.0f / sqrtf(sum / (float)width + eps);
        float *yr = y + r * width;
        #pragma omp simd
        for (long i = 0; i < width; i++) yr[i] = weight[i] * (xr[i] * scale);
    }
}

/* The gated feed-forward's middle: gelu_new(gate) * up, elementwise, in place in `gate`
 * (gelu_new: the tanh approximation, transformers' NewGELUActivation). */
void gelu_gate(float *restrict gate, const float *restrict up, long n) {
    const float c = 0.7978845608028654f;  /* sqrt(2 / pi) */
    #pragma omp simd
    for (long i = 0; i < n; i++) {
        const float x = gate[i];
        gate[i] = 0.5f * x * (1.0f + tanhf(c * (x + 0.044715f * x * x * x))) * up[i];
    }
}

/* The two above over many rows (the encoder's tokens), rows shared out between the threads. */
void rms_norm_parallel(const float *restrict x, const float *restrict weight, float *restrict y,
                       long rows, long width, float eps, int threads) {
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (long r = 0; r < rows; r++) rms_norm_rows(x + r * width, weight, y + r * width, 1, width, eps);
}

void gelu_gate_parallel(float *restrict gate, const float *restrict up, long n, int threads) {
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (long i = 0; i < n; i += 4096) gelu_gate(gate + i, up + i, n - i < 4096 ? n - i : 4096);
}

/* ---- A whole decoder step in one call (plain fp32 or bf16 layers, LoRA rows beside base rows) ----
 * The loops above, called one by one from Python, leave ~2 ms per token of dispatch between them
 * on flan-t5-base; here one OpenMP region runs every layer of a step. Each projection is an
 * `omp for` over blocks of output features (nowait where the next projection reads the same
 * input), so both cores stream weights and meet only at the barriers the data needs.
 */

/* y (+)= x @ w.T for `rows` rows, inside a parallel region, output features shared out. The
 * weights are fp32 or bf16 (SUMMARIZER_QUANTIZE=bf16: half the bytes to stream; a bf16 value is
 * the top half of an fp32 one, so widening is a shift and the arithmetic stays fp32). */
/* Rows come in blocks of 4 where there are 4: 4 output features x 4 rows make 16 running sums
 * that stay in vector registers while each weight and input element is loaded once, so at
 * batch sizes above 1 the loop is bound by arithmetic, not by loads (a one-row dot product
 * loads two values per multiply-add and ends in a horizontal sum per output). Rows that do not
 * fill a block take the one-row loop. */
#define SUMS4(a) float a##0 = 0.0f, a##1 = 0.0f, a##2 = 0.0f, a##3 = 0.0f
#define PROJECT(NAME, WEIGHT, WIDEN)                                                              \
static void NAME(const float *restrict x, const WEIGHT *restrict w, float *restrict y,            \
                 long rows, long in, long out, int accumulate) {                                  \
    _Pragma("omp for schedule(static) nowait")                                                    \
    for (long o = 0; o < out; o += 4) {                                                           \
        const long block = out - o < 4 ? out - o : 4;                                             \
        long r = 0;                                                                               \
        if (block == 4) {                                                                         \
            const WEIGHT *w0 = w + o * in, *w1 = w0 + in, *w2 = w1 + in, *w3 = w2 + in;           \
            for (; r + 4 <= rows; r += 4) {                                                       \
                const float *x0 = x + r * in, *x1 = x0 + in, *x2 = x1 + in, *x3 = x2 + in;        \
                SUMS4(a); SUMS4(b); SUMS4(c); SUMS4(e);                                           \
                _Pragma("omp simd reduction(+:a0,a1,a2,a3,b0,b1,b2,b3,c0,c1,c2,c3,e0,e1,e2,e3)")  \
                for (long i = 0; i < in; i++) {                                                   \
                    const float v0 = WIDEN(w0[i]), v1 = WIDEN(w1[i]);                             \
                    const float v2 = WIDEN(w2[i]), v3 = WIDEN(w3[i]);                             \
                    const float u0 = x0[i], u1 = x1[i], u2 = x2[i], u3 = x3[i];                   \
                    a0 += v0 * u0; a1 += v1 * u0; a2 += v2 * u0; a3 += v3 * u0;                   \
                    b0 += v0 * u1; b1 += v1 * u1; b2 += v2 * u1; b3 += v3 * u1;                   \
                    c0 += v0 * u2; c1 += v1 * u2; c2 += v2 * u2; c3 += v3 * u2;                   \
                    e0 += v0 * u3; e1 += v1 * u3; e2 += v2 * u3; e3 += v3 * u3;                   \
                }                                                                                 \
                const float sums[16] = {a0, a1, a2, a3, b0, b1, b2, b3, c0, c1, c2, c3, e0, e1, e2, e3}; \
                for (long j = 0; j < 4; j++)                                                      \
                    for (long k = 0; k < 4; k++) {                                                \
                        float *dst = y + (r + j) * out + o + k;                                   \
                        *dst = accumulate ? *dst + sums[j * 4 + k] : sums[j * 4 + k];             \
                    }                                                                             \
            }                                                                                     \
        }                                                                                         \
        for (; r < rows; r++) {                                                                   \
            const float *xr = x + r * in;                                                         \
            for (long k = 0; k < block; k++) {                                                    \
                const WEIGHT *wr = w + (o + k) * in;                                              \
                float sum = 0.0f;                                                                 \
                _Pragma("omp simd reduction(+:sum)")                                              \
                for (long i = 0; i < in; i++) sum += WIDEN(wr[i]) * xr[i];                        \
                if (accumulate) y[r * out + o + k] += sum;                                        \
                else y[r * out + o + k] = sum;                                                    \
            }                                                                                     \
        }                                                                                         \
    }                                                                                             \
}
#define AS_IS(v) (v)
static inline float widen_bf16(unsigned short v) {
    union { unsigned int bits; float value; } u = { .bits = (unsigned int)v << 16 };
    return u.value;
}
PROJECT(project_f32, float, AS_IS)
PROJECT(project_bf16, unsigned short, widen_bf16)

/* y = x @ w.T for `rows` rows of x: nn.Linear's product without bias. */
void linear_rows(const float *restrict x, const float *restrict w, float *restrict y,
                 long rows, long in, long out, int threads) {
    #pragma omp parallel num_threads(threads)
    project_f32(x, w, y, rows, in, out, 0);
}

static void project(const float *restrict x, const void *w, float *restrict y, long rows, long in,
                    long out, int accumulate, int bf16) {
    if (bf16) project_bf16(x, w, y, rows, in, out, accumulate);
    else project_f32(x, w, y, rows, in, out, accumulate);
}

/* (row, head) `rh` of the computed rows as (cache row, head): finished rows are skipped, not copied out. */
#define CACHED(rh) ((row_index ? row_index[(rh) / heads] : (rh) / heads) * heads + (rh) % heads)

/* Per layer, in this order (decoder_step's `layers`, LAYER_POINTERS each). */
enum { NORM1, Q, K, V, O, NORM2, CROSS_Q, CROSS_O, NORM3, WI_0, WI_1, WO, CACHE, CROSS_K, CROSS_V,
       LAYER_POINTERS };
/* dims: rows, d_model, heads, d_kv, d_ff, vocab, steps (cache length), t (this position), source
 * (encoder length), gated (1: gelu_new(wi_0 x) * wi_1 x; 0: relu(wi x), wi in WI_0), cross bias
 * row stride (0 broadcasts), bf16 (1: the projections and lm_head are bf16; norms, activations
 * and caches are fp32 either way), cache rows (the rows the caches and cross K/V hold; ROWS of them
 * are computed, the rows `row_index` names, or the first ROWS where it is NULL). */
enum { ROWS, D_MODEL, HEADS, D_KV, D_FF, VOCAB, STEPS, T, SOURCE, GATED, CROSS_BIAS_ROW, BF16, CACHE_ROWS, DIMS };

/* LoRA rows (PEFT's LoRA on any projection of a layer, one adapter per row, base rows beside
 * them): y += (B (A x)) * scale for each row whose adapter has that projection, after the plain
 * projection of every row. Entries are [(layer * LORA_SLOTS + slot) * adapters + adapter]. */
enum { L_Q, L_K, L_V, L_O, L_CROSS_Q, L_CROSS_O, L_WI_0, L_WI_1, L_WO, LORA_SLOTS };
typedef struct {
    long adapters, max_rank;
    const long *row_adapter;  /* per cache row: its adapter, or -1 */
    const float *const *a;    /* rank x in, or NULL where that adapter leaves the projection plain */
    const float *const *b;    /* out x rank */
    const long *rank;
    const float *scale;
    float *tmp;               /* rows x max_rank */
} Lora;

static void lora_apply(const Lora *lo, long layer, int slot, const float *restrict x, float *restrict y,
                       long rows, long in, long out, const long *row_index) {
    if (lo == NULL || lo->adapters == 0) return;
    const long base = (layer * LORA_SLOTS + slot) * lo->adapters;
    int any = 0;
    for (long a = 0; a < lo->adapters; a++) any |= lo->a[base + a] != NULL;
    if (!any) return;
    #pragma omp for schedule(static)
    for (long r = 0; r < rows; r++) {  /* A x, per row */
        const long ad = lo->row_adapter[row_index ? row_index[r] : r];
        if (ad < 0 || lo->a[base + ad] == NULL) continue;
        const float *A = lo->a[base + ad], *xr = x + r * in;
        for (long j = 0; j < lo->rank[base + ad]; j++) {
            float sum = 0.0f;
            #pragma omp simd reduction(+:sum)
            for (long i = 0; i < in; i++) sum += A[j * in + i] * xr[i];
            lo->tmp[r * lo->max_rank + j] = sum;
        }
    }
    #pragma omp for schedule(static)
    for (long o = 0; o < out; o++) {  /* then B (A x) * scale, output features shared out */
        for (long r = 0; r < rows; r++) {
            const long ad = lo->row_adapter[row_index ? row_index[r] : r];
            if (ad < 0 || lo->a[base + ad] == NULL) continue;
            const long rank = lo->rank[base + ad];
            const float *B = lo->b[base + ad] + o * rank, *t = lo->tmp + r * lo->max_rank;
            float sum = 0.0f;
            for (long j = 0; j < rank; j++) sum += B[j] * t[j];
            y[r * out + o] += sum * lo->scale[base + ad];
        }
    }
}

/* hidden: rows x d_model, the embedded tokens in, the last layer's output out;
 * logits: rows x vocab (lm_head of the final norm, times `scale`); self_bias: heads x (t + 1), this position's relative bias; cross_bias:
 * (1 or rows) x heads x source; scratch: rows x (4 * heads * d_kv + 2 * d_ff + d_model) floats.
 * The self-attention cache of a layer is K then V, each rows x heads x steps x d_kv. */
void decoder_step(float *restrict hidden, void *const *layers, long n_layers, const float *final_norm,
                  const void *lm_head, float *restrict logits, const float *self_bias,
                  const float *cross_bias, float *restrict scratch, const long *dims, const long *row_index,
                  const Lora *lora, float eps, float scale, int threads) {
    const long rows = dims[ROWS], d_model = dims[D_MODEL], heads = dims[HEADS], d = dims[D_KV];
    const long d_ff = dims[D_FF], steps = dims[STEPS], t = dims[T], source = dims[SOURCE];
    const long inner = heads * d, gated = dims[GATED], cross_bias_row = dims[CROSS_BIAS_ROW];
    const int bf16 = (int)dims[BF16];
    const long cache_rows = dims[CACHE_ROWS];
    float *x = scratch, *q = x + rows * d_model, *k_new = q + rows * inner, *v_new = k_new + rows * inner;
    float *att = v_new + rows * inner, *gate = att + rows * inner, *up = gate + rows * d_ff;
    #pragma omp parallel num_threads(threads)
    for (long l = 0; l <= n_layers; l++) {
        if (l == n_layers) {  /* the final norm and lm_head */
            #pragma omp single
            {
                rms_norm_rows(hidden, final_norm, x, rows, d_model, eps);
                if (scale != 1.0f)
                    for (long i = 0; i < rows * d_model; i++) x[i] *= scale;
            }
            project(x, lm_head, logits, rows, d_model, dims[VOCAB], 0, bf16);
            break;
        }
        float *const *p = (float *const *)layers + l * LAYER_POINTERS;
        float *cache_k = p[CACHE], *cache_v = cache_k + cache_rows * heads * steps * d;
        #pragma omp single
        rms_norm_rows(hidden, p[NORM1], x, rows, d_model, eps);
        project(x, p[Q], q, rows, d_model, inner, 0, bf16);
        project(x, p[K], k_new, rows, d_model, inner, 0, bf16);
        project(x, p[V], v_new, rows, d_model, inner, 0, bf16);
        #pragma omp barrier
        lora_apply(lora, l, L_Q, x, q, rows, d_model, inner, row_index);
        lora_apply(lora, l, L_K, x, k_new, rows, d_model, inner, row_index);
        lora_apply(lora, l, L_V, x, v_new, rows, d_model, inner, row_index);
        #pragma omp single
        for (long rh = 0; rh < rows * heads; rh++) {  /* into the cache at position t */
            const long at = CACHED(rh);
            const long offset = (at * steps + t) * d;
            for (long i = 0; i < d; i++) {
                cache_k[offset + i] = k_new[rh * d + i];
                cache_v[offset + i] = v_new[rh * d + i];
            }
        }
        #pragma omp for schedule(static)
        for (long rh = 0; rh < rows * heads; rh++) {
            float scores[t + 1];
            const float *bh = self_bias + (rh % heads) * (t + 1);
            const long at = CACHED(rh) * steps * d;
            if (d == 64) attend_head(q + rh * d, cache_k + at, cache_v + at, bh, att + rh * d, scores, t + 1, 64);
            else attend_head(q + rh * d, cache_k + at, cache_v + at, bh, att + rh * d, scores, t + 1, d);
        }
        project(att, p[O], hidden, rows, inner, d_model, 1, bf16);
        #pragma omp barrier
        lora_apply(lora, l, L_O, att, hidden, rows, inner, d_model, row_index);
        #pragma omp single
        rms_norm_rows(hidden, p[NORM2], x, rows, d_model, eps);
        project(x, p[CROSS_Q], q, rows, d_model, inner, 0, bf16);
        #pragma omp barrier
        lora_apply(lora, l, L_CROSS_Q, x, q, rows, d_model, inner, row_index);
        #pragma omp for schedule(static)
        for (long rh = 0; rh < rows * heads; rh++) {
            const long r = row_index ? row_index[rh / heads] : rh / heads, h = rh % heads;
            float scores[source];
            const float *bh = cross_bias + r * cross_bias_row + h * source;
            const long at = CACHED(rh) * source * d;
            if (d == 64) attend_head(q + rh * d, p[CROSS_K] + at, p[CROSS_V] + at, bh, att + rh * d, scores, source, 64);
            else attend_head(q + rh * d, p[CROSS_K] + at, p[CROSS_V] + at, bh, att + rh * d, scores, source, d);
        }
        project(att, p[CROSS_O], hidden, rows, inner, d_model, 1, bf16);
        #pragma omp barrier
        lora_apply(lora, l, L_CROSS_O, att, hidden, rows, inner, d_model, row_index);
        #pragma omp single
        rms_norm_rows(hidden, p[NORM3], x, rows, d_model, eps);
        project(x, p[WI_0], gate, rows, d_model, d_ff, 0, bf16);
        if (gated) project(x, p[WI_1], up, rows, d_model, d_ff, 0, bf16);
        #pragma omp barrier
        lora_apply(lora, l, L_WI_0, x, gate, rows, d_model, d_ff, row_index);
        if (gated) lora_apply(lora, l, L_WI_1, x, up, rows, d_model, d_ff, row_index);
        #pragma omp for schedule(static)
        for (long i = 0; i < rows * d_ff; i += 64) {
            const long n = rows * d_ff - i < 64 ? rows * d_ff - i : 64;
            if (gated) gelu_gate(gate + i, up + i, n);
            else for (long j = i; j < i + n; j++) gate[j] = gate[j] > 0.0f ? gate[j] : 0.0f;
        }
        project(gate, p[WO], hidden, rows, d_ff, d_model, 1, bf16);
        #pragma omp barrier
        lora_apply(lora, l, L_WO, gate, hidden, rows, d_ff, d_model, row_index);
    }
}
