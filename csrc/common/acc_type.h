// The type the per-element math of the kernels accumulates in, for a tensor element type:
// double for double data, float for everything else (float, half, bfloat16). Shared by the
// CPU kernels (g++) and the CUDA kernels (nvcc), so it names no ATen type.
#pragma once

namespace seqrec {

template <typename scalar_t>
struct AccType {
  using type = float;
};
template <>
struct AccType<double> {
  using type = double;
};

}  // namespace seqrec
