// Checks the long-double BACKWARD reference (reference_backward.hpp) against
// central finite differences of the long-double reference FORWARD
// (reference.hpp, plus power_norm and the temperature forms), so that the
// library's backward tests can trust it.
//
// The loss is L = sum dy*y; dL/dx_i is estimated as (L(x + h e_i) -
// L(x - h e_i)) / 2h with h = 1e-6 max(1, |x_i|) in long double, on random
// slices of lengths 1..9. Inputs are kept away from the points where a forward
// is not differentiable (ties of max-norm / min-max, |x| near 0 for L1 and
// p-norms, near-zero sums, near-constant slices), so the truncation error
// O(h^2) stays far below the 1e-8 relative bound; those points are tested by
// direct expectation instead. "Relative" is relative to the slice's largest
// |dx| (with a floor of 1e-3 max|dy| for slices whose gradient is 0).
#include <catch2/catch.hpp>

#include "reference.hpp"
#include "reference_backward.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using ref::Slice;
using P = ref::NanPolicy;
using ref::Degenerate;
using ref::MaskedSlice;

const long double inf = std::numeric_limits<long double>::infinity();
const long double qnan = std::numeric_limits<long double>::quiet_NaN();

using Fwd = std::function<Slice(const Slice&)>;
using Bwd = std::function<Slice(const Slice&, const Slice&)>;

std::string str(const Slice& s) {
  std::ostringstream os;
  os.precision(12);
  os << '(';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << static_cast<double>(s[i]);
  os << ')';
  return os.str();
}

// L = sum dy*y over the positions where x is finite (NaN inputs give NaN or 0
// outputs by policy, -inf inputs are masked softmax entries: neither varies).
long double loss(const Slice& x0, const Slice& dy, const Slice& y) {
  long double l = 0;
  for (std::size_t i = 0; i < y.size(); ++i)
    if (std::isfinite(x0[i])) l += dy[i] * y[i];
  return l;
}

// Central differences of the loss at every finite position of x (NaN elsewhere).
Slice fd_gradient(const Slice& x, const Slice& dy, const Fwd& fwd, long double rel_step = 1e-6L) {
  Slice g(x.size(), qnan);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) continue;
    const long double h = rel_step * std::max(1.0L, std::fabs(x[i]));
    Slice xp = x, xm = x;
    xp[i] += h;
    xm[i] -= h;
    g[i] = (loss(x, dy, fwd(xp)) - loss(x, dy, fwd(xm))) / (xp[i] - xm[i]);
  }
  return g;
}

// |an_i - fd_i| <= tol * max(max_j |an_j|, 1e-3 max_j |dy_j|) at every finite x_i.
void require_matches_fd(const Slice& x, const Slice& dy, const Slice& an, const Slice& fd, long double tol) {
  long double scale = 0, dy_max = 0;
  for (std::size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(x[i])) {
      scale = std::max(scale, std::fabs(an[i]));
      dy_max = std::max(dy_max, std::fabs(dy[i]));
    }
  scale = std::max(scale, 1e-3L * dy_max);
  long double worst = 0;
  std::size_t at = 0;
  bool finite = true;
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) continue;
    finite = finite && std::isfinite(an[i]) && std::isfinite(fd[i]);
    const long double e = std::fabs(an[i] - fd[i]) / (scale > 0 ? scale : 1.0L);
    if (e > worst) {
      worst = e;
      at = i;
    }
  }
  INFO("x  = " << str(x));
  INFO("dy = " << str(dy));
  INFO("analytic dx = " << str(an));
  INFO("finite diff = " << str(fd));
  INFO("worst relative error " << static_cast<double>(worst) << " at " << at << " (bound "
                               << static_cast<double>(tol) << ")");
  REQUIRE(finite);
  REQUIRE(worst < tol);
}

// The backward of `fwd` at x (from y = fwd(x) when from_output) against FD.
void check_fd(const Slice& x, const Slice& dy, const Fwd& fwd, const Bwd& bwd, bool from_output = false,
              long double rel_step = 1e-6L, long double tol = 1e-8L) {
  const Slice an = bwd(from_output ? fwd(x) : x, dy);
  REQUIRE(an.size() == x.size());
  require_matches_fd(x, dy, an, fd_gradient(x, dy, fwd, rel_step), tol);
}

// Element-wise equality within a relative 1e-15 (NaN only matches NaN).
void require_equal(const Slice& got, const Slice& want, long double tol = 1e-15L) {
  INFO("got  " << str(got));
  INFO("want " << str(want));
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i);
    if (std::isnan(want[i])) REQUIRE(std::isnan(got[i]));
    else if (std::isinf(want[i])) REQUIRE(got[i] == want[i]);
    else REQUIRE(std::fabs(got[i] - want[i]) <= tol * std::max(1.0L, std::fabs(want[i])));
  }
}

bool all_nan(const Slice& s) {
  return std::all_of(s.begin(), s.end(), [](long double v) { return std::isnan(v); });
}

// Random slices with a constraint (rejection sampling; deterministic per seed).
class Gen {
 public:
  explicit Gen(unsigned seed) : rng_(seed) {}

  Slice normal(std::size_t n, long double mean = 0, long double sd = 1) {
    std::normal_distribution<double> d(static_cast<double>(mean), static_cast<double>(sd));
    Slice s(n);
    for (long double& v : s) v = d(rng_);
    return s;
  }

  Slice uniform(std::size_t n, long double lo, long double hi) {
    std::uniform_real_distribution<double> d(static_cast<double>(lo), static_cast<double>(hi));
    Slice s(n);
    for (long double& v : s) v = d(rng_);
    return s;
  }

  template <class Pred>
  Slice normal_where(std::size_t n, long double mean, long double sd, Pred ok) {
    for (;;) {
      Slice s = normal(n, mean, sd);
      if (ok(s)) return s;
    }
  }

  std::size_t index(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }

 private:
  std::mt19937 rng_;
};

// ---- constraints keeping FD away from non-differentiable points
bool away_from_zero(const Slice& s, long double m = 0.05L) {
  return std::all_of(s.begin(), s.end(), [&](long double v) { return std::fabs(v) >= m; });
}

// Sorted values (or |values|) at least `gap` apart at the top and bottom.
bool distinct_extremes(Slice s, long double gap) {
  std::sort(s.begin(), s.end());
  return s.size() < 2 || (s[1] - s[0] >= gap && s[s.size() - 1] - s[s.size() - 2] >= gap);
}

bool unique_max_abs(const Slice& s, long double gap = 1e-3L) {
  Slice a;
  for (long double v : s) a.push_back(std::fabs(v));
  std::sort(a.begin(), a.end());
  return a.size() < 2 || a[a.size() - 1] - a[a.size() - 2] >= gap;
}

bool spread(const Slice& s, long double m = 0.1L) {
  const auto [lo, hi] = std::minmax_element(s.begin(), s.end());
  return s.size() < 2 || *hi - *lo >= m;
}

