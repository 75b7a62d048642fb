// Autograd formulas of the differentiable ops, in C++: a C++ autograd node costs a few
// microseconds where a Python one costs tens, which matters for ops called once per training
// step on small tensors. Each forward calls the op below the autograd key and saves only what
// its backward op needs; each backward is one call of the registered backward op, so both
// torch.compile (which traces through them with fake tensors) and opcheck see ordinary ops.
// The recurrent ops' nodes do not materialise absent output gradients (their workspaces'
// would be zero tensors as large as the workspace): the backward ops take them as absent.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/library.h>

#include <optional>
#include <string>
#include <tuple>

namespace seqrec {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

template <typename Signature>
c10::TypedOperatorHandle<Signature> find_op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "").typed<Signature>();
}

Tensor or_undefined(bool keep, const Tensor& t) { return keep ? t : Tensor(); }
OptTensor defined_or_none(const Tensor& t) { return t.defined() ? OptTensor(t) : std::nullopt; }

// ---- gru_step ----

using GruStepSig = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&, const OptTensor&,
                                              const OptTensor&, bool);
using GruStepBackwardSig = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor>(const Tensor&, const Tensor&,
                                                                              const Tensor&, bool);

class GruStep : public torch::autograd::Function<GruStep> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& gi, const Tensor& h, const Tensor& w_hh,
                               const OptTensor& b_ih, const OptTensor& b_hh, bool reset_after) {
    static const auto op = find_op<GruStepSig>("seqrec::gru_step");
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [h_new, workspace] = op.call(gi, h, w_hh, b_ih, b_hh, reset_after);
    ctx->set_materialize_grads(false);  // the workspace's gradient would be a (B, K*H) fill
    ctx->save_for_backward({w_hh, workspace});
    ctx->saved_data["reset_after"] = reset_after;
    ctx->saved_data["has_b_ih"] = b_ih.has_value();
    ctx->saved_data["has_b_hh"] = b_hh.has_value();
    ctx->mark_non_differentiable({workspace});
    return {h_new, workspace};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = find_op<GruStepBackwardSig>("seqrec::gru_step_backward");
    const auto saved = ctx->get_saved_variables();
    const Tensor& w_hh = saved[0];
    const Tensor& workspace = saved[1];
    Tensor grad =
        grads[0].defined() ? grads[0] : at::zeros({workspace.size(0), w_hh.size(1)}, workspace.options());
    auto [d_gi, d_h, d_w, d_b_ih, d_b_hh] =
        op.call(grad, w_hh, workspace, ctx->saved_data["reset_after"].toBool());
    return {d_gi,
            d_h,
            d_w,
            or_undefined(ctx->saved_data["has_b_ih"].toBool(), d_b_ih),
            or_undefined(ctx->saved_data["has_b_hh"].toBool(), d_b_hh),
            Tensor()};
  }
};

std::tuple<Tensor, Tensor> gru_step_autograd(const Tensor& gi, const Tensor& h, const Tensor& w_hh,
                                             const OptTensor& b_ih, const OptTensor& b_hh, bool reset_after) {
  const variable_list out = GruStep::apply(gi, h, w_hh, b_ih, b_hh, reset_after);
  return {out[0], out[1]};
}

// ---- gru_sequence ----

using GruSequenceSig = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                                          const OptTensor&, const OptTensor&,
                                                          const OptTensor&, const OptTensor&, bool);
using GruSequenceBackwardSig = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor>(
    const OptTensor&, const OptTensor&, const Tensor&, const Tensor&, const OptTensor&, const OptTensor&,
    bool);

