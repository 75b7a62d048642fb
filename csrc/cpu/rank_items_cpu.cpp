// CPU loops of the full-catalogue ranking op: rows in parallel; per row a vectorised count
// over the tile and a bounded heap that almost every score skips after one comparison with
// its worst entry.
#include "cpu/rank_items_cpu.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <vector>

namespace seqrec::cpu {
namespace {

// Heap order: the root is the entry that ranks last.
template <typename scalar_t>
struct Heap {
  scalar_t* s;
  int64_t* id;
  int64_t& size;
  int64_t k;

  bool after(int64_t a, int64_t b) const { return rank::ranks_before(s[b], id[b], s[a], id[a]); }

  void swap(int64_t a, int64_t b) {
    std::swap(s[a], s[b]);
    std::swap(id[a], id[b]);
  }

  void sift_up(int64_t i) {
    while (i > 0 && after(i, (i - 1) / 2)) {
      swap(i, (i - 1) / 2);
      i = (i - 1) / 2;
    }
  }

  void sift_down(int64_t i) {
    for (;;) {
      int64_t worst = i;
      for (const int64_t c : {2 * i + 1, 2 * i + 2})
        if (c < size && after(c, worst)) worst = c;
      if (worst == i) return;
      swap(i, worst);
      i = worst;
    }
  }

  // Item `item` with score v: kept if it ranks before the heap's last entry (or there is room).
  void offer(scalar_t v, int64_t item) {
    if (size < k) {
      s[size] = v;
      id[size] = item;
      sift_up(size++);
    } else if (rank::ranks_before(v, item, s[0], id[0])) {
      s[0] = v;
      id[0] = item;
      sift_down(0);
    }
  }
};

bool excluded(const int64_t* row, int64_t E, int64_t item) {
  for (int64_t e = 0; e < E; ++e)
    if (row[e] == item) return true;
  return false;
}

template <typename scalar_t>
void rank_rows(const RankTileArgs<scalar_t>& a, int64_t b0, int64_t b1) {
  for (int64_t b = b0; b < b1; ++b) {
    const scalar_t* s = a.scores + b * a.scores_stride;
    if (a.targets != nullptr)
      rank::count_row(s, a.tc, a.c0, a.target_scores[b], a.targets[b], a.greater[b], a.equal[b]);
    if (a.k == 0) continue;
    Heap<scalar_t> heap{a.heap_scores + b * a.k, a.heap_ids + b * a.k, a.heap_size[b], a.k};
    const int64_t* ex = a.exclude != nullptr ? a.exclude + b * a.E : nullptr;
    for (int64_t j = 0; j < a.tc; ++j) {
      const scalar_t v = s[j];
      // a full heap takes only scores above its last entry's: ids grow along the tiles, so an
      // equal score of a later item ranks after it
      if (!rank::rankable(v) || (heap.size == a.k && !(v > heap.s[0]))) continue;
      if (ex != nullptr && excluded(ex, a.E, a.c0 + j)) continue;
      heap.offer(v, a.c0 + j);
    }
  }
}

template <typename scalar_t>
void finish_rows(int64_t B, int64_t k, scalar_t* scores, int64_t* ids, const int64_t* size) {
  at::parallel_for(0, B, 64, [&](int64_t b0, int64_t b1) {
    std::vector<int64_t> order(k);
    std::vector<scalar_t> s(k);
    std::vector<int64_t> id(k);
    for (int64_t b = b0; b < b1; ++b) {
      scalar_t* row_s = scores + b * k;
      int64_t* row_id = ids + b * k;
      const int64_t n = size[b];
      std::iota(order.begin(), order.begin() + n, 0);
      std::sort(order.begin(), order.begin() + n, [&](int64_t x, int64_t y) {
        return rank::ranks_before(row_s[x], row_id[x], row_s[y], row_id[y]);
      });
      for (int64_t i = 0; i < n; ++i) {
        s[i] = row_s[order[i]];
        id[i] = row_id[order[i]];
      }
      for (int64_t i = 0; i < k; ++i) {
        row_s[i] = i < n ? s[i] : -std::numeric_limits<scalar_t>::infinity();
        row_id[i] = i < n ? id[i] : -1;
      }
    }
  });
}

template <typename scalar_t>
void run(const RankTileArgs<scalar_t>& a) {
  // a row's scan of a tile is thousands of elements: a few rows per task
  at::parallel_for(0, a.B, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, a.tc)),
                   [&](int64_t b0, int64_t b1) { rank_rows(a, b0, b1); });
}

}  // namespace

void rank_tile(const RankTileArgs<float>& a) { run(a); }
void rank_tile(const RankTileArgs<double>& a) { run(a); }

void finish_top_k(int64_t B, int64_t k, float* s, int64_t* ids, const int64_t* size) {
  finish_rows(B, k, s, ids, size);
}
void finish_top_k(int64_t B, int64_t k, double* s, int64_t* ids, const int64_t* size) {
  finish_rows(B, k, s, ids, size);
}

}  // namespace seqrec::cpu
