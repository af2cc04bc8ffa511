import numpy as np

from insitu.ir.fixed import FixedType, requantize, round_shift, saturate


def test_round_half_even_matches_numpy_round():
    q = np.arange(-40, 41)
    for shift in (1, 2, 3):
        assert np.array_equal(round_shift(q, shift, "RND_CONV"), np.round(q / 2**shift).astype(np.int64))
        assert np.array_equal(round_shift(q, shift, "TRN"), np.floor(q / 2**shift).astype(np.int64))
    assert np.array_equal(round_shift(q, -2, "TRN"), q * 4)


def test_round_half_up_is_floor_of_x_plus_half():
    q = np.arange(-40, 41)
    for shift in (1, 2, 3):
        assert np.array_equal(round_shift(q, shift, "RND"), np.floor(q / 2**shift + 0.5).astype(np.int64))
    from insitu.ir.reference import round_div

    for den in (3, 4, 9, 12):
        assert np.array_equal(round_div(q, den, "RND"), np.floor(q / den + 0.5).astype(np.int64))


def test_saturate_and_wrap():
    t_sat = FixedType(False, 4, 2, "RND_CONV", "SAT")
    assert saturate(np.array([-3, 5, 20]), t_sat).tolist() == [0, 5, 15]
    t_wrap = FixedType(True, 4, 0)
    assert saturate(np.array([8, -9, 7]), t_wrap).tolist() == [-8, 7, 7]


def test_requantize_relu_grid():
    t = FixedType(False, 4, 1, "RND_CONV", "SAT")
    # values at frac 3: 0.375 -> 0.5 (q=1), 0.25 -> 0 (half to even), 0.75 -> 1.0 (q=2, half to even), 100 -> 7.5
    assert requantize(np.array([3, 2, 6, 800]), 3, t).tolist() == [1, 0, 2, 15]


def test_hls_spelling_and_exact_types():
    assert FixedType(True, 8, 3).hls() == "ap_fixed<8,5>"
    assert FixedType(False, 4, 5, "RND_CONV", "SAT").hls() == "ap_ufixed<4,-1,AP_RND_CONV,AP_SAT>"
    t = FixedType.exact(-129, 127, 4)
    assert t.signed and t.width == 9 and t.min_int <= -129
    assert FixedType.exact(0, 255, 8) == FixedType(False, 8, 8)
