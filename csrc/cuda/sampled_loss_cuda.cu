// CUDA kernels of the fused sampled ranking loss's tile passes. Kernels and launchers only;
// the matrix products are cuBLAS calls made by csrc/sampled_loss.cpp.
#include "cuda/sampled_loss_cuda.h"

namespace seqrec::cuda {
namespace {

constexpr int kThreads = 128;

// The statistics pass: one block per row, its threads sharing out the tile's columns; the
// threads' parts are combined by a tree in shared memory, always in the same order, so the
// result does not depend on scheduling (no atomics). Threads: a power of two <= kStatsThreads.
constexpr int kStatsThreads = 256;

template <typename T, typename Combine>
__device__ T block_combine(T value, T* shared, Combine combine) {
  shared[threadIdx.x] = value;
  __syncthreads();
  for (unsigned int half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) shared[threadIdx.x] = combine(shared[threadIdx.x], shared[threadIdx.x + half]);
    __syncthreads();
  }
  const T out = shared[0];
  __syncthreads();  // before the next call overwrites `shared`
  return out;
}

template <sampled_loss::Loss kLoss, typename scalar_t>
__global__ void update_stats_kernel(sampled_loss::TileArgs<scalar_t> a) {
  using acc_t = typename sampled_loss::TileArgs<scalar_t>::acc_t;
  using Sums = sampled_loss::TileSums<acc_t>;
  __shared__ Sums shared[kStatsThreads];
  const int64_t b = blockIdx.x;
  const int64_t lane = threadIdx.x, lanes = blockDim.x;
  acc_t* st = a.stats + b * sampled_loss::kStats;
  if constexpr (sampled_loss::uses_softmax(kLoss)) {
    // the maxima travel in the z field of the shared sums
    Sums part{};
    part.z = sampled_loss::tile_max_part<kLoss>(a, b, lane, lanes, st[sampled_loss::kM]);
    const Sums top =
        block_combine(part, shared, [](const Sums& x, const Sums& y) { return x.z >= y.z ? x : y; });
    if (threadIdx.x == 0) sampled_loss::raise_max<kLoss>(st, top.z);
    __syncthreads();  // every thread reads the raised maximum
  }
  const Sums part =
      sampled_loss::tile_sums_part<kLoss>(a, b, lane, lanes, st[sampled_loss::kM], st[sampled_loss::kRi]);
  const Sums total = block_combine(part, shared, [](Sums x, const Sums& y) { return x += y; });
  if (threadIdx.x == 0) sampled_loss::add_stats<kLoss>(st, total.z, total.a, total.q, total.t, total.n);
}

unsigned int stats_threads(int64_t tc) {
  unsigned int threads = 32;
  while (threads < kStatsThreads && threads < tc) threads *= 2;
  return threads;
}

template <sampled_loss::Loss kLoss, typename scalar_t>
__global__ void column_grads_kernel(sampled_loss::TileArgs<scalar_t> a) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= a.B * a.tc) return;
  const int64_t b = idx / a.tc;
  sampled_loss::column_grad_element<kLoss>(a, b, idx - b * a.tc);
}

template <typename acc_t>
__global__ void row_losses_kernel(const acc_t* stats, int64_t B, sampled_loss::Loss loss, acc_t bpreg,
                                  acc_t* out) {
  const int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b < B) out[b] = sampled_loss::row_loss(loss, stats + b * sampled_loss::kStats, bpreg);
}

unsigned int blocks(int64_t n) { return static_cast<unsigned int>((n + kThreads - 1) / kThreads); }

template <typename scalar_t>
void update(const sampled_loss::TileArgs<scalar_t>& a, cudaStream_t s) {
  if (a.B == 0 || a.tc == 0) return;
  sampled_loss::dispatch_loss(a.loss, [&](auto loss) {
    update_stats_kernel<decltype(loss)::value>
        <<<static_cast<unsigned int>(a.B), stats_threads(a.tc), 0, s>>>(a);
  });
}

template <typename scalar_t>
void grads(const sampled_loss::TileArgs<scalar_t>& a, cudaStream_t s) {
  if (a.B == 0 || a.tc == 0) return;
  sampled_loss::dispatch_loss(a.loss, [&](auto loss) {
    column_grads_kernel<decltype(loss)::value><<<blocks(a.B * a.tc), kThreads, 0, s>>>(a);
  });
}

template <typename acc_t>
void losses(const acc_t* st, int64_t B, sampled_loss::Loss loss, acc_t bpreg, acc_t* out, cudaStream_t s) {
  if (B > 0) row_losses_kernel<<<blocks(B), kThreads, 0, s>>>(st, B, loss, bpreg, out);
}

}  // namespace

void launch_row_losses(const float* st, int64_t B, sampled_loss::Loss loss, float bpreg, float* out,
                       cudaStream_t s) {
  losses(st, B, loss, bpreg, out, s);
}
void launch_row_losses(const double* st, int64_t B, sampled_loss::Loss loss, double bpreg, double* out,
                       cudaStream_t s) {
  losses(st, B, loss, bpreg, out, s);
}

void launch_update_stats(const sampled_loss::TileArgs<float>& a, cudaStream_t s) { update(a, s); }
void launch_update_stats(const sampled_loss::TileArgs<double>& a, cudaStream_t s) { update(a, s); }
void launch_column_grads(const sampled_loss::TileArgs<float>& a, cudaStream_t s) { grads(a, s); }
void launch_column_grads(const sampled_loss::TileArgs<double>& a, cudaStream_t s) { grads(a, s); }

}  // namespace seqrec::cuda
