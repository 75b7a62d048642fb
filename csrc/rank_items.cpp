// The full-catalogue ranking op for every device: argument checks, the tile loop (a GEMM per
// tile of items: BLAS or cuBLAS), and the per-tile rank counts and top-k (csrc/rank_items_math.h,
// run by cpu/rank_items_cpu.cpp; on a GPU the counts by cuda/rank_items_cuda.cu and the top-k
// by ATen's stable sort, which keeps the order of equal scores, i.e. ids ascending).
//
// Memory: O(B * (k + tile width)); the tile is about 4 MB of scores.
//
// GCC 12 reports the std::optional<Tensor> locals of rank_items as "may be used uninitialized"
// in a build without CUDA (a known false positive of -Wmaybe-uninitialized on std::optional,
// reported inside c10's headers, hence before them); each is initialised where it is declared.
#if defined(__GNUC__) && !defined(__clang__) && !defined(SEQREC_WITH_CUDA)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <limits>

#include "common/aten_helpers.h"
#include "common/device_dispatch.h"
#include "common/register_kernels.h"
#include "cpu/rank_items_cpu.h"
#include "rank_items.h"
#ifdef SEQREC_WITH_CUDA
#include "cuda/rank_items_cuda.h"
#endif

namespace seqrec {
namespace {

using at::Tensor;
using OptTensor = std::optional<Tensor>;

constexpr const char* kOp = "rank_items";

void check_inputs(const Tensor& h, const Tensor& table, const OptTensor& bias, const OptTensor& targets,
                  const OptTensor& exclude, int64_t k, double elu_param) {
  TORCH_CHECK(h.dim() == 2 && table.dim() == 2 && h.size(1) == table.size(1), kOp,
              ": expected h (B, H) and table (N, H), got ", h.sizes(), " and ", table.sizes());
  TORCH_CHECK(h.scalar_type() == table.scalar_type() && h.device() == table.device(), kOp,
              ": h and table must have one dtype and device, got ", h.scalar_type(), " on ", h.device(),
              " and ", table.scalar_type(), " on ", table.device());
  TORCH_CHECK(h.scalar_type() == at::kFloat || h.scalar_type() == at::kDouble, kOp,
              ": float32 or float64 scores, got ", h.scalar_type());
  if (bias.has_value()) {
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == table.size(0) &&
                    bias->scalar_type() == h.scalar_type() && bias->device() == h.device(),
                kOp, ": bias must be (N,) = (", table.size(0), ",) of h's dtype and device, got ",
                bias->scalar_type(), " of shape ", bias->sizes());
  }
  if (targets.has_value()) {
    TORCH_CHECK(targets->dim() == 1 && targets->size(0) == h.size(0) && targets->scalar_type() == at::kLong &&
                    targets->device() == h.device(),
                kOp, ": targets must be (B,) int64 on h's device, got ", targets->scalar_type(), " of shape ",
                targets->sizes());
    if (targets->numel() > 0) {
      TORCH_CHECK(targets->min().item<int64_t>() >= 0 && targets->max().item<int64_t>() < table.size(0), kOp,
                  ": targets must be item ids in [0, ", table.size(0), ")");
    }
  }
  if (exclude.has_value()) {
    TORCH_CHECK(exclude->dim() == 2 && exclude->size(0) == h.size(0) && exclude->scalar_type() == at::kLong &&
                    exclude->device() == h.device(),
                kOp, ": exclude must be (B, E) int64 on h's device (-1 for padding), got ",
                exclude->scalar_type(), " of shape ", exclude->sizes());
  }
  TORCH_CHECK(k >= 0 && k <= table.size(0), kOp, ": k must lie in [0, N = ", table.size(0), "], got ", k);
  TORCH_CHECK(elu_param >= 0 && std::isfinite(elu_param), kOp, ": elu_param must be finite and >= 0, got ",
              elu_param);
}

// Scores of items [c0, c0 + tc) into the first tc columns of `scores` (B, tile width), as the
// whole-catalogue product would give them: h table^T, + bias, then ELU.
Tensor score_tile(Tensor& scores, const Tensor& h, const Tensor& table, const OptTensor& bias, int64_t c0,
                  int64_t tc, double elu_param) {
  Tensor s = block(scores, 0, h.size(0), 0, tc);
  at::mm_out(s, h, block(table, c0, tc, 0, h.size(1), true));
  if (bias.has_value()) s.add_(bias->narrow(0, c0, tc));
  if (elu_param > 0) at::elu_(s, elu_param);
  return s;
}

// The targets' own scores, the same way.
Tensor target_scores(const Tensor& h, const Tensor& table, const OptTensor& bias, const Tensor& targets,
                     double elu_param) {
  Tensor t = (h * table.index_select(0, targets)).sum(1);
  if (bias.has_value()) t.add_(bias->index_select(0, targets));
  if (elu_param > 0) at::elu_(t, elu_param);
  return t;
}

int64_t tile_width(int64_t B, int64_t N) {
  const int64_t width = std::max<int64_t>(256, (int64_t(1) << 20) / std::max<int64_t>(1, B));
  return std::max<int64_t>(1, std::min(width, N));
}

#ifdef SEQREC_WITH_CUDA
// A GPU's tile pass (the CPU has its own, cpu::rank_tile): the counts by the CUDA kernel
// (cuda/rank_items_cuda.cu), the running top-k merged with the tile's by a stable
// sort of (running, tile) scores; the running entries come from earlier tiles (lower ids), so
// equal scores stay in id order.
void rank_tile_cuda(const Tensor& s, int64_t c0, const OptTensor& t, const OptTensor& targets,
                    const OptTensor& exclude, Tensor& greater, Tensor& equal, Tensor& top_scores,
                    Tensor& top_ids) {
  const int64_t B = s.size(0), tc = s.size(1), k = top_ids.size(1);
  const Tensor ids = at::arange(c0, c0 + tc, top_ids.options()).expand({B, tc});
  if (targets.has_value()) {
    AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), kOp, [&] {
      run_on_cuda(SEQREC_CUDA_LAUNCH(
          stream, cuda::launch_rank_counts(s.const_data_ptr<scalar_t>(), s.stride(0), B, c0, tc,
                                           t->const_data_ptr<scalar_t>(), targets->const_data_ptr<int64_t>(),
                                           greater.data_ptr<int64_t>(), equal.data_ptr<int64_t>(), stream)));
    });
  }
  if (k == 0) return;
  Tensor blocked = at::isnan(s);
  if (exclude.has_value() && exclude->size(1) > 0) {
    const Tensor local = *exclude - c0;
    const Tensor inside = (local >= 0) & (local < tc);
    Tensor hit = at::zeros({B, tc + 1}, s.options().dtype(at::kBool));  // column tc: outside
    hit.scatter_(1, at::where(inside, local, at::full_like(local, tc)), true);
    blocked = blocked | hit.narrow(1, 0, tc);
  }
  const Tensor tile = at::where(blocked, at::full_like(s, -std::numeric_limits<double>::infinity()), s);
  auto [sorted, order] =
      at::sort(at::cat({top_scores, tile}, 1), /*stable=*/true, /*dim=*/1, /*descending=*/true);
  top_scores = sorted.narrow(1, 0, k).contiguous();
  top_ids = at::cat({top_ids, ids}, 1).gather(1, order.narrow(1, 0, k)).contiguous();
}
#endif

}  // namespace

