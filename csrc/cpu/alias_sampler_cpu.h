// CPU kernels of the alias-table sampler (csrc/alias_sampler_math.h).
#pragma once

#include <cstdint>

namespace seqrec::cpu {

// Vose's method in O(N): the table of the N >= 1 weights w, written to prob (N) and alias (N).
// Checks the weights' values (finite, >= 0, not all zero).
void alias_build(const double* w, int64_t N, float* prob, int64_t* alias);

// out[i], i < n: items drawn from the table of n_buckets >= 1 buckets. Draws 2k, 2k+1 use the
// Philox block at counter (offset / 4, k) under key, as the CUDA kernel does. Returns whether
// an alias entry outside [0, n_buckets) was met (a table not made by alias_build).
bool alias_draw(const float* prob, const int64_t* alias, int64_t n_buckets, int64_t n, uint64_t key,
                uint64_t offset, int64_t* out);

}  // namespace seqrec::cpu
