// The fused sampled scoring + ranking loss ops (GRU4Rec's losses) for every device: checks,
// the tile loop with its matrix products (at::mm: BLAS / cuBLAS), and the tile passes between
// them (csrc/sampled_loss_pass.h, run by cpu/sampled_loss_cpu.cpp or
// cuda/sampled_loss_cuda.cu); the CPU and CUDA registrations.
//
// Shapes: h (B, H), out_rows (M, H) with M >= B (rows [0, B) are the batch's targets),
// out_bias (M), logq_correction (M), col_items (M) int64. No B x M tensor is made: the
// forward keeps kStats values per row, the backward recomputes each tile's scores. Scratch
// memory is one (B, tile) score tile, tile ~ 2^18 / B columns, independent of M.
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "common/aten_helpers.h"
#include "common/device_dispatch.h"
#include "common/precision.h"
#include "common/register_kernels.h"
#include "cpu/sampled_loss_cpu.h"
#include "sampled_loss.h"
#include "sampled_loss_pass.h"
#ifdef SEQREC_WITH_CUDA
#include "cuda/sampled_loss_cuda.h"
#endif

namespace seqrec {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;
using sampled_loss::Loss;

// The losses by name: the one list of them (exported to Python as LOSSES).
constexpr std::pair<const char*, Loss> kLosses[] = {{"bpr-max", Loss::kBprMax},
                                                    {"top1-max", Loss::kTop1Max},
                                                    {"cross-entropy", Loss::kCrossEntropy},
                                                    {"bpr", Loss::kBpr},
                                                    {"top1", Loss::kTop1}};

Loss parse_loss(c10::string_view name) { return parse_choice("sampled_ranking_loss", "loss", name, kLosses); }

enum class Reduction { kMean, kSum, kNone };
Reduction parse_reduction(c10::string_view name) {
  return parse_choice<Reduction>(
      "sampled_ranking_loss", "reduction", name,
      {{"mean", Reduction::kMean}, {"sum", Reduction::kSum}, {"none", Reduction::kNone}});
}

void check_inputs(const char* op, const Tensor& h, const Tensor& rows, const OptTensor& bias,
                  const OptTensor& logq, const OptTensor& col_items, Loss loss, double bpreg,
                  double elu_param) {
  TORCH_CHECK(h.dim() == 2, op, ": h must be (B, H), got shape ", h.sizes());
  TORCH_CHECK(rows.dim() == 2 && rows.size(1) == h.size(1), op,
              ": out_rows must be (M, H) with H = ", h.size(1), ", got shape ", rows.sizes());
  TORCH_CHECK(h.scalar_type() == at::kFloat || h.scalar_type() == at::kDouble, op,
              ": expected float16, bfloat16, float32 or float64 tensors, got ", h.scalar_type());
  TORCH_CHECK(rows.scalar_type() == h.scalar_type(), op, ": out_rows has dtype ", rows.scalar_type(),
              " but h has ", h.scalar_type());
  TORCH_CHECK(rows.device() == h.device(), op, ": out_rows is on ", rows.device(), " but h is on ",
              h.device());
  TORCH_CHECK(h.is_cpu() || h.is_cuda(), op, ": unsupported device ", h.device());
  const int64_t B = h.size(0), M = rows.size(0);
  TORCH_CHECK_VALUE(M >= B, op, ": M = ", M, " scored rows but B = ", B,
                    " batch rows: the first B rows must be the batch's targets (M >= B)");
  for (const auto& [t, name] : {std::pair{&bias, "out_bias"}, std::pair{&logq, "logq_correction"}}) {
    if (!t->has_value()) continue;
    TORCH_CHECK((*t)->dim() == 1 && (*t)->size(0) == M, op, ": ", name, " must be (M,) = (", M,
                ",), got shape ", (*t)->sizes());
    TORCH_CHECK((*t)->scalar_type() == h.scalar_type(), op, ": ", name, " has dtype ", (*t)->scalar_type(),
                " but h has ", h.scalar_type());
    TORCH_CHECK((*t)->device() == h.device(), op, ": ", name, " is on ", (*t)->device(), " but h is on ",
                h.device());
  }
  if (col_items.has_value()) {
    TORCH_CHECK(col_items->dim() == 1 && col_items->size(0) == M, op, ": col_items must be (M,) = (", M,
                ",), got shape ", col_items->sizes());
    TORCH_CHECK(col_items->scalar_type() == at::kLong, op, ": col_items must be int64, got ",
                col_items->scalar_type());
    TORCH_CHECK(col_items->device() == h.device(), op, ": col_items is on ", col_items->device(),
                " but h is on ", h.device());
  }
  TORCH_CHECK_VALUE(!logq.has_value() || loss == Loss::kCrossEntropy, op,
                    ": logq_correction applies to the cross-entropy loss only");
  TORCH_CHECK_VALUE(bpreg >= 0 && std::isfinite(bpreg), op, ": bpreg must be finite and >= 0, got ", bpreg);
  TORCH_CHECK_VALUE(elu_param >= 0 && std::isfinite(elu_param), op,
                    ": elu_param must be finite and >= 0, got ", elu_param);
}

// What reduction "mean" divides the summed row losses by: the normaliser when given (GRU4Rec
// divides by its configured batch size, also when fewer rows are left at the end of an epoch),
// else the number of rows B (1 for B = 0, so an empty batch has loss 0).
double mean_divisor(const char* op, const std::optional<double>& normalizer, int64_t B) {
  if (!normalizer.has_value()) return static_cast<double>(std::max<int64_t>(B, 1));
  TORCH_CHECK_VALUE(std::isfinite(*normalizer) && *normalizer > 0, op,
                    ": normalizer must be finite and > 0, got ", *normalizer);
  return *normalizer;
}

int64_t tile_columns(int64_t B, int64_t M) {
  const int64_t tc = std::max<int64_t>(256, (int64_t{1} << 18) / std::max<int64_t>(1, B));
  return std::max<int64_t>(1, std::min(tc, M));
}

template <typename scalar_t>
void run_update(const sampled_loss::TileArgs<scalar_t>& a, const Tensor& like) {
  run_on_device(
      like, [&] { cpu::update_stats(a); }, SEQREC_CUDA_LAUNCH(stream, cuda::launch_update_stats(a, stream)));
}

template <typename scalar_t>
void run_grads(const sampled_loss::TileArgs<scalar_t>& a, const Tensor& like) {
  run_on_device(
      like, [&] { cpu::column_grads(a); }, SEQREC_CUDA_LAUNCH(stream, cuda::launch_column_grads(a, stream)));
}

struct Prepared {
  Tensor h, rows, bias, logq, col_items;
};

Prepared prepare(const Tensor& h, const Tensor& rows, const OptTensor& bias, const OptTensor& logq,
                 const OptTensor& col_items) {
  // an absent bias is zeros: the CPU loops then need no branch for it
  return {h.contiguous(), rows.contiguous(),
          bias.has_value() ? bias->contiguous() : at::zeros({rows.size(0)}, rows.options()),
          logq.has_value() ? logq->contiguous() : Tensor(),
          col_items.has_value() ? col_items->contiguous() : Tensor()};
}

template <typename scalar_t>
sampled_loss::TileArgs<scalar_t> base_args(const Prepared& p, const Tensor& stats, Loss loss, double bpreg,
                                           double elu_param) {
  using acc_t = typename AccType<scalar_t>::type;
  sampled_loss::TileArgs<scalar_t> a;
  a.B = p.h.size(0);
  a.bias = ptr<scalar_t>(p.bias);
  a.logq = ptr<scalar_t>(p.logq);
  a.col_items = ptr<int64_t>(p.col_items);
  a.stats = ptr<acc_t>(stats);
  a.loss = loss;
  a.bpreg = static_cast<acc_t>(bpreg);
  a.elu_alpha = static_cast<acc_t>(elu_param);
  return a;
}

// The scores of columns [c0, c0 + tc) into the first tc columns of `scores` (B, tile width), and
// the pass arguments that read them.
template <typename scalar_t>
void score_tile(sampled_loss::TileArgs<scalar_t>& a, const Prepared& p, Tensor& scores, int64_t c0,
                int64_t tc) {
  Tensor s = block(scores, 0, a.B, 0, tc);
  at::mm_out(s, p.h, block(p.rows, c0, tc, 0, p.h.size(1), true));
  a.c0 = c0;
  a.tc = tc;
  a.scores = ptr<scalar_t>(scores);
  a.scores_stride = scores.size(1);
}

// per-row losses from the statistics
Tensor row_losses(const Tensor& stats, Loss loss, double bpreg) {
  Tensor out = at::empty({stats.size(0)}, stats.options());
  AT_DISPATCH_FLOATING_TYPES(stats.scalar_type(), "sampled_ranking_loss_rows", [&] {
    const scalar_t* st = ptr<scalar_t>(stats);
    scalar_t* o = ptr<scalar_t>(out);
    const int64_t B = stats.size(0);
    const auto reg = static_cast<scalar_t>(bpreg);
    run_on_device(
        stats, [&] { cpu::row_losses(st, B, loss, reg, o); },
        SEQREC_CUDA_LAUNCH(stream, cuda::launch_row_losses(st, B, loss, reg, o, stream)));
  });
  return out;
}

// The statistics before the first column: they start from the target, its score r_i (and,
// for cross-entropy, its softmax term).
void init_stats(Tensor& stats, const Tensor& r_i, const Tensor& logq, Loss loss) {
  const int64_t B = stats.size(0);
  stats.zero_();
  stats.select(1, sampled_loss::kRi).copy_(r_i);
  if (loss == Loss::kCrossEntropy) {
    const Tensor x_i = logq.defined() ? r_i - logq.narrow(0, 0, B) : r_i;
    stats.select(1, sampled_loss::kM).copy_(x_i);
    stats.select(1, sampled_loss::kA).copy_(x_i);
    stats.select(1, sampled_loss::kZ).fill_(1.0);
  } else {
    stats.select(1, sampled_loss::kM).fill_(-std::numeric_limits<double>::infinity());
  }
}

// The loss of the one tile of all M columns (a.scores, a.d_scores = a.scores), its score
// gradients written over the scores. On the CPU every pass of a row runs in one go
// (cpu/sampled_loss_cpu.cpp); elsewhere the loss op's statistics and gradient kernels run on
// the tile, the statistics starting from the targets' scores as in the loss op.
template <typename scalar_t>
Tensor one_tile_loss_and_grads(sampled_loss::TileArgs<scalar_t>& a, const Prepared& p, Tensor& stats,
                               const Tensor& scores, double divisor) {
  using acc_t = typename AccType<scalar_t>::type;
  if (p.h.is_cpu()) {
    std::vector<acc_t> scale(a.B, acc_t(1) / static_cast<acc_t>(divisor));
    a.row_scale = scale.data();
    const acc_t total = cpu::step_loss_and_grads(a);
    return at::scalar_tensor(total / static_cast<acc_t>(divisor), p.h.options());
  }
  Tensor r_i = scores.diagonal() + p.bias.narrow(0, 0, a.B);
  if (a.elu_alpha > 0) r_i = at::elu(r_i, static_cast<double>(a.elu_alpha));
  init_stats(stats, r_i, p.logq, a.loss);
  const Tensor row_scale = at::full({a.B}, 1.0 / divisor, stats.options());
  a.row_scale = ptr<acc_t>(row_scale);
  run_update(a, p.h);
  run_grads(a, p.h);
  return (row_losses(stats, a.loss, static_cast<double>(a.bpreg)).sum() / divisor).to(p.h.scalar_type());
}

std::tuple<Tensor, Tensor> sampled_ranking_loss(const Tensor& h_in, const Tensor& rows_in,
                                                const OptTensor& bias_in, const OptTensor& logq_in,
                                                const OptTensor& col_items_in, c10::string_view loss_name,
                                                double bpreg, double elu_param,
                                                c10::string_view reduction_name,
                                                std::optional<double> normalizer) {
  if (any_low_precision({&h_in, &rows_in}, {&bias_in, &logq_in})) {
    auto [value, stats] =
        sampled_ranking_loss(widened(h_in), widened(rows_in), widened(bias_in), widened(logq_in),
                             col_items_in, loss_name, bpreg, elu_param, reduction_name, normalizer);
    return {narrowed(value, h_in), stats};
  }
  const Loss loss = parse_loss(loss_name);
  const Reduction reduction = parse_reduction(reduction_name);
  check_inputs("sampled_ranking_loss", h_in, rows_in, bias_in, logq_in, col_items_in, loss, bpreg, elu_param);
  const double divisor = mean_divisor("sampled_ranking_loss", normalizer, h_in.size(0));
  const c10::DeviceGuard guard(h_in.device());  // the op runs on its inputs' device
  const Prepared p = prepare(h_in, rows_in, bias_in, logq_in, col_items_in);
  const int64_t B = p.h.size(0), M = p.rows.size(0);
  const auto acc_dtype = p.h.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  // statistics start from the target: its score (and, for cross-entropy, its softmax term)
  Tensor r_i = (p.h * block(p.rows, 0, B, 0, p.h.size(1))).sum(1);
  if (p.bias.defined()) r_i = r_i + p.bias.narrow(0, 0, B);
  if (elu_param > 0) r_i = at::elu(r_i, elu_param);
  Tensor stats = at::empty({B, sampled_loss::kStats}, p.h.options().dtype(acc_dtype));
  init_stats(stats, r_i, p.logq, loss);
  const int64_t tc_max = tile_columns(B, M);
  Tensor scores = at::empty({B, tc_max}, p.h.options());
  AT_DISPATCH_FLOATING_TYPES(p.h.scalar_type(), "sampled_ranking_loss", [&] {
    auto a = base_args<scalar_t>(p, stats, loss, bpreg, elu_param);
    for (int64_t c0 = 0; c0 < M; c0 += tc_max) {
      score_tile(a, p, scores, c0, std::min(tc_max, M - c0));
      run_update(a, p.h);
    }
  });
  Tensor rows_loss = row_losses(stats, loss, bpreg);
  Tensor out;
  switch (reduction) {
    case Reduction::kMean:
      out = rows_loss.sum() / divisor;
      break;
    case Reduction::kSum:
      out = rows_loss.sum();
      break;
    case Reduction::kNone:
      out = rows_loss;
      break;
  }
  return {out.to(p.h.scalar_type()), stats};
}

std::tuple<Tensor, Tensor, Tensor> sampled_ranking_loss_backward(
    const Tensor& grad, const Tensor& h_in, const Tensor& rows_in, const OptTensor& bias_in,
    const OptTensor& logq_in, const OptTensor& col_items_in, const Tensor& stats_in,
    c10::string_view loss_name, double bpreg, double elu_param, c10::string_view reduction_name,
    std::optional<double> normalizer) {
  if (any_low_precision({&grad, &h_in, &rows_in}, {&bias_in, &logq_in})) {
    auto [d_h, d_rows, d_bias] = sampled_ranking_loss_backward(
        widened(grad), widened(h_in), widened(rows_in), widened(bias_in), widened(logq_in), col_items_in,
        stats_in, loss_name, bpreg, elu_param, reduction_name, normalizer);
    return {narrowed(d_h, h_in), narrowed(d_rows, rows_in), narrowed(d_bias, bias_in.value_or(rows_in))};
  }
  const Loss loss = parse_loss(loss_name);
  const Reduction reduction = parse_reduction(reduction_name);
  check_inputs("sampled_ranking_loss_backward", h_in, rows_in, bias_in, logq_in, col_items_in, loss, bpreg,
               elu_param);
  const double divisor = mean_divisor("sampled_ranking_loss_backward", normalizer, h_in.size(0));
  const c10::DeviceGuard guard(h_in.device());  // the op runs on its inputs' device
  const Prepared p = prepare(h_in, rows_in, bias_in, logq_in, col_items_in);
  const int64_t B = p.h.size(0), M = p.rows.size(0), H = p.h.size(1);
  TORCH_CHECK(stats_in.dim() == 2 && stats_in.size(0) == B && stats_in.size(1) == sampled_loss::kStats,
              "sampled_ranking_loss_backward: stats must be (B, ", sampled_loss::kStats, ")");
  const Tensor stats = stats_in.contiguous();
  // the upstream gradient of each row's loss
  Tensor row_scale;
  if (reduction == Reduction::kNone) {
    TORCH_CHECK(grad.dim() == 1 && grad.size(0) == B, "sampled_ranking_loss_backward: grad must be (B,)");
    row_scale = grad.to(stats.scalar_type()).contiguous();
  } else {
    TORCH_CHECK(grad.numel() == 1, "sampled_ranking_loss_backward: grad must be a scalar");
    const Tensor g = grad.reshape({1}).to(stats.scalar_type());
    row_scale = (reduction == Reduction::kMean ? g / divisor : g).expand({B}).contiguous();
  }
  Tensor d_h = at::zeros_like(p.h);
  Tensor d_rows = at::empty_like(p.rows);
  Tensor d_bias = at::empty({M}, p.h.options());
  const int64_t tc_max = tile_columns(B, M);
  Tensor scores = at::empty({B, tc_max}, p.h.options());
  Tensor d_scores = at::empty({B, tc_max}, p.h.options());
  AT_DISPATCH_FLOATING_TYPES(p.h.scalar_type(), "sampled_ranking_loss_backward", [&] {
    using acc_t = typename AccType<scalar_t>::type;
    auto a = base_args<scalar_t>(p, stats, loss, bpreg, elu_param);
    a.row_scale = ptr<acc_t>(row_scale);
    for (int64_t c0 = 0; c0 < M; c0 += tc_max) {
      const int64_t tc = std::min(tc_max, M - c0);
      const Tensor rows_tile = block(p.rows, c0, tc, 0, H);
      score_tile(a, p, scores, c0, tc);
      a.d_scores = ptr<scalar_t>(d_scores);
      a.d_scores_stride = tc_max;
      run_grads(a, p.h);
      const Tensor ds = block(d_scores, 0, B, 0, tc);
      d_h.addmm_(ds, rows_tile);
      Tensor d_rows_tile = block(d_rows, c0, tc, 0, H);
      at::mm_out(d_rows_tile, block(d_scores, 0, B, 0, tc, true), p.h);
      Tensor d_bias_tile = d_bias.narrow(0, c0, tc);
      at::sum_out(d_bias_tile, ds, {0});
    }
  });
  if (M == 0) d_rows.zero_();
  return {d_h, d_rows, d_bias};
}

}  // namespace

