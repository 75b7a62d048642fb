// CPU loops of the full-catalogue ranking op (csrc/rank_items_math.h): per row, the rank counts
// of its target and a bounded heap of its k best items, tile after tile.
#pragma once

#include <cstdint>

#include "rank_items_math.h"

namespace seqrec::cpu {

// One tile of scores (bias and ELU applied) for items c0 .. c0 + tc - 1, rows in parallel.
// The heaps (B, k) hold each row's best items so far, worst first ("min-heap"); heap_size (B,)
// their fill. exclude (B, E), -1 padded, may be null; so may targets (then no counts).
template <typename scalar_t>
struct RankTileArgs {
  int64_t B = 0, c0 = 0, tc = 0, k = 0, E = 0;
  const scalar_t* scores = nullptr;  // (B, tc) at stride scores_stride
  int64_t scores_stride = 0;
  const scalar_t* target_scores = nullptr;  // (B,)
  const int64_t* targets = nullptr;         // (B,)
  const int64_t* exclude = nullptr;         // (B, E)
  int64_t* greater = nullptr;               // (B,)
  int64_t* equal = nullptr;                 // (B,)
  scalar_t* heap_scores = nullptr;          // (B, k)
  int64_t* heap_ids = nullptr;              // (B, k)
  int64_t* heap_size = nullptr;             // (B,)
};

void rank_tile(const RankTileArgs<float>& args);
void rank_tile(const RankTileArgs<double>& args);

// Each row's heap sorted best first into top_scores / top_ids (B, k); unfilled slots get id -1
// and score -inf.
void finish_top_k(int64_t B, int64_t k, float* heap_scores, int64_t* heap_ids, const int64_t* heap_size);
void finish_top_k(int64_t B, int64_t k, double* heap_scores, int64_t* heap_ids, const int64_t* heap_size);

}  // namespace seqrec::cpu
