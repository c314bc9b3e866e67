// normkit/detail/engine.hpp - the one slice engine: reduce, decide, map.
//
// Every kernel runs here: the forward functors and the backward kernels
// alike (the protocol is documented in normkit/ext.hpp and docs/extending.md).
// A kernel supplies a statistic (what each slice of its K inputs reduces
// to), finalize (the slice's decision) and a map kind (ext/map.hpp: what one
// lane of output is); the engine names none of them, and walks the slices
// of the inputs in tiles:
//  * contiguous slices (inner == 1): lanes of a batch hold consecutive elements
//    of one slice and fold into one total; the n % width tail runs the same
//    code with scalar lanes. Short slices go in groups (reduce and decide all,
//    then map all; kernels with finalize_lanes decide several at once, lanes
//    across slices), and on inputs larger than a cache each map pass
//    prefetches the slice read next;
//  * strided slices (inner > 1): each lane is a different slice, so loads stay
//    contiguous and nothing is folded. chunk_groups batches of neighbouring
//    slices form one Wide lane, so each pass reads a chunk row by row (and
//    prefetches the rows a few ahead); the end of the inner dimension runs
//    batch by batch, then with scalar lanes.
// Each tile is reduced block by block (blocks stay in L1, so statistics that
// read a block twice cost no extra memory traffic), decided, then mapped with
// one pass that writes the output (non-temporal stores for outputs larger
// than a cache); in-place calls read each tile completely before writing it.
// find_nan runs the same reduction read-only, for NanPolicy::raise.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>
#include <unsupported/Eigen/CXX11/Tensor>

#include "../ext/map.hpp"
#include "../policy.hpp"
#include "../statistics/extrema.hpp"
#include "lanes.hpp"
#include "slice_map.hpp"
#include "slice_view.hpp"

namespace normkit::detail {

// What a kernel declares, with the defaults of a plain forward normalization.
template <class K, class = void>
struct map_of {
  using type = ext::AffineMap;
};
template <class K>
struct map_of<K, std::void_t<typename K::map>> {
  using type = typename K::map;
};

template <class K, class = void>
struct inputs_of : std::integral_constant<std::size_t, 1> {};
template <class K>
struct inputs_of<K, std::enable_if_t<(K::inputs > 0)>> : std::integral_constant<std::size_t, K::inputs> {};

template <class F, class = void>
struct accepts_weights : std::false_type {};
template <class F>
struct accepts_weights<F, std::enable_if_t<F::accepts_weights>> : std::true_type {};

template <class M, class = void>
struct renormalizes : std::false_type {};
template <class M>
struct renormalizes<M, std::enable_if_t<M::renormalizes>> : std::true_type {};

template <class M, class = void>
struct position_sums_of : std::integral_constant<std::size_t, 0> {};
template <class M>
struct position_sums_of<M, std::enable_if_t<(M::position_sums > 0)>>
    : std::integral_constant<std::size_t, M::position_sums> {};

// Kernels whose statistic carries runtime parameters build it; others
// default-construct it.
template <class K, class = void>
struct has_make_statistic : std::false_type {};
template <class K>
struct has_make_statistic<K, std::void_t<decltype(std::declval<const K&>().make_statistic())>> : std::true_type {};

template <class K>
typename K::statistic statistic_of(const K& kernel) {
  if constexpr (has_make_statistic<K>::value)
    return kernel.make_statistic();
  else
    return typename K::statistic{};
}

// Gradient kernels write 0 where the policy skipped a NaN input; forward ones
// keep the NaN.
// Kernels whose finalize also takes the slice's index (o * inner + i, the
// order of a tensor shaped like x with the normalized axes of size 1): they
// read or write per-slice data of their own (saved statistics).
template <class K, class = void>
struct finalizes_per_slice : std::false_type {};
template <class K>
struct finalizes_per_slice<K, std::enable_if_t<K::finalize_per_slice>> : std::true_type {};

// Statistics that leave out, on batch lanes, a field a few slices need, and
// flag those slices for a second pass that computes it (Moments: min and max).
template <class S, class T, class = void>
struct has_needs_exact : std::false_type {};
template <class S, class T>
struct has_needs_exact<S, T,
                       std::void_t<decltype(S::template needs_exact<T>(
                           std::declval<const typename S::template Total<double>&>()))>> : std::true_type {};

// Kernels that decide several slices at once, lanes across slices
// (finalize_lanes, for the common case; ext::SliceMapLanes).
template <class K, class Total, class = void>
struct decides_lanes : std::false_type {};
template <class K, class Total>
struct decides_lanes<K, Total,
                     std::void_t<decltype(std::declval<const K&>().template finalize_lanes<Batch<double>>(
                         std::declval<const Total*>()))>> : std::true_type {};

// Statistics whose needs_exact / needs_rescue also test width_of<D> totals
// at once, and maps that lower width_of<D> decisions at once.
template <class S, class T, class = void>
struct has_rescue_lanes : std::false_type {};
template <class S, class T>
struct has_rescue_lanes<S, T,
                        std::void_t<decltype(S::template needs_rescue_lanes<T, Batch<double>>(
                            std::declval<const typename S::template Total<double>*>()))>> : std::true_type {};
template <class S, class T, class = void>
struct has_exact_lanes : std::false_type {};
template <class S, class T>
struct has_exact_lanes<S, T,
                       std::void_t<decltype(S::template needs_exact_lanes<T, Batch<double>>(
                           std::declval<const typename S::template Total<double>*>()))>> : std::true_type {};
template <class M, class T, class = void>
struct has_lower_lanes : std::false_type {};
template <class M, class T>
struct has_lower_lanes<M, T,
                       std::void_t<decltype(M::template lower_lanes<T>(
                           std::declval<const SliceMapLanes<Batch<double>>&>(),
                           std::declval<typename lane_traits<Batch<double>>::mask&>(),
                           std::declval<ext::Params<T, M::fields>*>()))>>
    : std::true_type {};

template <class K, class = void>
struct zeroes_skipped : std::false_type {};
template <class K>
struct zeroes_skipped<K, std::enable_if_t<K::zeroes_skipped>> : std::true_type {};

// Lane steps per accumulator and reduction block. An accumulator sums at
// most 32 values in the element type before the block is merged in double: a
// float running sum of 32 equal values is off by 3e-7 (of 256, by 2.4e-6).
// Statistics with several accumulators per quantity (stats::ways) take that
// many times longer blocks, which still stay well within L1 for the second
// read of two-pass statistics.
inline constexpr Index block_steps = 32;

// What the map does with NaNs after computing y (from the NanPolicy).
enum class NanOut {
  none,   // propagate / raise: arithmetic already carries NaNs
  keep,   // ignore: a NaN input stays NaN even where the slice is filled
  zero,   // zero: as keep, then every NaN output becomes 0
  clear,  // gradients under ignore / zero: 0 where the input is NaN
};

// Optional per-position weights along the slice: y = map(x) * gamma + beta.
template <class T>
struct Weights {
  const T* gamma = nullptr;
  const T* beta = nullptr;
};

// The inputs of one call: K operands of the same geometry (element (o, k, i)
// of operand q at data[q][o * outer_stride + k * step + i]).
template <class T, std::size_t K>
struct Inputs {
  std::array<const T*, K> data;
  Index outer, n, inner, outer_stride, step;

