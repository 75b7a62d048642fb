// The Adagrad-with-momentum update ops (dense and sparse-row) for every device: argument
// checks, summing the gradients of duplicate rows, and the update (csrc/adagrad_momentum_math.h,
// run by cpu/adagrad_momentum_cpu.cpp or cuda/adagrad_momentum_cuda.cu); the CPU and CUDA
// registrations.
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

// raw_rows (CPU only): `rows` are the K unsorted indices with duplicates and `grad` their K rows
void run(const Tensor& param, const Tensor& acc, const Tensor& mom, const Tensor& grad, const Tensor& rows,
         int64_t U, int64_t D, double lr, double momentum, double eps, bool raw_rows = false) {
  AT_DISPATCH_FLOATING_TYPES(param.scalar_type(), "adagrad_momentum", [&] {
    adagrad::RowsArgs<scalar_t> a;
    a.param = ptr<scalar_t>(param);
    a.acc = ptr<scalar_t>(acc);
    a.mom = ptr<scalar_t>(mom);
    a.grad = ptr<scalar_t>(grad);
    a.rows = rows.defined() ? ptr<int64_t>(rows) : nullptr;
    a.U = U;
    a.D = D;
    a.lr = lr;
    a.mu = momentum;
    a.eps = eps;
    run_on_device(
        param,
        [&] {
          if (raw_rows) {
            cpu::sparse_adagrad_momentum_rows(a);
          } else {
            cpu::adagrad_momentum_rows(a);
          }
        },
        SEQREC_CUDA_LAUNCH(stream, cuda::launch_adagrad_momentum_rows(a, stream)));
  });
}

}  // namespace

void sparse_adagrad_momentum_(Tensor& param, Tensor& acc, Tensor& mom, const Tensor& indices,
                              const Tensor& grad_rows, double lr, double momentum, double eps) {
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
  const int64_t N = param.size(0), D = param.size(1);
  if (indices.numel() == 0) return;
  int64_t lo_v = 0, hi_v = 0;
  if (indices.is_cpu()) {  // a loop: aminmax and two item() calls cost more than the K reads
    const Tensor index = indices.contiguous();
    const int64_t* idx = index.data_ptr<int64_t>();
    lo_v = hi_v = idx[0];
    for (int64_t k = 1; k < index.numel(); ++k) {
      lo_v = std::min(lo_v, idx[k]);
      hi_v = std::max(hi_v, idx[k]);
    }
  } else {
    const auto [lo, hi] = at::aminmax(indices);
    lo_v = lo.item<int64_t>();
    hi_v = hi.item<int64_t>();
  }
  TORCH_CHECK_INDEX(lo_v >= 0 && hi_v < N, op, ": indices must lie in [0, ", N, "), got values in [", lo_v,
                    ", ", hi_v, "]");
  if (param.is_cpu()) {  // duplicates found by sorting the K indices in the kernel: no temporaries
    const Tensor index = indices.contiguous();
    run(param, acc, mom, grad_rows.contiguous(), index, index.numel(), D, lr, momentum, eps,
        /*raw_rows=*/true);
    return;
  }
  const c10::DeviceGuard guard(param.device());  // the op runs on its inputs' device
  // duplicates first: each distinct row gets the sum of its gradients, then one update
  const auto [rows, inverse, counts] = at::_unique2(indices, /*sorted=*/true, /*return_inverse=*/true);
  const Tensor summed = at::zeros({rows.size(0), D}, grad_rows.options()).index_add_(0, inverse, grad_rows);
  run(param, acc, mom, summed, rows.contiguous(), rows.size(0), D, lr, momentum, eps);
}

void adagrad_momentum_(Tensor& param, Tensor& acc, Tensor& mom, const Tensor& grad, double lr,
                       double momentum, double eps) {
  const char* op = "adagrad_momentum_";
  check_state(op, param, acc, mom, lr, momentum, eps);
  TORCH_CHECK(grad.sizes() == param.sizes() && grad.scalar_type() == param.scalar_type() &&
                  grad.device() == param.device(),
              op, ": grad must have the parameter's shape, dtype and device");
  const c10::DeviceGuard guard(param.device());  // the op runs on its inputs' device
  run(param, acc, mom, grad.contiguous(), Tensor(), 1, param.numel(), lr, momentum, eps);
}

SEQREC_REGISTER_KERNELS(m) {
  m.impl("sparse_adagrad_momentum_", &sparse_adagrad_momentum_);
  m.impl("adagrad_momentum_", &adagrad_momentum_);
}

}  // namespace seqrec
