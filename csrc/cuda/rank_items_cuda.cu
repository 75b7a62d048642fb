// CUDA kernel of the ranking op's rank counts: a block per row, its threads striding over the
// tile's columns, then a shared-memory sum. Kernels and launchers only; the tile's scores are a
// cuBLAS product made by csrc/rank_items.cpp.
#include "cuda/rank_items_cuda.h"

namespace seqrec::cuda {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void rank_counts_kernel(const scalar_t* scores, int64_t stride, int64_t c0, int64_t tc,
                                   const scalar_t* target_scores, const int64_t* targets, int64_t* greater,
                                   int64_t* equal) {
  __shared__ int64_t sums[2][kThreads];
  const int64_t b = blockIdx.x;
  const scalar_t* row = scores + b * stride;
  const scalar_t t = target_scores[b];
  const int64_t own = targets[b] - c0;  // the target's column in this tile, if any
  int64_t g = 0, e = 0;
  for (int64_t j = threadIdx.x; j < tc; j += blockDim.x)
    if (j != own) rank::count_score(row[j], t, g, e);
  sums[0][threadIdx.x] = g;
  sums[1][threadIdx.x] = e;
  __syncthreads();
  for (int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) {
      sums[0][threadIdx.x] += sums[0][threadIdx.x + half];
      sums[1][threadIdx.x] += sums[1][threadIdx.x + half];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {  // one block per row: no other writer
    greater[b] += sums[0][0];
    equal[b] += sums[1][0];
  }
}

template <typename scalar_t>
void launch(const scalar_t* scores, int64_t stride, int64_t B, int64_t c0, int64_t tc, const scalar_t* t,
            const int64_t* targets, int64_t* greater, int64_t* equal, cudaStream_t stream) {
  if (B == 0 || tc == 0) return;
  rank_counts_kernel<<<static_cast<unsigned int>(B), kThreads, 0, stream>>>(scores, stride, c0, tc, t,
                                                                            targets, greater, equal);
}

}  // namespace

void launch_rank_counts(const float* s, int64_t stride, int64_t B, int64_t c0, int64_t tc, const float* t,
                        const int64_t* targets, int64_t* greater, int64_t* equal, cudaStream_t stream) {
  launch(s, stride, B, c0, tc, t, targets, greater, equal, stream);
}
void launch_rank_counts(const double* s, int64_t stride, int64_t B, int64_t c0, int64_t tc, const double* t,
                        const int64_t* targets, int64_t* greater, int64_t* equal, cudaStream_t stream) {
  launch(s, stride, B, c0, tc, t, targets, greater, equal, stream);
}

}  // namespace seqrec::cuda