  bool contiguous() const { return inner == 1 && step == 1; }
};

template <class T>
Inputs<T, 1> inputs_from(const SliceView<const T>& v) {
  return {{v.data}, v.outer, v.n, v.inner, v.outer_stride, v.step};
}

// Lanes to fetch into cache while a run is processed: at step j, the lane at
// offset first + min(j, last) * stride of every operand, stride being the
// run's own. Clamping rather than testing j, and fetching the run's own start
// when there is nothing ahead, keeps branches out of the hot loops (a test on
// j, or on a null first, cost a fifth to a half of the gain on strided chunks).
struct Ahead {
  Index first;
  Index last;

  static Ahead nothing(Index run) { return {run, 0}; }

  template <class V, class T, std::size_t K>
  void fetch(const std::array<const T*, K>& data, Index j, Index stride) const {
    for (std::size_t q = 0; q < K; ++q) prefetch_lane<V>(data[q] + first + std::min(j, last) * stride);
  }
};

// Per-slice parameters in lanes: field f of `width_of<V>` slices, and where
// the slice is a constant fill.
template <class V, std::size_t F>
struct LaneParams {
  std::array<V, F> p;
  typename lane_traits<V>::mask fill;
  V fill_value;
};

// Packs the parameters of `width_of<V>` consecutive slices into lanes.
template <class V, class T, std::size_t F>
LaneParams<V, F> pack(const ext::Params<T, F>* p) {
  if constexpr (is_scalar_lane<V>) {
    return {[&] {
              std::array<V, F> a;
              for (std::size_t f = 0; f < F; ++f) a[f] = p->p[f];
              return a;
            }(),
            p->fill, p->fill_value};
  } else {
    constexpr std::size_t W = width_of<V>;
    alignas(64) T field[F + 2][W];
    for (std::size_t l = 0; l < W; ++l) {
      for (std::size_t f = 0; f < F; ++f) field[f][l] = p[l].p[f];
      field[F][l] = p[l].fill ? T(1) : T(0), field[F + 1][l] = p[l].fill_value;
    }
    LaneParams<V, F> out;
    for (std::size_t f = 0; f < F; ++f) out.p[f] = lane_load<V>(field[f]);
    out.fill = lane_load<V>(field[F]) != V(0);
    out.fill_value = lane_load<V>(field[F + 1]);
    return out;
  }
}

// Every lane of V gets the same slice's parameters.
template <class V, class T, std::size_t F>
LaneParams<V, F> broadcast(const ext::Params<T, F>& p) {
  LaneParams<V, F> out;
  for (std::size_t f = 0; f < F; ++f) out.p[f] = V(p.p[f]);
  out.fill = V(p.fill ? T(1) : T(0)) != V(0);
  out.fill_value = V(p.fill_value);
  return out;
}

template <class Kernel, class T, bool SkipNan, NanOut Out, bool HasGamma, bool HasBeta, bool Sums = false>
struct SliceEngine {
  using Stat = typename Kernel::statistic;
  template <class A>
  using Total = typename Stat::template Total<A>;
  using Map = typename map_of<Kernel>::type;
  static constexpr std::size_t K = inputs_of<Kernel>::value;
  static constexpr std::size_t F = Map::fields;
  static constexpr std::size_t P = Sums ? position_sums_of<Map>::value : 0;  // wanted per-position sums
  static constexpr bool Renormalizes = renormalizes<Map>::value;
  using Params = ext::Params<T, F>;
  template <class V>
  using Lanes = LaneParams<V, F>;
  using B = Batch<T>;
  static constexpr Index W = static_cast<Index>(B::size);

  const Kernel& kernel;
  Stat stat;
  Inputs<T, K> in;
  SliceView<T> out;
  Weights<T> weights;
  bool stream = false;  // write y with non-temporal stores where aligned

  // Whether the batch stores starting at y, `step` elements apart, are all
  // aligned for non-temporal stores.
  bool streams(const T* y, Index step) const {
    constexpr auto size = sizeof(B);
    return stream && reinterpret_cast<std::uintptr_t>(y) % size == 0 && (step * Index(sizeof(T))) % Index(size) == 0;
  }

  // What a statistic reads a block through: load(j), the lane of operand 0
  // at step j of the block, and, with Fetch, the lanes `ahead` of it (step
  // b + j of the run that ahead follows); load.again(j), the same lane read a
  // second time from cache by two-pass statistics, which has nothing to
  // fetch; load.template at<q>(j), operand q's lane; load.gamma(j), the
  // weight at the lane's position (1 without gamma). exact: the pass is the
  // second one over a slice the statistic's needs_exact flagged.
  template <class V, bool Fetch, bool Exact = false>
  struct BlockLoad {
    static constexpr bool exact = Exact;
    const std::array<const T*, K>* data;
    Index off;
    Index stride;
    Ahead ahead;
    Index b;
    const T* gamma_at;  // gamma at the block's first position, or null
    Index gamma_stride;  // 0: broadcast (the lanes are different slices)

    V operator()(Index j) const {
      if constexpr (Fetch) ahead.fetch<V>(*data, b + j, stride);
      return again(j);
    }
    V again(Index j) const { return lane_load<V>((*data)[0] + off + j * stride); }
    template <std::size_t q>
    V at(Index j) const {
      return lane_load<V>((*data)[q] + off + j * stride);
    }
    V gamma(Index j) const {
      if constexpr (HasGamma) {
        if (gamma_stride == 0) return V(scalar_of<V>(gamma_at[j]));
        return lane_load<V>(gamma_at + j * gamma_stride);
      } else {
        (void)j;
        return V(1);
      }
    }
  };

  const T* gamma_from(Index position) const { return HasGamma ? weights.gamma + position : nullptr; }

