// The fused GRU4Rec step (op gru4rec_step) for every device: the GRU step forward, the sampled
// scoring + ranking loss with its gradients, and the GRU step's backward in one call, with the
// fewest matrix products (the B x M scores made once and kept; no gradient for the previous
// state). Shapes and semantics: docs/ops.md, "The GRU4Rec training step".
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

#include "common/precision.h"
#include "common/register_kernels.h"
#include "gru.h"
#include "gru4rec_step.h"
#include "sampled_loss.h"

namespace seqrec {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

namespace {

// The step in float32 or float64, its scoring products' operands in product_dtype.
std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> step(
    const Tensor& gi, const Tensor& h, const Tensor& w_hh, const Tensor& b_h, const OptTensor& b_hh,
    const Tensor& out_rows, const Tensor& out_bias, const OptTensor& logq_correction,
    const OptTensor& hidden_mask, c10::string_view loss, double bpreg, double elu_param, bool reset_after,
    std::optional<double> normalizer, at::ScalarType product_dtype) {
  TORCH_CHECK(gi.dim() == 2, "gru4rec_step: gi must be (B, 3H), got shape ", gi.sizes());
  TORCH_CHECK(gi.scalar_type() == at::kFloat || gi.scalar_type() == at::kDouble,
              "gru4rec_step: expected float16, bfloat16, float32 or float64 tensors, got ", gi.scalar_type());
  const c10::DeviceGuard guard(gi.device());  // the op runs on its inputs' device
  // the GRU's products in product_dtype too, where it is not the inputs' own
  const ProductDtype gru_products =
      product_dtype == gi.scalar_type() ? ProductDtype() : ProductDtype(product_dtype);
  auto [h_new, ws] = gru_step(gi, h, w_hh, b_h, b_hh, reset_after, gru_products);
  Tensor h_out = h_new;
  if (hidden_mask.has_value()) {
    TORCH_CHECK(hidden_mask->sizes() == h_new.sizes(),
                "gru4rec_step: hidden_mask must be (B, H) = ", h_new.sizes(), ", got shape ",
                hidden_mask->sizes());
    TORCH_CHECK(hidden_mask->scalar_type() == gi.scalar_type() && hidden_mask->device() == gi.device(),
                "gru4rec_step: hidden_mask must have the dtype and device of gi");
    h_out = h_new * *hidden_mask;
  }
  auto [value, d_h_out, d_out_rows, d_out_bias] = sampled_ranking_loss_with_grads(
      h_out, out_rows, out_bias, logq_correction, loss, bpreg, elu_param, normalizer, product_dtype);
  const Tensor d_h_new = hidden_mask.has_value() ? d_h_out * *hidden_mask : d_h_out;
  auto [d_gi, d_w_hh, d_b_h, d_b_hh] =
      gru_step_backward_truncated(d_h_new, w_hh, ws, reset_after, gru_products);
  return {value, h_out, d_gi, d_w_hh, d_b_h, d_b_hh, d_out_rows, d_out_bias};
}

}  // namespace

std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor> gru4rec_step(
    const Tensor& gi, const Tensor& h, const Tensor& w_hh, const Tensor& b_h, const OptTensor& b_hh,
    const Tensor& out_rows, const Tensor& out_bias, const OptTensor& logq_correction,
    const OptTensor& hidden_mask, c10::string_view loss, double bpreg, double elu_param, bool reset_after,
    std::optional<double> normalizer) {
  if (any_low_precision({&gi, &h, &w_hh, &b_h, &out_rows, &out_bias},
                        {&b_hh, &logq_correction, &hidden_mask})) {
    // float32 arithmetic; the scoring products in the state's precision when it is low
    auto [value, h_out, d_gi, d_w_hh, d_b_h, d_b_hh, d_out_rows, d_out_bias] =
        step(widened(gi), widened(h), widened(w_hh), widened(b_h), widened(b_hh), widened(out_rows),
             widened(out_bias), widened(logq_correction), widened(hidden_mask), loss, bpreg, elu_param,
             reset_after, normalizer, is_low_precision(h) ? h.scalar_type() : at::kFloat);
    return {narrowed(value, gi),
            narrowed(h_out, h),
            narrowed(d_gi, gi),
            narrowed(d_w_hh, w_hh),
            narrowed(d_b_h, b_h),
            narrowed(d_b_hh, b_hh.value_or(b_h)),
            narrowed(d_out_rows, out_rows),
            narrowed(d_out_bias, out_bias)};
  }
  return step(gi, h, w_hh, b_h, b_hh, out_rows, out_bias, logq_correction, hidden_mask, loss, bpreg,
              elu_param, reset_after, normalizer, gi.scalar_type());
}

SEQREC_REGISTER_KERNELS(m) { m.impl("gru4rec_step", &gru4rec_step); }

}  // namespace seqrec
