// Launchers of the alias-sampler CUDA kernels (raw pointers; no ATen in the .cu file).
#pragma once

#include <ATen/cuda/PhiloxCudaState.h>  // a plain struct: light enough for nvcc
#include <cuda_runtime_api.h>

#include <cstdint>

namespace seqrec::cuda {

// out[i], i < n: items drawn from the table (prob (N,) float32, alias (N,) int64, N >= 1).
// Draws 2k, 2k+1 use the Philox block at counter (offset / 4, k) under key = seed, where
// (seed, offset) come from `philox` (unpacked on the device, so CUDA-graph capture works).
void launch_alias_draw(const float* prob, const int64_t* alias, int64_t n_buckets, int64_t n,
                       const at::PhiloxCudaState& philox, int64_t* out, cudaStream_t stream);

// The same with an explicit key and offset (alias_draw_philox).
void launch_alias_draw_keyed(const float* prob, const int64_t* alias, int64_t n_buckets, int64_t n,
                             uint64_t key, uint64_t offset, int64_t* out, cudaStream_t stream);

}  // namespace seqrec::cuda
