// The alias-table sampler ops for every device: argument checks, allocation, the generator,
// and the draws (csrc/alias_sampler_math.h, run by cpu/alias_sampler_cpu.cpp or
// cuda/alias_sampler_cuda.cu).
//
// alias_build runs on the host for either device and copies the table to the weights' device:
// Vose's method is a sequential O(N) pass (~10 ms at N = 10^6 here), a sampler's table is
// built once per training run, and the copy of 12 bytes per item is cheap next to that.
// alias_draw runs on the table's device. The CPU draws take a 64-bit key from the CPU
// generator; the CUDA draws take the CUDA generator's Philox state, unpacked on the device.
#include "alias_sampler.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/DistributionsHelper.h>
#include <ATen/ops/empty.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include <mutex>

#include "common/device_dispatch.h"
#include "common/register_kernels.h"
#include "cpu/alias_sampler_cpu.h"
#ifdef SEQREC_WITH_CUDA
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/PhiloxCudaState.h>

#include "cuda/alias_sampler_cuda.h"
#endif

namespace seqrec {
namespace {

using at::Tensor;

void check_alias_table(const Tensor& prob, const Tensor& alias, int64_t n, const char* op) {
  TORCH_CHECK_VALUE(n >= 0, op, ": the number of draws n must be >= 0, got ", n);
  TORCH_CHECK(prob.dim() == 1 && alias.dim() == 1, op, ": prob and alias must be 1-D, got shapes ",
              prob.sizes(), " and ", alias.sizes());
  TORCH_CHECK(prob.scalar_type() == at::kFloat, op, ": prob must be float32, got ", prob.scalar_type());
  TORCH_CHECK(alias.scalar_type() == at::kLong, op, ": alias must be int64, got ", alias.scalar_type());
  TORCH_CHECK(prob.device() == alias.device(), op, ": prob and alias must be on the same device, got ",
              prob.device(), " and ", alias.device());
  TORCH_CHECK_VALUE(prob.numel() == alias.numel(), op, ": prob and alias have different lengths (",
                    prob.numel(), " vs ", alias.numel(), "): they are not one table");
  TORCH_CHECK_VALUE(prob.numel() > 0, op, ": the table is empty");
}

// The CPU draws into out (n,) from the contiguous table, under (key, offset).
void draw_cpu(const Tensor& prob, const Tensor& alias, int64_t n, uint64_t key, uint64_t offset, Tensor& out,
              const char* op) {
  if (n == 0) return;
  const int64_t n_buckets = prob.numel();
  const bool bad = cpu::alias_draw(prob.const_data_ptr<float>(), alias.const_data_ptr<int64_t>(), n_buckets,
                                   n, key, offset, out.data_ptr<int64_t>());
  TORCH_CHECK_VALUE(!bad, op, ": alias holds entries outside [0, ", n_buckets,
                    "): not a table from alias_build");
}

// One 64-bit key from the CPU generator: its state advances once per call.
uint64_t cpu_generator_key(const std::optional<at::Generator>& generator) {
  auto* gen =
      at::get_generator_or_default<at::CPUGeneratorImpl>(generator, at::detail::getDefaultCPUGenerator());
  std::lock_guard<std::mutex> lock(gen->mutex_);
  return gen->random64();
}

#ifdef SEQREC_WITH_CUDA
// The CUDA generator's Philox state for one call: one 128-bit counter per thread.
at::PhiloxCudaState cuda_generator_state(const std::optional<at::Generator>& generator, const Tensor& like) {
  auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(
      generator, at::cuda::detail::getDefaultCUDAGenerator(like.device().index()));
  std::lock_guard<std::mutex> lock(gen->mutex_);
  return gen->philox_cuda_state(4);
}
#endif

}  // namespace

std::tuple<Tensor, Tensor> alias_build(const Tensor& weights) {
  TORCH_CHECK(weights.dim() == 1, "alias_build: weights must be 1-D, got shape ", weights.sizes());
  TORCH_CHECK(at::isFloatingType(weights.scalar_type()),
              "alias_build: weights must be a floating-point tensor, got ", weights.scalar_type());
  const int64_t n = weights.numel();
  TORCH_CHECK_VALUE(n > 0, "alias_build: weights is empty");
  const Tensor w64 = weights.cpu().to(at::kDouble).contiguous();
  Tensor prob = at::empty({n}, w64.options().dtype(at::kFloat));
  Tensor alias = at::empty({n}, w64.options().dtype(at::kLong));
  cpu::alias_build(w64.const_data_ptr<double>(), n, prob.data_ptr<float>(), alias.data_ptr<int64_t>());
  return {prob.to(weights.device()), alias.to(weights.device())};
}

Tensor alias_draw(const Tensor& prob_in, const Tensor& alias_in, int64_t n,
                  std::optional<at::Generator> generator) {
  check_alias_table(prob_in, alias_in, n, "alias_draw");
  const c10::DeviceGuard guard(prob_in.device());  // the op runs on its inputs' device
  const Tensor prob = prob_in.contiguous();
  const Tensor alias = alias_in.contiguous();
  Tensor out = at::empty({n}, alias.options());
  run_on_device(
      prob,
      // the CPU generator advances on every call, also one of no draws
      [&] { draw_cpu(prob, alias, n, cpu_generator_key(generator), 0, out, "alias_draw"); },
      SEQREC_CUDA_LAUNCH(stream,
                         if (n > 0) cuda::launch_alias_draw(
                             prob.const_data_ptr<float>(), alias.const_data_ptr<int64_t>(), prob.numel(), n,
                             cuda_generator_state(generator, prob), out.data_ptr<int64_t>(), stream)));
  return out;
}

Tensor alias_draw_philox(const Tensor& prob_in, const Tensor& alias_in, int64_t n, int64_t key,
                         int64_t offset) {
  check_alias_table(prob_in, alias_in, n, "alias_draw_philox");
  const c10::DeviceGuard guard(prob_in.device());  // the op runs on its inputs' device
  const Tensor prob = prob_in.contiguous();
  const Tensor alias = alias_in.contiguous();
  Tensor out = at::empty({n}, alias.options());
  if (n == 0) return out;
  const auto k = static_cast<uint64_t>(key), off = static_cast<uint64_t>(offset);
  run_on_device(
      prob, [&] { draw_cpu(prob, alias, n, k, off, out, "alias_draw_philox"); },
      SEQREC_CUDA_LAUNCH(
          stream, cuda::launch_alias_draw_keyed(prob.const_data_ptr<float>(), alias.const_data_ptr<int64_t>(),
                                                prob.numel(), n, k, off, out.data_ptr<int64_t>(), stream)));
  return out;
}

SEQREC_REGISTER_KERNELS(m) {
  m.impl("alias_build", &alias_build);
  m.impl("alias_draw", &alias_draw);
  m.impl("alias_draw_philox", &alias_draw_philox);
}

}  // namespace seqrec
