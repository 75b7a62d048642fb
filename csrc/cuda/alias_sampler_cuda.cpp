// CUDA ops of the alias-table sampler: argument checks, allocation, generator and stream.
//
// alias_build runs on the host and copies the table to the device: Vose's method is a
// sequential O(N) pass (~10 ms at N = 10^6 here), a sampler's table is built once per
// training run, and the copy of 12 bytes per item is cheap next to that. alias_draw runs on
// the device, one thread per pair of draws.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#include <ATen/cuda/PhiloxCudaState.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <mutex>

#include "alias_sampler_checks.h"
#include "cpu/alias_sampler_cpu.h"
#include "cuda/alias_sampler_cuda.h"

namespace seqrec {
namespace {

std::tuple<at::Tensor, at::Tensor> alias_build_cuda(const at::Tensor& weights) {
  auto [prob, alias] = alias_build_cpu(weights.cpu());
  return {prob.to(weights.device()), alias.to(weights.device())};
}

void check_cuda_table(const at::Tensor& prob, const char* op) {
  TORCH_CHECK(prob.is_cuda(), op, ": expected CUDA tensors, got ", prob.device());
}

at::Tensor alias_draw_cuda(const at::Tensor& prob_in, const at::Tensor& alias_in, int64_t n,
                           std::optional<at::Generator> generator) {
  check_alias_table(prob_in, alias_in, n, "alias_draw");
  check_cuda_table(prob_in, "alias_draw");
  const c10::cuda::CUDAGuard guard(prob_in.device());
  const at::Tensor prob = prob_in.contiguous();
  const at::Tensor alias = alias_in.contiguous();
  at::Tensor out = at::empty({n}, alias.options());
  if (n == 0) return out;
  at::PhiloxCudaState philox;
  {
    auto* gen = at::get_generator_or_default<at::CUDAGeneratorImpl>(
        generator, at::cuda::detail::getDefaultCUDAGenerator(prob.device().index()));
    std::lock_guard<std::mutex> lock(gen->mutex_);
    philox = gen->philox_cuda_state(4);  // each call uses one 128-bit counter per thread
  }
  cuda::launch_alias_draw(prob.const_data_ptr<float>(), alias.const_data_ptr<int64_t>(),
                          prob.numel(), n, philox, out.data_ptr<int64_t>(),
                          at::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

at::Tensor alias_draw_philox_cuda(const at::Tensor& prob_in, const at::Tensor& alias_in,
                                  int64_t n, int64_t key, int64_t offset) {
  check_alias_table(prob_in, alias_in, n, "alias_draw_philox");
  check_cuda_table(prob_in, "alias_draw_philox");
  const c10::cuda::CUDAGuard guard(prob_in.device());
  const at::Tensor prob = prob_in.contiguous();
  const at::Tensor alias = alias_in.contiguous();
  at::Tensor out = at::empty({n}, alias.options());
  if (n == 0) return out;
  cuda::launch_alias_draw_keyed(prob.const_data_ptr<float>(), alias.const_data_ptr<int64_t>(),
                                prob.numel(), n, static_cast<uint64_t>(key),
                                static_cast<uint64_t>(offset), out.data_ptr<int64_t>(),
                                at::cuda::getCurrentCUDAStream());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(seqrec, CUDA, m) {
  m.impl("alias_build", &alias_build_cuda);
  m.impl("alias_draw", &alias_draw_cuda);
  m.impl("alias_draw_philox", &alias_draw_philox_cuda);
}

}  // namespace seqrec
