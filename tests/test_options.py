"""qwem_lib.runtime.options: the one check of numeric and named options."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from qwem_lib.runtime.errors import QwemError
from qwem_lib.runtime.options import (MAX_SEED, check_choice, check_int, check_real,
                                      check_seed, parse_int, parse_real)


@pytest.mark.parametrize("value", [3, np.int64(3), np.int32(3), np.uint8(3)])
def test_integers_of_any_kind_pass_as_python_ints(value):
    out = check_int(value, "embed_dim", "--dim")
    assert out == 3 and type(out) is int


@pytest.mark.parametrize("value, shown", [(0, "0"), (True, "True"), (2.0, "2.0"),
                                          ("2", "'2'"), (np.bool_(True), "True"),
                                          (np.float64(2.0), "2.0"), (None, "None")])
def test_non_integers_and_out_of_range_are_one_line(value, shown):
    with pytest.raises(QwemError) as e:
        check_int(value, "embed_dim", "--dim")
    assert str(e.value) == f"embed_dim (--dim) must be an integer >= 1, got {shown}"


def test_integer_range_and_alternatives_are_named():
    assert check_int(10, "n", lo=10, hi=10) == 10
    with pytest.raises(QwemError, match=r"^n must be an integer from 1 to 1,000 or "
                                        r"'auto', got 1001$"):
        check_int(1001, "n", hi=1000, auto=True)
    with pytest.raises(QwemError, match=r"or None \(full batch\)"):
        check_int(0, "batch_size", none="full batch")


@pytest.mark.parametrize("value", [0.5, 1, np.float32(0.5), np.int64(1), np.float64(2)])
def test_reals_of_any_kind_pass_as_python_floats(value):
    out = check_real(value, "lr", "--lr", gt=0)
    assert out == float(value) and type(out) is float


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), True,
                                   np.bool_(False), "1", None, np.float64("nan")])
def test_non_finite_and_non_numbers_are_refused(value):
    with pytest.raises(QwemError, match=r"^lr \(--lr\) must be a finite number, got "):
        check_real(value, "lr", "--lr")


def test_real_bounds_are_each_checked_and_named():
    assert check_real(0.0, "t", ge=0) == 0.0
    for kwargs, value in (({"gt": 0}, 0.0), ({"ge": 0}, -1e-300), ({"lt": 1}, 1.0)):
        with pytest.raises(QwemError):
            check_real(value, "t", **kwargs)
    with pytest.raises(QwemError, match=r"^t must be a finite number > 0 and < 1, got "
                                        r"1\.0 \(a probability\)$"):
        check_real(1.0, "t", gt=0, lt=1, why="a probability")


def test_seed_range():
    assert check_seed(MAX_SEED) == 2**63 - 1 and check_seed(np.uint64(0)) == 0
    with pytest.raises(QwemError, match=r"seed \(--seed\) must be an integer from 0"):
        check_seed(-1)
    with pytest.raises(QwemError):
        check_seed(2**63)


def test_choice():
    assert check_choice("mstar", "method", ("mstar", "pmi")) == "mstar"
    with pytest.raises(QwemError, match=r"^unknown method \(--method\) 'svd'; use one "
                                        r"of mstar, pmi$"):
        check_choice("svd", "method", ("mstar", "pmi"), "--method")
    with pytest.raises(QwemError):
        check_choice(["mstar"], "method", ("mstar",))


def test_command_line_text_is_parsed_then_checked():
    assert parse_int("12", "window", "--window", hi=1000) == 12
    assert parse_real("1e-4", "subsample", "--subsample", ge=0) == 1e-4
    with pytest.raises(QwemError, match=r"^window \(--window\) must be an integer "
                                        r">= 1, got '1\.5'$"):
        parse_int("1.5", "window", "--window")
    with pytest.raises(QwemError, match="finite number"):
        parse_real("nan", "lr", "--lr")
    with pytest.raises(QwemError, match="got 'x'"):
        parse_real("x", "lr", "--lr")


def test_importing_the_options_loads_neither_numpy_nor_torch():
    code = ("import sys, qwem_lib.runtime.options\n"
            "print(sorted(m for m in ('numpy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
