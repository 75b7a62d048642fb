// CPU kernels of the alias-table sampler: Vose's O(N) table build and O(1) counter-based draws.
#include "cpu/alias_sampler_cpu.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "alias_sampler_math.h"
#include "common/philox.h"
#include "cpu/philox_avx512.h"

namespace seqrec::cpu {

void alias_build(const double* w, int64_t n, float* p, int64_t* a) {
  // Validate, and scale by the largest weight so that the sum cannot overflow.
  double w_max = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double x = w[i];
    TORCH_CHECK_VALUE(std::isfinite(x), "alias_build: weights[", i, "] = ", x, " is not finite");
    TORCH_CHECK_VALUE(x >= 0.0, "alias_build: weights[", i, "] = ", x, " is negative");
    if (x > w_max) w_max = x;
  }
  TORCH_CHECK_VALUE(w_max > 0.0, "alias_build: all ", n, " weights are zero");
  double total = 0.0;
  for (int64_t i = 0; i < n; ++i) total += w[i] / w_max;
  const double to_buckets = static_cast<double>(n) / total;

  // q[i]: item i's mass in units of one bucket (mean 1).
  std::vector<double> q(static_cast<size_t>(n));
  std::vector<int64_t> small, large;
  small.reserve(static_cast<size_t>(n));
  large.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    q[i] = (w[i] / w_max) * to_buckets;
    (q[i] < 1.0 ? small : large).push_back(i);
  }

  // Pair an under-full bucket with an over-full item until one list runs out.
  while (!small.empty() && !large.empty()) {
    const int64_t s = small.back();
    small.pop_back();
    const int64_t l = large.back();
    p[s] = static_cast<float>(q[s]);
    a[s] = l;
    q[l] = (q[l] + q[s]) - 1.0;
    if (q[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // What is left is full up to rounding error.
  for (const int64_t l : large) {
    p[l] = 1.0f;
    a[l] = l;
  }
  int64_t i_max = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (w[i] == w_max) {
      i_max = i;
      break;
    }
  }
  for (const int64_t s : small) {
    // A zero-weight item can be left over only through rounding; it must stay undrawable.
    p[s] = w[s] > 0.0 ? 1.0f : 0.0f;
    a[s] = w[s] > 0.0 ? s : i_max;
  }
}

namespace {

// Draws 2k and 2k+1 come from the Philox block at counter (offset / 4, k) under key: the same
// layout as the CUDA kernel (one pair per thread), so a (key, offset) pair gives identical
// draws on every device, and the draws do not depend on how the pairs are split into chunks.

// Philox blocks of pairs [k0, k0 + m) into r (two draws per block): one lane per pair,
// written so that the compiler vectorises across lanes; cloned for AVX-512 / AVX2 with run-time
// selection. The fallback of philox_pairs.
__attribute__((target_clones("avx512f", "avx2", "default"))) void philox_pairs_auto(uint64_t ctr_lo,
                                                                                    uint64_t k0, uint64_t key,
                                                                                    int64_t m, uint64_t* r) {
  for (int64_t j = 0; j < m; ++j) {
    const Philox4x32 block = philox4x32_10(ctr_lo, k0 + static_cast<uint64_t>(j), key);
    r[2 * j] = philox_lo64(block);
    r[2 * j + 1] = philox_hi64(block);
  }
}

const bool kHasAvx512 = __builtin_cpu_supports("avx512f");

// The same blocks, sixteen at a time with AVX-512 where the CPU has it (cpu/philox_avx512.h).
void philox_pairs(uint64_t ctr_lo, uint64_t k0, uint64_t key, int64_t m, uint64_t* r) {
  int64_t j = 0;
  if (kHasAvx512) {
    for (; j + 16 <= m; j += 16) philox16_avx512(ctr_lo, k0 + static_cast<uint64_t>(j), key, r + 2 * j);
  }
  if (j < m) philox_pairs_auto(ctr_lo, k0 + static_cast<uint64_t>(j), key, m - j, r + 2 * j);
}

SEQREC_ELEMENT void prefetch_bucket(uint64_t r, const float* prob, const int64_t* alias, int64_t n_buckets) {
  uint64_t bucket, rest;
  mul_64x64_128(r, static_cast<uint64_t>(n_buckets), bucket, rest);
  __builtin_prefetch(prob + bucket);
  __builtin_prefetch(alias + bucket);
}

// Draws of pairs [pair_begin, pair_end): the random words of a chunk of kChunkPairs pairs are
// made a chunk ahead, and the table entries of draw j + kPrefetchAhead are requested while
// draw j is picked. The lookups of a large catalogue miss the cache; a steady stream of
// requests a few dozen draws ahead keeps many misses in flight (measured: about twice the draws
// per second of requesting a whole chunk's entries at once, which overflows the miss queue).
constexpr int64_t kChunkPairs = 128;
constexpr int64_t kChunkDraws = 2 * kChunkPairs;
constexpr int64_t kPrefetchAhead = 48;
static_assert(kPrefetchAhead <= kChunkDraws, "a prefetch reaches at most into the next chunk");

bool draw_pairs(const float* prob, const int64_t* alias, int64_t n_buckets, int64_t n, uint64_t key,
                uint64_t offset, int64_t pair_begin, int64_t pair_end, int64_t* out) {
  if (pair_begin >= pair_end) return false;
  alignas(64) uint64_t ring[2][kChunkDraws];
  const int64_t count = std::min(2 * pair_end, n) - 2 * pair_begin;  // this range's draws
  const int64_t chunks = (count + kChunkDraws - 1) / kChunkDraws;
  auto fill = [&](int64_t c) {
    const int64_t k0 = pair_begin + c * kChunkPairs;
    philox_pairs(offset / 4, static_cast<uint64_t>(k0), key, std::min(kChunkPairs, pair_end - k0),
                 ring[c & 1]);
  };
  fill(0);
  for (int64_t j = 0; j < std::min(kPrefetchAhead, count); ++j)
    prefetch_bucket(ring[0][j], prob, alias, n_buckets);
  bool bad = false;
  int64_t* o = out + 2 * pair_begin;
  for (int64_t c = 0; c < chunks; ++c) {
    if (c + 1 < chunks) fill(c + 1);
    const uint64_t* r = ring[c & 1];
    const uint64_t* next = ring[(c + 1) & 1];
    const int64_t done = c * kChunkDraws;
    const int64_t m = std::min(kChunkDraws, count - done);
    for (int64_t j = 0; j < m; ++j) {
      const int64_t ahead = j + kPrefetchAhead;
      if (done + ahead < count) {
        prefetch_bucket(ahead < kChunkDraws ? r[ahead] : next[ahead - kChunkDraws], prob, alias, n_buckets);
      }
      const int64_t v = alias_pick(r[j], n_buckets, prob, alias);
      bad |= (v < 0) | (v >= n_buckets);
      o[done + j] = v;
    }
  }
  return bad;
}

}  // namespace

bool alias_draw(const float* p, const int64_t* a, int64_t n_buckets, int64_t n, uint64_t key, uint64_t offset,
                int64_t* o) {
  std::atomic<bool> any_bad{false};
  const int64_t n_pairs = (n + 1) / 2;
  at::parallel_for(0, n_pairs, 1 << 13, [&](int64_t begin, int64_t end) {
    if (draw_pairs(p, a, n_buckets, n, key, offset, begin, end, o)) {
      any_bad.store(true, std::memory_order_relaxed);
    }
  });
  return any_bad.load();
}

}  // namespace seqrec::cpu
