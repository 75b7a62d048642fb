// CPU tile passes of the fused sampled ranking loss (csrc/sampled_loss_pass.h).
#pragma once

#include "sampled_loss_pass.h"

namespace seqrec::cpu {

void update_stats(const sampled_loss::TileArgs<float>& args);
void update_stats(const sampled_loss::TileArgs<double>& args);
void column_grads(const sampled_loss::TileArgs<float>& args);
void column_grads(const sampled_loss::TileArgs<double>& args);
// out[b] = the loss of row b from its statistics (B, kStats)
void row_losses(const float* stats, int64_t B, sampled_loss::Loss loss, float bpreg, float* out);
void row_losses(const double* stats, int64_t B, sampled_loss::Loss loss, double bpreg, double* out);

}  // namespace seqrec::cpu
