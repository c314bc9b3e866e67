// normkit/detail/saved_kernels.hpp - the kernels that write per-slice
// statistics from a forward and read them into a backward (normkit/saved.hpp),
// and the two entry points that run them. Both are the engine's run() with a
// kernel whose finalize also takes the slice's index.
#pragma once

#include <array>
#include <cstddef>
#include <type_traits>

#include "engine.hpp"

namespace normkit::detail {

template <class F, class = void>
struct saves_statistics : std::false_type {};
template <class F>
struct saves_statistics<F, std::void_t<decltype(F::saved_names)>> : std::true_type {};

template <class F>
struct saved_count : std::integral_constant<std::size_t, F::saved_names.size()> {};

// The forward functor F writing F::save(total) for every slice it decides.
template <class F, std::size_t N>
struct Saving : F {
  static constexpr bool finalize_per_slice = true;
  std::array<double*, N> fields;

  template <class Total>
  auto finalize(const Total& t, Index slice) const {
    const std::array<double, N> values = F::save(t);
    for (std::size_t k = 0; k < N; ++k) fields[k][slice] = values[k];
    return F::finalize(t);
  }
};

// The backward kernel G taking the statistics a forward saved instead of
// reducing the forward's statistic again: its reduction is
// G::saved_statistic, its decision G::finalize(total, values).
template <class G, std::size_t N>
struct FromSaved : G {
  using statistic = typename G::saved_statistic;
  static constexpr bool finalize_per_slice = true;
  std::array<const double*, N> fields;

  statistic make_statistic() const { return {}; }

  template <class Total>
  auto finalize(const Total& t, Index slice) const {
    std::array<double, N> values;
    for (std::size_t k = 0; k < N; ++k) values[k] = fields[k][slice];
    return G::finalize(t, values);
  }
};

// At most this many statistics per functor.
inline constexpr std::size_t max_saved = 4;

// run() of functor F that also writes its statistics to fields[k] (k <
// F::saved_names.size()). A no-op for functors that save none, so that it
// can be instantiated for every functor.
template <class F, class T>
void run_saving(const F& f, SliceView<const T> in, SliceView<T> out, Weights<T> weights, AnyExecutor executor,
                std::array<double*, max_saved> fields) {
  if constexpr (saves_statistics<F>::value) {
    constexpr std::size_t N = saved_count<F>::value;
    static_assert(N <= max_saved, "normkit: at most max_saved statistics per functor");
    Saving<F, N> kernel{f, {}};
    for (std::size_t k = 0; k < N; ++k) kernel.fields[k] = fields[k];
    run(kernel, inputs_from(in), out, weights, executor);
  } else {
    (void)f, (void)in, (void)out, (void)weights, (void)executor, (void)fields;
  }
}

// run() of the backward kernel G of functor F from saved statistics (F
// saves statistics and reads x in its backward); sums as in run().
template <class F, class G, class T>
void run_from_saved(const G& kernel, Inputs<T, 2> in, SliceView<T> out, Weights<T> weights, AnyExecutor executor,
                    double* sums, std::array<const double*, max_saved> fields) {
  if constexpr (saves_statistics<F>::value && !F::backward_from_output) {
    constexpr std::size_t N = saved_count<F>::value;
    FromSaved<G, N> k{kernel, {}};
    for (std::size_t e = 0; e < N; ++e) k.fields[e] = fields[e];
    run(k, in, out, weights, executor, sums);
  } else {
    (void)kernel, (void)in, (void)out, (void)weights, (void)executor, (void)sums, (void)fields;
  }
}

}  // namespace normkit::detail
