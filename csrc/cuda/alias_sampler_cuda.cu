// CUDA kernels of the alias-table sampler. Kernels and raw-pointer launchers only: the ATen
// glue (checks, allocation, generator, stream) is in csrc/alias_sampler.cpp.
#include <ATen/cuda/PhiloxUtils.cuh>

#include "alias_sampler_math.h"
#include "common/philox.h"
#include "cuda/alias_sampler_cuda.h"

namespace seqrec::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per pair of draws (2k, 2k+1): the same counter layout as the CPU kernel.
template <bool kFromState>
__global__ void alias_draw_kernel(const float* __restrict__ prob, const int64_t* __restrict__ alias,
                                  int64_t n_buckets, int64_t n, at::PhiloxCudaState philox, uint64_t key,
                                  uint64_t offset, int64_t* __restrict__ out) {
  const int64_t k = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t i = 2 * k;
  if (i >= n) return;
  if constexpr (kFromState) {
    const auto seeds = at::cuda::philox::unpack(philox);
    key = std::get<0>(seeds);
    offset = std::get<1>(seeds);
  }
  const Philox4x32 block = philox4x32_10(offset / 4, static_cast<uint64_t>(k), key);
  out[i] = alias_pick(philox_lo64(block), n_buckets, prob, alias);
  if (i + 1 < n) out[i + 1] = alias_pick(philox_hi64(block), n_buckets, prob, alias);
}

unsigned int blocks_for(int64_t n) {
  const int64_t pairs = (n + 1) / 2;
  return static_cast<unsigned int>((pairs + kThreads - 1) / kThreads);
}

}  // namespace

void launch_alias_draw(const float* prob, const int64_t* alias, int64_t n_buckets, int64_t n,
                       const at::PhiloxCudaState& philox, int64_t* out, cudaStream_t stream) {
  alias_draw_kernel<true>
      <<<blocks_for(n), kThreads, 0, stream>>>(prob, alias, n_buckets, n, philox, 0, 0, out);
}

void launch_alias_draw_keyed(const float* prob, const int64_t* alias, int64_t n_buckets, int64_t n,
                             uint64_t key, uint64_t offset, int64_t* out, cudaStream_t stream) {
  alias_draw_kernel<false><<<blocks_for(n), kThreads, 0, stream>>>(prob, alias, n_buckets, n,
                                                                   at::PhiloxCudaState(), key, offset, out);
}

}  // namespace seqrec::cuda
