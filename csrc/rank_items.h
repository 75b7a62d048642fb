// The full-catalogue ranking op (csrc/rank_items.cpp) as a C++ function.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace seqrec {

// Scores h (B, H) against every row of table (N, H) (+ bias (N,), then ELU when elu_param > 0)
// tile by tile, never holding a (B, N) matrix, and returns
//   greater, equal (B,) int64: per row, the items other than targets[b] scoring more than /
//     exactly as much as targets[b] (empty without targets);
//   top_ids (B, k) int64, top_scores (B, k): the k best items, best first, ties by lower id;
//     items in the row's exclude list (B, E), -1 padded, never among them; id -1 and score
//     -inf where fewer than k items can be ranked.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> rank_items(
    const at::Tensor& h, const at::Tensor& table, const std::optional<at::Tensor>& bias,
    const std::optional<at::Tensor>& targets, const std::optional<at::Tensor>& exclude, int64_t k,
    double elu_param);

}  // namespace seqrec
