// Small ATen helpers shared by the ops' device-independent code (csrc/*.cpp).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <c10/util/string_view.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

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

// The value that `name` names among `choices`, else a ValueError naming the op, what was
// parsed and the names expected ("gru4rec_train_step_: unknown embedding 'x'; expected none,
// separate or constrained").
template <typename Enum, std::size_t N>
Enum parse_choice(const char* op, const char* what, c10::string_view name,
                  const std::pair<const char*, Enum> (&choices)[N]) {
  std::string expected;
  for (std::size_t i = 0; i < N; ++i) {
    if (name == choices[i].first) return choices[i].second;
    expected += (i == 0 ? "" : i + 1 == N ? " or " : ", ") + std::string(choices[i].first);
  }
  TORCH_CHECK_VALUE(false, op, ": unknown ", what, " '", std::string(name), "'; expected ", expected);
}

// The names of `choices`, in their order (what the Python side offers as choices).
template <typename Enum, std::size_t N>
std::vector<std::string> choice_names(const std::pair<const char*, Enum> (&choices)[N]) {
  std::vector<std::string> names;
  for (const auto& choice : choices) names.emplace_back(choice.first);
  return names;
}

}  // namespace seqrec
