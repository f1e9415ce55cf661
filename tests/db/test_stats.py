import numpy as np
import pytest
from scipy.stats import binomtest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from db import stats


@pytest.mark.parametrize("k,n", [(0, 100), (3, 100), (76, 100), (50, 50), (1, 7), (13, 29)])
def test_wilson_matches_statsmodels(k, n):
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert stats.wilson(k, n) == pytest.approx((lo, hi), abs=1e-9)


@pytest.mark.parametrize("w,l", [(0, 0), (10, 0), (76, 21), (40, 45), (3, 9), (120, 80)])
def test_sign_test_matches_scipy(w, l):
    expected = 1.0 if w + l == 0 else binomtest(w, w + l, 0.5).pvalue
    assert stats.sign_test(w, l) == pytest.approx(expected, rel=1e-9)


def test_holm_matches_statsmodels():
    p = [0.01, 0.04, 0.03, 0.5, 0.0001]
    assert stats.holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))


def test_krippendorff_alpha_on_the_published_example():
    # Krippendorff's reliability data example (4 coders, 12 units, nominal): alpha = 0.743
    rows = {"A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
            "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
            "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
            "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None]}
    units = {u: {c: rows[c][u] for c in rows if rows[c][u] is not None} for u in range(12)}
    assert stats.krippendorff_alpha(units) == pytest.approx(0.743, abs=5e-4)
    # perfect agreement -> 1; raw agreement by hand on a tiny table
    assert stats.krippendorff_alpha({0: {"x": 1, "y": 1}, 1: {"x": 2, "y": 2}}) == 1.0
    tiny = {0: {"x": "a", "y": "a", "z": "b"}, 1: {"x": "a", "y": "a"}}
    assert stats.raw_agreement(tiny) == pytest.approx(2 / 4)  # pairs: (a,a),(a,b),(a,b),(a,a)


def test_bradley_terry_recovers_simulated_strengths():
    rng = np.random.default_rng(0)
    truth = {"gt": 1.5, "ec": 0.4, "p2p": -0.6, "telea": -1.3}
    names = list(truth)
    pairs = []
    for _ in range(3000):
        i, j = rng.choice(4, 2, replace=False)
        a, b = names[i], names[j]
        p = 1 / (1 + np.exp(truth[b] - truth[a]))
        pairs.append((a, b, 1.0 if rng.random() < p else 0.0))
    votes = [{"gold": None, "repeat_of": None, "left_system": a, "right_system": b,
              "outcome": "left" if s == 1 else "right"} for a, b, s in pairs]
    est = stats.bt_with_intervals(votes, rounds=100, seed=1)
    order = sorted(est, key=lambda s: -est[s]["log_strength"])
    assert order == ["gt", "ec", "p2p", "telea"]
    centred = {k: v - np.mean(list(truth.values())) for k, v in truth.items()}
    for s, v in est.items():
        lo, hi = v["ci95"]
        assert lo <= centred[s] <= hi, (s, v, centred[s])


def test_ties_count_as_half_wins():
    pairs = [("a", "b", 0.5)] * 10
    est = stats.bradley_terry(pairs)
    assert est["a"] == pytest.approx(est["b"], abs=1e-9)


def test_required_samples_has_the_stated_power():
    from scipy.stats import binom

    n = stats.required_samples(0.76)
    assert 20 <= n <= 40

    def power(n, p):
        ks = np.arange(n + 1)
        reject = np.array([binomtest(int(k), n, 0.5).pvalue <= 0.05 for k in ks])
        return binom.pmf(ks, n, p)[reject].sum()

    assert power(n, 0.76) >= 0.8
    assert stats.required_samples(0.6) > stats.required_samples(0.7) > n


def test_task_table_orients_votes_by_system_not_side():
    mk = lambda L, R, o: {"gold": None, "repeat_of": None, "left_system": L, "right_system": R,  # noqa: E731
                          "outcome": o}
    votes = [mk("a", "b", "left"), mk("b", "a", "right"), mk("b", "a", "left"), mk("a", "b", "tie"),
             mk("a", "b", "both_bad")]
    row = stats.task_table(votes, [{"name": "a vs b", "a": "a", "b": "b"}])[0]
    assert (row["wins"], row["losses"], row["ties"], row["both_bad"]) == (2, 1, 1, 1)
    assert row["better_pct"] == pytest.approx(40.0)
