// Every op's kernel is device-generic: it checks its arguments and then picks the CPU kernel
// or the CUDA launcher itself (common/device_dispatch.h). So each op family registers the same
// functions for the CPU and, in a CUDA build, for the CUDA dispatch key, in the manner of
// TORCH_LIBRARY_IMPL (once per file, inside namespace seqrec):
//
//   SEQREC_REGISTER_KERNELS(m) {
//     m.impl("gru_step", &gru_step);
//   }
#pragma once

#include <torch/library.h>

#ifdef SEQREC_WITH_CUDA
#define SEQREC_REGISTER_CUDA_KERNELS() \
  TORCH_LIBRARY_IMPL(seqrec, CUDA, lib) { add_kernels(lib); }
#else
#define SEQREC_REGISTER_CUDA_KERNELS()
#endif

#define SEQREC_REGISTER_KERNELS(m)                           \
  static void add_kernels(torch::Library&);                  \
  TORCH_LIBRARY_IMPL(seqrec, CPU, lib) { add_kernels(lib); } \
  SEQREC_REGISTER_CUDA_KERNELS()                             \
  static void add_kernels(torch::Library& m)
