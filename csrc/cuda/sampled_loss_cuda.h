// CUDA tile passes of the fused sampled ranking loss (csrc/sampled_loss_pass.h): statistics
// with one block per row (a fixed-order reduction: deterministic); gradients with one thread per
// (row, column).
#pragma once

#include <cuda_runtime_api.h>

#include "sampled_loss_pass.h"

namespace seqrec::cuda {

void launch_update_stats(const sampled_loss::TileArgs<float>& args, cudaStream_t stream);
void launch_update_stats(const sampled_loss::TileArgs<double>& args, cudaStream_t stream);
void launch_column_grads(const sampled_loss::TileArgs<float>& args, cudaStream_t stream);
void launch_column_grads(const sampled_loss::TileArgs<double>& args, cudaStream_t stream);
// out[b] = the loss of row b from its statistics (B, kStats)
void launch_row_losses(const float* stats, int64_t B, sampled_loss::Loss loss, float bpreg, float* out,
                       cudaStream_t stream);
void launch_row_losses(const double* stats, int64_t B, sampled_loss::Loss loss, double bpreg, double* out,
                       cudaStream_t stream);

}  // namespace seqrec::cuda
