// Per-draw math of the alias-table sampler, shared by the CPU and CUDA kernels.
//
// A table of N buckets (Walker 1977; Vose 1991): bucket b keeps its own item with probability
// prob[b] and otherwise gives alias[b]. One draw takes one uniform 64-bit word r:
//   r * N = bucket * 2^64 + rest        (a 64 x 64 -> 128-bit product)
// bucket = floor(r * N / 2^64) is uniform on [0, N) (bias <= N / 2^64), and rest / 2^64 is a
// uniform fraction independent of the bucket, used as the coin. Only prob[bucket] and
// alias[bucket] are read, with bucket < N by construction, so a draw never reads outside the
// table whatever its contents.
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace seqrec {

SEQREC_HOST_DEVICE void mul_64x64_128(uint64_t a, uint64_t b, uint64_t& hi, uint64_t& lo) {
#if defined(__CUDA_ARCH__)
  hi = __umul64hi(a, b);
  lo = a * b;
#else
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  hi = static_cast<uint64_t>(p >> 64);
  lo = static_cast<uint64_t>(p);
#endif
}

// The item drawn by the 64 random bits r from a table of n_buckets >= 1 buckets.
SEQREC_HOST_DEVICE int64_t alias_pick(uint64_t r, int64_t n_buckets, const float* prob,
                                      const int64_t* alias) {
  uint64_t bucket, rest;
  mul_64x64_128(r, static_cast<uint64_t>(n_buckets), bucket, rest);
  // 53 high bits of the remainder as a double in [0, 1) (a signed conversion: one instruction)
  const double coin = static_cast<double>(static_cast<int64_t>(rest >> 11)) * 0x1.0p-53;
  const int64_t b = static_cast<int64_t>(bucket);
  // Both loads, then a select by mask: the coin is a coin flip, so a branch on it (which
  // compilers emit for `?:` here) mispredicts half the time.
  const int64_t other = alias[b];
  const int64_t keep_mask = -static_cast<int64_t>(coin < static_cast<double>(prob[b]));
  return other ^ ((b ^ other) & keep_mask);
}

}  // namespace seqrec
