// CPU loops of the Adagrad-with-momentum update: rows in parallel, a row's values in one
// vectorised loop. This file is compiled with -fno-math-errno (sqrt need not set errno, so it
// vectorises; results are unchanged: not a fast-math flag).
#include "cpu/adagrad_momentum_cpu.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <vector>

namespace seqrec::cpu {
namespace {

constexpr int64_t kPrefetchRuns = 4;

// about 16k elements per task: where a second thread starts to pay (bench/bench_grain.py: 1.1x
// at 26k elements, 1.6x at 208k)
int64_t grain_rows(int64_t D) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, D)); }

template <typename scalar_t>
__attribute__((target_clones("avx512f", "avx2", "default"))) void update_row(
    scalar_t* __restrict__ p, scalar_t* __restrict__ acc, scalar_t* __restrict__ mom,
    const scalar_t* __restrict__ g, int64_t D, scalar_t lr, scalar_t mu, scalar_t eps) {
#pragma omp simd
  for (int64_t d = 0; d < D; ++d) adagrad::update<scalar_t>(p[d], acc[d], mom[d], g[d], lr, mu, eps);
}

template <typename scalar_t>
void run(const adagrad::RowsArgs<scalar_t>& a) {
  const auto lr = static_cast<scalar_t>(a.lr), mu = static_cast<scalar_t>(a.mu),
             eps = static_cast<scalar_t>(a.eps);
  if (a.rows == nullptr) {  // a dense parameter: its values in parallel, not row by row
    at::parallel_for(0, a.U * a.D, 16384, [&](int64_t i0, int64_t i1) {
      update_row(a.param + i0, a.acc + i0, a.mom + i0, a.grad + i0, i1 - i0, lr, mu, eps);
    });
    return;
  }
  at::parallel_for(0, a.U, grain_rows(a.D), [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t r = a.rows[k] * a.D;
      update_row(a.param + r, a.acc + r, a.mom + r, a.grad + k * a.D, a.D, lr, mu, eps);
    }
  });
}

// Sorts the keys (row << bits) | position, which come in position order, by row and then
// position: a least-significant-digit radix sort over the row bits only, 8 bits a pass — it is
// stable, so keys of one row keep their position order without sorting the position bits
// (for the ~2k keys of a GRU4Rec step and a 20k-row table: 2 linear passes); std::sort (on
// the whole key) for few keys.
void sort_keys(std::vector<int64_t>& keys, int bits, int key_bits) {
  const size_t n = keys.size();
  if (n < 256) {
    std::sort(keys.begin(), keys.end());
    return;
  }
  std::vector<int64_t> tmp(n);
  for (int shift = bits; shift < key_bits; shift += 8) {
    size_t start[257] = {};
    for (const int64_t k : keys) ++start[((k >> shift) & 255) + 1];
    for (int d = 1; d <= 256; ++d) start[d] += start[d - 1];
    for (const int64_t k : keys) tmp[start[(k >> shift) & 255]++] = k;
    keys.swap(tmp);
  }
}

template <typename scalar_t>
void run_sparse(const adagrad::RowsArgs<scalar_t>& a) {
  const int64_t K = a.U, D = a.D;
  const int64_t* index = a.rows;
  // positions sorted by (row, position): duplicates become runs, summed in their original order.
  // One integer key per position, (row << bits) | position: a sort of plain integers, no indirection.
  int bits = 1;
  while ((int64_t{1} << bits) < K) ++bits;
  int64_t max_index = 0;
  for (int64_t k = 0; k < K; ++k) max_index = std::max(max_index, index[k]);
  TORCH_CHECK(max_index < (int64_t{1} << (62 - std::min(bits, 62))), "sparse_adagrad_momentum_: ", K,
              " gradient rows into a table of ", max_index + 1, "+ rows exceed the 62-bit sort keys");
  std::vector<int64_t> order(K);
  for (int64_t k = 0; k < K; ++k) order[k] = (index[k] << bits) | k;
  int key_bits = bits;
  while (key_bits < 63 && (max_index >> (key_bits - bits)) > 0) ++key_bits;
  sort_keys(order, bits, key_bits);
  for (int64_t k = 0; k < K; ++k) order[k] &= (int64_t{1} << bits) - 1;
  std::vector<int64_t> run_start;
  run_start.reserve(K + 1);
  for (int64_t k = 0; k < K; ++k) {
    if (k == 0 || index[order[k]] != index[order[k - 1]]) run_start.push_back(k);
  }
  run_start.push_back(K);
  const int64_t n_runs = static_cast<int64_t>(run_start.size()) - 1;
  const auto lr = static_cast<scalar_t>(a.lr), mu = static_cast<scalar_t>(a.mu),
             eps = static_cast<scalar_t>(a.eps);
  if (D == 1) {  // a column (GRU4Rec's output bias): one inline update a row, not a call of the row loop
    for (int64_t r = 0; r < n_runs; ++r) {
      scalar_t g = a.grad[order[run_start[r]]];
      if (run_start[r + 1] - run_start[r] > 1) {  // 0 + g_1 + g_2 + ... in position order, as below
        g = scalar_t(0);
        for (int64_t k = run_start[r]; k < run_start[r + 1]; ++k) g += a.grad[order[k]];
      }
      const int64_t row = index[order[run_start[r]]];
      adagrad::update<scalar_t>(a.param[row], a.acc[row], a.mom[row], g, lr, mu, eps);
    }
    return;
  }
  at::parallel_for(0, n_runs, grain_rows(D), [&](int64_t r0, int64_t r1) {
    std::vector<scalar_t> sum(D);
    for (int64_t r = r0; r < r1; ++r) {
      // The rows are scattered over tables of megabytes: ask for the state rows of the run
      // kPrefetchRuns ahead now, so that their loads overlap this row's update (measured: 2-3%
      // of a GRU4Rec step at B = 32, H = 100; distances 2 to 8 alike).
      if (r + kPrefetchRuns < r1) {
        const int64_t next = index[order[run_start[r + kPrefetchRuns]]] * D;
        for (int64_t off = 0; off < D; off += 64 / static_cast<int64_t>(sizeof(scalar_t))) {
          __builtin_prefetch(a.param + next + off, 1);
          __builtin_prefetch(a.acc + next + off, 1);
          __builtin_prefetch(a.mom + next + off, 1);
        }
      }
      const int64_t s = run_start[r], e = run_start[r + 1];
      const scalar_t* g = a.grad + order[s] * D;
      if (e - s > 1) {  // a duplicated row: 0 + g_1 + g_2 + ... in position order
        std::fill(sum.begin(), sum.end(), scalar_t(0));
        for (int64_t k = s; k < e; ++k) {
          const scalar_t* gk = a.grad + order[k] * D;
          for (int64_t d = 0; d < D; ++d) sum[d] += gk[d];
        }
        g = sum.data();
      }
      const int64_t row = index[order[s]] * D;
      update_row(a.param + row, a.acc + row, a.mom + row, g, D, lr, mu, eps);
    }
  });
}

}  // namespace

void adagrad_momentum_rows(const adagrad::RowsArgs<float>& a) { run(a); }
void adagrad_momentum_rows(const adagrad::RowsArgs<double>& a) { run(a); }
void sparse_adagrad_momentum_rows(const adagrad::RowsArgs<float>& a) { run_sparse(a); }
void sparse_adagrad_momentum_rows(const adagrad::RowsArgs<double>& a) { run_sparse(a); }

}  // namespace seqrec::cpu
