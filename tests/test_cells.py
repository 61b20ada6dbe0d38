"""Images drawn into character cells: rows of Segments exactly a box wide, centred, equal cells merged."""

import numpy as np
from rich.style import Style

from ptviz.tui.data.cells import SHADES, UPPER_HALF, box_rows, image_rows

BLANK = Style(bgcolor="black")


def cells(row) -> int:
    return sum(len(segment.text) for segment in row)


def test_a_square_image_fills_its_box_and_equal_cells_are_one_segment():
    """An 8×8 image in a 16-cell box: 8 rows of 16 half-cells; a row of one colour is a single Segment whose
    foreground is the upper pixel and background the lower one."""
    pixels = np.zeros((8, 8, 1), np.uint8)
    pixels[4:] = 255  # the lower half white
    rows = image_rows(pixels, 16, BLANK)
    assert len(rows) == box_rows(16) == 8 and all(cells(row) == 16 for row in rows)
    assert all(len(row) == 1 and row[0].text == UPPER_HALF * 16 for row in rows)
    top, bottom = rows[0][0].style, rows[-1][0].style
    assert top.color.triplet == (0, 0, 0) and top.bgcolor.triplet == (0, 0, 0)
    assert bottom.color.triplet == (255, 255, 255) and bottom.bgcolor.triplet == (255, 255, 255)


def test_a_wide_image_is_centred_between_blank_rows():
    """A 4×8 (height×width) RGB image in an 8-cell box takes 2 of its 4 rows, with a blank row above and below."""
    pixels = np.full((4, 8, 3), 200, np.uint8)
    rows = image_rows(pixels, 8, BLANK)
    assert len(rows) == 4 and all(cells(row) == 8 for row in rows)
    assert [row[0].text for row in rows] == [" " * 8, UPPER_HALF * 8, UPPER_HALF * 8, " " * 8]
    assert rows[0][0].style is BLANK


def test_unicode_draws_grey_shades_without_colour():
    """Without colour a bright pixel is a full block and a dark one a blank, in the blank style."""
    pixels = np.zeros((8, 8, 1), np.uint8)
    pixels[:, :4] = 255
    row = image_rows(pixels, 8, BLANK, kind="unicode")[0]
    assert [(s.text, s.style) for s in row] == [(SHADES[0] * 4, BLANK), (SHADES[-1] * 4, BLANK)]
