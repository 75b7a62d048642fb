// One whole GRU4Rec training step in one op call (SPEC 2.3 + 2.5), for GRU4Rec's default
// embedding (the item table holds each item's input projection): gather the rows the step
// touches, the fused step (csrc/gru4rec_step.cpp), then Adagrad with momentum on the touched
// rows of the three item tables and on W_hh and b_h (csrc/adagrad_momentum.cpp), in place.
// The same functions in the same order as the op-by-op path (seqrec_ext.gru4rec_step, then
// one update op per parameter), so the results are bitwise the same on the CPU (on CUDA the
// duplicate-row sums use atomics); what the fusion removes is the Python between them.
//
// params: item_in (N, 3H), out_table (N, H), out_bias (N), w_hh (3H, H), b_h (3H); accumulators
// and momentum_buffers: one per parameter, of its shape. item_ids, target_ids (B), negative_ids
// (S); h (B, H); reset (B) bool: rows that start a session, read as zero state (GRU4Rec's reset,
// done here rather than as one more op call before the step); embed_mask (B, 3H) and hidden_mask
// (B, H) inverted-dropout masks. A step whose loss is not finite updates nothing (the caller
// stops training); neither does one whose optimizer state does not fit its parameters (all are
// checked before the first update).
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <array>
#include <cmath>
#include <optional>
#include <tuple>

#include "adagrad_momentum_ops.h"
#include "gru4rec_step_ops.h"

namespace seqrec {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

constexpr std::array<const char*, 5> kNames = {"item_in", "out_table", "out_bias", "w_hh", "b_h"};

std::tuple<Tensor, Tensor> gru4rec_train_step_(at::TensorList params, at::TensorList accumulators,
                                               at::TensorList momentum_buffers, const Tensor& item_ids,
                                               const Tensor& target_ids, const Tensor& negative_ids,
                                               const Tensor& h_in, const OptTensor& reset,
                                               const OptTensor& logq_correction, const OptTensor& embed_mask,
                                               const OptTensor& hidden_mask, c10::string_view loss,
                                               double bpreg, double elu_param, bool reset_after, double lr,
                                               double momentum, double eps) {
  const char* op = "gru4rec_train_step_";
  for (const auto& [list, what] : {std::pair{params, "params"}, std::pair{accumulators, "accumulators"},
                                   std::pair{momentum_buffers, "momentum_buffers"}}) {
    TORCH_CHECK(list.size() == kNames.size(), op, ": ", what,
                " must hold 5 tensors (item_in, out_table, out_bias, w_hh, b_h), got ", list.size());
  }
  const Tensor &item_in = params[0], &out_table = params[1], &out_bias = params[2], &w_hh = params[3],
               &b_h = params[4];
  TORCH_CHECK(item_in.dim() == 2 && out_table.dim() == 2 && out_bias.dim() == 1 &&
                  item_in.size(1) == 3 * out_table.size(1) && item_in.size(0) == out_table.size(0) &&
                  out_bias.size(0) == out_table.size(0),
              op, ": expected item_in (N, 3H), out_table (N, H), out_bias (N), got ", item_in.sizes(), ", ",
              out_table.sizes(), ", ", out_bias.sizes());
  for (const auto& [t, what] : {std::pair{&item_ids, "item_ids"}, std::pair{&target_ids, "target_ids"},
                                std::pair{&negative_ids, "negative_ids"}}) {
    TORCH_CHECK(t->dim() == 1 && t->scalar_type() == at::kLong, op, ": ", what,
                " must be a 1-D int64 tensor, got ", t->scalar_type(), " of shape ", t->sizes());
  }
  TORCH_CHECK(target_ids.size(0) == item_ids.size(0), op, ": item_ids and target_ids must have the same length, got ",
              item_ids.size(0), " and ", target_ids.size(0));
  const c10::DeviceGuard guard(item_in.device());
  Tensor h = h_in;
  if (reset.has_value()) {
    TORCH_CHECK(reset->dim() == 1 && reset->size(0) == h_in.size(0) && reset->scalar_type() == at::kBool &&
                    reset->device() == h_in.device(),
                op, ": reset must be a (B,) bool tensor on h's device, got ", reset->scalar_type(), " of shape ",
                reset->sizes());
    h = h_in.masked_fill(reset->unsqueeze(1), 0);
  }
  const Tensor out_ids = at::cat({target_ids, negative_ids});
  // the gathers check the ids against the tables' rows
  const Tensor in_rows = item_in.index_select(0, item_ids);
  if (embed_mask.has_value()) {
    TORCH_CHECK(embed_mask->sizes() == in_rows.sizes(), op, ": embed_mask must be (B, 3H) = ", in_rows.sizes(),
                ", got shape ", embed_mask->sizes());
  }
  const Tensor gi = embed_mask.has_value() ? in_rows * *embed_mask : in_rows;
  const Tensor out_rows = out_table.index_select(0, out_ids);
  const Tensor bias_rows = out_bias.index_select(0, out_ids);
  auto [value, h_new, d_gi, d_w_hh, d_b_h, d_out_rows, d_out_bias] = gru4rec_step(
      gi, h, w_hh, b_h, out_rows, bias_rows, logq_correction, hidden_mask, loss, bpreg, elu_param, reset_after);
  if (!std::isfinite(value.item<double>())) return {value, h_new};
  std::array<Tensor, 5> p, acc, mom;
  for (size_t i = 0; i < kNames.size(); ++i) {
    for (const Tensor* state : {&accumulators[i], &momentum_buffers[i]}) {
      TORCH_CHECK(state->sizes() == params[i].sizes() && state->scalar_type() == params[i].scalar_type() &&
                      state->device() == params[i].device() && state->is_contiguous() &&
                      params[i].is_contiguous(),
                  op, ": the accumulator and momentum buffer of ", kNames[i],
                  " must be contiguous, of its shape ", params[i].sizes(), ", dtype and device");
    }
    // views with the parameters' storage: the updates write through them
    const bool bias = i == 2;
    p[i] = bias ? params[i].view({-1, 1}) : params[i];
    acc[i] = bias ? accumulators[i].view({-1, 1}) : accumulators[i];
    mom[i] = bias ? momentum_buffers[i].view({-1, 1}) : momentum_buffers[i];
  }
  const Tensor d_in = embed_mask.has_value() ? d_gi * *embed_mask : d_gi;
  sparse_adagrad_momentum_(p[0], acc[0], mom[0], item_ids, d_in, lr, momentum, eps);
  sparse_adagrad_momentum_(p[1], acc[1], mom[1], out_ids, d_out_rows, lr, momentum, eps);
  sparse_adagrad_momentum_(p[2], acc[2], mom[2], out_ids, d_out_bias.view({-1, 1}), lr, momentum, eps);
  adagrad_momentum_(p[3], acc[3], mom[3], d_w_hh, lr, momentum, eps);
  adagrad_momentum_(p[4], acc[4], mom[4], d_b_h, lr, momentum, eps);
  return {value, h_new};
}

}  // namespace

TORCH_LIBRARY_IMPL(seqrec, CPU, m) { m.impl("gru4rec_train_step_", &gru4rec_train_step_); }

#ifdef SEQREC_WITH_CUDA
TORCH_LIBRARY_IMPL(seqrec, CUDA, m) { m.impl("gru4rec_train_step_", &gru4rec_train_step_); }
#endif

}  // namespace seqrec
