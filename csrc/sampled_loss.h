// The sampled loss function (csrc/sampled_loss.cpp) that other ops' C++ code calls directly:
// the fused GRU4Rec training step (csrc/gru4rec_step.cpp).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>
#include <c10/util/string_view.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace seqrec {

// The losses' names, in the order of their table (Python's seqrec_ext.sampled_loss.LOSSES).
std::vector<std::string> loss_names();

// sampled_ranking_loss (reduction "mean": the summed row losses divided by normalizer, or by B
// when it is absent; no accidental-hit mask) and its gradients in one call: h (B, H),
// out_rows (M, H), out_bias (M), logq_correction (M) or none -> the loss, d_h,
// d_out_rows, d_out_bias. Unlike the loss op it keeps the B x M scores between the statistics
// and the gradients (memory B x M, in the order of the M x H rows the caller gathered) instead
// of recomputing them: one matrix product fewer. The three B x M x H products take their
// operands in `product_dtype` (h's own, or bfloat16 / half: the scores and their gradients are
// rounded to it for the products, the loss's arithmetic stays in h's dtype).
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> sampled_ranking_loss_with_grads(
    const at::Tensor& h, const at::Tensor& out_rows, const at::Tensor& out_bias,
    const std::optional<at::Tensor>& logq_correction, c10::string_view loss, double bpreg, double elu_param,
    std::optional<double> normalizer, at::ScalarType product_dtype);

}  // namespace seqrec