bool sum_away_from_zero(const Slice& s, long double m = 0.5L) { return std::fabs(ref::detail::sum(s)) >= m; }

constexpr int kTrials = 12;  // random slices per length and configuration

// Runs body(n, gen) for n = 1..9, kTrials times each.
template <class Body>
void for_lengths(unsigned seed, Body&& body, std::size_t min_n = 1) {
  Gen gen(seed);
  for (std::size_t n = min_n; n <= 9; ++n)
    for (int t = 0; t < kTrials; ++t) {
      INFO("length " << n << ", trial " << t);
      body(n, gen);
    }
}

}  // namespace

// ============================================================== new forwards

TEST_CASE("reference power_norm and temperature forwards", "[reference][backward]") {
  // (1, -2, 2) has ||.||_3 = 17^(1/3).
  const long double n3 = std::cbrt(17.0L);
  require_equal(ref::power_norm({1, -2, 2}, 3, 1e-12L), {1 / n3, -2 / n3, 2 / n3}, 1e-17L);
  require_equal(ref::power_norm({3, -4}, 2, 1e-12L), ref::l2({3, -4}, 1e-12L, false), 1e-17L);
  require_equal(ref::power_norm({3, -4, 0.5}, 1, 1e-12L), ref::l1({3, -4, 0.5}, 1e-12L), 1e-17L);
  require_equal(ref::power_norm({0.1, -0.1}, 4, 1), {0.1, -0.1}, 1e-17L);  // eps clamps the norm
  require_equal(ref::power_norm({0, 0}, 3, 0), {0, 0});                   // zero slice stays zero
  require_equal(ref::power_norm({1, qnan, -1}, 3, 0, P::ignore), {1 / std::cbrt(2.0L), qnan, -1 / std::cbrt(2.0L)},
                1e-17L);
  require_equal(ref::power_norm({1, qnan, -1}, 3, 0, P::zero), {1 / std::cbrt(2.0L), 0, -1 / std::cbrt(2.0L)}, 1e-17L);
  REQUIRE(all_nan(ref::power_norm({1, qnan}, 3, 0)));

  // softmax((0, 2 ln 3) / 2) = (1, 3) / 4.
  const long double l9 = 2 * std::log(3.0L);
  require_equal(ref::softmax({0, l9}, MaskedSlice::nan, P::propagate, 2), {0.25, 0.75}, 1e-17L);
  require_equal(ref::log_softmax({0, l9}, MaskedSlice::nan, P::propagate, 2),
                {std::log(0.25L), std::log(0.75L)}, 1e-17L);
  require_equal(ref::softmax({1, 2, 3}, MaskedSlice::nan, P::propagate, 1), ref::softmax({1, 2, 3}, MaskedSlice::nan));
  require_equal(ref::softmax({-inf, 0}, MaskedSlice::nan, P::propagate, 0.5), {0, 1});
  REQUIRE(all_nan(ref::softmax({-inf, -inf}, MaskedSlice::nan, P::propagate, 3)));
  require_equal(ref::log_softmax({-inf, -inf}, MaskedSlice::zeros, P::propagate, 3), {0, 0});
}

// ============================================================== finite differences, NaN-free

TEST_CASE("backward reference vs finite differences: SumToOne", "[reference][backward]") {
  for (Degenerate d : {Degenerate::uniform, Degenerate::zeros, Degenerate::nan}) {
    for_lengths(101 + static_cast<unsigned>(d), [&](std::size_t n, Gen& g) {
      const Slice dy = g.normal(n);
      // Mixed-sign data (sum away from 0) and positive data.
      for (const Slice& x : {g.normal_where(n, 0.3L, 1, [](const Slice& s) { return sum_away_from_zero(s); }),
                             g.uniform(n, 0.1L, 2)}) {
        check_fd(x, dy, [&](const Slice& s) { return ref::sum_to_one(s, 0, d, false); },
                 [&](const Slice& s, const Slice& e) { return ref::sum_to_one_backward(s, e, 0, d, false); });
        check_fd(x, dy, [&](const Slice& s) { return ref::sum_to_one(s, 1e-3L, d, false); },
                 [&](const Slice& s, const Slice& e) { return ref::sum_to_one_backward(s, e, 1e-3L, d, false); });
      }
      // add_epsilon: x / (s + eps), s + eps away from 0.
      const Slice x = g.normal_where(n, 0.3L, 1, [](const Slice& s) { return std::fabs(ref::detail::sum(s) + 0.25L) >= 0.5L; });
      check_fd(x, dy, [&](const Slice& s) { return ref::sum_to_one(s, 0.25L, d, true); },
               [&](const Slice& s, const Slice& e) { return ref::sum_to_one_backward(s, e, 0.25L, d, true); });
    });
  }
}

TEST_CASE("backward reference vs finite differences: L1Norm, L2Norm, PowerNorm", "[reference][backward]") {
  for_lengths(201, [&](std::size_t n, Gen& g) {
    const Slice dy = g.normal(n);
    const Slice x = g.normal_where(n, 0.2L, 1.5L, [](const Slice& s) { return away_from_zero(s); });
    for (long double eps : {0.0L, 1e-12L}) {
      INFO("eps " << static_cast<double>(eps));
      check_fd(x, dy, [&](const Slice& s) { return ref::l1(s, eps); },
               [&](const Slice& s, const Slice& e) { return ref::l1_backward(s, e, eps); });
      for (bool clamp : {false, true})
        check_fd(x, dy, [&](const Slice& s) { return ref::l2(s, eps, clamp); },
                 [&](const Slice& s, const Slice& e) { return ref::l2_backward(s, e, eps, clamp); });
      for (long double p : {1.0L, 1.5L, 2.0L, 3.0L, 4.5L}) {
        INFO("p " << static_cast<double>(p));
        check_fd(x, dy, [&](const Slice& s) { return ref::power_norm(s, p, eps); },
                 [&](const Slice& s, const Slice& e) { return ref::power_norm_backward(s, e, p, eps); });
      }
    }
    // The epsilon regime: the norm stays below eps in a neighbourhood, y = x/eps.
    const Slice small = g.uniform(n, -0.1L, 0.1L);
    check_fd(small, dy, [&](const Slice& s) { return ref::l1(s, 2); },
             [&](const Slice& s, const Slice& e) { return ref::l1_backward(s, e, 2); });
    check_fd(small, dy, [&](const Slice& s) { return ref::l2(s, 2, false); },
             [&](const Slice& s, const Slice& e) { return ref::l2_backward(s, e, 2, false); });
    check_fd(small, dy, [&](const Slice& s) { return ref::l2(s, 2, true); },
             [&](const Slice& s, const Slice& e) { return ref::l2_backward(s, e, 2, true); });
    check_fd(small, dy, [&](const Slice& s) { return ref::power_norm(s, 3, 2); },
             [&](const Slice& s, const Slice& e) { return ref::power_norm_backward(s, e, 3, 2); });
  });
  // p = 2 and p = 1 are L2 and L1 exactly.
  for_lengths(202, [&](std::size_t n, Gen& g) {
    const Slice x = g.normal(n), dy = g.normal(n);
    require_equal(ref::power_norm_backward(x, dy, 2, 1e-12L), ref::l2_backward(x, dy, 1e-12L, false), 1e-16L);
    require_equal(ref::power_norm_backward(x, dy, 1, 1e-12L), ref::l1_backward(x, dy, 1e-12L), 1e-16L);
  });
}

