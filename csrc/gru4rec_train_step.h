// The whole GRU4Rec training step with its update (csrc/gru4rec_train_step.cpp) as a C++
// function, callable without the dispatcher.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/string_view.h>

#include <optional>
#include <string>
#include <tuple>
#include <vector>

namespace seqrec {

// The embedding modes' names, GRU4Rec's default first (seqrec_ext.gru4rec_step.EMBEDDING_MODES).
std::vector<std::string> embedding_modes();

// The parameters gru4rec_train_step_ updates for an embedding mode, in the order of its lists:
// those the mode has among (item_in, out_table, out_bias, w_hh, b_h, w_in), then b_hh when
// with_b_hh; ValueError for an unknown mode.
std::vector<std::string> train_step_param_names(c10::string_view embedding, bool with_b_hh);

// The op gru4rec_train_step_ (params, accumulators and momentum buffers updated in place)
// -> the loss, h_new.
std::tuple<at::Tensor, at::Tensor> gru4rec_train_step_(
    at::TensorList params, at::TensorList accumulators, at::TensorList momentum_buffers,
    const at::Tensor& item_ids, const at::Tensor& target_ids, const at::Tensor& negative_ids,
    const at::Tensor& h, const std::optional<at::Tensor>& reset,
    const std::optional<at::Tensor>& logq_correction, const std::optional<at::Tensor>& embed_mask,
    const std::optional<at::Tensor>& hidden_mask, c10::string_view embedding, c10::string_view loss,
    double bpreg, double elu_param, bool reset_after, std::optional<double> normalizer, double lr,
    double momentum, double eps);

}  // namespace seqrec
