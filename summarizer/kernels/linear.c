/* y = x @ w.T for a few rows of x: nn.Linear's product at decode batch sizes, on the CPU.
 *
 * At batch 1 a decode step reads every weight once and does one multiply-add per weight, so
 * the step runs at the speed weights stream from memory. torch's fp32 path (MKL sgemv) reaches
 * about 40% of that speed on the AMD EPYC machines this project runs on; this loop, compiled
 * with -O3 -march=native, reaches over 90% (benchmarks/README.md). Weights stay where
 * nn.Linear keeps them (row-major, out x in): no copy, no repacking.
 *
 * Each output is one dot product, summed in a different order than MKL's, so results agree
 * with torch to float rounding (~1e-6 relative), not bit for bit.
 */
#include <stddef.h>

void linear_rows(const float *restrict x, const float *restrict w, float *restrict y,
                 long rows, long in, long out, int threads) {
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (long o = 0; o < out; o += 4) {
        const long block = out - o < 4 ? out - o : 4;
        for (long r = 0; r < rows; r++) {
            const float *xr = x + r * in;
            for (long k = 0; k < block; k++) {
                const float *wr = w + (o + k) * in;
                float sum = 0.0f;
                #pragma omp simd reduction(+:sum)
                for (long i = 0; i < in; i++) sum += wr[i] * xr[i];
                y[r * out + o + k] = sum;
            }
        }
    }
}