TEST_CASE("backward reference vs finite differences: MaxNorm", "[reference][backward]") {
  for_lengths(301, [&](std::size_t n, Gen& g) {
    const Slice dy = g.normal(n);
    const Slice x = g.normal_where(n, 0.2L, 1.5L, [](const Slice& s) { return unique_max_abs(s); });
    for (long double eps : {0.0L, 1e-12L})
      check_fd(x, dy, [&](const Slice& s) { return ref::max_norm(s, eps); },
               [&](const Slice& s, const Slice& e) { return ref::max_norm_backward(s, e, eps); });
    check_fd(x, dy, [&](const Slice& s) { return ref::max_norm(s, 100); },  // eps regime
             [&](const Slice& s, const Slice& e) { return ref::max_norm_backward(s, e, 100); });
  });
}

TEST_CASE("backward reference vs finite differences: MinMax", "[reference][backward]") {
  for_lengths(401, [&](std::size_t n, Gen& g) {
    const Slice dy = g.normal(n);
    const Slice x = g.normal_where(n, 0.2L, 1.5L, [](const Slice& s) { return distinct_extremes(s, 1e-3L); });
    check_fd(x, dy, [&](const Slice& s) { return ref::min_max(s, 0, 1); },
             [&](const Slice& s, const Slice& e) { return ref::min_max_backward(s, e, 0, 1); });
    check_fd(x, dy, [&](const Slice& s) { return ref::min_max(s, -1, 3.5L); },
             [&](const Slice& s, const Slice& e) { return ref::min_max_backward(s, e, -1, 3.5L); });
  });
}

TEST_CASE("backward reference vs finite differences: ZScore", "[reference][backward]") {
  for (int ddof : {0, 1}) {
    INFO("ddof " << ddof);
    for_lengths(
        501 + static_cast<unsigned>(ddof),
        [&](std::size_t n, Gen& g) {
          const Slice dy = g.normal(n);
          const Slice x = g.normal_where(n, 0.5L, 2, [](const Slice& s) { return spread(s); });
          check_fd(x, dy, [&](const Slice& s) { return ref::z_score(s, ddof, 0, false); },
                   [&](const Slice& s, const Slice& e) { return ref::z_score_backward(s, e, ddof, 0, false); });
          check_fd(x, dy, [&](const Slice& s) { return ref::z_score(s, ddof, 1e-3L, false); },
                   [&](const Slice& s, const Slice& e) { return ref::z_score_backward(s, e, ddof, 1e-3L, false); });
          for (long double eps : {1e-3L, 0.5L})
            check_fd(x, dy, [&](const Slice& s) { return ref::z_score(s, ddof, eps, true); },
                     [&](const Slice& s, const Slice& e) { return ref::z_score_backward(s, e, ddof, eps, true); });
          // sigma <= eps without add_epsilon: the output is 0 in a neighbourhood.
          const Slice narrow = g.uniform(n, -0.01L, 0.01L);
          check_fd(narrow, dy, [&](const Slice& s) { return ref::z_score(s, ddof, 1, false); },
                   [&](const Slice& s, const Slice& e) { return ref::z_score_backward(s, e, ddof, 1, false); });
        },
        ddof == 1 ? 2 : 1);
  }
}

TEST_CASE("backward reference vs finite differences: LayerNorm and RMSNorm dx", "[reference][backward]") {
  for_lengths(601, [&](std::size_t n, Gen& g) {
    const Slice dy = g.normal(n);
    const Slice x = g.normal_where(n, 0.5L, 2, [](const Slice& s) { return spread(s); });
    const Slice gamma = g.uniform(n, 0.5L, 1.5L), beta = g.normal(n);
    for (long double eps : {0.0L, 1e-5L, 0.5L}) {
      INFO("eps " << static_cast<double>(eps));
      for (const Slice* gm : {static_cast<const Slice*>(nullptr), &gamma}) {
        INFO((gm ? "gamma, beta" : "no affine"));
        const Slice* bt = gm ? &beta : nullptr;
        if (n > 1 || eps > 0)  // one element with eps = 0 is a constant slice (guard, tested directly)
          check_fd(x, dy, [&](const Slice& s) { return ref::layer_norm(s, eps, gm, bt); },
                   [&](const Slice& s, const Slice& e) { return ref::layer_norm_backward(s, e, eps, gm); });
        check_fd(x, dy, [&](const Slice& s) { return ref::rms_norm(s, eps, gm, bt); },
                 [&](const Slice& s, const Slice& e) { return ref::rms_norm_backward(s, e, eps, gm); });
      }
    }
  });
}

TEST_CASE("backward reference vs finite differences: Softmax and LogSoftmax (from y)", "[reference][backward]") {
  for_lengths(701, [&](std::size_t n, Gen& g) {
    const Slice dy = g.normal(n);
    const Slice x = g.normal(n, 0.5L, 2);
    for (long double t : {1.0L, 0.5L, 2.5L}) {
      INFO("temperature " << static_cast<double>(t));
      for (MaskedSlice m : {MaskedSlice::nan, MaskedSlice::zeros}) {
        check_fd(x, dy, [&](const Slice& s) { return ref::softmax(s, m, P::propagate, t); },
                 [&](const Slice& y, const Slice& e) { return ref::softmax_backward(y, e, t); }, true);
        check_fd(x, dy, [&](const Slice& s) { return ref::log_softmax(s, m, P::propagate, t); },
                 [&](const Slice& y, const Slice& e) { return ref::log_softmax_backward(y, e, t, m); }, true);
      }
    }
    // Partly masked (-inf) entries. The masked outputs still depend on the
    // other inputs (log_softmax: y_m = -inf - LSE), so FD runs on a finite
    // stand-in, x_m = -12000 t (exp(x_m / t) underflows to 0 in long double:
    // every other output is the masked slice's), over every position; the
    // backward runs on the masked slice's own y.
    if (n >= 2) {
      Slice xm = x;
      const std::size_t m = g.index(n);
      xm[m] = -inf;
      for (long double t : {1.0L, 0.5L}) {
        Slice xs = xm;
        xs[m] = -12000 * t;
        const Fwd sm = [&](const Slice& s) { return ref::softmax(s, MaskedSlice::nan, P::propagate, t); };
        const Fwd lsm = [&](const Slice& s) { return ref::log_softmax(s, MaskedSlice::nan, P::propagate, t); };
        REQUIRE(sm(xs)[m] == 0);
        const Slice ds = ref::softmax_backward(sm(xm), dy, t);
        const Slice dl = ref::log_softmax_backward(lsm(xm), dy, t);
        require_matches_fd(xs, dy, ds, fd_gradient(xs, dy, sm), 1e-8L);
        require_matches_fd(xs, dy, dl, fd_gradient(xs, dy, lsm), 1e-8L);
        REQUIRE(ds[m] == 0);
        REQUIRE(dl[m] == dy[m] / t);
      }
    }
  });
}

