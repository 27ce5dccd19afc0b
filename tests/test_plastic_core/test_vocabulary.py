"""One option vocabulary across the plastic modules (plastic_core.rules): the names, the [b, post, pre] traces,
the deprecated aliases (same module, a warning naming the new name) and the old state dicts that still load."""

import inspect
from collections import OrderedDict

import pytest
import torch

from plastic_core import FLPNetwork, PlasticLinear, PlasticLSTMCore, make_core
from plastic_core.rules import ALPHA_KINDS, MODULATION_KINDS, PLASTIC_RULES

OLD_NAMES = {"rate", "rate_init", "neuromodulation", "fanout", "alpha_mode", "eta"}


def _built(factory, seed=0):
    torch.manual_seed(seed)
    return factory()


def _same_module(a: torch.nn.Module, b: torch.nn.Module) -> None:
    assert repr(a) == repr(b)
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0)


@pytest.mark.parametrize("module", [PlasticLinear, PlasticLSTMCore, FLPNetwork])
def test_constructors_take_the_vocabulary_names_only(module):
    params = set(inspect.signature(module).parameters)
    assert not (OLD_NAMES - {"eta"}) & params
    assert "eta_init" in params
    if module is not FLPNetwork:
        assert "eta" not in params  # a rate's value is eta_init; FLP's eta is the rates' kind
        assert "alpha" in params


def test_kind_attributes_hold_vocabulary_values():
    linear = PlasticLinear(3, 2, alpha="neuron")
    lstm = PlasticLSTMCore(3, 4, modulation="scalar")
    flp = FLPNetwork([3, 2], eta="neuron")
    core = make_core("retroactive", 3, 4, modulation="fanout")
    assert linear.rule in PLASTIC_RULES and linear.alpha_kind in ALPHA_KINDS
    assert lstm.alpha_kind in ALPHA_KINDS and lstm.modulation_kind in MODULATION_KINDS
    assert flp.eta_kind in ALPHA_KINDS
    assert core.alpha_kind in ALPHA_KINDS and core.modulation_kind in MODULATION_KINDS


def test_every_trace_is_post_by_pre():
    assert PlasticLinear(3, 2).initial_state(5)["hebb"].shape == (5, 2, 3)
    assert PlasticLinear(3, 2).w.shape == (2, 3)  # as nn.Linear(3, 2).weight
    assert PlasticLinear(3, 2, alpha="neuron").alpha.shape == (2, 1)
    assert FLPNetwork([3, 2]).initial_state(5)["weight_0"].shape == (5, 2, 3)
    core = make_core("plastic", 3, 4, alpha="neuron")
    assert core.alpha.shape == (4, 1) and core.initial_state(5)["hebb"].shape == (5, 4, 4)


@pytest.mark.parametrize(
    "old, new",
    [
        (lambda: make_core("plastic", 3, 4, rule="clip"), lambda: make_core("plastic", 3, 4, rule="hebb")),
        (lambda: PlasticLinear(3, 2, eta=0.3), lambda: PlasticLinear(3, 2, eta_init=0.3)),
        (lambda: PlasticLinear(3, 2, rule="clip", clip=0.5), lambda: PlasticLinear(3, 2, rule="hebb", clip=0.5)),
        (lambda: PlasticLSTMCore(3, 4, neuromodulation=False, eta=0.3),
         lambda: PlasticLSTMCore(3, 4, modulation=None, eta_init=0.3)),
        (lambda: PlasticLSTMCore(3, 4, fanout=False), lambda: PlasticLSTMCore(3, 4, modulation="scalar")),
        (lambda: PlasticLSTMCore(3, 4, neuromodulation=True, fanout=True), lambda: PlasticLSTMCore(3, 4)),
        (lambda: FLPNetwork([3, 4, 2], rate="layer", rate_init=0.2),
         lambda: FLPNetwork([3, 4, 2], eta="scalar", eta_init=0.2)),
        (lambda: FLPNetwork([3, 4, 2], rate="synapse"), lambda: FLPNetwork([3, 4, 2], eta="connection")),
    ],
)
def test_a_deprecated_name_builds_the_same_module_with_a_warning(old, new):
    with pytest.warns(DeprecationWarning, match="is deprecated, use"):
        built_old = _built(old)
    _same_module(built_old, _built(new))