class GruSequence : public torch::autograd::Function<GruSequence> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& gi, const Tensor& h0, const Tensor& w_hh,
                               const OptTensor& b_ih, const OptTensor& b_hh, const OptTensor& reset,
                               const OptTensor& lengths, bool reset_after) {
    static const auto op = find_op<GruSequenceSig>("seqrec::gru_sequence");
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, h_last, workspace] = op.call(gi, h0, w_hh, b_ih, b_hh, reset, lengths, reset_after);
    ctx->set_materialize_grads(false);  // the workspace's gradient would be a (T, B, K*H) fill
    ctx->save_for_backward({w_hh, workspace, reset.value_or(Tensor()), lengths.value_or(Tensor())});
    ctx->saved_data["reset_after"] = reset_after;
    ctx->saved_data["has_b_ih"] = b_ih.has_value();
    ctx->saved_data["has_b_hh"] = b_hh.has_value();
    ctx->mark_non_differentiable({workspace});
    return {out, h_last, workspace};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = find_op<GruSequenceBackwardSig>("seqrec::gru_sequence_backward");
    const auto saved = ctx->get_saved_variables();
    auto [d_gi, d_h0, d_w, d_b_ih, d_b_hh] = op.call(
        defined_or_none(grads[0]), defined_or_none(grads[1]), saved[0], saved[1], defined_or_none(saved[2]),
        defined_or_none(saved[3]), ctx->saved_data["reset_after"].toBool());
    return {d_gi,
            d_h0,
            d_w,
            or_undefined(ctx->saved_data["has_b_ih"].toBool(), d_b_ih),
            or_undefined(ctx->saved_data["has_b_hh"].toBool(), d_b_hh),
            Tensor(),
            Tensor(),
            Tensor()};
  }
};

std::tuple<Tensor, Tensor, Tensor> gru_sequence_autograd(const Tensor& gi, const Tensor& h0,
                                                         const Tensor& w_hh, const OptTensor& b_ih,
                                                         const OptTensor& b_hh, const OptTensor& reset,
                                                         const OptTensor& lengths, bool reset_after) {
  const variable_list out = GruSequence::apply(gi, h0, w_hh, b_ih, b_hh, reset, lengths, reset_after);
  return {out[0], out[1], out[2]};
}

// ---- lstm_sequence ----

using LstmSequenceSig = std::tuple<Tensor, Tensor, Tensor, Tensor>(const Tensor&, const Tensor&,
                                                                   const Tensor&, const Tensor&,
                                                                   const OptTensor&, const OptTensor&,
                                                                   const OptTensor&, const OptTensor&);
using LstmSequenceBackwardSig = std::tuple<Tensor, Tensor, Tensor, Tensor, Tensor, Tensor>(
    const OptTensor&, const OptTensor&, const OptTensor&, const Tensor&, const Tensor&, const OptTensor&,
    const OptTensor&);

class LstmSequence : public torch::autograd::Function<LstmSequence> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& gi, const Tensor& h0, const Tensor& c0,
                               const Tensor& w_hh, const OptTensor& b_ih, const OptTensor& b_hh,
                               const OptTensor& reset, const OptTensor& lengths) {
    static const auto op = find_op<LstmSequenceSig>("seqrec::lstm_sequence");
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [out, h_last, c_last, workspace] = op.call(gi, h0, c0, w_hh, b_ih, b_hh, reset, lengths);
    ctx->set_materialize_grads(false);  // the workspace's gradient would be a (T, B, 6H) fill
    ctx->save_for_backward({w_hh, workspace, reset.value_or(Tensor()), lengths.value_or(Tensor())});
    ctx->saved_data["has_b_ih"] = b_ih.has_value();
    ctx->saved_data["has_b_hh"] = b_hh.has_value();
    ctx->mark_non_differentiable({workspace});
    return {out, h_last, c_last, workspace};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = find_op<LstmSequenceBackwardSig>("seqrec::lstm_sequence_backward");
    const auto saved = ctx->get_saved_variables();
    auto [d_gi, d_h0, d_c0, d_w, d_b_ih, d_b_hh] =
        op.call(defined_or_none(grads[0]), defined_or_none(grads[1]), defined_or_none(grads[2]), saved[0],
                saved[1], defined_or_none(saved[2]), defined_or_none(saved[3]));
    return {d_gi,
            d_h0,
            d_c0,
            d_w,
            or_undefined(ctx->saved_data["has_b_ih"].toBool(), d_b_ih),
            or_undefined(ctx->saved_data["has_b_hh"].toBool(), d_b_hh),
            Tensor(),
            Tensor()};
  }
};

