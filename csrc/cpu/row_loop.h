// The CPU loop of the recurrent ops' kernel passes (cpu/gru_cpu.cpp, cpu/lstm_cpu.cpp): rows in
// parallel, the hidden units of a row in one loop that the compiler vectorises for float (the
// float exp of common/fast_math.h has no library call; the files that use this loop are
// compiled with -fno-trapping-math, without which GCC keeps its compare-selects as branches).
//
// An Element is a class with
//   template <bool kActive, bool kResetNext, typename Row>
//   static void apply(const Row& row, int64_t H, int64_t j);   // SEQREC_ELEMENT
// (one unit j of one row, its row state as compile-time flags); the pass arguments `a` have
// B, H and, found by argument-dependent lookup, row_state(a, b) and row_of(a, b).
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>

#include "common/sequence_pass.h"

namespace seqrec::cpu {

// Cloned for AVX-512 and AVX2, picked at load time; the baseline clone is SSE2.
template <typename Element, bool kActive, bool kResetNext, typename Row>
__attribute__((target_clones("avx512f", "avx2", "default"))) void run_row(const Row row, int64_t H) {
  for (int64_t j = 0; j < H; ++j) Element::template apply<kActive, kResetNext>(row, H, j);
}

template <typename Element, typename Args>
void run_rows(const Args& a) {
  // about 16k elements per task: below that a thread costs more than it saves (measured by
  // bench/bench_grain.py: a second thread gives 1.1-1.5x from 17-26k elements on)
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, a.H));
  at::parallel_for(0, a.B, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const auto row = row_of(a, b);
      seq::with_row_flags(row_state(a, b), [&](auto active, auto reset_next) {
        run_row<Element, decltype(active)::value, decltype(reset_next)::value>(row, a.H);
      });
    }
  });
}

}  // namespace seqrec::cpu
