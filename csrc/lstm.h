// The LSTM op's functions (csrc/lstm.cpp) for other ops' C++ code, called directly, without
// the dispatcher (as the GRU4Rec step calls csrc/gru.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <tuple>

namespace seqrec {

// The op lstm_sequence: gi (T, B, 4H), h0, c0 (B, H), w_hh (4H, H), b_ih, b_hh (4H), reset
// (T, B) bool, lengths (B) int64 -> out (T, B, H), h_last, c_last (B, H), workspace.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> lstm_sequence(
    const at::Tensor& gi, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh,
    const std::optional<at::Tensor>& b_ih, const std::optional<at::Tensor>& b_hh,
    const std::optional<at::Tensor>& reset, const std::optional<at::Tensor>& lengths);

// The op lstm_sequence_backward -> d_gi, d_h0, d_c0, d_w_hh, d_b_ih, d_b_hh.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor> lstm_sequence_backward(
    const std::optional<at::Tensor>& grad_out, const std::optional<at::Tensor>& grad_h_last,
    const std::optional<at::Tensor>& grad_c_last, const at::Tensor& w_hh, const at::Tensor& workspace,
    const std::optional<at::Tensor>& reset, const std::optional<at::Tensor>& lengths);

}  // namespace seqrec
