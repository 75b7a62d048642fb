// Philox4x32-10: a counter-based random number generator (Salmon, Moraes, Dror, Shaw,
// "Parallel random numbers: as easy as 1, 2, 3", SC 2011). The same 128-bit counter and 64-bit
// key give the same 128 random bits on the host and on the device, independent of how the work
// is split between threads. This is the algorithm curand's Philox4_32_10 implements.
#pragma once

#include <cstdint>

#include "common/host_device.h"

namespace seqrec {

struct Philox4x32 {
  uint32_t v[4];
};

namespace philox_detail {
constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kWeyl1 = 0xBB67AE85u;  // sqrt(3) - 1

SEQREC_HOST_DEVICE void mul_hi_lo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

SEQREC_HOST_DEVICE void round(uint32_t c[4], uint32_t k0, uint32_t k1) {
  uint32_t hi0, lo0, hi1, lo1;
  mul_hi_lo(kMul0, c[0], hi0, lo0);
  mul_hi_lo(kMul1, c[2], hi1, lo1);
  const uint32_t n0 = hi1 ^ c[1] ^ k0;
  const uint32_t n2 = hi0 ^ c[3] ^ k1;
  c[0] = n0;
  c[1] = lo1;
  c[2] = n2;
  c[3] = lo0;
}
}  // namespace philox_detail

// 128 random bits for counter (ctr_lo, ctr_hi) under key.
SEQREC_HOST_DEVICE Philox4x32 philox4x32_10(uint64_t ctr_lo, uint64_t ctr_hi, uint64_t key) {
  uint32_t c[4] = {static_cast<uint32_t>(ctr_lo), static_cast<uint32_t>(ctr_lo >> 32),
                   static_cast<uint32_t>(ctr_hi), static_cast<uint32_t>(ctr_hi >> 32)};
  uint32_t k0 = static_cast<uint32_t>(key);
  uint32_t k1 = static_cast<uint32_t>(key >> 32);
  SEQREC_UNROLL
  for (int r = 0; r < 9; ++r) {
    philox_detail::round(c, k0, k1);
    k0 += philox_detail::kWeyl0;
    k1 += philox_detail::kWeyl1;
  }
  philox_detail::round(c, k0, k1);
  return Philox4x32{{c[0], c[1], c[2], c[3]}};
}

// The two 64-bit halves of a Philox block.
SEQREC_HOST_DEVICE uint64_t philox_lo64(const Philox4x32& b) {
  return static_cast<uint64_t>(b.v[0]) | (static_cast<uint64_t>(b.v[1]) << 32);
}
SEQREC_HOST_DEVICE uint64_t philox_hi64(const Philox4x32& b) {
  return static_cast<uint64_t>(b.v[2]) | (static_cast<uint64_t>(b.v[3]) << 32);
}

}  // namespace seqrec