  // Reduces `count` lane steps from offset `off`, `stride` elements apart,
  // into totals[0] (Fold: the lanes are one slice) or totals[lane]. Strided
  // lanes fetch `ahead` (same steps and stride) meanwhile; contiguous slices
  // are fetched by the map pass before them. position/gamma_stride: the
  // first step's position along the slice, and positions per step (0: every
  // lane at the same one).
  template <class V, bool Fold, bool Exact = false>
  void accumulate(Index off, Index count, Index stride, Total<double>* totals, Ahead ahead, Index position,
                  Index gamma_stride) const {
    constexpr Index block = block_steps * stats::ways<V>;  // each accumulator takes block_steps of them
    for (Index b = 0; b < count; b += block) {
      const Index step_position = position + b * (gamma_stride == 0 ? 1 : gamma_stride);
      const auto part = stat.template reduce<SkipNan, Fold, V>(
          BlockLoad<V, !Fold, Exact>{&in.data, off + b * stride, stride, ahead, b, gamma_from(step_position),
                                     gamma_stride},
          std::min(block, count - b));
      if constexpr (is_scalar_lane<V>) {
        totals[0].add(part);
      } else if constexpr (Fold) {
        std::array<T, Stat::fields> lane;  // every lane holds the block's partial
        for (std::size_t f = 0; f < Stat::fields; ++f) lane[f] = part[f].get(0);
        totals[0].add(lane);
      } else {
        std::array<std::array<T, width_of<V>>, Stat::fields> lanes;
        for (std::size_t f = 0; f < Stat::fields; ++f) lanes[f] = lanes_of(part[f]);
        for (std::size_t l = 0; l < width_of<V>; ++l) {
          std::array<T, Stat::fields> lane;
          for (std::size_t f = 0; f < Stat::fields; ++f) lane[f] = lanes[f][l];
          totals[l].add(lane);
        }
      }
    }
  }

  // The slice's map parameters; slices whose total the statistic distrusts
  // (overflow, underflow) are reduced again in long double, out of line so
  // that the rare pass does not weigh on the inlined common one.
  // Checked: the caller has already made sure no second pass is needed.
  template <bool Checked = false>
  Params decide(const Total<double>& total, Index off, Index stride) const {
    if constexpr (has_needs_exact<Stat, T>::value && !Checked)
      if (Stat::template needs_exact<T>(total)) return decide_exact(off, stride);
    if (!Stat::template needs_rescue<T>(total)) return Map::template lower<T>(finalize(total, off));
    return rescue(off, stride);
  }

  // Decides `count` slices from their totals, slice k at offset first + k *
  // spacing. Kernels with finalize_lanes decide them width_of<Batch<double>>
  // at a time, with the statistic's tests and the lowering in lanes too: one
  // slice at a time, their compares, branches and divisions weighed on short
  // rows (docs/measurements/2026-12-02-decide-in-lanes.md). The lanes they
  // are unsure of, and slices the statistic flags for a second pass or a
  // rescue, take decide. Checked: as decide's.
  template <Index Most, bool Checked = false>
  void decide_many(const Total<double>* totals, Index count, Index first, Index spacing, Index stride,
                   Params* params) const {
    count = std::min(count, Most);  // the caller's arrays hold Most: a bound g++ sees
    Index lanes_end = 0;  // slices [0, lanes_end) are decided in lanes
    if constexpr (decides_lanes<Kernel, Total<double>>::value && !finalizes_per_slice<Kernel>::value) {
      using D = Batch<double>;
      constexpr std::size_t L = width_of<D>;
      // Whether the statistic tests its totals in lanes (else each lane is
      // tested alone), and whether the map lowers in lanes.
      constexpr bool tested = has_rescue_lanes<Stat, T>::value &&
                              (Checked || !has_needs_exact<Stat, T>::value || has_exact_lanes<Stat, T>::value);
      constexpr bool lowered = has_lower_lanes<Map, T>::value;
      std::array<SliceMap<double>, L> maps;
      std::array<bool, L> unsure;
      lanes_end = count - count % Index(L);
      for (Index k = 0; k < lanes_end; k += Index(L)) {
        const Total<double>* t = totals + k;
        SliceMapLanes<D> m = kernel.template finalize_lanes<D>(t);
        if constexpr (tested) {
          m.unsure = m.unsure | Stat::template needs_rescue_lanes<T, D>(t);
          if constexpr (has_needs_exact<Stat, T>::value && !Checked)
            m.unsure = m.unsure | Stat::template needs_exact_lanes<T, D>(t);
        }
        if constexpr (lowered) {
          Map::template lower_lanes<T>(m, m.unsure, params + k);
          if (tested && xsimd::none(m.unsure)) continue;
        }
        m.split(maps, unsure);
        for (std::size_t l = 0; l < L; ++l) {
          Params& to = params[k + Index(l)];
          if (unsure[l] || (!tested && flagged<Checked>(t[l])))
            set(to, decide<Checked>(t[l], first + (k + Index(l)) * spacing, stride));
          else if constexpr (!lowered)
            set(to, Map::template lower<T>(maps[l]));
        }
      }
    }
    for (Index k = lanes_end; k < count; ++k) set(params[k], decide<Checked>(totals[k], first + k * spacing, stride));
  }

  // Whether decide would reduce the slice again (needs_exact, unless
  // Checked) or rescue it.
  template <bool Checked>
  static bool flagged(const Total<double>& total) {
    if constexpr (has_needs_exact<Stat, T>::value && !Checked)
      if (Stat::template needs_exact<T>(total)) return true;
    return Stat::template needs_rescue<T>(total);
  }

  // The second pass of a slice needs_exact flagged: its statistic computes
  // every field (contiguous slices in batches, strided ones a lane at a time).
  [[gnu::noinline, gnu::cold]] Params decide_exact(Index off, Index stride) const {
    Total<double> total;
    if (stride == 1) {
      const Index body = in.n / W;
      accumulate<B, true, true>(off, body, W, &total, Ahead::nothing(off), 0, W);
      accumulate<T, true, true>(off + body * W, in.n - body * W, 1, &total, Ahead::nothing(off), body * W, 1);
    } else {
      accumulate<T, true, true>(off, in.n, stride, &total, Ahead::nothing(off), 0, 1);
    }
    if (!Stat::template needs_rescue<T>(total)) return Map::template lower<T>(finalize(total, off));
    return rescue(off, stride);
  }

