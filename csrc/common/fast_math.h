// Transcendentals for the gate passes, shared by the CPU and CUDA kernels.
//
// Device: the CUDA math library. Host, float: an exp written so that a loop calling it
// vectorises (no library call, no branch): Cody-Waite range reduction x = k ln2 + r,
// |r| <= ln2 / 2, the
// Taylor polynomial of e^r to degree 7 (truncation error r^8 / 8! < 6e-9, below float's
// 6e-8 rounding), and 2^k put into the exponent bits. Host, double: the C library, so that
// float64 results (gradcheck) are exact to double rounding.
//
// All are SEQREC_ELEMENT (always inlined on the host): a kernel element with several of them
// (the LSTM cell has five) is past what GCC inlines by itself, and one call left inside a CPU
// row loop stops its vectorisation.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/host_device.h"

namespace seqrec {

SEQREC_ELEMENT float exp_approx(float x) {
#if defined(__CUDA_ARCH__)
  return expf(x);
#else
  // NaN in, NaN out (the range reduction below would make a finite number of it, and a NaN
  // score would give a finite loss: a diverged model would train on unnoticed); the
  // reduction runs on 0 instead (a NaN converted to an integer is undefined behaviour)
  const float in = x;
  const bool nan = x != x;
  x = nan ? 0.0f : x;
  // e^88 < FLT_MAX and e^-87 > FLT_MIN: 2^k stays a normal float.
  x = x < -87.0f ? -87.0f : x;  // (a compare-select, unlike fmin/fmax, vectorises)
  x = x > 88.0f ? 88.0f : x;
  // k = round(x / ln2) by adding and subtracting 1.5 * 2^23 (no floor: SSE2 has no vector
  // rounding instruction, and a library call would stop the vectorisation)
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - k * 0.693359375f) + k * 2.12194440e-4f;  // ln2 = 0.693359375 - 2.12e-4
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return nan ? in : p * scale;
#endif
}

SEQREC_ELEMENT double exp_approx(double x) { return ::exp(x); }

// Natural log of a positive normal float, vectorisable on the host: x = m 2^e with m in
// [sqrt(1/2), sqrt(2)), log m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172, by its series
// to s^9 (truncation < 4e-10 relative).
SEQREC_ELEMENT float log_approx(float x) {
#if defined(__CUDA_ARCH__)
  return logf(x);
#else
  const bool nan = x != x;  // NaN in, NaN out, as exp_approx
  int32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  int32_t e = ((bits >> 23) & 0xff) - 127;
  const int32_t m_bits = (bits & 0x007fffff) | 0x3f800000;
  float m;
  std::memcpy(&m, &m_bits, sizeof(m));
  const bool high = m > 1.41421356f;
  m = high ? 0.5f * m : m;
  e = high ? e + 1 : e;
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  float p = 1.0f / 9.0f;
  p = p * s2 + 1.0f / 7.0f;
  p = p * s2 + 1.0f / 5.0f;
  p = p * s2 + 1.0f / 3.0f;
  p = p * s2 + 1.0f;
  return nan ? x : 2.0f * s * p + static_cast<float>(e) * 0.693147180559945309f;
#endif
}

SEQREC_ELEMENT double log_approx(double x) { return ::log(x); }

template <typename acc_t>
SEQREC_ELEMENT acc_t sigmoid(acc_t x) {
  return acc_t(1) / (acc_t(1) + exp_approx(-x));
}

SEQREC_ELEMENT float tanh_approx(float x) {
#if defined(__CUDA_ARCH__)
  return tanhf(x);
#else
  // tanh|x| = (1 - e^-2|x|) / (1 + e^-2|x|): no overflow for any x
  const float t = exp_approx(-2.0f * std::fabs(x));
  const float y = (1.0f - t) / (1.0f + t);
  return std::copysign(y, x);
#endif
}

SEQREC_ELEMENT double tanh_approx(double x) { return ::tanh(x); }

}  // namespace seqrec