// ============================================================== NaN policies

TEST_CASE("backward reference NaN rules: ignore / zero skip NaN positions, propagate poisons", "[reference][backward]") {
  // Every functor at the defaults normkit uses, as (forward, backward, saved is y).
  struct Case {
    std::string name;
    std::function<Slice(const Slice&, const Slice& gamma, P)> fwd;
    std::function<Slice(const Slice&, const Slice&, const Slice& gamma, P)> bwd;
    bool from_output;
    bool zero_allowed;
  };
  using G = const Slice&;
  const std::vector<Case> cases{
      {"SumToOne", [](G s, G, P p) { return ref::sum_to_one(s, 0, Degenerate::uniform, false, p); },
       [](G s, G e, G, P p) { return ref::sum_to_one_backward(s, e, 0, Degenerate::uniform, false, p); }, false, true},
      {"L1Norm", [](G s, G, P p) { return ref::l1(s, 1e-12L, p); },
       [](G s, G e, G, P p) { return ref::l1_backward(s, e, 1e-12L, p); }, false, true},
      {"L2Norm", [](G s, G, P p) { return ref::l2(s, 1e-12L, false, p); },
       [](G s, G e, G, P p) { return ref::l2_backward(s, e, 1e-12L, false, p); }, false, true},
      {"PowerNorm(3)", [](G s, G, P p) { return ref::power_norm(s, 3, 1e-12L, p); },
       [](G s, G e, G, P p) { return ref::power_norm_backward(s, e, 3, 1e-12L, p); }, false, true},
      {"MaxNorm", [](G s, G, P p) { return ref::max_norm(s, 0, p); },
       [](G s, G e, G, P p) { return ref::max_norm_backward(s, e, 0, p); }, false, true},
      {"MinMax", [](G s, G, P p) { return ref::min_max(s, 0, 1, p); },
       [](G s, G e, G, P p) { return ref::min_max_backward(s, e, 0, 1, p); }, false, true},
      {"ZScore", [](G s, G, P p) { return ref::z_score(s, 0, 0, false, p); },
       [](G s, G e, G, P p) { return ref::z_score_backward(s, e, 0, 0, false, p); }, false, true},
      {"LayerNorm+gamma", [](G s, G gm, P p) { return ref::layer_norm(s, 1e-5L, &gm, nullptr, p); },
       [](G s, G e, G gm, P p) { return ref::layer_norm_backward(s, e, 1e-5L, &gm, p); }, false, true},
      {"RMSNorm+gamma", [](G s, G gm, P p) { return ref::rms_norm(s, 1e-6L, &gm, nullptr, p); },
       [](G s, G e, G gm, P p) { return ref::rms_norm_backward(s, e, 1e-6L, &gm, p); }, false, true},
      {"Softmax(t=0.5)", [](G s, G, P p) { return ref::softmax(s, MaskedSlice::nan, p, 0.5L); },
       [](G y, G e, G, P p) { return ref::softmax_backward(y, e, 0.5L, p); }, true, true},
      {"LogSoftmax(t=2)", [](G s, G, P p) { return ref::log_softmax(s, MaskedSlice::nan, p, 2); },
       [](G y, G e, G, P p) { return ref::log_softmax_backward(y, e, 2, MaskedSlice::nan, p); }, true, false},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    int checked = 0, skipped = 0;
    for_lengths(801, [&](std::size_t n, Gen& g) {
      // Data away from every kink (used by all functors), 1..n-1 NaNs at random positions.
      if (n < 2) return;
      Slice x = g.normal_where(n, 0.7L, 1.5L, [](const Slice& s) {
        return away_from_zero(s) && distinct_extremes(s, 1e-3L) && unique_max_abs(s) && spread(s) &&
               sum_away_from_zero(s);
      });
      x[g.index(n)] = qnan;
      if (n > 3) x[g.index(n)] = qnan;
      Slice dy_in = g.normal(n);
      const Slice gamma = g.uniform(n, 0.5L, 1.5L);
      for (std::size_t i = 0; i < n; ++i)
        if (std::isnan(x[i]) && g.index(2) == 0) dy_in[i] = qnan;  // dy at NaN positions must not matter
      // The sub-slice of valid values must still be away from the kinks (sums, spread, ties).
      Slice valid;
      for (long double v : x)
        if (!std::isnan(v)) valid.push_back(v);
      if (!(sum_away_from_zero(valid) && spread(valid) && distinct_extremes(valid, 1e-3L) && unique_max_abs(valid))) {
        ++skipped;
        return;
      }
      ++checked;

      // propagate: a NaN slice.
      REQUIRE(all_nan(c.bwd(c.from_output ? c.fwd(x, gamma, P::propagate) : x, dy_in, gamma, P::propagate)));
      for (P p : {P::ignore, P::zero}) {
        if (p == P::zero && !c.zero_allowed) {
          REQUIRE_THROWS_AS(c.bwd(c.fwd(x, gamma, p), dy_in, gamma, p), std::invalid_argument);
          continue;
        }
        INFO((p == P::ignore ? "ignore" : "zero"));
        const Fwd fwd = [&](const Slice& s) { return c.fwd(s, gamma, p); };
        // Softmax under zero: the NaN inputs' outputs are saved as 0, not NaN,
        // so the backward cannot skip them; a NaN dy there gives 0 * NaN (see
        // the "NaN dy" test case). Finite dy there then.
        Slice dy = dy_in;
        if (p == P::zero && c.from_output)
          for (long double& v : dy)
            if (std::isnan(v)) v = 1.5L;
        const Slice an = c.bwd(c.from_output ? fwd(x) : x, dy, gamma, p);
        for (std::size_t i = 0; i < n; ++i)
          if (std::isnan(x[i])) REQUIRE(an[i] == 0);
        require_matches_fd(x, dy, an, fd_gradient(x, dy, fwd), 1e-8L);
        // And it is the backward of the valid values alone.
        Slice dv, gv, an_valid;
        for (std::size_t i = 0; i < n; ++i)
          if (!std::isnan(x[i])) {
            dv.push_back(dy[i]);
            gv.push_back(gamma[i]);
            an_valid.push_back(an[i]);
          }
        require_equal(c.bwd(c.from_output ? c.fwd(valid, gv, P::propagate) : valid, dv, gv, P::propagate), an_valid,
                      1e-17L);
      }
    });
    REQUIRE(checked >= 4 * skipped);  // the constraints leave most random slices usable
  }
}