  template <class Tot>
  auto finalize(const Tot& total, Index off) const {
    if constexpr (finalizes_per_slice<Kernel>::value) {
      const Index o = in.outer > 1 ? off / in.outer_stride : 0;
      return kernel.finalize(total, o * in.inner + (off - o * in.outer_stride));
    } else {
      (void)off;
      return kernel.finalize(total);
    }
  }

  // Stores a decision field by field: copied whole, g++ 12 assembles
  // {fill, fill_value} in memory and reloads it as one word, a
  // store-forwarding stall per slice (docs/measurements/2026-12-01-backward-speed.md).
  static void set(Params& to, const Params& from) {
    to.p = from.p;
    to.fill = from.fill;
    to.fill_value = from.fill_value;
  }

  [[gnu::noinline, gnu::cold]] Params rescue(Index off, Index stride) const {
    Total<long double> wide;
    wide.add(stat.template reduce<SkipNan, false, long double>(
        BlockLoad<long double, false>{&in.data, off, stride, Ahead::nothing(off), 0, gamma_from(0), 1}, in.n));
    return Map::template lower<T>(finalize(wide, off));
  }

  // Fills, then the NaN policy (a NaN input stays NaN even where filled).
  // MayFill = false: the caller knows no lane is filled.
  template <bool MayFill = true, class V>
  static V finish(const V& x, V y, const Lanes<V>& p) {
    if constexpr (MayFill) y = lane_select(p.fill, p.fill_value, y);
    if constexpr (Out == NanOut::keep || Out == NanOut::zero) y = lane_select(is_nan(x), x, y);
    if constexpr (Out == NanOut::zero) y = lane_select(is_nan(y), V(0), y);
    if constexpr (Out == NanOut::clear) y = lane_select(is_nan(x), V(0), y);
    return y;
  }

  template <class V>
  static std::array<V, K> load_inputs(const std::array<const T*, K>& data, Index off) {
    std::array<V, K> x;
    for (std::size_t q = 0; q < K; ++q) x[q] = lane_load<V>(data[q] + off);
    return x;
  }

  template <class V>
  static void put(T* y, const V& v, bool nontemporal) {
    if (nontemporal)
      lane_stream(y, v);
    else
      lane_store(y, v);
  }

  // Maps `count` lane steps from input offset `off` into y;
  // weight_at(j, gamma, beta) gives step j's weights, sum_at(j, sums) takes
  // its per-position sums. Renormalizing maps return, per lane, the sum of
  // what they wrote over the non-NaN inputs (SkipNan) or all inputs, reduced
  // in blocks and merged in double; rescale() then divides by it. With
  // Along (the lanes are one slice) a block's lanes are first summed in the
  // element type (lane_sum: log2 of the width in roundings of positive terms)
  // and the slice's sum comes back in lane 0, one double add per block rather
  // than one per lane (docs/measurements/2026-12-02-backward-rerun.md).
  // ahead: lanes to fetch into cache meanwhile, step by step.
  // nontemporal: y is written with non-temporal stores (aligned y only).
  template <class V, bool MayFill = true, bool Along = false, bool Fetch = true, class WeightAt, class SumAt>
  auto map_run(Index off, Index x_stride, T* y, Index y_stride, Index count, const Lanes<V>& p,
               const WeightAt& weight_at, const SumAt& sum_at, Ahead ahead, bool nontemporal = false) const {
    V gamma(1), beta(0);
    const std::array<const T*, K> data = in.data;  // a local: g++ reloaded the member every step
    const auto step = [&](Index j) {
      if constexpr (Fetch) ahead.fetch<V>(data, j, x_stride);
      weight_at(j, gamma, beta);
      const auto x = load_inputs<V>(data, off + j * x_stride);
      const V v = Map::template apply<HasGamma, HasBeta>(p.p, x, gamma, beta);
      if constexpr (P > 0) {
        std::array<V, P> s;
        Map::template sums<HasGamma>(p.p, x, gamma, s);
        if constexpr (SkipNan)
          for (auto& e : s) e = lane_select(is_nan(x[0]), V(0), e);
        sum_at(j, s);
      }
      put(y + j * y_stride, finish<MayFill>(x[0], v, p), nontemporal && !Renormalizes);
      return SkipNan ? lane_select(is_nan(x[0]), V(0), v) : v;
    };
    if constexpr (Renormalizes) {
      std::array<double, width_of<V>> sums{};
      for (Index b = 0; b < count; b += block_steps) {
        V block(0);
        for (Index j = b, end = std::min(count, b + block_steps); j < end; ++j) block = block + step(j);
        if constexpr (Along) {
          sums[0] += double(lane_sum(block));
        } else {
          const auto lanes = lanes_of(block);
          for (std::size_t l = 0; l < width_of<V>; ++l) sums[l] += double(lanes[l]);
        }
      }
      return sums;
    } else {
      for (Index j = 0; j < count; ++j) step(j);
    }
  }

  // y *= factor (1 in filled lanes), keeping the zero policy's promise for a
  // slice whose sum is NaN (a +inf input).
  template <class V>
  static void rescale(T* y, Index y_stride, Index count, const V& factor, bool nontemporal = false) {
    for (Index j = 0; j < count; ++j) {
      V v = lane_load<V>(y + j * y_stride) * factor;
      if constexpr (Out == NanOut::zero) v = lane_select(is_nan(v), V(0), v);
      put(y + j * y_stride, v, nontemporal);
    }
  }

  // Weights for lanes that run along the slice (contiguous path): a load.
  template <class V>
  auto weights_along(Index first, Index stride) const {
    const Weights<T> w = weights;
    return [=](Index j, V& gamma, V& beta) {  // [=]: captures only what the variant uses
      if constexpr (HasGamma) gamma = lane_load<V>(w.gamma + first + j * stride);
      if constexpr (HasBeta) beta = lane_load<V>(w.beta + first + j * stride);
    };
  }

  // Weights for lanes that are different slices (strided path): a broadcast
  // of position first + j.
  template <class V>
  auto weights_across(Index first) const {
    const Weights<T> w = weights;
    return [=](Index j, V& gamma, V& beta) {
      if constexpr (HasGamma) gamma = V(w.gamma[first + j]);
      if constexpr (HasBeta) beta = V(w.beta[first + j]);
    };
  }

  // Per-position sums (P of them, each n long): lanes that run along the
  // slice add lane by lane into an element-type stage, which contiguous_slices
  // moves into the double sums every stage_slices slices (a float sum of 8
  // terms is within 8 ulp, and the vector adds cost a third of what adding
  // each lane in double did); lanes that are different slices add their
  // pairwise total (lane_sum: log2 of the lane count in roundings, 7 for a
  // chunk of 128 floats), in double, to one position: adding each lane in
  // double took half of LayerNorm's strided backward.
  static constexpr Index stage_slices = 8;

