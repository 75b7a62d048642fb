// Argument checks of the alias-sampler ops that do not depend on the device.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>

namespace seqrec {

inline void check_alias_table(const at::Tensor& prob, const at::Tensor& alias, int64_t n,
                              const char* op) {
  TORCH_CHECK_VALUE(n >= 0, op, ": the number of draws n must be >= 0, got ", n);
  TORCH_CHECK(prob.dim() == 1 && alias.dim() == 1, op,
              ": prob and alias must be 1-D, got shapes ", prob.sizes(), " and ", alias.sizes());
  TORCH_CHECK(prob.scalar_type() == at::kFloat, op, ": prob must be float32, got ",
              prob.scalar_type());
  TORCH_CHECK(alias.scalar_type() == at::kLong, op, ": alias must be int64, got ",
              alias.scalar_type());
  TORCH_CHECK(prob.device() == alias.device(), op,
              ": prob and alias must be on the same device, got ", prob.device(), " and ",
              alias.device());
  TORCH_CHECK_VALUE(prob.numel() == alias.numel(), op,
                    ": prob and alias have different lengths (", prob.numel(), " vs ",
                    alias.numel(), "): they are not one table");
  TORCH_CHECK_VALUE(prob.numel() > 0, op, ": the table is empty");
}

}  // namespace seqrec
