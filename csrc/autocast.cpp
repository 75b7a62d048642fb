// Autocast kernels. Under torch.autocast (CPU or CUDA):
//   * the sampled ranking loss and the fused GRU4Rec step run in float32, as torch's own losses
//     do (its "fp32" policy): their half / bfloat16 floating inputs are cast to float32 by
//     autograd-visible casts, so the loss is a float32 tensor and the gradients flow back through
//     the casts (outside autocast the ops take low-precision inputs themselves:
//     common/precision.h);
//   * the GRU and LSTM ops run in autocast's dtype, as torch's GRU and LSTM do (their "lower
//     precision" policy): their float32 inputs are cast down (the matrix products in half /
//     bfloat16, the gate arithmetic in float32 inside the kernels).
#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/library.h>

#include <optional>
#include <tuple>

namespace seqrec {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;
using OptDouble = std::optional<double>;

template <c10::DeviceType kDevice>
Tensor fp32(const Tensor& t) {
  return at::autocast::cached_cast(at::kFloat, t, kDevice);
}

template <c10::DeviceType kDevice>
OptTensor fp32(const OptTensor& t) {
  return t.has_value() ? OptTensor(fp32<kDevice>(*t)) : std::nullopt;
}

template <c10::DeviceType kDevice>
std::tuple<Tensor, Tensor> sampled_ranking_loss_fp32(const Tensor& h, const Tensor& out_rows,
                                                     const OptTensor& out_bias, const OptTensor& logq,
                                                     const OptTensor& col_items, c10::string_view loss,
                                                     double bpreg, double elu_param,
                                                     c10::string_view reduction, OptDouble normalizer) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(
      at::autocast::get_autocast_dispatch_key_from_device_type(kDevice));
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("seqrec::sampled_ranking_loss", "")
          .typed<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const OptTensor&, const OptTensor&,
                                            const OptTensor&, c10::string_view, double, double,
                                            c10::string_view, OptDouble)>();
  return op.call(fp32<kDevice>(h), fp32<kDevice>(out_rows), fp32<kDevice>(out_bias), fp32<kDevice>(logq),
                 col_items, loss, bpreg, elu_param, reduction, normalizer);
}

using StepOut = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>;

template <c10::DeviceType kDevice>
StepOut gru4rec_step_fp32(const Tensor& gi, const Tensor& h, const Tensor& w_hh, const Tensor& b_h,
                          const OptTensor& b_hh, const Tensor& out_rows, const Tensor& out_bias,
                          const OptTensor& logq, const OptTensor& hidden_mask, c10::string_view loss,
                          double bpreg, double elu_param, bool reset_after, OptDouble normalizer) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(
      at::autocast::get_autocast_dispatch_key_from_device_type(kDevice));
  static const auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("seqrec::gru4rec_step", "")
          .typed<StepOut(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const OptTensor&,
                         const Tensor&, const Tensor&, const OptTensor&, const OptTensor&, c10::string_view,
                         double, double, bool, OptDouble)>();
  return op.call(fp32<kDevice>(gi), fp32<kDevice>(h), fp32<kDevice>(w_hh), fp32<kDevice>(b_h),
                 fp32<kDevice>(b_hh), fp32<kDevice>(out_rows), fp32<kDevice>(out_bias), fp32<kDevice>(logq),
                 fp32<kDevice>(hidden_mask), loss, bpreg, elu_param, reset_after, normalizer);
}

template <c10::DeviceType kDevice>
Tensor low(const Tensor& t) {
  return at::autocast::cached_cast(at::autocast::get_lower_precision_fp_from_device_type(kDevice), t,
                                   kDevice);
}

template <c10::DeviceType kDevice>
OptTensor low(const OptTensor& t) {
  return t.has_value() ? OptTensor(low<kDevice>(*t)) : std::nullopt;
}

template <c10::DeviceType kDevice>
std::tuple<Tensor, Tensor> gru_step_low(const Tensor& gi, const Tensor& h, const Tensor& w_hh,
                                        const OptTensor& b_ih, const OptTensor& b_hh, bool reset_after) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(
      at::autocast::get_autocast_dispatch_key_from_device_type(kDevice));
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("seqrec::gru_step", "")
                             .typed<std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                                               const OptTensor&, const OptTensor&, bool)>();
  return op.call(low<kDevice>(gi), low<kDevice>(h), low<kDevice>(w_hh), low<kDevice>(b_ih),
                 low<kDevice>(b_hh), reset_after);
}

template <c10::DeviceType kDevice>
std::tuple<Tensor, Tensor, Tensor> gru_sequence_low(const Tensor& gi, const Tensor& h0, const Tensor& w_hh,
                                                    const OptTensor& b_ih, const OptTensor& b_hh,
                                                    const OptTensor& reset, const OptTensor& lengths,
                                                    bool reset_after) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(
      at::autocast::get_autocast_dispatch_key_from_device_type(kDevice));
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("seqrec::gru_sequence", "")
                             .typed<std::tuple<Tensor, Tensor, Tensor>(
                                 const Tensor&, const Tensor&, const Tensor&, const OptTensor&,
                                 const OptTensor&, const OptTensor&, const OptTensor&, bool)>();
  return op.call(low<kDevice>(gi), low<kDevice>(h0), low<kDevice>(w_hh), low<kDevice>(b_ih),
                 low<kDevice>(b_hh), reset, lengths, reset_after);
}

template <c10::DeviceType kDevice>
std::tuple<Tensor, Tensor, Tensor, Tensor> lstm_sequence_low(const Tensor& gi, const Tensor& h0,
                                                             const Tensor& c0, const Tensor& w_hh,
                                                             const OptTensor& b_ih, const OptTensor& b_hh,
                                                             const OptTensor& reset,
                                                             const OptTensor& lengths) {
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(
      at::autocast::get_autocast_dispatch_key_from_device_type(kDevice));
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("seqrec::lstm_sequence", "")
                             .typed<std::tuple<Tensor, Tensor, Tensor, Tensor>(
                                 const Tensor&, const Tensor&, const Tensor&, const Tensor&, const OptTensor&,
                                 const OptTensor&, const OptTensor&, const OptTensor&)>();
  return op.call(low<kDevice>(gi), low<kDevice>(h0), low<kDevice>(c0), low<kDevice>(w_hh), low<kDevice>(b_ih),
                 low<kDevice>(b_hh), reset, lengths);
}

}  // namespace

TORCH_LIBRARY_IMPL(seqrec, AutocastCPU, m) {
  m.impl("sampled_ranking_loss", &sampled_ranking_loss_fp32<c10::DeviceType::CPU>);
  m.impl("gru4rec_step", &gru4rec_step_fp32<c10::DeviceType::CPU>);
  m.impl("gru_step", &gru_step_low<c10::DeviceType::CPU>);
  m.impl("gru_sequence", &gru_sequence_low<c10::DeviceType::CPU>);
  m.impl("lstm_sequence", &lstm_sequence_low<c10::DeviceType::CPU>);
}

TORCH_LIBRARY_IMPL(seqrec, AutocastCUDA, m) {
  m.impl("sampled_ranking_loss", &sampled_ranking_loss_fp32<c10::DeviceType::CUDA>);
  m.impl("gru4rec_step", &gru4rec_step_fp32<c10::DeviceType::CUDA>);
  m.impl("gru_step", &gru_step_low<c10::DeviceType::CUDA>);
  m.impl("gru_sequence", &gru_sequence_low<c10::DeviceType::CUDA>);
  m.impl("lstm_sequence", &lstm_sequence_low<c10::DeviceType::CUDA>);
}

}  // namespace seqrec
