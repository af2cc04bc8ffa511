"""The IR rewrites compute the same integers as the graphs they replace, on random types and inputs."""

import numpy as np

from insitu.ir import reference
from insitu.ir.fixed import FixedType
from insitu.ir.layers import Add, AvgPool2D, GlobalAvgPool, Input, Requant
from insitu.ir.model import QuantModel
from insitu.ir.simplify import simplify


def _rand_type(rng, frac):
    return FixedType(bool(rng.integers(2)), int(rng.integers(2, 9)), frac, str(rng.choice(["TRN", "RND_CONV"])), "SAT")


def test_requant_pairs_merge_exactly():
    rng = np.random.default_rng(0)
    merged = 0
    for case in range(300):
        t_in = FixedType(True, 12, 6)
        f = int(rng.integers(0, 8))
        a = _rand_type(rng, f)
        b = FixedType(bool(rng.integers(2)), int(rng.integers(2, 9)), f, "TRN", "SAT")  # no shift: rounding unused
        layers = [Input("x", (2, 3, 3), t_in), Requant("a", bool(rng.integers(2)), a),
                  Requant("b", bool(rng.integers(2)), b)]
        qm = QuantModel(layers, ["o"])
        out = simplify(qm)
        x = rng.integers(t_in.min_int, t_in.max_int + 1, (64, 2, 3, 3))
        assert np.array_equal(reference.run(qm, x), reference.run(out, x)), (case, a, b)
        merged += len(out.layers) == 2
    assert merged > 250  # nearly every pair merges (disjoint ranges cannot)


def test_exact_average_takes_the_requant_type():
    rng = np.random.default_rng(1)
    for case in range(100):
        t_in = FixedType(bool(rng.integers(2)), int(rng.integers(3, 9)), int(rng.integers(0, 6)), "TRN", "SAT")
        k = 2
        avg_t = FixedType(t_in.signed, t_in.width + k, t_in.frac + k, "TRN", "SAT")
        out_t = _rand_type(rng, int(rng.integers(0, 9)))
        relu = bool(rng.integers(2)) and not t_in.signed
        for pool in (AvgPool2D("p", 2, avg_t), GlobalAvgPool("p", avg_t)):
            shape = (3, 4, 4) if isinstance(pool, AvgPool2D) else (3, 2, 2)
            layers = [Input("x", shape, t_in), pool, Requant("r", relu, out_t)]
            qm = QuantModel(layers, ["o"])
            out = simplify(qm)
            assert len(out.layers) == 2
            x = rng.integers(t_in.min_int, t_in.max_int + 1, (64, *shape))
            assert np.array_equal(reference.run(qm, x), reference.run(out, x)), (case, t_in, out_t)


def test_a_shared_tensor_is_not_merged():
    t = FixedType(True, 8, 4)
    layers = [Input("x", (2, 3, 3), t), Requant("a", True, FixedType(False, 6, 4, "TRN", "SAT")),
              Requant("b", False, FixedType(False, 4, 4, "TRN", "SAT"), inputs=("a",)),
              Add("s", FixedType(False, 7, 4), inputs=("a", "b"))]
    qm = QuantModel(layers, ["o"])
    assert [l.name for l in simplify(qm).layers] == ["x", "a", "b", "s"]  # 'a' has two readers
