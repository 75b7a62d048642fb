// Small ATen helpers shared by the ops' device-independent code (csrc/*.cpp).
#pragma once

#include <ATen/core/Tensor.h>

namespace seqrec {

// Rows [r0, r0 + nr) and columns [c0, c0 + nc) of a contiguous matrix m (or of the matrix a
// contiguous (T, B, X) tensor is when viewed as (T*B, X)), or their transpose: one as_strided
// call. narrow / t() / select go through the dispatcher several times each, which costs
// microseconds per call on the small tensors of a training step.
inline at::Tensor block(const at::Tensor& m, int64_t r0, int64_t nr, int64_t c0, int64_t nc,
                        bool transpose = false) {
  const int64_t cols = m.size(-1);
  const int64_t offset = m.storage_offset() + r0 * cols + c0;
  return transpose ? m.as_strided({nc, nr}, {1, cols}, offset) : m.as_strided({nr, nc}, {cols, 1}, offset);
}

// Typed data pointer of a tensor (null for an undefined one).
template <typename scalar_t>
scalar_t* ptr(const at::Tensor& t) {
  return t.defined() ? static_cast<scalar_t*>(t.data_ptr()) : nullptr;
}

}  // namespace seqrec