  template <class V>
  static auto sums_along(T* stage, Index n, Index first, Index stride) {
    return [=](Index j, const std::array<V, P>& s) {
      if constexpr (P > 0) {
        for (std::size_t q = 0; q < P; ++q) {
          T* at = stage + q * n + first + j * stride;
          lane_store(at, lane_load<V>(at) + s[q]);
        }
      }
    };
  }
  template <class V>
  static auto sums_across(double* sums, Index n, Index first) {
    return [=](Index j, const std::array<V, P>& s) {
      if constexpr (P > 0) {
        for (std::size_t q = 0; q < P; ++q) sums[q * n + first + j] += double(lane_sum(s[q]));
      }
    };
  }

  // Contiguous slices are reduced (bound by reads) and then mapped (bound by
  // writes). From DRAM, while one slice is mapped, the slice `lead` ahead is
  // fetched, so that its reduction finds it in cache and the two overlap;
  // short slices look several slices ahead to stay ~4 KiB in front.
  Total<double> reduce_slice(Index off) const {
    const Index body = in.n / W;
    Total<double> total;
    accumulate<B, true>(off, body, W, &total, Ahead::nothing(off), 0, W);
    accumulate<T, true>(off + body * W, in.n - body * W, 1, &total, Ahead::nothing(off), body * W, 1);
    return total;
  }

  Index fetch_lead() const { return std::max<Index>(1, Index(4096 / sizeof(T)) / in.n); }

  // Short slices go in groups: all are reduced, then all decided, then all
  // mapped. The decisions (divisions and a sqrt in double, ~50 cycles of
  // latency) depend on nothing but their own totals, so the core overlaps
  // those of the whole group; interleaved with the reductions, too few fit in
  // its window to (rows of 64 floats, 4 MiB: sum-to-one 0.30 -> 0.36 of the
  // y = c*x floor). A group stays within ~8 KiB, so the map pass still reads
  // it from L1. Groups of fewer than min_decided_together slices (over 512
  // floats) are decided one slice at a time by decide_slice: the decisions
  // weigh little there, and g++ compiles the group loop's reduction slower
  // (softmax, rows of 768 and 4096: 0.31 -> 0.28 and 0.37 -> 0.33).
  // The per-tile functions (decide_slice, decide_group, map_slice,
  // strided_chunk) are flattened: g++ left finalize, to_params and the map
  // runs as calls, which took a third of the time on rows of 64 floats
  // (sum-to-one 0.21 -> 0.28, z-score RowMajor axis 0 0.27 -> 0.35).
  // contiguous_slices is flattened too: with the generalized engine, g++ -O3
  // left map_slice as a call per slice (rows of 64 floats 5-8 %, softmax
  // rows of 768 6 %; docs/measurements/2026-12-01-backward-speed.md).
  [[gnu::flatten]] Params decide_slice(Index o) const { return decide(reduce_slice(slice_in(o)), slice_in(o), 1); }

  [[gnu::flatten]] void decide_group(Index first, Index count, Params* params) const {
    std::array<Total<double>, max_group> totals;
    for (Index k = 0; k < count; ++k) totals[k] = reduce_slice(slice_in(first + k));
    decide_many<max_group>(totals.data(), count, slice_in(first), in.outer_stride, 1, params);
  }

  // The offset of contiguous slice o in the inputs.
  Index slice_in(Index o) const { return o * in.outer_stride; }

  static constexpr Index max_group = 16, min_decided_together = 4;
  Index group_size() const { return std::clamp<Index>(Index(8192 / sizeof(T)) / in.n, 1, max_group); }

  [[gnu::flatten]] void contiguous_slices(Index first, Index last, double* sums) const {
    const Index lead = fetch_lead(), group = group_size();
    std::array<Params, max_group> p;
    std::vector<T> stage(P > 0 ? std::size_t(Index(P) * in.n) : 0, T(0));
    Index staged = 0;
    const auto flush = [&] {
      for (std::size_t e = 0; e < stage.size(); ++e) sums[e] += double(stage[e]), stage[e] = T(0);
      staged = 0;
    };
    for (Index o = first; o < last; o += group) {
      const Index count = std::min(group, last - o);
      if (group >= min_decided_together)
        decide_group(o, count, p.data());
      else
        for (Index k = 0; k < count; ++k) set(p[k], decide_slice(o + k));
      for (Index k = 0; k < count; ++k) {
        map_slice(o + k, p[k], lead, stage.data());
        if constexpr (P > 0)
          if (++staged == stage_slices) flush();
      }
    }
    if constexpr (P > 0) flush();
  }

  // Only inputs too large for a cache (those whose output streams) are
  // fetched ahead: from L3 the prefetches took load slots the map needs (4 MiB
  // float: most ops 1.05-1.15x without them), from DRAM they gain 1.2x on rows
  // of 64 (docs/measurements/2026-12-02-batch-lanes-leave-out.md). Tails are
  // never fetched.
  void map_slice(Index o, const Params& p, Index lead, T* stage) const {
    if (stream && o + lead < in.outer)
      map_slice_as<true>(o, p, lead, stage);
    else
      map_slice_as<false>(o, p, lead, stage);
  }

  template <bool Fetch>
  [[gnu::flatten]] void map_slice_as(Index o, const Params& p, Index lead, T* stage) const {
    const Index x = slice_in(o);
    T* y = out.data + o * out.outer_stride;
    const Index body = in.n / W, tail_start = body * W, tail = in.n - tail_start;
    const Ahead ahead = Fetch ? Ahead{x + lead * in.outer_stride, body - 1} : Ahead::nothing(x);
    const auto body_sums = sums_along<B>(stage, in.n, 0, W);
    const auto tail_sums = sums_along<T>(stage, in.n, tail_start, 1);
    if constexpr (Renormalizes) {
      if (!p.fill) {
        const double sum = map_run<B, false, true, Fetch>(x, W, y, W, body, broadcast<B>(p), weights_along<B>(0, W),
                                                          body_sums, ahead)[0] +
                           map_run<T, false, false, false>(x + tail_start, 1, y + tail_start, 1, tail, broadcast<T>(p),
                                                           weights_along<T>(tail_start, 1), tail_sums,
                                                           Ahead::nothing(x + tail_start))[0];
        const T factor = T(1.0 / sum);
        rescale<B>(y, W, body, B(factor), streams(y, W));
        rescale<T>(y + tail_start, 1, tail, factor);
        return;
      }
    }
    // One slice: fill or map is decided once, not per element.
    if (p.fill) {
      map_run<B, true, false, Fetch>(x, W, y, W, body, broadcast<B>(p), weights_along<B>(0, W), body_sums, ahead,
                                     streams(y, W));
      map_run<T, true, false, false>(x + tail_start, 1, y + tail_start, 1, tail, broadcast<T>(p),
                                     weights_along<T>(tail_start, 1), tail_sums, Ahead::nothing(x + tail_start));
    } else {
      map_run<B, false, false, Fetch>(x, W, y, W, body, broadcast<B>(p), weights_along<B>(0, W), body_sums, ahead,
                                      streams(y, W));
      map_run<T, false, false, false>(x + tail_start, 1, y + tail_start, 1, tail, broadcast<T>(p),
                                      weights_along<T>(tail_start, 1), tail_sums, Ahead::nothing(x + tail_start));
    }
  }

