// The fused GRU4Rec step (csrc/gru4rec_step.cpp) that other ops' C++ code calls directly:
// the training step with its update (csrc/gru4rec_train_step.cpp).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <optional>
#include <tuple>

namespace seqrec {

// The op gru4rec_step -> loss, h_new, d_gi, d_w_hh, d_b_h, d_b_hh, d_out_rows, d_out_bias.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
gru4rec_step(const at::Tensor& gi, const at::Tensor& h, const at::Tensor& w_hh, const at::Tensor& b_h,
             const std::optional<at::Tensor>& b_hh, const at::Tensor& out_rows, const at::Tensor& out_bias,
             const std::optional<at::Tensor>& logq_correction, const std::optional<at::Tensor>& hidden_mask,
             c10::string_view loss, double bpreg, double elu_param, bool reset_after,
             std::optional<double> normalizer);

}  // namespace seqrec
