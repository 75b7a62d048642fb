// The Adagrad-with-momentum ops (csrc/adagrad_momentum.cpp) that other ops' C++ code calls
// directly, without the dispatcher: the fused GRU4Rec training step with its update
// (csrc/gru4rec_train_step.cpp).
#pragma once

#include <ATen/core/Tensor.h>

namespace seqrec {

// The op sparse_adagrad_momentum_: rows `indices` (K,) of param, accumulator, momentum_buffer
// (N, D) get grad_rows (K, D), the gradients of a repeated row summed first. `skip`: undefined,
// or one bool on the parameter's device; when it holds true nothing is updated (on CUDA the
// kernels read it: the caller's decision need not travel to the host).
void sparse_adagrad_momentum_(at::Tensor& param, at::Tensor& acc, at::Tensor& mom, const at::Tensor& indices,
                              const at::Tensor& grad_rows, double lr, double momentum, double eps,
                              const at::Tensor& skip);

// The op adagrad_momentum_: the same rule for a dense parameter of any shape.
void adagrad_momentum_(at::Tensor& param, at::Tensor& acc, at::Tensor& mom, const at::Tensor& grad, double lr,
                       double momentum, double eps, const at::Tensor& skip);

}  // namespace seqrec
