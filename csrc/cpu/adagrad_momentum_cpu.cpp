// CPU loop of the Adagrad-with-momentum update: rows in parallel, a row's values in one loop.
#include "cpu/adagrad_momentum_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>

namespace seqrec::cpu {
namespace {

template <typename scalar_t>
void run(const adagrad::RowsArgs<scalar_t>& a) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, a.D));
  at::parallel_for(0, a.U, grain, [&](int64_t k0, int64_t k1) {
    for (int64_t k = k0; k < k1; ++k) {
      for (int64_t d = 0; d < a.D; ++d) adagrad::update_element(a, k, d);
    }
  });
}

}  // namespace

void adagrad_momentum_rows(const adagrad::RowsArgs<float>& a) { run(a); }
void adagrad_momentum_rows(const adagrad::RowsArgs<double>& a) { run(a); }

}  // namespace seqrec::cpu
