// CPU tile passes of the fused sampled ranking loss (csrc/sampled_loss_pass.h).
#pragma once

#include "sampled_loss_pass.h"

namespace seqrec::cpu {

void update_stats(const sampled_loss::TileArgs<float>& args);
void update_stats(const sampled_loss::TileArgs<double>& args);
void column_grads(const sampled_loss::TileArgs<float>& args);
void column_grads(const sampled_loss::TileArgs<double>& args);
// The GRU4Rec step's loss (one tile of all M columns, c0 = 0, no col_items, row_scale set,
// d_scores == scores): fills stats, writes dL/d(scores) over the scores, returns the sum of
// the rows' losses (each row's upstream gradient is row_scale; the sum is unscaled).
float step_loss_and_grads(const sampled_loss::TileArgs<float>& args);
double step_loss_and_grads(const sampled_loss::TileArgs<double>& args);
// out[b] = the loss of row b from its statistics (B, kStats)
void row_losses(const float* stats, int64_t B, sampled_loss::Loss loss, float bpreg, float* out);
void row_losses(const double* stats, int64_t B, sampled_loss::Loss loss, double bpreg, double* out);

}  // namespace seqrec::cpu
