// The GRU step functions (csrc/gru.cpp) that other ops' C++ code calls directly, without the
// dispatcher: the fused GRU4Rec training step (csrc/gru4rec_step.cpp).
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

#include <optional>
#include <tuple>

namespace seqrec {

// The dtype of the operands of the GRU's matrix products when it is not the inputs' own: the
// fused GRU4Rec step in bfloat16 / half (the product accumulates in float32 and is widened).
using ProductDtype = std::optional<at::ScalarType>;

// The op gru_step: gi (B, 3H), h (B, H), w_hh (3H, H) -> h_new (B, H), workspace.
std::tuple<at::Tensor, at::Tensor> gru_step(const at::Tensor& gi, const at::Tensor& h, const at::Tensor& w_hh,
                                            const std::optional<at::Tensor>& b_ih,
                                            const std::optional<at::Tensor>& b_hh, bool reset_after,
                                            ProductDtype product_dtype);

// The op gru_step_backward without the gradient of the previous state (one-step truncated
// backpropagation, as GRU4Rec trains): one matrix product fewer. -> d_gi, d_w_hh, d_b_ih, d_b_hh.
std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> gru_step_backward_truncated(
    const at::Tensor& grad_h_new, const at::Tensor& w_hh, const at::Tensor& ws, bool reset_after,
    ProductDtype product_dtype);

}  // namespace seqrec
