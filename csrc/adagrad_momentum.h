// The Adagrad-with-momentum ops (csrc/adagrad_momentum.cpp) that other ops' C++ code calls
// directly, without the dispatcher: the fused GRU4Rec training step with its update
// (csrc/gru4rec_train_step.cpp).
#pragma once

#include <ATen/core/Tensor.h>

namespace seqrec {

// The op sparse_adagrad_momentum_: rows `indices` (K,) of param, accumulator, momentum_buffer
// (N, D) get grad_rows (K, D), the gradients of a repeated row summed first.
void sparse_adagrad_momentum_(at::Tensor& param, at::Tensor& acc, at::Tensor& mom, const at::Tensor& indices,
                              const at::Tensor& grad_rows, double lr, double momentum, double eps);

// The op adagrad_momentum_: the same rule for a dense parameter of any shape.
void adagrad_momentum_(at::Tensor& param, at::Tensor& acc, at::Tensor& mom, const at::Tensor& grad, double lr,
                       double momentum, double eps);

}  // namespace seqrec
