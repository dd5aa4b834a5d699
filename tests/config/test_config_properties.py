"""Property tests of the config machinery, with every field enumerated from the settings
dataclasses (a new field is covered without touching this file):
- every number declares its range (min and max);
- an invalid value for any field (wrong type, NaN/inf, outside its range, not a choice) is a
  ConfigError that starts with that field's dotted key;
- a valid config (values drawn from the declared ranges) either loads and `ionm replay` runs it
  on a short recording with exit 0, or is rejected at load and replay exits 2 with the same one
  line: replay never rejects what load accepted, and never ends in a traceback."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import typing
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toml_text import to_toml

from appliance import config
from appliance.cli import main as ionm
from appliance.errors import ConfigError
from appliance.frontend.bdf import BdfWriter

CHANNELS = ["C4'-Fz", "Erb-L"]
FS_HZ = 16000  # every modality's band fits (BAEP needs >= 6.7 kSPS)
SITE = {"name": "L median", "modality": "ssep_upper", "channels": CHANNELS}
BASE = {"frontend": {"channels": CHANNELS, "sample_rate_hz": FS_HZ},
        "analysis": {"sites": [SITE]}}


@dataclasses.dataclass(frozen=True)
class Leaf:
    path: tuple[str | int, ...]  # keys into the TOML tables; ints index lists
    tp: Any
    meta: dict[str, Any]

    @property
    def key(self) -> str:
        out = ""
        for p in self.path:
            out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
        return out


def leaves(cls: type = config.Config, path: tuple[str | int, ...] = ()) -> list[Leaf]:
    """Every setting: fields of the section dataclasses, a site's fields (as sites[0]), each
    criteria key, and one component window."""
    out: list[Leaf] = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp, sub = hints[f.name], (*path, f.name)
        args = typing.get_args(tp)
        if dataclasses.is_dataclass(tp):
            out += leaves(tp, sub)
        elif typing.get_origin(tp) is tuple and args and dataclasses.is_dataclass(args[0]):
            out += leaves(args[0], (*sub, 0))
        elif "keys" in f.metadata:
            out += [Leaf((*sub, k), args[1], m) for k, m in f.metadata["keys"].items()]
        elif f.name == "components":
            out.append(Leaf((*sub, "N20"), args[1], dict(f.metadata)))
        else:
            out.append(Leaf(sub, tp, dict(f.metadata)))
    return out


LEAVES = leaves()


def with_value(leaf: Leaf, value: Any) -> dict[str, Any]:
    d = json.loads(json.dumps(BASE))
    node: Any = d
    for p in leaf.path[:-1]:
        node = node[p] if isinstance(p, int) else node.setdefault(p, {})
    node[leaf.path[-1]] = value
    return d


def _numbers(tp: Any) -> bool:
    inner = typing.get_args(tp)[-1] if typing.get_origin(tp) in (tuple, dict) else tp
    return inner in (int, float)


def test_every_number_declares_its_range() -> None:
    unbounded = [lf.key for lf in LEAVES if _numbers(lf.tp) and not lf.meta.get("choices")
                 and (lf.meta.get("min") is None or lf.meta.get("max") is None)]
    assert unbounded == []
    assert len(LEAVES) > 100 and "analysis.sites[0].criteria.confirm_updates" in {
        lf.key for lf in LEAVES}


def invalid(leaf: Leaf) -> st.SearchStrategy[Any]:
    """Values `leaf` must refuse."""
    tp, m = leaf.tp, leaf.meta
    lo, hi, special = m.get("min"), m.get("max"), set(m.get("special") or {})
    choices = m.get("choices")
    not_a_string = st.one_of(st.integers(), st.booleans(), st.just([1]))
    if choices is not None:
        if tp is int:
            return st.integers(-10**6, 10**6).filter(lambda v: v not in choices)
        return st.one_of(st.text(max_size=8).filter(lambda v: v not in choices), st.integers())
    if tp is bool:
        return st.one_of(st.integers(), st.text(max_size=4), st.floats())
    if tp is str:
        return not_a_string
    if tp is int:
        return st.one_of(st.integers(max_value=lo - 1).filter(lambda v: v not in special),
                         st.integers(min_value=hi + 1), st.just(1.5), st.text(max_size=4),
                         st.booleans())
    if tp is float:
        out_of_range = st.one_of(
            st.floats(max_value=lo, exclude_max=True, allow_nan=False, allow_infinity=False),
            st.floats(min_value=hi, exclude_min=True, allow_nan=False, allow_infinity=False),
        ).filter(lambda v: v not in special)
        return st.one_of(st.sampled_from([math.nan, math.inf, -math.inf]), out_of_range,
                         st.text(max_size=4), st.booleans())
    if typing.get_origin(tp) is tuple:
        item = typing.get_args(tp)[0]
        if item is str:
            return st.one_of(st.integers(), st.lists(st.integers(), min_size=1, max_size=3))
        bad = invalid(Leaf(leaf.path, item, m))
        return st.one_of(st.integers(), st.tuples(bad, bad).map(list))
    if typing.get_origin(tp) is dict:
        bad = invalid(Leaf(leaf.path, typing.get_args(tp)[1], m))
        return st.one_of(st.integers(), st.text(max_size=4), bad.map(lambda v: {"L median": v}))
    raise AssertionError(f"no invalid values for {leaf.key}: {tp}")


@pytest.mark.parametrize("leaf", LEAVES, ids=lambda lf: lf.key)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_an_invalid_value_for_any_field_is_an_error_naming_its_key(leaf: Leaf, data) -> None:
    value = data.draw(invalid(leaf), label=leaf.key)
    with pytest.raises(ConfigError) as e:
        config.from_dict(with_value(leaf, value))
    assert str(e.value).startswith(leaf.key), (value, str(e.value))


# -- valid configs through `ionm replay` -------------------------------------------------------
FIXED = {"frontend.channels", "frontend.sample_rate_hz", "frontend.kind", "mqtt.enabled",
         "analysis.sites[0].channels", "analysis.sites[0].name", "analysis.sites[0].roles",
         "analysis.sites[0].trigger_bit", "frontend.gain", "frontend.stimulator"}
REPLAYED = ("frontend.", "analysis.")  # what replay uses; other sections are only validated


def valid(leaf: Leaf) -> st.SearchStrategy[Any] | None:
    tp, m = leaf.tp, leaf.meta
    if m.get("choices") is not None:
        return st.sampled_from(m["choices"])
    if tp is bool:
        return st.booleans()
    specials = list(m.get("special") or {})
    if tp is int or m.get("integer"):
        ints = st.integers(m["min"], m["max"])
        return st.one_of(ints, st.sampled_from(specials)) if specials else ints
    if tp is float:
        floats = st.floats(m["min"], m["max"], allow_nan=False)
        return st.one_of(floats, st.sampled_from(specials)) if specials else floats
    return None  # names, paths, lists: the base config's


@st.composite
def valid_configs(draw: st.DrawFn) -> dict[str, Any]:
    d = json.loads(json.dumps(BASE))
    for leaf in LEAVES:
        strat = valid(leaf)
        fixed = leaf.key in FIXED or leaf.key.endswith("_pin")  # pins: distinct, not reserved
        # a few fields per example, so that most examples are valid together as well
        if fixed or strat is None or draw(st.integers(0, 3 if leaf.key.startswith(REPLAYED)
                                                      else 8)) != 0:
            continue
        node: Any = d
        for p in leaf.path[:-1]:
            node = node[p] if isinstance(p, int) else node.setdefault(p, {})
        node[leaf.path[-1]] = draw(strat, label=leaf.key)
    return d


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 s of noise and 20 Hz stimuli on trigger bit 0, written by our BDF+ writer."""
    path = tmp_path_factory.mktemp("rec") / "short.bdf"
    rng = np.random.default_rng(1)
    n = 4 * FS_HZ
    trigger = np.zeros(n, np.uint16)
    trigger[np.arange(FS_HZ // 20, n, FS_HZ // 20)] = 1
    with BdfWriter(path, CHANNELS, FS_HZ, fsync=False) as w:
        w.write_samples(rng.normal(0.0, 5.0, (len(CHANNELS), n)), trigger, 0)
    return path


def test_valid_configs_load_and_replay_without_a_traceback(
        recording: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes: list[str] = []
    monkeypatch.setenv("IONM_TRACEBACK", "1")  # a bug raises here, not "internal error"

    @settings(max_examples=10, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(d=valid_configs())
    def run(d: dict[str, Any]) -> None:
        path = tmp_path / "generated.toml"
        path.write_text(to_toml(d), encoding="utf-8")
        try:
            config.load(path)
            load_error = None
        except ConfigError as e:
            load_error = str(e)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = ionm(["replay", str(recording), "--config", str(path)])  # raises: a traceback
        if load_error is None:
            assert rc == 0 and "Traceback" not in err.getvalue(), (err.getvalue(), to_toml(d))
            outcomes.append("ran")
        else:
            assert rc == 2 and err.getvalue() == f"ionm replay: config error: {load_error}\n", (
                err.getvalue(), load_error)
            outcomes.append("rejected")

    run()
    assert "ran" in outcomes, outcomes
