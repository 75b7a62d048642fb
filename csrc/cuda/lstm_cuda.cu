// CUDA kernels of the LSTM cell passes: one thread per (row, hidden unit). Kernels and
// raw-pointer launchers only; the matrix products are cuBLAS calls made by csrc/lstm.cpp.
#include "cuda/lstm_cuda.h"
#include "cuda/row_kernel.h"

namespace seqrec::cuda {
namespace {

template <lstm::Pass kPass, typename scalar_t>
__global__ void lstm_pass_kernel(lstm::PassArgs<scalar_t> a) {
  int64_t b, j;
  if (row_and_unit(a.B, a.H, b, j)) seq::run_element<lstm::PassElement<kPass>>(a, b, j);
}

template <typename scalar_t>
void dispatch(lstm::Pass pass, const lstm::PassArgs<scalar_t>& a, cudaStream_t stream) {
  if (a.B * a.H == 0) return;
  // an unknown pass launches nothing; the CPU side of the op (csrc/lstm.cpp) only makes known ones
  seq::dispatch_pass<lstm::kPasses>(pass, [&](auto p) {
    lstm_pass_kernel<decltype(p)::value><<<row_blocks(a.B * a.H), kRowThreads, 0, stream>>>(a);
  });
}

}  // namespace

void launch_lstm_pass(lstm::Pass p, const lstm::PassArgs<float>& a, cudaStream_t s) { dispatch(p, a, s); }
void launch_lstm_pass(lstm::Pass p, const lstm::PassArgs<double>& a, cudaStream_t s) { dispatch(p, a, s); }
void launch_lstm_pass(lstm::Pass p, const lstm::PassArgs<__half>& a, cudaStream_t s) { dispatch(p, a, s); }
void launch_lstm_pass(lstm::Pass p, const lstm::PassArgs<__nv_bfloat16>& a, cudaStream_t s) {
  dispatch(p, a, s);
}

}  // namespace seqrec::cuda
