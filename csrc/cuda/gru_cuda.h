// CUDA gate passes of the GRU ops (csrc/gru_pass.h), one launcher per data type: a
// kernel with one thread per (row, hidden unit), on `stream`.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include "gru_pass.h"

namespace seqrec::cuda {

void launch_gate_pass(gru::Pass pass, const gru::PassArgs<float>& args, cudaStream_t stream);
void launch_gate_pass(gru::Pass pass, const gru::PassArgs<double>& args, cudaStream_t stream);
void launch_gate_pass(gru::Pass pass, const gru::PassArgs<__half>& args, cudaStream_t stream);
void launch_gate_pass(gru::Pass pass, const gru::PassArgs<__nv_bfloat16>& args, cudaStream_t stream);

}  // namespace seqrec::cuda