std::vector<std::string> loss_names() { return choice_names(kLosses); }

std::tuple<Tensor, Tensor, Tensor, Tensor> sampled_ranking_loss_with_grads(
    const Tensor& h_in, const Tensor& rows_in, const Tensor& bias_in, const OptTensor& logq_in,
    c10::string_view loss_name, double bpreg, double elu_param, std::optional<double> normalizer,
    at::ScalarType product_dtype) {
  const Loss loss = parse_loss(loss_name);
  const char* op = "gru4rec_step";
  check_inputs(op, h_in, rows_in, bias_in, logq_in, std::nullopt, loss, bpreg, elu_param);
  const double divisor = mean_divisor(op, normalizer, h_in.size(0));
  const c10::DeviceGuard guard(h_in.device());
  const Prepared p = prepare(h_in, rows_in, bias_in, logq_in, std::nullopt);
  const int64_t B = p.h.size(0), M = p.rows.size(0);
  const auto acc_dtype = p.h.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  // all B x M scores at once, one tile, overwritten by their gradients
  const bool own_dtype = product_dtype == p.h.scalar_type();
  const Tensor h_p = own_dtype ? p.h : p.h.to(product_dtype);
  const Tensor rows_p = own_dtype ? p.rows : p.rows.to(product_dtype);
  Tensor scores =
      own_dtype ? at::empty({B, M}, p.h.options()) : at::mm(h_p, rows_p.t()).to(p.h.scalar_type());
  Tensor stats = at::empty({B, sampled_loss::kStats}, p.h.options().dtype(acc_dtype));
  Tensor value;
  AT_DISPATCH_FLOATING_TYPES(p.h.scalar_type(), "gru4rec_step_loss", [&] {
    auto a = base_args<scalar_t>(p, stats, loss, bpreg, elu_param);
    if (own_dtype) {
      score_tile(a, p, scores, 0, M);
    } else {  // the scores of the low-precision product, widened
      a.c0 = 0;
      a.tc = M;
      a.scores = ptr<scalar_t>(scores);
      a.scores_stride = M;
    }
    a.d_scores = ptr<scalar_t>(scores);  // in place: each element is read before it is written
    a.d_scores_stride = M;
    value = one_tile_loss_and_grads(a, p, stats, scores, divisor);
  });
  Tensor d_bias = scores.sum(0);
  if (!own_dtype) {
    const Tensor d_scores = scores.to(product_dtype);
    return {value, at::mm(d_scores, rows_p).to(p.h.scalar_type()),
            at::mm(d_scores.t(), h_p).to(p.h.scalar_type()), d_bias};
  }
  Tensor d_h = at::mm(scores, p.rows);
  Tensor d_rows = at::mm(block(scores, 0, B, 0, M, true), p.h);
  return {value, d_h, d_rows, d_bias};
}

SEQREC_REGISTER_KERNELS(m) {
  m.impl("sampled_ranking_loss", &sampled_ranking_loss);
  m.impl("sampled_ranking_loss_backward", &sampled_ranking_loss_backward);
}

}  // namespace seqrec
