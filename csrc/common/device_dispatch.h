// The one place where an op's device-independent code (csrc/<op>.cpp) picks between its CPU
// kernel and its CUDA launcher by the device of a tensor:
//
//   run_on_device(like,
//                 [&] { cpu::update_stats(args); },
//                 SEQREC_CUDA_LAUNCH(stream, cuda::launch_update_stats(args, stream)));
//
// For a CUDA tensor the launcher runs with `stream`, the current CUDA stream, and the launch
// is checked (C10_CUDA_KERNEL_LAUNCH_CHECK); otherwise the CPU function runs. In a build
// without CUDA, SEQREC_CUDA_LAUNCH drops its statement, so the CUDA launchers it names need
// not be declared.
#pragma once

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

}  // namespace seqrec
