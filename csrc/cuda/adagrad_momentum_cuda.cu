// CUDA kernel of the Adagrad-with-momentum update. Rows are distinct (the caller sums the
// gradients of duplicate rows first), so no two threads write the same element.
#include "cuda/adagrad_momentum_cuda.h"

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
void launch(const adagrad::RowsArgs<scalar_t>& a, cudaStream_t s) {
  const int64_t n = a.U * a.D;
  if (n == 0) return;
  adagrad_momentum_kernel<<<static_cast<unsigned int>((n + kThreads - 1) / kThreads), kThreads, 0, s>>>(a);
}

}  // namespace

void launch_adagrad_momentum_rows(const adagrad::RowsArgs<float>& a, cudaStream_t s) { launch(a, s); }
void launch_adagrad_momentum_rows(const adagrad::RowsArgs<double>& a, cudaStream_t s) { launch(a, s); }

}  // namespace seqrec::cuda
