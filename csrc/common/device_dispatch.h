// How an op's device-independent code (csrc/<op>.cpp) picks between its CPU kernel and its
// CUDA launcher by the device of a tensor, where both run the same per-element math:
//
//   run_on_device(like,
//                 [&] { cpu::update_stats(args); },
//                 SEQREC_CUDA_LAUNCH(stream, cuda::launch_update_stats(args, stream)));
//
// For a CUDA tensor the launcher runs with `stream`, the current CUDA stream, and the launch
// is checked (C10_CUDA_KERNEL_LAUNCH_CHECK); otherwise the CPU function runs. In a build
// without CUDA, SEQREC_CUDA_LAUNCH drops its statement, so the CUDA launchers it names need
// not be declared.
//
// An op whose kernels come for every floating element type takes its device and element type
// in one call: with_float_device(like, [&](const auto& on) { ... }) calls the function
// with OnCpu<scalar_t> or OnCuda<cuda scalar_t>{stream}, and the op's own overloads
// run_pass(OnCpu<T>, ...) / run_pass(OnCuda<T>, ...) pick the CPU kernel or the CUDA launcher.
//
// Where an op's CPU path is an algorithm of its own (the CPU kernels of adagrad_momentum,
// rank_items, sampled_loss and gru4rec_train_step fuse what the GPU path does in several ATen
// calls and kernels), the op branches on `is_cpu()` itself and its GPU-only code launches with
// run_on_cuda.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>

#ifdef SEQREC_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGraphsC10Utils.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace seqrec {

// What SEQREC_CUDA_LAUNCH gives in a build without CUDA: a launcher that is never called.
struct NoCudaLaunch {};

#ifdef SEQREC_WITH_CUDA
#define SEQREC_CUDA_LAUNCH(stream, ...) [&](cudaStream_t stream) { __VA_ARGS__; }
#else
#define SEQREC_CUDA_LAUNCH(stream, ...) \
  ::seqrec::NoCudaLaunch {}
#endif

template <typename CpuFn, typename CudaFn>
void run_on_device(const at::Tensor& like, CpuFn&& cpu_fn, CudaFn&& cuda_launch) {
#ifdef SEQREC_WITH_CUDA
  if (like.is_cuda()) {
    cuda_launch(at::cuda::getCurrentCUDAStream());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
#endif
  cpu_fn();
}

// A launch on a path only CUDA tensors reach: on the current stream, checked.
template <typename CudaFn>
void run_on_cuda(CudaFn&& cuda_launch) {
#ifdef SEQREC_WITH_CUDA
  cuda_launch(at::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
#else
  (void)cuda_launch;
  TORCH_CHECK(false, "a CUDA-only path was reached in a build without CUDA");
#endif
}

// Whether `like` is a CUDA tensor and the current stream is being captured into a CUDA graph:
// then nothing may wait for the device, so a check that would copy a value to the host is left
// to the kernels (a device-side assertion).
inline bool capturing_cuda_graph(const at::Tensor& like) {
#ifdef SEQREC_WITH_CUDA
  return like.is_cuda() &&
         c10::cuda::currentStreamCaptureStatusMayInitCtx() != c10::cuda::CaptureStatus::None;
#else
  (void)like;
  return false;
#endif
}

// The element type the CUDA kernels take for an ATen element type: CUDA's own half and
// bfloat16 (the same bits as c10::Half and c10::BFloat16), the type itself otherwise.
template <typename scalar_t>
struct CudaScalar {
  using type = scalar_t;
};
#ifdef SEQREC_WITH_CUDA
template <>
struct CudaScalar<c10::Half> {
  using type = __half;
};
template <>
struct CudaScalar<c10::BFloat16> {
  using type = __nv_bfloat16;
};
#endif
template <typename scalar_t>
using cuda_scalar_t = typename CudaScalar<scalar_t>::type;

// The device a kernel runs on, with the element type its kernels take: ATen's on the CPU,
// CUDA's (cuda_scalar_t) on CUDA, with the stream.
template <typename T>
struct OnCpu {
  using scalar_t = T;
};
#ifdef SEQREC_WITH_CUDA
template <typename T>
struct OnCuda {
  using scalar_t = T;
  cudaStream_t stream;
};
#endif

// Calls f(on) with the device of `like` and its floating element type (float, double, half,
// bfloat16; the op has checked the dtype); the CUDA launches are checked when f returns.
template <typename F>
void with_float_device(const at::Tensor& like, F&& f) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, like.scalar_type(), "seqrec op", [&] {
    run_on_device(
        like, [&] { f(OnCpu<scalar_t>{}); },
        SEQREC_CUDA_LAUNCH(stream, f(OnCuda<cuda_scalar_t<scalar_t>>{stream})));
  });
}

}  // namespace seqrec
