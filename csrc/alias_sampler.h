// The alias-table sampler ops (csrc/alias_sampler.cpp) as C++ functions, callable without the
// dispatcher.
#pragma once

#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace seqrec {

// The op alias_build: weights (N,) floating -> prob (N,) float32, alias (N,) int64.
std::tuple<at::Tensor, at::Tensor> alias_build(const at::Tensor& weights);

// The op alias_draw: n draws from the table, honouring torch seeding or the given generator.
at::Tensor alias_draw(const at::Tensor& prob, const at::Tensor& alias, int64_t n,
                      std::optional<at::Generator> generator);

// The op alias_draw_philox: n draws under an explicit Philox key and counter offset.
at::Tensor alias_draw_philox(const at::Tensor& prob, const at::Tensor& alias, int64_t n, int64_t key,
                             int64_t offset);

}  // namespace seqrec
