// Per-element rules of the full-catalogue ranking op (csrc/rank_items.cpp), shared by its CPU
// loops and its other paths:
//   * the rank counts of a row's target t against every other item's score s:
//     greater += (s above t), equal += (s == t); the target's own column is skipped (the
//     standard rank is 1 + greater, the conservative one 1 + greater + equal). A NaN ranks
//     last: a NaN score is above no target, and every other item is above a NaN target (so
//     a model that scores NaN never gets credit, in any tie mode);
//   * the order of the top-k: a higher score first, and among equal scores the lower item id.
//     A NaN or -inf score never enters the top-k.
#pragma once

#include <cstdint>
#include <limits>

#include "common/host_device.h"

namespace seqrec::rank {

// Whether (s, id) goes before (s_other, id_other) in the top-k.
template <typename acc_t>
SEQREC_HOST_DEVICE bool ranks_before(acc_t s, int64_t id, acc_t s_other, int64_t id_other) {
  return s > s_other || (s == s_other && id < id_other);
}

// Whether a score may enter the top-k at all (not NaN, not -inf).
template <typename acc_t>
SEQREC_HOST_DEVICE bool rankable(acc_t s) {
  return s > -std::numeric_limits<acc_t>::infinity() && s == s;
}

// Whether an item of score s ranks above the target of score t.
template <typename scalar_t>
SEQREC_HOST_DEVICE bool above(scalar_t s, scalar_t t) {
  return s > t || t != t;
}

// One score's share of the counts against the target's score t.
template <typename scalar_t>
SEQREC_HOST_DEVICE void count_score(scalar_t s, scalar_t t, int64_t& greater, int64_t& equal) {
  greater += above(s, t);
  equal += s == t;
}

// Row b's counts for the scores s[0, tc) of items c0 .. c0 + tc - 1 (one CPU thread; a CUDA
// block shares a row's columns out among its threads instead).
template <typename scalar_t>
SEQREC_HOST_DEVICE void count_row(const scalar_t* s, int64_t tc, int64_t c0, scalar_t t, int64_t target,
                                  int64_t& greater, int64_t& equal) {
  int64_t g = 0, e = 0;
  if (t != t) {
    g = tc;  // every item is above a NaN target (the loop's rule, without the loop)
  } else {
    for (int64_t j = 0; j < tc; ++j) count_score(s[j], t, g, e);
  }
  // the target's own column, when in this tile, is not another item
  if (target >= c0 && target < c0 + tc) {
    const scalar_t own = s[target - c0];
    g -= above(own, t);
    e -= own == t;
  }
  greater += g;
  equal += e;
}

}  // namespace seqrec::rank