  // Strided slices go in chunks of chunk_groups batches of neighbouring
  // slices, loaded together as one Wide lane: every pass walks the chunk row
  // by row, reading each row's segment as one contiguous run. A chunk of
  // fewer batches (the end of the inner dimension) runs batch by batch, and
  // the inner % W leftover slices with scalar lanes.
  static constexpr Index chunk_groups = 8;
  using Chunk = Wide<B, chunk_groups>;

  // Groups a chunk of lane type V can hold: one Wide lane, up to
  // chunk_groups - 1 batches, or up to W - 1 scalar slices.
  template <class V>
  static constexpr Index chunk_capacity = is_wide<V> ? 1 : is_scalar_lane<V> ? W : chunk_groups;

  // Strided rows lie a row pitch apart, a pattern the hardware prefetchers
  // do not follow out of DRAM, so every pass over a chunk fetches the row
  // lookahead_rows ahead of the one it reads (16 rows of a 512-byte chunk
  // row keep 8 KiB in flight; 8 and 24 gained less at 256 MiB).
  static constexpr Index lookahead_rows = 16;

  // For a pass over rows [b, b + steps) of the slices at offset x: the rows
  // lookahead_rows further on, as far as the slices go.
  Ahead rows_ahead(Index x, Index b, Index steps) const {
    const Index rows = std::min(in.n - b - lookahead_rows, steps);
    if (rows <= 0) return Ahead::nothing(x + b * in.step);
    return {x + (b + lookahead_rows) * in.step, rows - 1};
  }

  // body(b, steps, g) for every block of rows b and group g (of lane type V)
  // of a chunk.
  template <class V, class Body>
  void for_each_block(Index groups, const Body& body) const {
    constexpr Index rows = block_steps * stats::ways<V>;
    for (Index b = 0; b < in.n; b += rows)
      for (Index g = 0; g < groups; ++g) body(b, std::min(rows, in.n - b), g);
  }

  // The totals of a chunk's slices (groups batches of lane type V from x).
  template <class V, bool Exact = false>
  std::array<Total<double>, chunk_capacity<V> * width_of<V>> reduce_chunk(Index x, Index groups) const {
    constexpr Index L = static_cast<Index>(width_of<V>);
    std::array<Total<double>, chunk_capacity<V> * width_of<V>> totals;
    for_each_block<V>(groups, [&](Index b, Index steps, Index g) {
      accumulate<V, false, Exact>(x + b * in.step + g * L, steps, in.step, &totals[g * L],
                                  rows_ahead(x + g * L, b, steps), b, 0);
    });
    return totals;
  }

  // `groups` batches (V) of neighbouring strided slices from inner index i.
  template <class V>
  [[gnu::flatten]] void strided_chunk(Index o, Index i, Index groups, double* sums) const {
    constexpr Index L = static_cast<Index>(width_of<V>);
    const Index x = o * in.outer_stride + i;
    T* y = out.data + o * out.outer_stride + i;
    constexpr Index capacity = chunk_capacity<V>;
    auto totals = reduce_chunk<V>(x, groups);
    // A chunk holding a slice that needs_exact flags is reduced again whole,
    // in its lanes: one more pass over the chunk, not a scalar pass down each
    // flagged column (constant feature columns are common).
    constexpr bool checked = has_needs_exact<Stat, T>::value && !is_scalar_lane<V>;
    if constexpr (checked) {
      // Batches of W slices holding a flagged one.
      std::array<bool, capacity * L / W + 1> again{};
      Index batches_again = 0;
      for (Index b = 0; b * W < std::min(groups, capacity) * L; ++b) {
        for (Index l = b * W; l < std::min((b + 1) * W, groups * L); ++l)
          again[b] = again[b] || Stat::template needs_exact<T>(totals[l]);
        batches_again += again[b];
      }
      // A Wide chunk reduces again only those batches while they are at most
      // half of it: a batch read alone down the rows costs about a fifth of
      // the chunk's pass (docs/measurements/2026-12-02-decide-in-lanes.md).
      if (is_wide<V> && batches_again * 2 <= chunk_groups) {
        for (Index b = 0; b < chunk_groups; ++b)
          if (again[b]) {
            const auto batch = reduce_chunk<B, true>(x + b * W, 1);
            std::copy(batch.begin(), batch.begin() + W, totals.begin() + b * W);
          }
      } else if (batches_again > 0) {
        totals = reduce_chunk<V, true>(x, groups);
      }
    }
    std::array<Params, capacity * L> p{};  // all set: the unused tail packs zeros
    // One slice at a time: decisions are a small share of a chunk's time, and
    // deciding in lanes measured slower here (same note).
    for (Index l = 0; l < groups * L; ++l) set(p[l], decide<checked>(totals[l], x + l, in.step));
    std::array<Lanes<V>, capacity> params;
    for (Index g = 0; g < capacity; ++g) params[g] = pack<V>(&p[g * L]);
    const bool stream_rows = !is_scalar_lane<V> && streams(y, out.step);
    if constexpr (Renormalizes) {
      std::array<double, capacity * L> total{};
      for_each_block<V>(groups, [&](Index b, Index steps, Index g) {
        const auto s = map_run<V>(x + b * in.step + g * L, in.step, y + b * out.step + g * L, out.step, steps,
                                         params[g], weights_across<V>(b), sums_across<V>(sums, in.n, b),
                                         rows_ahead(x + g * L, b, steps));
        for (Index l = 0; l < L; ++l) total[g * L + l] += s[l];
      });
      alignas(64) std::array<T, capacity * L> factor;
      for (Index l = 0; l < groups * L; ++l) factor[l] = p[l].fill ? T(1) : T(1.0 / total[l]);
      for_each_block<V>(groups, [&](Index b, Index steps, Index g) {
        rescale<V>(y + b * out.step + g * L, out.step, steps, lane_load<V>(&factor[g * L]), stream_rows);
      });
    } else {
      for_each_block<V>(groups, [&](Index b, Index steps, Index g) {
        map_run<V>(x + b * in.step + g * L, in.step, y + b * out.step + g * L, out.step, steps, params[g],
                   weights_across<V>(b), sums_across<V>(sums, in.n, b), rows_ahead(x + g * L, b, steps), stream_rows);
      });
    }
  }

