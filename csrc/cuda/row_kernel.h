// The grid of the recurrent ops' CUDA kernel passes (cuda/gru_cuda.cu, cuda/lstm_cuda.cu): one
// thread per (row, hidden unit) of a step, in blocks of kRowThreads.
#pragma once

#include <cstdint>

namespace seqrec::cuda {

constexpr int kRowThreads = 256;

// Blocks for n threads (n > 0).
inline unsigned int row_blocks(int64_t n) {
  return static_cast<unsigned int>((n + kRowThreads - 1) / kRowThreads);
}

// This thread's row b and hidden unit j of a (B, H) step; false for a thread past the end.
__device__ __forceinline__ bool row_and_unit(int64_t B, int64_t H, int64_t& b, int64_t& j) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= B * H) return false;
  b = idx / H;
  j = idx - b * H;
  return true;
}

}  // namespace seqrec::cuda
