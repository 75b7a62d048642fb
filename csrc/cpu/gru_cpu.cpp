// CPU gate passes of the GRU ops: rows in parallel, the hidden units of a row in one loop that
// the compiler vectorises for float (the float exp of common/fast_math.h has no library call;
// this file is compiled with -fno-trapping-math, without which GCC keeps its compare-selects
// as branches).
#include "cpu/gru_cpu.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>

namespace seqrec::cpu {
namespace {

// Cloned for AVX-512 and AVX2, picked at load time; the baseline clone is SSE2.
template <gru::Pass kPass, bool kActive, bool kResetNext, typename scalar_t>
__attribute__((target_clones("avx512f", "avx2", "default"))) void run_row(const gru::Row<scalar_t> row,
                                                                          int64_t H) {
  for (int64_t j = 0; j < H; ++j) gru::gate_pass_element<kPass, kActive, kResetNext>(row, H, j);
}

template <gru::Pass kPass, typename scalar_t>
void run_rows(const gru::PassArgs<scalar_t>& a, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    const gru::RowState s = gru::row_state(a, b);
    const gru::Row<scalar_t> row = gru::row_of(a, b);
    if (s.active) {
      s.reset_next ? run_row<kPass, true, true>(row, a.H) : run_row<kPass, true, false>(row, a.H);
    } else {
      s.reset_next ? run_row<kPass, false, true>(row, a.H) : run_row<kPass, false, false>(row, a.H);
    }
  }
}

template <gru::Pass kPass, typename scalar_t>
void run(const gru::PassArgs<scalar_t>& a) {
  // about 16k elements per task: below that a thread costs more than it saves (measured by
  // bench/bench_grain.py: a second thread gives 1.1-1.5x from 17-26k elements on)
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, a.H));
  at::parallel_for(0, a.B, grain, [&](int64_t b0, int64_t b1) { run_rows<kPass>(a, b0, b1); });
}

template <typename scalar_t>
void dispatch(gru::Pass pass, const gru::PassArgs<scalar_t>& a) {
  const bool known = gru::dispatch_pass(pass, [&](auto p) { run<decltype(p)::value>(a); });
  TORCH_CHECK(known, "unknown GRU gate pass ", static_cast<int>(pass));
}

}  // namespace

void run_gate_pass(gru::Pass pass, const gru::PassArgs<float>& a) { dispatch(pass, a); }
void run_gate_pass(gru::Pass pass, const gru::PassArgs<double>& a) { dispatch(pass, a); }
void run_gate_pass(gru::Pass pass, const gru::PassArgs<c10::Half>& a) { dispatch(pass, a); }
void run_gate_pass(gru::Pass pass, const gru::PassArgs<c10::BFloat16>& a) { dispatch(pass, a); }

}  // namespace seqrec::cpu