TEST_CASE("backward reference NaN rules: dgamma / dbeta of a slice propagate poisons", "[reference][backward]") {
  // Literal formulas (spec gap, see the header): dgamma = dy * xh is NaN, dbeta = dy is not.
  const Slice x{1, qnan, 3}, dy{0.5, 2, -1}, gamma{1, 2, 3};
  for (const ref::AffineBackward& a : {ref::layer_norm_backward_affine(x, dy, 1e-5L, &gamma),
                                       ref::rms_norm_backward_affine(x, dy, 1e-6L, &gamma)}) {
    REQUIRE(all_nan(a.dx));
    REQUIRE(all_nan(a.dgamma));
    require_equal(a.dbeta, dy);
  }
  // ignore / zero skip the NaN position.
  const ref::AffineBackward b = ref::layer_norm_backward_affine(x, dy, 1e-5L, &gamma, P::ignore);
  require_equal(b.dbeta, {0.5, 0, -1});
  REQUIRE(b.dgamma[1] == 0);
  REQUIRE(b.dx[1] == 0);
}

TEST_CASE("backward reference NaN rules: all-NaN slices and NaN dy", "[reference][backward]") {
  const Slice x{qnan, qnan, qnan}, dy{1, 2, 3};
  require_equal(ref::l2_backward(x, dy, 1e-12L, false, P::ignore), {0, 0, 0});
  require_equal(ref::z_score_backward(x, dy, 0, 0, false, P::zero), {0, 0, 0});
  REQUIRE(all_nan(ref::l2_backward(x, dy, 1e-12L, false, P::propagate)));
  // A NaN in dy at a valid position flows through the formulas.
  REQUIRE(all_nan(ref::l2_backward({1, 2, 3}, {1, qnan, 3}, 1e-12L, false, P::ignore)));
  // dx at a NaN position of saved is 0 whatever dy holds there.
  const Slice d = ref::softmax_backward({0.25, qnan, 0.75}, {1, qnan, 2}, 1, P::ignore);
  REQUIRE(d[1] == 0);
  REQUIRE(std::isfinite(d[0]));
  // Softmax under NanPolicy::zero saves 0 (not NaN) for a NaN input, so that
  // position is an ordinary y = 0 to the backward: finite dy there does not
  // matter (y * (...) = 0), but a NaN dy poisons the slice through
  // sum dy*y = 0 * NaN (the spec's "whatever dy holds there" cannot apply).
  const Slice yz = ref::softmax({1, qnan, 2}, MaskedSlice::nan, P::zero);
  REQUIRE(yz[1] == 0);
  require_equal(ref::softmax_backward(yz, {1, 7, 2}, 1, P::zero), ref::softmax_backward(yz, {1, -3, 2}, 1, P::zero));
  REQUIRE(ref::softmax_backward(yz, {1, 7, 2}, 1, P::zero)[1] == 0);
  REQUIRE(all_nan(ref::softmax_backward(yz, {1, qnan, 2}, 1, P::zero)));
}

// ============================================================== guards, direct expectations

