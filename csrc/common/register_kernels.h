// Every op's kernel is device-generic: it checks its arguments and then picks the CPU kernel
// or the CUDA launcher itself (common/device_dispatch.h). So each op family registers the same
// functions for the CPU and, in a CUDA build, for the CUDA dispatch key:
//
//   void add_kernels(torch::Library& m) { m.impl("gru_step", &gru_step); ... }
//   SEQREC_REGISTER_KERNELS(add_kernels)
#pragma once

#include <torch/library.h>

#ifdef SEQREC_WITH_CUDA
#define SEQREC_REGISTER_CUDA_KERNELS(add_kernels) \
  TORCH_LIBRARY_IMPL(seqrec, CUDA, m) { add_kernels(m); }
#else
#define SEQREC_REGISTER_CUDA_KERNELS(add_kernels)
#endif

#define SEQREC_REGISTER_KERNELS(add_kernels)             \
  TORCH_LIBRARY_IMPL(seqrec, CPU, m) { add_kernels(m); } \
  SEQREC_REGISTER_CUDA_KERNELS(add_kernels)