std::tuple<Tensor, Tensor, Tensor, Tensor> lstm_sequence_autograd(
    const Tensor& gi, const Tensor& h0, const Tensor& c0, const Tensor& w_hh, const OptTensor& b_ih,
    const OptTensor& b_hh, const OptTensor& reset, const OptTensor& lengths) {
  const variable_list out = LstmSequence::apply(gi, h0, c0, w_hh, b_ih, b_hh, reset, lengths);
  return {out[0], out[1], out[2], out[3]};
}

// ---- sampled_ranking_loss ----

using OptDouble = std::optional<double>;
using LossSig = std::tuple<Tensor, Tensor>(const Tensor&, const Tensor&, const OptTensor&, const OptTensor&,
                                           const OptTensor&, c10::string_view, double, double,
                                           c10::string_view, OptDouble);
using LossBackwardSig = std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&, const Tensor&,
                                                           const OptTensor&, const OptTensor&,
                                                           const OptTensor&, const Tensor&, c10::string_view,
                                                           double, double, c10::string_view, OptDouble);

class SampledRankingLoss : public torch::autograd::Function<SampledRankingLoss> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& h, const Tensor& out_rows,
                               const OptTensor& out_bias, const OptTensor& logq, const OptTensor& col_items,
                               c10::string_view loss, double bpreg, double elu_param,
                               c10::string_view reduction, OptDouble normalizer) {
    static const auto op = find_op<LossSig>("seqrec::sampled_ranking_loss");
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [value, stats] =
        op.call(h, out_rows, out_bias, logq, col_items, loss, bpreg, elu_param, reduction, normalizer);
    ctx->save_for_backward({h, out_rows, out_bias.value_or(Tensor()), logq.value_or(Tensor()),
                            col_items.value_or(Tensor()), stats});
    ctx->saved_data["loss"] = std::string(loss);
    ctx->saved_data["reduction"] = std::string(reduction);
    ctx->saved_data["bpreg"] = bpreg;
    ctx->saved_data["elu_param"] = elu_param;
    ctx->saved_data["normalizer"] = normalizer.has_value() ? c10::IValue(*normalizer) : c10::IValue();
    ctx->mark_non_differentiable({stats});
    return {value, stats};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    static const auto op = find_op<LossBackwardSig>("seqrec::sampled_ranking_loss_backward");
    const auto saved = ctx->get_saved_variables();
    const std::string loss = ctx->saved_data["loss"].toStringRef();
    const std::string reduction = ctx->saved_data["reduction"].toStringRef();
    Tensor grad = grads[0].defined() ? grads[0] : at::zeros_like(saved[5].select(1, 0));
    if (!grads[0].defined() && reduction != "none") grad = at::zeros({}, saved[0].options());
    const c10::IValue& normalizer = ctx->saved_data["normalizer"];
    auto [d_h, d_rows, d_bias] =
        op.call(grad, saved[0], saved[1], defined_or_none(saved[2]), defined_or_none(saved[3]),
                defined_or_none(saved[4]), saved[5], loss, ctx->saved_data["bpreg"].toDouble(),
                ctx->saved_data["elu_param"].toDouble(), reduction,
                normalizer.isNone() ? OptDouble() : OptDouble(normalizer.toDouble()));
    return {d_h,      d_rows,   saved[2].defined() ? d_bias : Tensor(),
            Tensor(), Tensor(), Tensor(),
            Tensor(), Tensor(), Tensor(),
            Tensor()};
  }
};

std::tuple<Tensor, Tensor> sampled_ranking_loss_autograd(const Tensor& h, const Tensor& out_rows,
                                                         const OptTensor& out_bias, const OptTensor& logq,
                                                         const OptTensor& col_items, c10::string_view loss,
                                                         double bpreg, double elu_param,
                                                         c10::string_view reduction, OptDouble normalizer) {
  const variable_list out = SampledRankingLoss::apply(h, out_rows, out_bias, logq, col_items, loss, bpreg,
                                                      elu_param, reduction, normalizer);
  return {out[0], out[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(seqrec, Autograd, m) {
  m.impl("gru_step", &gru_step_autograd);
  m.impl("gru_sequence", &gru_sequence_autograd);
  m.impl("lstm_sequence", &lstm_sequence_autograd);
  m.impl("sampled_ranking_loss", &sampled_ranking_loss_autograd);
}

}  // namespace seqrec
