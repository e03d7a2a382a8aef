"""The cfg line grammar of spec §1.1-§1.3, one behaviour per test; the expectations restate the spec text.

Each test writes a small cfg and checks the typed options darknet_py derives from it, or the warning /
CfgError (with file and line) it must give.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from darknet_py.network import parse_cfg
from darknet_py.config.data import parse_data
from darknet_py.errors import DarknetWarning
from darknet_py.errors import CfgError

NET = "[net]\nwidth=32\nheight=32\nchannels=3\n"
CONV = "[convolutional]\nfilters=4\nsize=3\npad=1\nactivation=leaky\n"


def write(tmp_path: Path, text: str, name: str = "test.cfg", newline: str = "\n") -> Path:
    path = tmp_path / name
    path.write_bytes(text.replace("\n", newline).encode())
    return path


def parse_quietly(path: Path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DarknetWarning)   # a clean cfg gives no warning at all
        return parse_cfg(path, **kwargs)


def conv_options(tmp_path: Path, body: str):
    return parse_cfg(write(tmp_path, NET + "[convolutional]\n" + body)).layers[0].options


# -- 1.1.2 whitespace deletion ----------------------------------------------------------------------------

def test_every_space_and_tab_anywhere_in_a_line_is_deleted(tmp_path):
    cfg = parse_quietly(write(tmp_path, NET + " [ convolutional ]\n fil ters = 1 6\n\tsize\t=\t3\npad=1\n"
                                             "activation = lea ky\n"
                                             "[yolo]\nmask = 0, 1\nanchors = 10,13,  16,30\nclasses = 3\nnum=2\n"))
    conv, yolo = cfg.layers[0].options, cfg.layers[1].options
    assert (conv.filters, conv.size, conv.activation) == (16, 3, "leaky")
    assert yolo.mask == (0, 1) and yolo.anchors == ((10.0, 13.0), (16.0, 30.0))


def test_route_layers_list_with_spaces(tmp_path):
    cfg = parse_quietly(write(tmp_path, NET + CONV + CONV + "[route]\nlayers = -1, 0\n"))
    assert cfg.layers[2].options.layers == (-1, 0)


# -- 1.1.3 comments and section headers -------------------------------------------------------------------

def test_comment_lines_start_with_hash_or_semicolon(tmp_path):
    text = "# a comment\n" + NET + "   # indented comment\n; another\n;filters=99\n#[maxpool]\n" + CONV
    cfg = parse_quietly(write(tmp_path, text))
    assert len(cfg.layers) == 1 and cfg.layers[0].options.filters == 4


def test_inline_comment_keeps_the_leading_number_with_a_warning(tmp_path):
    """Darknet has no inline comments; atoi/atof read the numeric prefix of `0.9#x`."""
    path = write(tmp_path, NET.replace("width=32", "width=32#the width") + CONV)
    with pytest.warns(DarknetWarning, match=r"test\.cfg:2: inline comment"):
        cfg = parse_cfg(path)
    assert cfg.net.width == 32


def test_network_is_an_alias_of_net(tmp_path):
    assert parse_quietly(write(tmp_path, NET.replace("[net]", "[network]") + CONV)).net.width == 32


@pytest.mark.parametrize("section,kind", [("[conv]\nfilters=2\n", "convolutional"),
                                          ("[max]\nsize=2\nstride=2\n", "maxpool"),
                                          ("[avg]\n", "avgpool"),
                                          ("[conn]\noutput=5\n", "connected"),
                                          ("[soft]\n", "softmax")])
def test_layer_section_aliases(tmp_path, section, kind):
    cfg = parse_quietly(write(tmp_path, NET + section))
    assert [layer.kind for layer in cfg.layers] == [kind]


def test_section_names_are_case_sensitive(tmp_path):
    with pytest.raises(CfgError) as error:
        parse_cfg(write(tmp_path, NET + "[Convolutional]\nfilters=2\n"))
    assert (error.value.line, "[Convolutional]" in str(error.value)) == (5, True)


# -- 1.1.4 key=value splitting ----------------------------------------------------------------------------

def test_value_may_contain_equals_signs(tmp_path):
    """The split is at the first '='."""
    path = write(tmp_path, "names=data/a=b.names\nclasses=2\n", name="x.data")
    assert parse_data(path).names == "data/a=b.names"


def test_key_without_equals_is_absent(tmp_path):
    """Stored with a null value: every lookup uses the default (here filters=1), with a warning."""
    path = write(tmp_path, NET + "[convolutional]\nfilters\nsize=3\n")
    with pytest.warns(DarknetWarning, match=r"test\.cfg:6: 'filters' has no '='"):
        cfg = parse_cfg(path)
    assert cfg.layers[0].options.filters == 1


def test_empty_value_drops_the_option(tmp_path):
    path = write(tmp_path, NET + "[convolutional]\nfilters=\nsize=3\n")
    with pytest.warns(DarknetWarning, match=r"test\.cfg:6: 'filters=' has an empty value"):
        cfg = parse_cfg(path)
    assert cfg.layers[0].options.filters == 1


# -- 1.1.1 line ends --------------------------------------------------------------------------------------

def test_crlf_file_reads_like_lf(tmp_path):
    """AlexeyAB removes the CR as well: strings such as `leaky` and `[net]` still match."""
    lf = parse_quietly(write(tmp_path, NET + CONV, name="lf.cfg"))
    crlf = parse_quietly(write(tmp_path, NET + CONV, name="crlf.cfg", newline="\r\n"))
    assert crlf.net == lf.net and crlf.layers[0].options == lf.layers[0].options
    assert crlf.layers[0].options.activation == "leaky"


# -- 1.1.6 duplicate keys ---------------------------------------------------------------------------------

def test_duplicate_key_first_occurrence_wins_with_a_warning(tmp_path):
    path = write(tmp_path, NET + "[convolutional]\nfilters=8\nsize=3\nfilters=16\n")
    with pytest.warns(DarknetWarning, match=r"test\.cfg:8: duplicate key 'filters'.*line 6"):
        cfg = parse_cfg(path)
    assert cfg.layers[0].options.filters == 8


def test_duplicate_key_in_net(tmp_path):
    path = write(tmp_path, "[net]\nbatch=64\nbatch=1\nwidth=32\nheight=32\nchannels=3\n" + CONV)
    with pytest.warns(DarknetWarning, match=r"test\.cfg:3: duplicate key 'batch'"):
        assert parse_cfg(path).net.batch == 64


# -- 1.1.7 unknown keys -----------------------------------------------------------------------------------

def test_unknown_key_in_a_layer_is_reported_with_file_and_line(tmp_path):
    path = write(tmp_path, NET + CONV + "colour=blue\n")
    with pytest.warns(DarknetWarning, match=r"test\.cfg:10: unused field in \[convolutional\]: 'colour=blue'"):
        cfg = parse_cfg(path)
    assert cfg.layers[0].options.filters == 4


def test_unknown_key_in_net_is_reported(tmp_path):
    path = write(tmp_path, NET + "seen=0\n" + CONV)
    with pytest.warns(DarknetWarning, match=r"test\.cfg:5: unused field in \[net\]: 'seen=0'"):
        parse_cfg(path)


def test_known_keys_are_not_reported(tmp_path):
    parse_quietly(write(tmp_path, NET + "batch=64\nsubdivisions=16\nlearning_rate=0.001\nmomentum=0.9\n"
                                        "decay=0.0005\npolicy=steps\nsteps=100,200\nscales=.1,.1\n"
                                        "max_batches=300\nangle=0\nsaturation=1.5\nexposure=1.5\nhue=.1\n" + CONV))


# -- 1.1.9 numbers ----------------------------------------------------------------------------------------

def test_bad_number_is_an_error_with_file_line_and_value(tmp_path):
    path = write(tmp_path, NET + "[convolutional]\nfilters=sixteen\n")
    with pytest.raises(CfgError) as error:
        parse_cfg(path)
    assert (error.value.file, error.value.line, error.value.value) == (str(path), 6, "sixteen")
    assert f"{path}:6:" in str(error.value)


def test_bad_float_is_an_error(tmp_path):
    path = write(tmp_path, NET.replace("[net]\n", "[net]\nmomentum=fast\n") + CONV)
    with pytest.raises(CfgError) as error:
        parse_cfg(path)
    assert (error.value.line, error.value.value) == (2, "fast")


def test_decimal_for_an_integer_key_reads_like_atoi(tmp_path):
    """atoi("3.7") = 3: Darknet silently truncates; darknet_py does the same but says so."""
    path = write(tmp_path, NET + "[convolutional]\nfilters=3.7\n")
    with pytest.warns(DarknetWarning, match=r"test\.cfg:6: 'filters=3\.7' is not an integer; read as 3"):
        assert parse_cfg(path).layers[0].options.filters == 3


def test_float_forms_atof_accepts(tmp_path):
    net = parse_quietly(write(tmp_path, NET + "learning_rate=1e-3\nmomentum=.9\ndecay=5e-4\n" + CONV)).net
    assert (net.learning_rate, net.momentum, net.decay) == (1e-3, 0.9, 5e-4)


def test_steps_and_scales_must_have_matching_lengths(tmp_path):
    path = write(tmp_path, NET + "policy=steps\nsteps=100,200,300\nscales=.1,.1\n" + CONV)
    with pytest.raises(CfgError, match="'scales' has 2 values but 'steps' has 3") as error:
        parse_cfg(path)
    assert error.value.line in (6, 7)


# -- 1.2 network assembly ---------------------------------------------------------------------------------

def test_option_before_any_section_is_an_error(tmp_path):
    with pytest.raises(CfgError) as error:
        parse_cfg(write(tmp_path, "width=32\n" + NET + CONV))
    assert error.value.line == 1 and "before the first section" in str(error.value)


def test_first_section_must_be_net(tmp_path):
    with pytest.raises(CfgError, match=r"first section must be \[net\] or \[network\]") as error:
        parse_cfg(write(tmp_path, CONV + NET))
    assert error.value.line == 1


def test_layer_count_is_sections_minus_one(tmp_path):
    cfg = parse_quietly(write(tmp_path, NET + CONV + "[maxpool]\nsize=2\nstride=2\n" + CONV))
    assert [layer.kind for layer in cfg.layers] == ["convolutional", "maxpool", "convolutional"]
    assert [layer.line for layer in cfg.layers] == [5, 10, 13]