  bool contiguous() const { return in.contiguous() && out.step == 1; }

  // Tiles are numbered so that any range of them can go to one thread: a
  // contiguous slice, or a chunk of strided ones (the inner % W leftover
  // slices, if any, form the last chunk of each outer index).
  Index batches() const { return in.inner / W; }
  Index chunks() const { return (batches() + chunk_groups - 1) / chunk_groups + (in.inner % W != 0); }
  Index tiles() const { return contiguous() ? in.outer : in.outer * chunks(); }

  Index tile_bytes() const {
    const Index lanes = contiguous() ? 1 : chunk_groups * W;
    return in.n * lanes * static_cast<Index>(sizeof(T)) * Index(K);
  }

  template <class V>
  struct As {
    using type = V;
  };

  // The one place that knows what a tile is: slices(first, last) for a run
  // of contiguous slices, chunk(As<V>{}, o, i, groups) for a strided chunk of
  // lane type V.
  template <class OnSlices, class OnChunk>
  void for_tiles(Index first, Index last, const OnSlices& slices, const OnChunk& chunk) const {
    if (contiguous()) {
      slices(first, last);
      return;
    }
    const Index per_outer = chunks(), full = batches();
    for (Index t = first; t < last; ++t) {
      const Index o = t / per_outer, c = t % per_outer, first_batch = c * chunk_groups;
      if (first_batch + chunk_groups <= full)
        chunk(As<Chunk>{}, o, first_batch * W, 1);
      else if (first_batch < full)
        chunk(As<B>{}, o, first_batch * W, full - first_batch);
      else
        chunk(As<T>{}, o, full * W, in.inner % W);
    }
  }

  // Maps tiles [first, last); sums: this range's per-position sums (P > 0).
  void run_tiles(Index first, Index last, double* sums = nullptr) const {
    for_tiles(
        first, last, [&](Index begin, Index end) { contiguous_slices(begin, end, sums); },
        [&](auto lane, Index o, Index i, Index groups) {
          strided_chunk<typename decltype(lane)::type>(o, i, groups, sums);
        });
    if (stream) stream_fence();
  }

  // Read-only pass over tiles [first, last): the offset in the inputs of the
  // first slice whose total is flagged, or -1.
  template <class Flagged>
  Index find_slice(Index first, Index last, const Flagged& flagged) const {
    Index found = -1;
    for_tiles(
        first, last,
        [&](Index begin, Index end) {
          for (Index o = begin; o < end && found < 0; ++o)
            if (flagged(reduce_slice(slice_in(o)))) found = o * in.outer_stride;
        },
        [&](auto lane, Index o, Index i, Index groups) {
          using V = typename decltype(lane)::type;
          if (found >= 0) return;
          const auto totals = reduce_chunk<V>(o * in.outer_stride + i, groups);
          for (Index l = 0; l < groups * Index(width_of<V>) && found < 0; ++l)
            if (flagged(totals[l])) found = o * in.outer_stride + i + l;
        });
    return found;
  }
};

// Runs every tile on the calling thread.
struct Serial {
  template <class Body>
  void operator()(Index tiles, Index, const Body& body) const {
    body(0, tiles);
  }
};

// Splits the tiles over an Eigen device with parallelFor (ThreadPoolDevice).
// Each tile reads and writes its own slices, so no two threads touch the same
// output; the call returns when all tiles are done.
template <class Device>
struct OnDevice {
  const Device& device;

  template <class Body>
  void operator()(Index tiles, Index bytes_per_tile, const Body& body) const {
    const Eigen::TensorOpCost cost{double(bytes_per_tile), double(bytes_per_tile), 4.0 * double(bytes_per_tile)};
    device.parallelFor(tiles, cost, [&body](Index first, Index last) { body(first, last); });
  }
};

// body(first, last) over a range of tiles, by reference and type-erased.
class TileBody {
 public:
  template <class Body>
  explicit TileBody(const Body& body)
      : body_(&body), call_([](const void* b, Index first, Index last) { (*static_cast<const Body*>(b))(first, last); }) {}

  void operator()(Index first, Index last) const { call_(body_, first, last); }

 private:
  const void* body_;
  void (*call_)(const void*, Index, Index);
};

// Any executor (Serial, OnDevice<Device>), by reference and type-erased, so
// that one compiled engine serves every executor: a program that runs a
// functor both serially and on a thread pool compiles its engine once. The
// executor is called once per run, never per slice or tile.
class AnyExecutor {
 public:
  template <class E, std::enable_if_t<!std::is_same_v<E, AnyExecutor>, int> = 0>
  AnyExecutor(const E& executor)  // NOLINT: implicit, as the executors were passed before
      : executor_(&executor), split_([](const void* e, Index tiles, Index bytes_per_tile, TileBody body) {
          (*static_cast<const E*>(e))(tiles, bytes_per_tile, body);
        }) {}

  template <class Body>
  void operator()(Index tiles, Index bytes_per_tile, const Body& body) const {
    split_(executor_, tiles, bytes_per_tile, TileBody(body));
  }

