// The Adagrad-with-momentum update ops (dense and sparse-row) for every device: argument
// checks, the duplicate rows (summed by the CPU kernel, sorted for the CUDA kernel), and the update
// (csrc/adagrad_momentum_math.h, run by cpu/adagrad_momentum_cpu.cpp or cuda/adagrad_momentum_cuda.cu); the
// CPU and CUDA registrations.
//
//   sparse_adagrad_momentum_(param (N, D), acc (N, D), mom (N, D), indices (K,), grad_rows (K, D))
//   adagrad_momentum_(param, acc, mom, grad): the same rule for a dense parameter of any shape
#include <ATen/ATen.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>

#include "adagrad_momentum.h"
#include "adagrad_momentum_math.h"
#include "common/aten_helpers.h"
#include "common/device_dispatch.h"
#include "common/register_kernels.h"
#include "cpu/adagrad_momentum_cpu.h"
#ifdef SEQREC_WITH_CUDA
#include "cuda/adagrad_momentum_cuda.h"
#endif

namespace seqrec {
namespace {

using at::Tensor;

void check_state(const char* op, const Tensor& param, const Tensor& acc, const Tensor& mom, double lr,
                 double momentum, double eps) {
  TORCH_CHECK(param.scalar_type() == at::kFloat || param.scalar_type() == at::kDouble, op,
              ": expected a float32 or float64 parameter, got ", param.scalar_type());
  for (const auto& [t, name] : {std::pair{&acc, "accumulator"}, std::pair{&mom, "momentum_buffer"}}) {
    TORCH_CHECK(t->sizes() == param.sizes(), op, ": ", name, " must have the parameter's shape ",
                param.sizes(), ", got ", t->sizes());
    TORCH_CHECK(t->scalar_type() == param.scalar_type() && t->device() == param.device(), op, ": ", name,
                " must have the parameter's dtype and device");
    TORCH_CHECK(t->is_contiguous(), op, ": ", name, " must be contiguous");
  }
  TORCH_CHECK(param.is_contiguous(), op, ": the parameter must be contiguous");
  TORCH_CHECK_VALUE(std::isfinite(lr) && lr >= 0, op, ": lr must be finite and >= 0, got ", lr);
  TORCH_CHECK_VALUE(std::isfinite(momentum) && momentum >= 0 && momentum < 1, op,
                    ": momentum must lie in [0, 1), got ", momentum);
  TORCH_CHECK_VALUE(std::isfinite(eps) && eps > 0, op, ": eps must be finite and > 0, got ", eps);
}

// What `run` passes to the kernels besides the parameter and its state.
struct Rows {
  Tensor grad, rows, order;  // order: the sorted form (CUDA), see adagrad::RowsArgs
  int64_t U = 0, D = 0, N = 0;
  bool raw_rows = false;  // CPU only: `rows` are the K unsorted indices, `grad` their K rows
};

void run(const Tensor& param, const Tensor& acc, const Tensor& mom, const Rows& r, double lr, double momentum,
         double eps, const Tensor& skip) {
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "adagrad_momentum", [&] {
    adagrad::RowsArgs<scalar_t> a;
    a.param = ptr<scalar_t>(param);
    a.acc = ptr<scalar_t>(acc);
    a.mom = ptr<scalar_t>(mom);
    a.grad = ptr<scalar_t>(r.grad);
    a.rows = r.rows.defined() ? ptr<int64_t>(r.rows) : nullptr;
    a.order = r.order.defined() ? ptr<int64_t>(r.order) : nullptr;
    a.skip = skip.defined() ? skip.data_ptr<bool>() : nullptr;
    a.U = r.U;
    a.D = r.D;
    a.N = r.N;
    a.lr = lr;
    a.mu = momentum;
    a.eps = eps;
    run_on_device(
        param,
        [&] {
          if (r.raw_rows) {
            cpu::sparse_adagrad_momentum_rows(a);
          } else {
            cpu::adagrad_momentum_rows(a);
          }
        },
        SEQREC_CUDA_LAUNCH(stream, cuda::launch_adagrad_momentum_rows(a, stream)));
  });
}

// A skip flag: a bool tensor of one element on the parameter's device; on the CPU it is read here.
bool skipped_on_cpu(const Tensor& skip, const Tensor& param) {
  if (!skip.defined()) return false;
  TORCH_CHECK(skip.scalar_type() == at::kBool && skip.numel() == 1 && skip.device() == param.device() &&
                  skip.is_contiguous(),
              "adagrad_momentum: the skip flag must be one bool on the parameter's device");
  return skip.is_cpu() && skip.item<bool>();
}

}  // namespace

