// One whole GRU4Rec training step with its update in one op call (gru4rec_train_step_), for
// every embedding mode: the gathers, the input projection, the fused step (gru4rec_step.cpp),
// then Adagrad with momentum (adagrad_momentum.cpp) on the touched rows and the dense
// parameters, in place -- the op-by-op path's functions in its order, so bitwise the same on
// the CPU, and nothing that waits for a CUDA device. Arguments, modes and guarantees:
// docs/ops.md, "The GRU4Rec training step".
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <cmath>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "adagrad_momentum.h"
#include "common/aten_helpers.h"
#include "common/precision.h"
#include "common/register_kernels.h"
#include "gru4rec_step.h"
#include "gru4rec_train_step.h"

namespace seqrec {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

enum class Embedding { kNone, kSeparate, kConstrained };

// The embedding modes by name, GRU4Rec's default first: the one list of them (exported to
// Python as EMBEDDING_MODES).
constexpr std::pair<const char*, Embedding> kEmbeddings[] = {
    {"constrained", Embedding::kConstrained}, {"separate", Embedding::kSeparate}, {"none", Embedding::kNone}};

Embedding parse_embedding(c10::string_view name) {
  return parse_choice("gru4rec_train_step_", "embedding", name, kEmbeddings);
}

// The parameters of a mode, in the order of the op's lists (b_hh last, when given).
std::vector<std::string> param_names(Embedding mode, bool with_b_hh) {
  std::vector<std::string> names;
  if (mode != Embedding::kConstrained) names.emplace_back("item_in");
  for (const char* n : {"out_table", "out_bias", "w_hh", "b_h"}) names.emplace_back(n);
  if (mode != Embedding::kNone) names.emplace_back("w_in");
  if (with_b_hh) names.emplace_back("b_hh");
  return names;
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

constexpr const char* kOp = "gru4rec_train_step_";

// The op's parameter list read by name: positions in the list (-1 where a mode has no such
// parameter), checked against the embedding mode and against each other.
struct ParamIndex {
  Embedding mode;
  std::vector<std::string> names;
  int item_in, out_table, out_bias, w_hh, b_h, w_in, b_hh;
};

ParamIndex index_params(at::TensorList params, at::TensorList accumulators, at::TensorList momentum_buffers,
                        c10::string_view embedding) {
  const Embedding mode = parse_embedding(embedding);
  const auto base = param_names(mode, false);
  TORCH_CHECK(params.size() == base.size() || params.size() == base.size() + 1, kOp,
              ": params of embedding '", std::string(embedding), "' must be (", joined(base), ") or (",
              joined(param_names(mode, true)), "), got ", params.size(), " tensors");
  const auto names = param_names(mode, params.size() > base.size());
  for (const auto& [list, what] :
       {std::pair{accumulators, "accumulators"}, std::pair{momentum_buffers, "momentum_buffers"}}) {
    TORCH_CHECK(list.size() == params.size(), kOp, ": ", what, " must hold one tensor per parameter (",
                joined(names), "), got ", list.size());
  }
  auto index_of = [&](const char* name) -> int {
    for (size_t i = 0; i < names.size(); ++i)
      if (names[i] == name) return static_cast<int>(i);
    return -1;
  };
  const ParamIndex ix{mode,
                      names,
                      index_of("item_in"),
                      index_of("out_table"),
                      index_of("out_bias"),
                      index_of("w_hh"),
                      index_of("b_h"),
                      index_of("w_in"),
                      index_of("b_hh")};
  const Tensor &out_table = params[ix.out_table], &out_bias = params[ix.out_bias];
  TORCH_CHECK(out_table.dim() == 2 && out_bias.dim() == 1 && out_bias.size(0) == out_table.size(0), kOp,
              ": expected out_table (N, H) and out_bias (N), got ", out_table.sizes(), " and ",
              out_bias.sizes());
  const int64_t N = out_table.size(0), H = out_table.size(1);
  const Tensor& in_table = mode == Embedding::kConstrained ? out_table : params[ix.item_in];
  TORCH_CHECK(in_table.dim() == 2 && in_table.size(0) == N, kOp, ": item_in must be (N, width) with N = ", N,
              " rows, got ", in_table.sizes());
  if (mode == Embedding::kNone) {
    TORCH_CHECK(in_table.size(1) == 3 * H, kOp, ": item_in of embedding 'none' must be (N, 3H) = (", N, ", ",
                3 * H, "), got ", in_table.sizes());
  } else {
    const Tensor& w_in = params[ix.w_in];
    TORCH_CHECK(w_in.dim() == 2 && w_in.size(0) == in_table.size(1) && w_in.size(1) == 3 * H, kOp,
                ": w_in must be (", in_table.size(1), ", ", 3 * H, "), got ", w_in.sizes());
  }
  return ix;
}

void check_ids(const Tensor& item_ids, const Tensor& target_ids, const Tensor& negative_ids) {
  for (const auto& [t, what] : {std::pair{&item_ids, "item_ids"}, std::pair{&target_ids, "target_ids"},
                                std::pair{&negative_ids, "negative_ids"}}) {
    TORCH_CHECK(t->dim() == 1 && t->scalar_type() == at::kLong, kOp, ": ", what,
                " must be a 1-D int64 tensor, got ", t->scalar_type(), " of shape ", t->sizes());
  }
  TORCH_CHECK(target_ids.size(0) == item_ids.size(0), kOp,
              ": item_ids and target_ids must have the same length, got ", item_ids.size(0), " and ",
              target_ids.size(0));
}

// Each parameter with its Adagrad state, as views with their storage that the row updates
// write through (the output bias as (N, 1) rows).
struct Updatable {
  std::vector<Tensor> param, acc, mom;
};

Updatable updatable(at::TensorList params, at::TensorList accumulators, at::TensorList momentum_buffers,
                    const ParamIndex& ix) {
  Updatable u;
  for (size_t i = 0; i < params.size(); ++i) {
    for (const Tensor* state : {&accumulators[i], &momentum_buffers[i]}) {
      TORCH_CHECK(state->sizes() == params[i].sizes() && state->scalar_type() == params[i].scalar_type() &&
                      state->device() == params[i].device() && state->is_contiguous() &&
                      params[i].is_contiguous(),
                  kOp, ": the accumulator and momentum buffer of ", ix.names[i],
                  " must be contiguous, of its shape ", params[i].sizes(), ", dtype and device");
    }
    const bool rows = static_cast<int>(i) == ix.out_bias;
    u.param.push_back(rows ? params[i].view({-1, 1}) : params[i]);
    u.acc.push_back(rows ? accumulators[i].view({-1, 1}) : accumulators[i]);
    u.mom.push_back(rows ? momentum_buffers[i].view({-1, 1}) : momentum_buffers[i]);
  }
  return u;
}

}  // namespace

std::vector<std::string> embedding_modes() { return choice_names(kEmbeddings); }

std::vector<std::string> train_step_param_names(c10::string_view embedding, bool with_b_hh) {
  return param_names(parse_embedding(embedding), with_b_hh);
}

std::tuple<Tensor, Tensor> gru4rec_train_step_(at::TensorList params, at::TensorList accumulators,
                                               at::TensorList momentum_buffers, const Tensor& item_ids,
                                               const Tensor& target_ids, const Tensor& negative_ids,
                                               const Tensor& h_in, const OptTensor& reset,
                                               const OptTensor& logq_correction, const OptTensor& embed_mask,
                                               const OptTensor& hidden_mask, c10::string_view embedding,
                                               c10::string_view loss, double bpreg, double elu_param,
                                               bool reset_after, std::optional<double> normalizer, double lr,
                                               double momentum, double eps) {
  const ParamIndex ix = index_params(params, accumulators, momentum_buffers, embedding);
  check_ids(item_ids, target_ids, negative_ids);
  const Tensor &out_table = params[ix.out_table], &out_bias = params[ix.out_bias], &w_hh = params[ix.w_hh],
               &b_h = params[ix.b_h];
  const Tensor& in_table = ix.mode == Embedding::kConstrained ? out_table : params[ix.item_in];
  const c10::DeviceGuard guard(out_table.device());
  Tensor h = h_in;
  if (reset.has_value()) {
    TORCH_CHECK(reset->dim() == 1 && reset->size(0) == h_in.size(0) && reset->scalar_type() == at::kBool &&
                    reset->device() == h_in.device(),
                kOp, ": reset must be a (B,) bool tensor on h's device, got ", reset->scalar_type(),
                " of shape ", reset->sizes());
    h = h_in.masked_fill(reset->unsqueeze(1), 0);
  }
  const Tensor out_ids = at::cat({target_ids, negative_ids});
  // the gathers check the ids against the tables' rows
  const Tensor in_rows = in_table.index_select(0, item_ids);
  if (embed_mask.has_value()) {
    TORCH_CHECK(embed_mask->sizes() == in_rows.sizes(), kOp,
                ": embed_mask must be (B, width of the input rows) = ", in_rows.sizes(), ", got shape ",
                embed_mask->sizes());
  }
  const Tensor x = embed_mask.has_value() ? in_rows * *embed_mask : in_rows;
  // the input projection's products in the step's product dtype (bfloat16 for a bfloat16 state)
  const at::ScalarType product_dtype = is_low_precision(h_in) ? h_in.scalar_type() : x.scalar_type();
  const Tensor gi = ix.w_in >= 0 ? mm_in(product_dtype, x, params[ix.w_in]) : x;
  const Tensor out_rows = out_table.index_select(0, out_ids);
  const Tensor bias_rows = out_bias.index_select(0, out_ids);
  const OptTensor b_hh = ix.b_hh >= 0 ? OptTensor(params[ix.b_hh]) : std::nullopt;
  auto [value, h_new, d_gi, d_w_hh, d_b_h, d_b_hh, d_out_rows, d_out_bias] =
      gru4rec_step(gi, h, w_hh, b_h, b_hh, out_rows, bias_rows, logq_correction, hidden_mask, loss, bpreg,
                   elu_param, reset_after, normalizer);
  // a loss that is not finite updates nothing: on the CPU decided here, on CUDA by the update
  // kernels reading the flag (no copy to the host: the step can be captured in a CUDA graph)
  Tensor skip;
  if (value.is_cpu()) {
    if (!std::isfinite(value.item<double>())) return {value, h_new};
  } else {
    skip = value.isfinite().logical_not();
  }
  Updatable u = updatable(params, accumulators, momentum_buffers, ix);
  // the gradients of the input rows and of w_in (x: the masked rows the projection read)
  const Tensor d_x = ix.w_in >= 0 ? mm_in(product_dtype, d_gi, params[ix.w_in].t()) : d_gi;
  const Tensor d_in = embed_mask.has_value() ? d_x * *embed_mask : d_x;
  auto sparse = [&](int i, const Tensor& rows, const Tensor& grads) {
    sparse_adagrad_momentum_(u.param[i], u.acc[i], u.mom[i], rows, grads, lr, momentum, eps, skip);
  };
  auto dense = [&](int i, const Tensor& grad) {
    adagrad_momentum_(u.param[i], u.acc[i], u.mom[i], grad, lr, momentum, eps, skip);
  };
  if (ix.mode == Embedding::kConstrained) {
    sparse(ix.out_table, at::cat({item_ids, out_ids}), at::cat({d_in, d_out_rows}));
  } else {
    sparse(ix.item_in, item_ids, d_in);
    sparse(ix.out_table, out_ids, d_out_rows);
  }
  sparse(ix.out_bias, out_ids, d_out_bias.view({-1, 1}));
  dense(ix.w_hh, d_w_hh);
  dense(ix.b_h, d_b_h);
  if (ix.w_in >= 0) dense(ix.w_in, mm_in(product_dtype, x.t(), d_gi));
  if (ix.b_hh >= 0) dense(ix.b_hh, d_b_hh);
  return {value, h_new};
}

SEQREC_REGISTER_KERNELS(m) { m.impl("gru4rec_train_step_", &gru4rec_train_step_); }

}  // namespace seqrec
