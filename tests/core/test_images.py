"""Reading images: damaged JPEG data is reported, and a colour array's channel order is never assumed silently."""

import warnings

import numpy as np
import pytest

from awing.core.images import DamagedImageError, load_image, read_image


def test_a_jpeg_cut_in_half_is_damaged_not_a_grey_picture(damaged_jpegs):
    good, cut, _ = damaged_jpegs
    assert read_image(cut) is not None  # OpenCV alone decodes it, grey where the data ends
    with pytest.raises(DamagedImageError, match="cut.jpg.*Premature end"):
        read_image(cut, check_damage=True)
    with pytest.raises(DamagedImageError):
        load_image(cut)
    assert load_image(good).shape == (240, 320, 3)


def test_a_jpeg_with_corrupt_data_is_damaged(damaged_jpegs):
    _, _, corrupt = damaged_jpegs
    with pytest.raises(DamagedImageError, match="corrupt.jpg"):
        load_image(corrupt)


def test_the_damage_check_leaves_stderr_working(damaged_jpegs, capfd):
    good, cut, _ = damaged_jpegs
    with pytest.raises(DamagedImageError):
        read_image(cut, check_damage=True)
    import sys

    print("after", file=sys.stderr)
    assert "after" in capfd.readouterr().err
    np.testing.assert_array_equal(read_image(good, check_damage=True), read_image(good))


def test_a_colour_array_without_color_warns_and_is_taken_as_rgb():
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200
    with pytest.warns(UserWarning, match="color='BGR'"):
        out = load_image(rgb)
    assert out[0, 0, 0] == 200
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(rgb, color="BGR")[0, 0, 2] == 200
        assert load_image(rgb, color="RGB")[0, 0, 0] == 200
        assert load_image(rgb[..., 0]).shape == (4, 5, 3)  # grey: no channel order to state
