// Half and bfloat16 inputs of the loss and step ops: they run in float32 (float32 arithmetic and
// accumulation, the existing kernels), widened here on the way in, the outputs cast back to
// each input's own dtype on the way out. So bfloat16 activations with float32 parameters (what
// autocast or a hand-cast model gives) work without a cast by the caller. The GRU4Rec step ops
// run their large matrix products in the state's low precision (`mm_in`): the tensor products
// the hardware has for it, accumulating in float32.
#pragma once

#include <ATen/Functions.h>
#include <ATen/core/Tensor.h>

#include <initializer_list>
#include <optional>

namespace seqrec {

inline bool is_low_precision(const at::Tensor& t) {
  return t.defined() && (t.scalar_type() == at::kHalf || t.scalar_type() == at::kBFloat16);
}

inline bool any_low_precision(std::initializer_list<const at::Tensor*> ts,
                              std::initializer_list<const std::optional<at::Tensor>*> opts = {}) {
  for (const at::Tensor* t : ts)
    if (is_low_precision(*t)) return true;
  for (const std::optional<at::Tensor>* t : opts)
    if (t->has_value() && is_low_precision(**t)) return true;
  return false;
}

inline at::Tensor widened(const at::Tensor& t) { return is_low_precision(t) ? t.to(at::kFloat) : t; }

inline std::optional<at::Tensor> widened(const std::optional<at::Tensor>& t) {
  return t.has_value() ? std::optional<at::Tensor>(widened(*t)) : std::nullopt;
}

// `out` in the dtype of the input `like`.
inline at::Tensor narrowed(const at::Tensor& out, const at::Tensor& like) {
  return out.defined() && out.scalar_type() != like.scalar_type() ? out.to(like.scalar_type()) : out;
}

// a b, its operands in `dtype` (bfloat16 / half: the BLAS's low-precision product, which
// accumulates in float32), the result in a's dtype. Operands already in `dtype`: a plain mm.
inline at::Tensor mm_in(at::ScalarType dtype, const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() == dtype && b.scalar_type() == dtype) return at::mm(a, b);
  return at::mm(a.to(dtype), b.to(dtype)).to(a.scalar_type());
}

}  // namespace seqrec
