// The pieces every recurrent op's kernel passes share (the GRU's csrc/gru_pass.h, the LSTM's
// csrc/lstm_pass.h), for the CPU loops and the CUDA kernels alike: which steps of a row are
// real, whether its state restarts, rows of raw matrices, loads in the accumulation type, the
// stores and incoming gradients of a step's state, and a run-time pass as a compile-time one.
//
// A pass sees one time step t of a sequence of T steps over B rows. Row b's step is "active"
// when t < lengths[b] (all steps are active without lengths); a padded step leaves the state
// unchanged and outputs zeros. reset[t][b] zeroes row b's state before an active step t.
#pragma once

#include <cstdint>
#include <type_traits>
#include <utility>

#include "common/host_device.h"

namespace seqrec::seq {

struct RowState {
  bool active;      // step t of this row is a real step
  bool reset_next;  // the state after step t is zeroed before step t + 1
};

// reset (T, B) and lengths (B) may be null (absent).
SEQREC_HOST_DEVICE RowState row_state(int64_t t, int64_t T, int64_t B, const bool* reset,
                                      const int64_t* lengths, int64_t b) {
  const int64_t len = lengths ? lengths[b] : T;
  RowState s;
  s.active = t < len;
  s.reset_next = reset != nullptr && t + 1 < T && t + 1 < len && reset[(t + 1) * B + b];
  return s;
}

// Calls f(std::bool_constant<active>{}, std::bool_constant<reset_next>{}): a row's state as
// compile-time flags (a select on them inside a row loop stops GCC's vectoriser).
template <typename F>
SEQREC_HOST_DEVICE void with_row_flags(const RowState& s, F&& f) {
  if (s.active) {
    if (s.reset_next) {
      f(std::true_type{}, std::true_type{});
    } else {
      f(std::true_type{}, std::false_type{});
    }
  } else {
    if (s.reset_next) {
      f(std::false_type{}, std::true_type{});
    } else {
      f(std::false_type{}, std::false_type{});
    }
  }
}

// Element j of row b of a pass, as a CUDA thread runs it. Element: a class with
//   template <bool kActive, bool kResetNext, typename Row>
//   static void apply(const Row& row, int64_t H, int64_t j);
// the pass arguments `a` have H and, found by argument-dependent lookup, row_state(a, b) and
// row_of(a, b). (The CPU runs whole rows: cpu/row_loop.h.)
template <typename Element, typename Args>
SEQREC_HOST_DEVICE void run_element(const Args& a, int64_t b, int64_t j) {
  const auto row = row_of(a, b);
  with_row_flags(row_state(a, b), [&](auto active, auto reset_next) {
    Element::template apply<decltype(active)::value, decltype(reset_next)::value>(row, a.H, j);
  });
}

// Row b of a matrix whose rows are `stride` apart (null stays null).
template <typename T>
SEQREC_HOST_DEVICE T* row_of(T* p, int64_t b, int64_t stride) {
  return p ? p + b * stride : nullptr;
}

template <typename acc_t, typename scalar_t>
SEQREC_HOST_DEVICE acc_t ld(const scalar_t* p, int64_t k) {
  return static_cast<acc_t>(p[k]);
}

// Element j of a step's output (zero on a padded step) and of the state the next step starts
// from (zero where it restarts).
template <bool kActive, bool kResetNext, typename scalar_t, typename acc_t>
SEQREC_ELEMENT void store_output_and_state(scalar_t* __restrict__ out, scalar_t* __restrict__ next, int64_t j,
                                           acc_t value) {
  out[j] = static_cast<scalar_t>(kActive ? value : acc_t(0));
  next[j] = static_cast<scalar_t>(kResetNext ? acc_t(0) : value);
}

// The gradient arriving at element j of the state after step t: from the next step (unless
// the state restarted there) and, on a real step, from the output out[t].
template <bool kActive, bool kResetNext, typename acc_t, typename scalar_t>
SEQREC_ELEMENT acc_t incoming_grad(const scalar_t* __restrict__ d_next, const scalar_t* __restrict__ d_out,
                                   int64_t j) {
  acc_t d = kResetNext ? acc_t(0) : ld<acc_t>(d_next, j);
  if constexpr (kActive) d += ld<acc_t>(d_out, j);
  return d;
}

// Calls f(std::integral_constant<Pass, pass>{}), the run-time pass as a compile-time one, on the
// host (the CPU loops and the CUDA launchers pick their pass this way), for a Pass enum whose
// values are 0 .. kPasses - 1. False for a value outside the enum, which the caller reports.
template <typename Pass, typename F, int... kIndex>
bool dispatch_pass(Pass pass, F&& f, std::integer_sequence<int, kIndex...>) {
  const auto call_if = [&](auto p) { return pass == p.value && (f(p), true); };
  return (call_if(std::integral_constant<Pass, static_cast<Pass>(kIndex)>{}) || ...);
}
template <int kPasses, typename Pass, typename F>
bool dispatch_pass(Pass pass, F&& f) {
  return dispatch_pass(pass, f, std::make_integer_sequence<int, kPasses>{});
}

}  // namespace seqrec::seq
