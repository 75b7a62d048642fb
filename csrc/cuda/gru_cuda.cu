// CUDA kernels of the GRU gate passes: one thread per (row, hidden unit). Kernels and
// raw-pointer launchers only; the matrix products are cuBLAS calls made by csrc/gru.cpp.
#include "cuda/gru_cuda.h"
#include "cuda/row_kernel.h"

namespace seqrec::cuda {
namespace {

template <gru::Pass kPass, typename scalar_t>
__global__ void gate_pass_kernel(gru::PassArgs<scalar_t> a) {
  int64_t b, j;
  if (row_and_unit(a.B, a.H, b, j)) seq::run_element<gru::GatePassElement<kPass>>(a, b, j);
}

template <gru::Pass kPass, typename scalar_t>
void launch(const gru::PassArgs<scalar_t>& a, cudaStream_t stream) {
  if (a.B * a.H == 0) return;
  gate_pass_kernel<kPass><<<row_blocks(a.B * a.H), kRowThreads, 0, stream>>>(a);
}

template <typename scalar_t>
void dispatch(gru::Pass pass, const gru::PassArgs<scalar_t>& a, cudaStream_t stream) {
  // an unknown pass launches nothing; the CPU side of the op (csrc/gru.cpp) only makes known ones
  seq::dispatch_pass<gru::kPasses>(pass, [&](auto p) { launch<decltype(p)::value>(a, stream); });
}

}  // namespace

void launch_gate_pass(gru::Pass p, const gru::PassArgs<float>& a, cudaStream_t s) { dispatch(p, a, s); }
void launch_gate_pass(gru::Pass p, const gru::PassArgs<double>& a, cudaStream_t s) { dispatch(p, a, s); }
void launch_gate_pass(gru::Pass p, const gru::PassArgs<__half>& a, cudaStream_t s) { dispatch(p, a, s); }
void launch_gate_pass(gru::Pass p, const gru::PassArgs<__nv_bfloat16>& a, cudaStream_t s) {
  dispatch(p, a, s);
}

}  // namespace seqrec::cuda
