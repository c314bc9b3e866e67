// normkit's backward passes against the long-double reference: every
// functor configuration, float and double, ranks 1-4, every single axis and
// adjacent axis sets, both layouts, SIMD tails, NaN policies. The cases, the
// checker and the tolerances are in backward_cases.hpp.
#include "backward_cases.hpp"

using namespace backward_test;


// ============================================================== reference comparisons

TEMPLATE_TEST_CASE("backward: every functor, rank 1-4, every single axis, both layouts", "[backward][reference]", float,
                   double) {
  check_axis_sets_both_layouts<TestType>(dims1, 1, 1);
  check_axis_sets_both_layouts<TestType>(dims2, 1, 1);
  check_axis_sets_both_layouts<TestType>(dims3, 1, 1);
  check_axis_sets_both_layouts<TestType>(dims4, 1, 1);
}

TEMPLATE_TEST_CASE("backward: every functor over adjacent axis sets, dgamma / dbeta of every shape",
                   "[backward][reference]", float, double) {
  check_axis_sets_both_layouts<TestType>(dims2, 2, 2);
  check_axis_sets_both_layouts<TestType>(dims3, 2, 3);
  check_axis_sets<TestType, Eigen::RowMajor>(dims4, 2, 3);
  check_axis_sets<TestType, Eigen::ColMajor>(dims4, 4, 4);
}

TEMPLATE_TEST_CASE("backward: SIMD tails on contiguous and strided axes", "[backward][reference][simd]", float,
                   double) {
  for (Index n : tail_lengths) {
    for_each_case<TestType>([&](const auto& c) {
      // contiguous slices
      check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{3, n}, Config{{1}});
      check<TestType, Eigen::ColMajor>(c, std::array<Index, 2>{n, 3}, Config{{0}});
      // strided slices: the SIMD lanes run across the inner width
      for (Index cols : {3, 17})
        check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{n, cols}, Config{{0}});
      check<TestType, Eigen::ColMajor>(c, std::array<Index, 2>{5, n}, Config{{1}});  // inner width 5
      check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{7, n}, Config{{0}});  // inner width n
    });
  }
}

TEMPLATE_TEST_CASE("backward: NaN policies on axis sets and SIMD tails", "[backward][reference][nan]", float, double) {
  for (P p : {P::propagate, P::ignore, P::zero}) {
    INFO("nan policy " << to_string(p));
    check_axis_sets_both_layouts<TestType>(dims3, 1, 2, p, 0.2);
    for (Index n : {1, 3, 8, 17, 33, 100})
      for_each_case<TestType>([&](const auto& c) {
        check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{3, n}, Config{{1}, p, 0.1});
        check<TestType, Eigen::RowMajor>(c, std::array<Index, 2>{n, 5}, Config{{0}, p, 0.1});
      });
  }
}

// ============================================================== finite differences of normkit's forward
