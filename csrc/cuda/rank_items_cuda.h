// CUDA kernel of the full-catalogue ranking op's rank counts (csrc/rank_items_math.h): one
// block per row of a score tile. (The op's top-k on a GPU is ATen's stable sort, in
// csrc/rank_items.cpp.)
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "rank_items_math.h"

namespace seqrec::cuda {

// greater[b], equal[b] += the counts of row b of scores (B, tc) at row stride `stride`, items
// c0 .. c0 + tc - 1, against target_scores[b], the column of targets[b] skipped.
void launch_rank_counts(const float* scores, int64_t stride, int64_t B, int64_t c0, int64_t tc,
                        const float* target_scores, const int64_t* targets, int64_t* greater, int64_t* equal,
                        cudaStream_t stream);
void launch_rank_counts(const double* scores, int64_t stride, int64_t B, int64_t c0, int64_t tc,
                        const double* target_scores, const int64_t* targets, int64_t* greater, int64_t* equal,
                        cudaStream_t stream);

}  // namespace seqrec::cuda