TEST_CASE("backward reference guard rules", "[reference][backward]") {
  const Slice dy{0.5, -1.5, 2};

  SECTION("SumToOne degenerate slices") {
    const Slice zero_sum{1, -3, 2};
    require_equal(ref::sum_to_one_backward(zero_sum, dy, 0, Degenerate::uniform, false), {0, 0, 0});
    require_equal(ref::sum_to_one_backward(zero_sum, dy, 0, Degenerate::zeros, false), {0, 0, 0});
    REQUIRE(all_nan(ref::sum_to_one_backward(zero_sum, dy, 0, Degenerate::nan, false)));
    // |s| <= eps is degenerate, |s| just above is not.
    require_equal(ref::sum_to_one_backward({0.25, 0.25, 0}, dy, 0.5, Degenerate::zeros, false), {0, 0, 0});
    const Slice d = ref::sum_to_one_backward({0.25, 0.25, 0}, dy, 0.49, Degenerate::zeros, false);
    // s = 0.5, y = (0.5, 0.5, 0), sum dy*y = -0.5: dx = (dy + 0.5) / 0.5.
    require_equal(d, {2, -2, 5});
    require_equal(ref::sum_to_one_backward({inf, 1, 2}, dy, 0, Degenerate::uniform, false), {0, 0, 0});
    // add_epsilon never degenerates: s + eps = 0.5.
    require_equal(ref::sum_to_one_backward({1, -3, 2}, dy, 0.5, Degenerate::nan, true),
                  {(0.5L - (0.5L * 2 + 1.5L * 6 + 2 * 4)) / 0.5L, (-1.5L - 18) / 0.5L, (2 - 18.0L) / 0.5L});
  }

  SECTION("zero slices, eps clamps and infinite elements of the norms") {
    const Slice z{0, 0, 0};
    require_equal(ref::l1_backward(z, dy, 0), {0, 0, 0});
    require_equal(ref::l2_backward(z, dy, 0, false), {0, 0, 0});
    require_equal(ref::l2_backward(z, dy, 0, true), {0, 0, 0});  // spec gap: clamp_squared, eps 0 (see header)
    require_equal(ref::power_norm_backward(z, dy, 3, 0), {0, 0, 0});
    require_equal(ref::max_norm_backward(z, dy, 0), {0, 0, 0});
    require_equal(ref::l1_backward(z, dy, 0.25), {2, -6, 8});
    require_equal(ref::l2_backward(z, dy, 0.25, false), {2, -6, 8});
    require_equal(ref::l2_backward(z, dy, 0.0625, true), {2, -6, 8});  // dy / sqrt(eps)
    require_equal(ref::power_norm_backward(z, dy, 3, 0.25), {2, -6, 8});
    require_equal(ref::max_norm_backward(z, dy, 0.25), {2, -6, 8});
    // N exactly eps is the clamp side (N > eps takes the formula).
    require_equal(ref::l1_backward({0.25, 0, 0}, dy, 0.25), {2, -6, 8});
    // Zero slices with eps > 0 are smooth points: FD agrees.
    for (long double eps : {1e-3L, 0.25L}) {
      check_fd(z, dy, [&](const Slice& s) { return ref::l1(s, eps); },
               [&](const Slice& s, const Slice& e) { return ref::l1_backward(s, e, eps); });
      check_fd(z, dy, [&](const Slice& s) { return ref::l2(s, eps, false); },
               [&](const Slice& s, const Slice& e) { return ref::l2_backward(s, e, eps, false); });
      check_fd(z, dy, [&](const Slice& s) { return ref::max_norm(s, eps); },
               [&](const Slice& s, const Slice& e) { return ref::max_norm_backward(s, e, eps); });
      check_fd(z, dy, [&](const Slice& s) { return ref::power_norm(s, 2.5L, eps); },
               [&](const Slice& s, const Slice& e) { return ref::power_norm_backward(s, e, 2.5L, eps); });
    }
    for (const Slice& x : {Slice{inf, 1, 2}, Slice{1, -inf, 2}}) {
      REQUIRE(all_nan(ref::l1_backward(x, dy, 1e-12L)));
      REQUIRE(all_nan(ref::l2_backward(x, dy, 1e-12L, false)));
      REQUIRE(all_nan(ref::l2_backward(x, dy, 1e-12L, true)));
      REQUIRE(all_nan(ref::power_norm_backward(x, dy, 3, 1e-12L)));  // spec gap (see header)
      REQUIRE(all_nan(ref::max_norm_backward(x, dy, 0)));            // spec gap (see header)
    }
  }

  SECTION("L1 / p = 1: sign(0) = 0, which is what the central difference gives at 0") {
    const Slice x{0, 2, -1};
    // N = 3, sum dy*x = -3 - 2 = -5: dx = dy/3 + sign(x) 5/9.
    require_equal(ref::l1_backward(x, dy, 1e-12L), {0.5L / 3, -0.5L + 5 / 9.0L, 2 / 3.0L - 5 / 9.0L}, 1e-17L);
    require_equal(ref::power_norm_backward(x, dy, 1, 1e-12L), ref::l1_backward(x, dy, 1e-12L), 1e-17L);
    // A step of h at x_0 = 0 changes N by h both ways: the central difference
    // is dy_0/(N + h), within h/N of the sign(0) = 0 rule.
    check_fd(x, dy, [](const Slice& s) { return ref::l1(s, 1e-12L); },
             [](const Slice& s, const Slice& e) { return ref::l1_backward(s, e, 1e-12L); }, false, 1e-10L, 1e-8L);
    // p > 1 is differentiable at 0.
    check_fd(x, dy, [](const Slice& s) { return ref::power_norm(s, 3, 1e-12L); },
             [](const Slice& s, const Slice& e) { return ref::power_norm_backward(s, e, 3, 1e-12L); });
  }

  SECTION("MinMax and ZScore constant slices, ddof") {
    require_equal(ref::min_max_backward({2, 2, 2}, dy, 0, 1), {0, 0, 0});
    require_equal(ref::min_max_backward({7}, {3}, -1, 1), {0});
    require_equal(ref::z_score_backward({2, 2, 2}, dy, 0, 0, false), {0, 0, 0});
    require_equal(ref::z_score_backward({2, 2, 2}, dy, 1, 0.5, false), {0, 0, 0});
    // sigma <= eps without add_epsilon: 0; sigma = 1 here.
    require_equal(ref::z_score_backward({1, 2, 3}, dy, 1, 1, false), {0, 0, 0});
    // constant with add_epsilon: (dy - mean dy) / eps; mean dy = 1/3.
    require_equal(ref::z_score_backward({2, 2, 2}, dy, 0, 0.5, true),
                  {(0.5L - 1 / 3.0L) * 2, (-1.5L - 1 / 3.0L) * 2, (2 - 1 / 3.0L) * 2});
    // ...the derivative there: the central difference is v/(eps + h sigma_v), O(h) off.
    check_fd({2, 2, 2}, dy, [](const Slice& s) { return ref::z_score(s, 0, 0.5, true); },
             [](const Slice& s, const Slice& e) { return ref::z_score_backward(s, e, 0, 0.5, true); }, false, 1e-9L,
             1e-8L);
    REQUIRE(all_nan(ref::z_score_backward({1, 2}, {1, 1}, 2, 0, false)));  // n - ddof = 0
    REQUIRE(all_nan(ref::z_score_backward({1}, {1}, 1, 0, true)));
    // Under ignore n counts non-NaN entries: one left with ddof 1 is NaN there, 0 at the NaN.
    require_equal(ref::z_score_backward({1, qnan}, {1, 1}, 1, 0, false, P::ignore), {qnan, 0});
    // Hand-computed: x = (1, 2, 3, 6), mu 3, ddof 0: sigma^2 = 14/4.
    const Slice x{1, 2, 3, 6}, g{1, 0, -1, 2};
    const long double s = std::sqrt(3.5L), mg = 0.5L, sgx = (1 * -2 + 0 + -1 * 0 + 2 * 3) / s;
    Slice want;
    for (std::size_t i = 0; i < 4; ++i) want.push_back((g[i] - mg - (x[i] - 3) / s * sgx / 4) / s);
    require_equal(ref::z_score_backward(x, g, 0, 0, false), want, 1e-17L);
  }

  SECTION("LayerNorm / RMSNorm constant and zero slices") {
    const Slice c{1.5, 1.5, 1.5}, gamma{2, 1, 0.5};
    // eps > 0: smooth, dx = rstd (g - mean g) with rstd = 1/sqrt(eps).
    const long double rstd = 1 / std::sqrt(0.25L);
    Slice g{dy[0] * 2, dy[1] * 1, dy[2] * 0.5L}, want;
    const long double mg = (g[0] + g[1] + g[2]) / 3;
    for (long double v : g) want.push_back(rstd * (v - mg));
    require_equal(ref::layer_norm_backward(c, dy, 0.25, &gamma), want);
    check_fd(c, dy, [&](const Slice& s) { return ref::layer_norm(s, 0.25, &gamma); },
             [&](const Slice& s, const Slice& e) { return ref::layer_norm_backward(s, e, 0.25, &gamma); });
    // eps = 0: the output is the guard beta, dx = 0, dgamma = 0, dbeta = dy.
    const ref::AffineBackward a = ref::layer_norm_backward_affine(c, dy, 0, &gamma);
    require_equal(a.dx, {0, 0, 0});
    require_equal(a.dgamma, {0, 0, 0});
    require_equal(a.dbeta, dy);
    require_equal(ref::layer_norm_backward({4}, {2}, 0), {0});
    // RMSNorm on a zero slice with eps > 0: dx = g / sqrt(eps) (smooth, FD agrees).
    require_equal(ref::rms_norm_backward({0, 0, 0}, dy, 0.25, &gamma), {2, -3, 2});
    check_fd({0, 0, 0}, dy, [&](const Slice& s) { return ref::rms_norm(s, 0.25, &gamma); },
             [&](const Slice& s, const Slice& e) { return ref::rms_norm_backward(s, e, 0.25, &gamma); });
  }

  SECTION("Softmax / LogSoftmax masked slices, temperature, NanPolicy::zero") {
    // Fully masked, written as zeros: dx = 0; written as NaN: NaN (propagate).
    const Slice yz = ref::softmax({-inf, -inf, -inf}, MaskedSlice::zeros);
    require_equal(ref::softmax_backward(yz, dy, 2), {0, 0, 0});
    REQUIRE(all_nan(ref::softmax_backward(ref::softmax({-inf, -inf, -inf}, MaskedSlice::nan), dy, 2)));
    const Slice lz = ref::log_softmax({-inf, -inf, -inf}, MaskedSlice::zeros);
    require_equal(ref::log_softmax_backward(lz, dy, 2, MaskedSlice::zeros), {0, 0, 0});
    REQUIRE(all_nan(ref::log_softmax_backward(ref::log_softmax({-inf, -inf, -inf}, MaskedSlice::nan), dy, 2)));
    // Spec gap (see header): a masked NaN slice under ignore / zero has only NaN positions: 0.
    require_equal(ref::softmax_backward({qnan, qnan, qnan}, dy, 1, P::ignore), {0, 0, 0});
    require_equal(ref::log_softmax_backward({qnan, qnan, qnan}, dy, 1, MaskedSlice::nan, P::ignore), {0, 0, 0});
    // One element: y = 0 is a real log-probability; dx = dy - dy = 0 anyway.
    require_equal(ref::log_softmax_backward({0}, {3}, 1, MaskedSlice::zeros), {0});
    // Hand values, temperature 2: y = (1/4, 3/4), sum dy*y = (1 + 6)/4.
    require_equal(ref::softmax_backward({0.25, 0.75}, {1, 2}, 2), {0.25L * (1 - 1.75L) / 2, 0.75L * (2 - 1.75L) / 2});
    require_equal(ref::log_softmax_backward({std::log(0.25L), std::log(0.75L)}, {1, 2}, 2),
                  {(1 - 0.25L * 3) / 2, (2 - 0.75L * 3) / 2}, 1e-17L);
    REQUIRE_THROWS_AS(ref::log_softmax_backward({-1, -0.5}, dy, 1, MaskedSlice::nan, P::zero), std::invalid_argument);
  }
}