def test_the_warning_names_the_new_option_and_points_at_the_caller():
    with pytest.warns(DeprecationWarning, match=r"PlasticLinear: eta= is deprecated, use eta_init=") as record:
        PlasticLinear(3, 2, eta=0.3)
    assert record[0].filename == __file__
    with pytest.warns(DeprecationWarning, match=r"rule='clip' is deprecated, use rule='hebb'"):
        make_core("plastic", 3, 4, rule="clip")
    with pytest.warns(DeprecationWarning, match=r"neuromodulation= is deprecated, use modulation=None"):
        PlasticLSTMCore(3, 4, neuromodulation=False)


def test_deprecated_attributes_still_read():
    with pytest.warns(DeprecationWarning, match="alpha_kind"):
        assert PlasticLinear(3, 2, alpha="scalar").alpha_mode == "scalar"
    with pytest.warns(DeprecationWarning, match="alpha_kind"):
        assert PlasticLSTMCore(3, 4).alpha_mode == "neuron"
    with pytest.warns(DeprecationWarning, match="modulation_kind"):
        assert PlasticLSTMCore(3, 4, modulation=None).neuromodulation is False
    with pytest.warns(DeprecationWarning, match="eta_kind"):
        assert FLPNetwork([3, 2], eta="scalar").rate_mode == "layer"


def test_unknown_options_and_values_still_fail():
    with pytest.raises(TypeError, match="unexpected keyword argument 'etta'"):
        PlasticLinear(3, 2, etta=0.1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'rates'"):
        FLPNetwork([3, 2], rates="layer")
    with pytest.raises(ValueError, match="unknown rule 'bcm'"):
        PlasticLinear(3, 2, rule="bcm")
    with pytest.raises(ValueError, match="unknown modulation 'global'"):
        PlasticLSTMCore(3, 4, modulation="global")
    with pytest.warns(DeprecationWarning), pytest.raises(ValueError, match="unknown rate 'global'"):
        FLPNetwork([3, 2], rate="global")
    with pytest.raises(ValueError, match="eta_init must be a finite number"):
        PlasticLinear(3, 2, eta_init=float("nan"))


def _version_1(layer: PlasticLinear) -> "OrderedDict[str, torch.Tensor]":
    """The state dict the layer would have had before the [post, pre] orientation: w, alpha [pre, post],
    alpha (out,) per neuron and (1,) scalar, saved with version 1."""
    old = OrderedDict()
    for key, value in layer.state_dict().items():
        if key == "w" or (key == "alpha" and layer.alpha_kind == "connection"):
            value = value.t().contiguous()
        elif key == "alpha":
            value = value.reshape(-1)
        old[key] = value
    old._metadata = OrderedDict({"": {"version": 1}})
    return old


@pytest.mark.parametrize("alpha", ALPHA_KINDS)
@pytest.mark.parametrize("sizes", [(3, 2), (4, 4)])
def test_a_version_1_plastic_linear_state_dict_loads_transposed(alpha, sizes):
    saved = _built(lambda: PlasticLinear(*sizes, alpha=alpha, rule="oja"), seed=0)
    fresh = _built(lambda: PlasticLinear(*sizes, alpha=alpha, rule="oja"), seed=1)
    fresh.load_state_dict(_version_1(saved))
    _same_module(fresh, saved)
    x = torch.randn(5, 2, sizes[0])
    torch.testing.assert_close(fresh.unroll(x, fresh.initial_state(2))[0], saved.unroll(x, saved.initial_state(2))[0])


def test_a_current_square_state_dict_is_not_transposed_with_or_without_its_metadata():
    saved = _built(lambda: PlasticLinear(4, 4), seed=0)
    for state in (saved.state_dict(), dict(saved.state_dict())):  # the second has lost its version metadata
        fresh = _built(lambda: PlasticLinear(4, 4), seed=1)
        fresh.load_state_dict(state)
        _same_module(fresh, saved)


def test_an_old_plastic_lstm_state_dict_with_mod_fanout_loads():
    saved = _built(lambda: PlasticLSTMCore(3, 4), seed=0)
    with torch.no_grad():
        saved.fanout.uniform_(-1, 1)
    old = OrderedDict((("mod_fanout" if key == "fanout" else key), value) for key, value in saved.state_dict().items())
    fresh = _built(lambda: PlasticLSTMCore(3, 4), seed=1)
    fresh.load_state_dict(old)
    _same_module(fresh, saved)