void sparse_adagrad_momentum_(Tensor& param, Tensor& acc, Tensor& mom, const Tensor& indices,
                              const Tensor& grad_rows, double lr, double momentum, double eps,
                              const Tensor& skip) {
  const char* op = "sparse_adagrad_momentum_";
  check_state(op, param, acc, mom, lr, momentum, eps);
  TORCH_CHECK(param.dim() == 2, op, ": the parameter must be a (N, D) table, got shape ", param.sizes());
  TORCH_CHECK(indices.dim() == 1 && indices.scalar_type() == at::kLong, op,
              ": indices must be a 1-D int64 tensor, got ", indices.scalar_type(), " of shape ",
              indices.sizes());
  TORCH_CHECK(
      grad_rows.dim() == 2 && grad_rows.size(0) == indices.size(0) && grad_rows.size(1) == param.size(1), op,
      ": grad_rows must be (K, D) = (", indices.size(0), ", ", param.size(1), "), got ", grad_rows.sizes());
  TORCH_CHECK(grad_rows.scalar_type() == param.scalar_type(), op, ": grad_rows has dtype ",
              grad_rows.scalar_type(), " but the parameter has ", param.scalar_type());
  TORCH_CHECK(indices.device() == param.device() && grad_rows.device() == param.device(), op,
              ": indices and grad_rows must be on the parameter's device ", param.device());
  const int64_t N = param.size(0), D = param.size(1), K = indices.numel();
  if (K == 0 || skipped_on_cpu(skip, param)) return;
  auto check_bounds = [&](int64_t lo, int64_t hi) {
    TORCH_CHECK_INDEX(lo >= 0 && hi < N, op, ": indices must lie in [0, ", N, "), got values in [", lo, ", ",
                      hi, "]");
  };
  if (param.is_cpu()) {  // duplicates found by sorting the K indices in the kernel: no temporaries
    const Tensor index = indices.contiguous();
    const int64_t* idx = index.data_ptr<int64_t>();
    int64_t lo = idx[0], hi = idx[0];  // a loop: aminmax and two item() calls cost more than the K reads
    for (int64_t k = 1; k < K; ++k) {
      lo = std::min(lo, idx[k]);
      hi = std::max(hi, idx[k]);
    }
    check_bounds(lo, hi);
    run(param, acc, mom, Rows{grad_rows.contiguous(), index, Tensor(), K, D, N, /*raw_rows=*/true}, lr,
        momentum, eps, skip);
    return;
  }
  const c10::DeviceGuard guard(param.device());  // the op runs on its inputs' device
  // the indices sorted stably; the kernel sums each run of one row in the rows' original order
  const auto [sorted, order] = at::sort(indices, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  if (!capturing_cuda_graph(param)) {  // one copy of the extremes; under capture the kernel asserts
    const Tensor ends = at::stack({sorted[0], sorted[K - 1]}).cpu();
    check_bounds(ends[0].item<int64_t>(), ends[1].item<int64_t>());
  }
  run(param, acc, mom, Rows{grad_rows.contiguous(), sorted, order, K, D, N}, lr, momentum, eps, skip);
}

void adagrad_momentum_(Tensor& param, Tensor& acc, Tensor& mom, const Tensor& grad, double lr,
                       double momentum, double eps, const Tensor& skip) {
  const char* op = "adagrad_momentum_";
  check_state(op, param, acc, mom, lr, momentum, eps);
  TORCH_CHECK(grad.sizes() == param.sizes() && grad.scalar_type() == param.scalar_type() &&
                  grad.device() == param.device(),
              op, ": grad must have the parameter's shape, dtype and device");
  if (skipped_on_cpu(skip, param)) return;
  const c10::DeviceGuard guard(param.device());  // the op runs on its inputs' device
  run(param, acc, mom, Rows{grad.contiguous(), Tensor(), Tensor(), 1, param.numel(), 1}, lr, momentum, eps,
      skip);
}

namespace {

void sparse_adagrad_momentum_op(Tensor& param, Tensor& acc, Tensor& mom, const Tensor& indices,
                                const Tensor& grad_rows, double lr, double momentum, double eps) {
  sparse_adagrad_momentum_(param, acc, mom, indices, grad_rows, lr, momentum, eps, Tensor());
}

void adagrad_momentum_op(Tensor& param, Tensor& acc, Tensor& mom, const Tensor& grad, double lr,
                         double momentum, double eps) {
  adagrad_momentum_(param, acc, mom, grad, lr, momentum, eps, Tensor());
}

}  // namespace

SEQREC_REGISTER_KERNELS(m) {
  m.impl("sparse_adagrad_momentum_", &sparse_adagrad_momentum_op);
  m.impl("adagrad_momentum_", &adagrad_momentum_op);
}

}  // namespace seqrec