// ============================================================== ties (not differentiable: direct expectations)

TEST_CASE("backward reference tie rules of MaxNorm and MinMax", "[reference][backward]") {
  SECTION("MaxNorm splits the max term evenly among ties, with their signs") {
    // M = 2, c = 2, sum dy*x = 2 - (-2)... with dy = (1, 3, -1): 2*1 + (-2)*3 + 1*(-1) = -5.
    const Slice x{2, -2, 1}, dy{1, 3, -1};
    const long double S = -5;
    require_equal(ref::max_norm_backward(x, dy, 0),
                  {1 / 2.0L - S / 4 * 1 / 2, 3 / 2.0L - S / 4 * -1 / 2, -1 / 2.0L}, 1e-17L);
    // Three-way tie.
    const Slice x3{-3, 3, 3, 1}, d3{1, 1, 1, 1};
    const long double S3 = -3 + 3 + 3 + 1;
    require_equal(ref::max_norm_backward(x3, d3, 0),
                  {1 / 3.0L + S3 / 9 / 3, 1 / 3.0L - S3 / 9 / 3, 1 / 3.0L - S3 / 9 / 3, 1 / 3.0L}, 1e-17L);
  }

  SECTION("MinMax splits the min and max terms evenly among ties") {
    // x = (0, 4, 0, 4, 2): m = 0 (c 2), M = 4 (c 2), r = 1/4; u = (0, 1, 0, 1, 0.5).
    const Slice x{0, 4, 0, 4, 2}, dy{1, 2, 3, 4, 5};
    const long double r = 0.25L, to_min = 1 + 3 + 5 * 0.5L, to_max = 2 + 4 + 5 * 0.5L;
    require_equal(ref::min_max_backward(x, dy, 0, 1),
                  {r * 1 - r * to_min / 2, r * 2 - r * to_max / 2, r * 3 - r * to_min / 2, r * 4 - r * to_max / 2,
                   r * 5},
                  1e-17L);
  }

  SECTION("the split is the mean of the gradients with each tie broken") {
    // Breaking the tie towards entry k (pushing it outwards by 1e-12) makes k
    // the single extreme; the mean over k of those tie-free gradients tends to
    // the split rule.
    Gen g(901);
    for (int t = 0; t < 20; ++t) {
      const std::size_t n = 3 + g.index(6);
      const Slice dy = g.normal(n);
      Slice x = g.uniform(n, -1, 1);
      const std::size_t a = g.index(n), b = (a + 1 + g.index(n - 1)) % n;
      x[a] = 1.5L;
      x[b] = t % 2 ? -1.5L : 1.5L;  // a max-abs tie of equal or opposite sign
      Slice mean(n, 0.0L);
      for (std::size_t k : {a, b}) {
        Slice xk = x;
        xk[k] += ref::bwd::sign(xk[k]) * 1e-12L;
        const Slice d = ref::max_norm_backward(xk, dy, 0);
        for (std::size_t i = 0; i < n; ++i) mean[i] += d[i] / 2;
      }
      require_equal(ref::max_norm_backward(x, dy, 0), mean, 1e-10L);

      Slice y = g.uniform(n, -1, 1);  // min and max ties
      const std::size_t c = g.index(n), e = (c + 1 + g.index(n - 1)) % n;
      y[a] = y[b] = 2;
      if (c != a && c != b && e != a && e != b) y[c] = y[e] = -2;
      Slice mm(n, 0.0L);
      std::vector<std::size_t> tops, bottoms;
      for (std::size_t i = 0; i < n; ++i) {
        if (y[i] == 2) tops.push_back(i);
        if (y[i] == *std::min_element(y.begin(), y.end())) bottoms.push_back(i);
      }
      for (std::size_t k : tops)
        for (std::size_t l : bottoms) {
          Slice yk = y;
          yk[k] += 1e-12L;
          yk[l] -= 1e-12L;
          const Slice d = ref::min_max_backward(yk, dy, -1, 1);
          for (std::size_t i = 0; i < n; ++i) mm[i] += d[i] / static_cast<long double>(tops.size() * bottoms.size());
        }
      require_equal(ref::min_max_backward(y, dy, -1, 1), mm, 1e-10L);
    }
  }
}

// ============================================================== dgamma / dbeta

TEST_CASE("backward reference LayerNorm / RMSNorm dgamma and dbeta vs finite differences", "[reference][backward]") {
  // One slice: dL/dgamma_k, dL/dbeta_k of L = sum dy * f(x; gamma, beta).
  for_lengths(1001, [&](std::size_t n, Gen& g) {
    const Slice x = g.normal_where(n, 0.5L, 2, [](const Slice& s) { return spread(s); });
    const Slice dy = g.normal(n), gamma = g.uniform(n, 0.5L, 1.5L), beta = g.normal(n);
    for (int which = 0; which < 2; ++which) {
      INFO((which ? "RMSNorm" : "LayerNorm"));
      const long double eps = which ? 1e-6L : 1e-5L;
      const auto fwd = [&](const Slice& gm, const Slice& bt) {
        return which ? ref::rms_norm(x, eps, &gm, &bt) : ref::layer_norm(x, eps, &gm, &bt);
      };
      const ref::AffineBackward a = which ? ref::rms_norm_backward_affine(x, dy, eps, &gamma)
                                          : ref::layer_norm_backward_affine(x, dy, eps, &gamma);
      const Slice dg = fd_gradient(gamma, dy, [&](const Slice& gm) { return fwd(gm, beta); });
      const Slice db = fd_gradient(beta, dy, [&](const Slice& bt) { return fwd(gamma, bt); });
      require_matches_fd(gamma, dy, a.dgamma, dg, 1e-8L);
      require_matches_fd(beta, dy, a.dbeta, db, 1e-8L);
    }
  });
}

