// CPU kernels of the alias-table sampler.
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace seqrec {

// weights (N,) floating on the CPU -> prob (N,) float32, alias (N,) int64, built by Vose's
// method in O(N). Also used by the CUDA op, which builds on the host and copies.
std::tuple<at::Tensor, at::Tensor> alias_build_cpu(const at::Tensor& weights);

}  // namespace seqrec
