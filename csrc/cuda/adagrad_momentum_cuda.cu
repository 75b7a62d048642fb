// CUDA kernels of the Adagrad-with-momentum update: one thread per (row, value). The sorted
// form sums the gradients of a repeated row in its kernel (one thread per run and value, in
// the rows' original order): no atomics, no host synchronisation, deterministic.
#include "cuda/adagrad_momentum_cuda.h"

#include <c10/macros/Macros.h>

namespace seqrec::cuda {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void adagrad_momentum_kernel(adagrad::RowsArgs<scalar_t> a) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= a.U * a.D) return;
  const int64_t k = idx / a.D;
  adagrad::update_element(a, k, idx - k * a.D);
}

template <typename scalar_t>
__global__ void sorted_rows_kernel(adagrad::RowsArgs<scalar_t> a) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= a.U * a.D) return;
  const int64_t k = idx / a.D;
  CUDA_KERNEL_ASSERT(a.rows[k] >= 0 && a.rows[k] < a.N);  // an index outside the table
  adagrad::update_run_element(a, k, idx - k * a.D);
}

unsigned int blocks(int64_t n) { return static_cast<unsigned int>((n + kThreads - 1) / kThreads); }

template <typename scalar_t>
void launch(const adagrad::RowsArgs<scalar_t>& a, cudaStream_t s) {
  const int64_t n = a.U * a.D;
  if (n == 0) return;
  if (a.order != nullptr) {
    sorted_rows_kernel<<<blocks(n), kThreads, 0, s>>>(a);
  } else {
    adagrad_momentum_kernel<<<blocks(n), kThreads, 0, s>>>(a);
  }
}

}  // namespace

void launch_adagrad_momentum_rows(const adagrad::RowsArgs<float>& a, cudaStream_t s) { launch(a, s); }
void launch_adagrad_momentum_rows(const adagrad::RowsArgs<double>& a, cudaStream_t s) { launch(a, s); }

}  // namespace seqrec::cuda