 private:
  const void* executor_;
  void (*split_)(const void*, Index, Index, TileBody);
};

// What the NaN scan reduces each slice to: its maximum, which also records
// whether a NaN was taken.
template <class T>
struct NanScan {
  using value_type = T;
  using statistic = stats::Maximum;
};

// NanPolicy::raise: the offset in `in` of the first NaN, or -1, found before
// anything is written. The engine reduces the tiles read-only (split over the
// executor's threads), and the first flagged slice is then searched for it.
template <class T>
Index find_nan(SliceView<const T> in, AnyExecutor executor = Serial{}) {
  const NanScan<T> scan;
  const SliceView<T> no_output{nullptr, in.outer, in.n, in.inner, in.outer_stride, in.step};
  const SliceEngine<NanScan<T>, T, false, NanOut::none, false, false> engine{scan, {}, inputs_from(in), no_output, {}};
  std::atomic<Index> first(-1);
  executor(engine.tiles(), engine.tile_bytes(), [&](Index begin, Index end) {
    const Index found = engine.find_slice(begin, end, [](const auto& total) { return total.nan; });
    Index seen = first.load();
    while (found >= 0 && (seen < 0 || found < seen) && !first.compare_exchange_weak(seen, found)) {
    }
  });
  const Index slice = first.load();
  if (slice < 0) return -1;
  Index k = 0;
  while (!std::isnan(in.data[slice + k * in.step])) ++k;
  return slice + k * in.step;
}

// Outputs bigger than a last-level cache are written with non-temporal
// stores: they would not stay in cache anyway, and skipping the
// read-for-ownership of every line cuts the memory traffic of the map pass
// (measured in bench/: see the README's performance section). The bound is
// fixed rather than queried: Eigen::l3CacheSize() reports the whole package
// (384 MiB on a 12-CCD EPYC), not the 32 MiB one core's slice can use, which
// is also the largest L3 slice of current x86 parts. Define
// NORMKIT_STREAM_ABOVE_BYTES to choose another bound (a huge one turns
// streaming off).
#ifndef NORMKIT_STREAM_ABOVE_BYTES
#define NORMKIT_STREAM_ABOVE_BYTES (std::ptrdiff_t(32) << 20)
#endif
inline constexpr Index stream_above_bytes = NORMKIT_STREAM_ABOVE_BYTES;

template <class T>
bool streams_output(const SliceView<T>& out) {
  return out.outer * out.n * out.inner * Index(sizeof(T)) > stream_above_bytes;
}

// Per-position sums (dgamma, dbeta) are accumulated per fixed range of tiles
// and the ranges added in order, so the result does not depend on how the
// executor splits the ranges over threads. The range count depends on the
// shape only: each range reads at least 8 times the bytes of its partial sums
// (n * sums doubles, zeroed, flushed into and added up once per range), and
// there are at most 64 ranges, within ~32 MiB of partial sums.
inline Index sum_ranges(Index tiles, Index tile_bytes, Index n, std::size_t sums) {
  const Index partial_bytes = n * Index(sums) * Index(sizeof(double));
  const Index cap = std::max<Index>(1, Index(32) * 1024 * 1024 / partial_bytes);
  const Index worth = tiles * tile_bytes / (8 * partial_bytes);
  return std::max<Index>(1, std::min({tiles, Index(64), cap, worth}));
}

// One compiled variant of run(): WithSums::value when the caller wants the
// map's per-position sums (they cost a third of LayerNorm's backward, so
// they are only computed when asked for).
template <class WithSums, class Kernel, class T, std::size_t K, class Skip, class NanOutC, class HasGamma, class HasBeta>
void go_with_sums(const Kernel& kernel, const Inputs<T, K>& in, const SliceView<T>& out, const Weights<T>& weights,
                  const AnyExecutor& executor, double* sums, Skip, NanOutC, HasGamma, HasBeta) {
  const SliceEngine<Kernel, T, Skip::value, NanOutC::value, HasGamma::value, HasBeta::value, WithSums::value> engine{
      kernel, statistic_of(kernel), in, out, weights, streams_output<T>(out)};
  constexpr std::size_t P = decltype(engine)::P;
  const Index tiles = engine.tiles();
  if constexpr (P == 0) {
    executor(tiles, engine.tile_bytes(), [&engine](Index first, Index last) { engine.run_tiles(first, last); });
  } else {
    const Index ranges = sum_ranges(tiles, engine.tile_bytes(), in.n, P), per = in.n * Index(P);
    std::vector<double> partial(std::size_t(ranges * per), 0.0);
    const auto tile_of = [&](Index r) { return tiles * r / ranges; };
    executor(ranges, engine.tile_bytes() * ((tiles + ranges - 1) / ranges), [&](Index first, Index last) {
      for (Index r = first; r < last; ++r) engine.run_tiles(tile_of(r), tile_of(r + 1), partial.data() + r * per);
    });
    std::fill(sums, sums + per, 0.0);
    for (Index r = 0; r < ranges; ++r)
      for (Index e = 0; e < per; ++e) sums[e] += partial[std::size_t(r * per + e)];
  }
}

// Runs `kernel` over every slice of the inputs, choosing the compiled variant
// for its NaN policy and weights. `raise` has already been checked by the
// caller. Kernels whose map has position_sums write them, n each, to `sums`
// when it is not null.
template <class Kernel, class T, std::size_t K>
void run(const Kernel& kernel, Inputs<T, K> in, SliceView<T> out, Weights<T> weights = {},
         AnyExecutor executor = Serial{}, double* sums = nullptr) {
  using Map = typename map_of<Kernel>::type;
  const auto go = [&](auto skip, auto nan_out, auto has_gamma, auto has_beta) {
    if constexpr (position_sums_of<Map>::value > 0) {
      if (sums) return go_with_sums<std::true_type>(kernel, in, out, weights, executor, sums, skip, nan_out, has_gamma, has_beta);
    }
    go_with_sums<std::false_type>(kernel, in, out, weights, executor, sums, skip, nan_out, has_gamma, has_beta);
  };
  constexpr bool clears = zeroes_skipped<Kernel>::value;
  const auto with_policy = [&](auto has_gamma, auto has_beta) {
    switch (kernel.nan_policy) {
      case NanPolicy::ignore:
        return go(std::true_type{}, std::integral_constant<NanOut, clears ? NanOut::clear : NanOut::keep>{},
                  has_gamma, has_beta);
      case NanPolicy::zero:
        return go(std::true_type{}, std::integral_constant<NanOut, clears ? NanOut::clear : NanOut::zero>{},
                  has_gamma, has_beta);
      default:
        return go(std::false_type{}, std::integral_constant<NanOut, NanOut::none>{}, has_gamma, has_beta);
    }
  };
  if constexpr (accepts_weights<Kernel>::value) {
    if (weights.gamma && weights.beta) return with_policy(std::true_type{}, std::true_type{});
    if (weights.gamma) return with_policy(std::true_type{}, std::false_type{});
    if (weights.beta) return with_policy(std::false_type{}, std::true_type{});
  }
  with_policy(std::false_type{}, std::false_type{});
}

// The forward form: one input.
template <class Functor, class T>
void run(const Functor& functor, SliceView<const T> in, SliceView<T> out, Weights<T> weights = {},
         AnyExecutor executor = Serial{}) {
  run(functor, inputs_from(in), out, weights, executor);
}

}  // namespace normkit::detail
