"""The size searches' bisections over a format's one size knob."""

from tnjax.compression.size_knobs import smallest_true, smallest_true_from_below


def test_searching_from_below_finds_what_bisection_finds_and_never_tries_twice_the_answer():
  for high in range(1, 70):
    for answer in range(1, high + 2):  # high + 1: no value is good
      tried = []

      def good(value, answer=answer, tried=tried):
        tried.append(value)
        return value >= answer

      found = smallest_true_from_below(1, high, good)
      assert found == smallest_true(1, high, lambda v, a=answer: v >= a) == min(answer, high)
      assert max(tried, default=1) < 2 * answer, (high, answer, tried)
      assert all(1 <= value <= high for value in tried)