std::tuple<Tensor, Tensor, Tensor, Tensor> rank_items(const Tensor& h_in, const Tensor& table_in,
                                                      const OptTensor& bias_in, const OptTensor& targets,
                                                      const OptTensor& exclude_in, int64_t k,
                                                      double elu_param) {
  check_inputs(h_in, table_in, bias_in, targets, exclude_in, k, elu_param);
  const c10::DeviceGuard guard(h_in.device());
  const Tensor h = h_in.contiguous(), table = table_in.contiguous();
  const OptTensor bias = bias_in.has_value() ? OptTensor(bias_in->contiguous()) : std::nullopt;
  const OptTensor exclude = exclude_in.has_value() ? OptTensor(exclude_in->contiguous()) : std::nullopt;
  const int64_t B = h.size(0), N = table.size(0);
  const auto ids_opts = h.options().dtype(at::kLong);
  Tensor greater = at::zeros({targets.has_value() ? B : 0}, ids_opts);
  Tensor equal = at::zeros_like(greater);
  const OptTensor t =
      targets.has_value() ? OptTensor(target_scores(h, table, bias, *targets, elu_param)) : std::nullopt;
  Tensor top_scores = at::full({B, k}, -std::numeric_limits<double>::infinity(), h.options());
  Tensor top_ids = at::full({B, k}, -1, ids_opts);
  if (B == 0 || N == 0) return {greater, equal, top_ids, top_scores};
  const int64_t width = tile_width(B, N);
  Tensor scores = at::empty({B, width}, h.options());
  const OptTensor targets_c = targets.has_value() ? OptTensor(targets->contiguous()) : std::nullopt;
#ifdef SEQREC_WITH_CUDA
  if (h.is_cuda()) {
    for (int64_t c0 = 0; c0 < N; c0 += width) {
      const Tensor s = score_tile(scores, h, table, bias, c0, std::min(width, N - c0), elu_param);
      rank_tile_cuda(s, c0, t, targets_c, exclude, greater, equal, top_scores, top_ids);
    }
    top_ids.masked_fill_(top_scores == -std::numeric_limits<double>::infinity(), -1);
    return {greater, equal, top_ids, top_scores};
  }
#endif
  Tensor heap_size = at::zeros({B}, ids_opts);
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), kOp, [&] {
    cpu::RankTileArgs<scalar_t> a;
    a.B = B;
    a.k = k;
    a.scores = ptr<scalar_t>(scores);
    a.scores_stride = width;
    a.target_scores = t.has_value() ? ptr<scalar_t>(*t) : nullptr;
    a.targets = targets_c.has_value() ? ptr<int64_t>(*targets_c) : nullptr;
    a.exclude = exclude.has_value() ? ptr<int64_t>(*exclude) : nullptr;
    a.E = exclude.has_value() ? exclude->size(1) : 0;
    a.greater = ptr<int64_t>(greater);
    a.equal = ptr<int64_t>(equal);
    a.heap_scores = ptr<scalar_t>(top_scores);
    a.heap_ids = ptr<int64_t>(top_ids);
    a.heap_size = ptr<int64_t>(heap_size);
    for (int64_t c0 = 0; c0 < N; c0 += width) {
      a.c0 = c0;
      a.tc = std::min(width, N - c0);
      score_tile(scores, h, table, bias, c0, a.tc, elu_param);
      cpu::rank_tile(a);
    }
    cpu::finish_top_k(B, k, a.heap_scores, a.heap_ids, a.heap_size);
  });
  return {greater, equal, top_ids, top_scores};
}

SEQREC_REGISTER_KERNELS(m) { m.impl("rank_items", &rank_items); }

}  // namespace seqrec
