// CUDA kernels of the GRU gate passes: one thread per (row, hidden unit). Kernels and
// raw-pointer launchers only; the matrix products are cuBLAS calls made by csrc/gru.cpp.
#include "cuda/gru_cuda.h"

namespace seqrec::cuda {
namespace {

constexpr int kThreads = 256;

template <gru::Pass kPass, typename scalar_t>
__global__ void gate_pass_kernel(gru::PassArgs<scalar_t> a) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= a.B * a.H) return;
  const int64_t b = idx / a.H;
  const int64_t j = idx - b * a.H;
  gru::gate_pass_element<kPass>(a, b, j);
}

template <gru::Pass kPass, typename scalar_t>
void launch(const gru::PassArgs<scalar_t>& a, cudaStream_t stream) {
  const int64_t n = a.B * a.H;
  if (n == 0) return;
  const unsigned int blocks = static_cast<unsigned int>((n + kThreads - 1) / kThreads);
  gate_pass_kernel<kPass><<<blocks, kThreads, 0, stream>>>(a);
}

template <typename scalar_t>
void dispatch(gru::Pass pass, const gru::PassArgs<scalar_t>& a, cudaStream_t stream) {
  // an unknown pass launches nothing; the CPU side of the op (csrc/gru.cpp) only makes known ones
  gru::dispatch_pass(pass, [&](auto p) { launch<decltype(p)::value>(a, stream); });
}

}  // namespace

void launch_gate_pass(gru::Pass p, const gru::PassArgs<float>& a, cudaStream_t s) { dispatch(p, a, s); }
void launch_gate_pass(gru::Pass p, const gru::PassArgs<double>& a, cudaStream_t s) { dispatch(p, a, s); }
void launch_gate_pass(gru::Pass p, const gru::PassArgs<__half>& a, cudaStream_t s) { dispatch(p, a, s); }
void launch_gate_pass(gru::Pass p, const gru::PassArgs<__nv_bfloat16>& a, cudaStream_t s) {
  dispatch(p, a, s);
}

}  // namespace seqrec::cuda