namespace {

// Whole-tensor checks: dx and the summed dgamma / dbeta from the apply_*
// helpers against FD of L = sum dy * apply(x) over the whole tensor.
template <int L>
void tensor_checks(const std::vector<int>& axes, unsigned seed, P nan) {
  using T = Eigen::Tensor<double, 3, L>;
  T x(4, 3, 5), dy(4, 3, 5);
  ref::fill_normal(x, seed, 0.5, 2.0);
  ref::fill_normal(dy, seed + 1, 0.0, 1.0);
  if (nan != P::propagate) ref::add_nans(x, seed + 2, 0.1);
  Eigen::Index n = 1;
  for (int a : axes) n *= x.dimension(a);
  Gen g(seed + 3);
  const Slice gamma = g.uniform(static_cast<std::size_t>(n), 0.5L, 1.5L), beta = g.normal(static_cast<std::size_t>(n));

  // L as a function of the flattened x / gamma / beta.
  const auto total_loss = [&](const Eigen::Tensor<long double, 3, L>& xs, const Slice& gm, const Slice& bt, bool rms) {
    const auto y = ref::apply(xs, axes, [&](const Slice& s) {
      return rms ? ref::rms_norm(s, 1e-6L, &gm, &bt, nan) : ref::layer_norm(s, 1e-5L, &gm, &bt, nan);
    });
    long double l = 0;
    for (Eigen::Index i = 0; i < y.size(); ++i)
      if (!std::isnan(xs.data()[i])) l += static_cast<long double>(dy.data()[i]) * y.data()[i];
    return l;
  };
  const Eigen::Tensor<long double, 3, L> xl = x.template cast<long double>();
  for (bool rms : {false, true}) {
    INFO((rms ? "RMSNorm" : "LayerNorm"));
    const auto got = ref::apply_affine_backward(x, dy, axes, [&](const Slice& s, const Slice& d) {
      return rms ? ref::rms_norm_backward_affine(s, d, 1e-6L, &gamma, nan)
                 : ref::layer_norm_backward_affine(s, d, 1e-5L, &gamma, nan);
    });
    // Plain dx helper agrees with the affine one.
    const auto dx_only = ref::apply_backward(x, dy, axes, [&](const Slice& s, const Slice& d) {
      return rms ? ref::rms_norm_backward(s, d, 1e-6L, &gamma, nan) : ref::layer_norm_backward(s, d, 1e-5L, &gamma, nan);
    });
    for (Eigen::Index i = 0; i < x.size(); ++i) REQUIRE(dx_only.data()[i] == got.dx.data()[i]);

    long double scale = 0;
    for (Eigen::Index i = 0; i < x.size(); ++i) scale = std::max(scale, std::fabs(got.dx.data()[i]));
    for (Eigen::Index i = 0; i < x.size(); ++i) {
      if (std::isnan(x.data()[i])) {
        REQUIRE(got.dx.data()[i] == 0);
        continue;
      }
      const long double h = 1e-6L * std::max(1.0L, std::fabs(xl.data()[i]));
      auto xp = xl, xm = xl;
      xp.data()[i] += h;
      xm.data()[i] -= h;
      const long double fd = (total_loss(xp, gamma, beta, rms) - total_loss(xm, gamma, beta, rms)) / (2 * h);
      INFO("flat index " << i << ": analytic " << static_cast<double>(got.dx.data()[i]) << ", fd "
                         << static_cast<double>(fd));
      REQUIRE(std::fabs(fd - got.dx.data()[i]) < 1e-8L * scale);
    }
    for (int which = 0; which < 2; ++which) {
      const Slice& p = which ? beta : gamma;
      const Slice& an = which ? got.dbeta : got.dgamma;
      REQUIRE(an.size() == p.size());
      long double pscale = 0;
      for (long double v : an) pscale = std::max(pscale, std::fabs(v));
      for (std::size_t k = 0; k < p.size(); ++k) {
        const long double h = 1e-6L * std::max(1.0L, std::fabs(p[k]));
        Slice pp = p, pm = p;
        pp[k] += h;
        pm[k] -= h;
        const long double fd = which ? (total_loss(xl, gamma, pp, rms) - total_loss(xl, gamma, pm, rms)) / (2 * h)
                                     : (total_loss(xl, pp, beta, rms) - total_loss(xl, pm, beta, rms)) / (2 * h);
        INFO((which ? "dbeta[" : "dgamma[") << k << "]: analytic " << static_cast<double>(an[k]) << ", fd "
                                            << static_cast<double>(fd));
        REQUIRE(std::fabs(fd - an[k]) < 1e-8L * pscale);
      }
    }
  }
}

}  // namespace

TEST_CASE("backward reference over tensors: apply_backward / apply_affine_backward vs whole-tensor FD",
          "[reference][backward]") {
  for (P nan : {P::propagate, P::ignore, P::zero}) {
    INFO("nan policy " << static_cast<int>(nan));
    for (const std::vector<int>& axes : {std::vector<int>{0}, {2}, {1, 2}, {0, 1}}) {
      INFO("axes " << axes.front() << ".." << axes.back());
      tensor_checks<Eigen::ColMajor>(axes, 1100 + static_cast<unsigned>(axes.size()), nan);
      tensor_checks<Eigen::RowMajor>(axes, 1200 + static_cast<unsigned>(axes.front()), nan);
    }
  }
  // apply_backward visits the slices exactly as apply() does: the softmax
  // backward of apply(softmax) slice by slice.
  Eigen::Tensor<float, 3, Eigen::RowMajor> x(3, 4, 5), dy(3, 4, 5);
  ref::fill_normal(x, 1300, 0, 1);
  ref::fill_normal(dy, 1301, 0, 1);
  const auto y = ref::apply(x, {1, 2}, [](const Slice& s) { return ref::softmax(s, MaskedSlice::nan); });
  const auto dx = ref::apply_backward(y, dy, {2, 1}, [](const Slice& s, const Slice& d) {
    return ref::softmax_backward(s, d);
  });
  for (Eigen::Index i = 0; i < 3; ++i) {
    Slice ys, ds;
    for (Eigen::Index j = 0; j < 4; ++j)
      for (Eigen::Index k = 0; k < 5; ++k) {  // RowMajor: the last axis varies fastest
        ys.push_back(y(i, j, k));
        ds.push_back(dy(i, j, k));
      }
    const Slice want = ref::softmax_backward(ys, ds);
    std::size_t m = 0;
    for (Eigen::Index j = 0; j < 4; ++j)
      for (Eigen::Index k = 0; k < 5; ++k) REQUIRE(dx(i, j, k) == want[m++]);
  }
  Eigen::Tensor<float, 3, Eigen::RowMajor> wrong(3, 4, 4);
  wrong.setZero();
  REQUIRE_THROWS_AS(ref::apply_backward(x, wrong, {1}, [](const Slice& s, const Slice&) { return s; }),
                    std::invalid_argument);
}
