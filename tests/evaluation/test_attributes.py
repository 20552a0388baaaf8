"""Results per DAVIS attribute: db_info.yml read as the DAVIS benchmark writes it, each attribute the mean over the
sequences that have it, written into results.json and printed by siampolar-evaluate; a broken db_info.yml is one
line naming the file."""
from __future__ import annotations

import json

import pytest

from siampolar_lib.commands.evaluate import main
from siampolar_lib.errors import UserError
from siampolar_lib.evaluation.attributes import attribute_table, format_attribute_table, read_attributes


def test_read_attributes_of_the_shared_val_sequences(real_davis):
    attrs = read_attributes(real_davis)
    assert len(attrs) == 15 and attrs["blackswan"] == () and "OCC" in attrs["bmx-trees"]
    assert read_attributes(real_davis / "JPEGImages") == {}  # no db_info.yml: no attributes, no error


def test_each_attribute_is_the_mean_over_the_sequences_that_have_it():
    rows = {"a": {"J_M": 0.8, "F_M": 0.6}, "b": {"J_M": 0.4, "F_M": 0.2, "JF_M": 0.3}, "c": {"J_M": 0.1, "F_M": 0.1}}
    table = attribute_table(rows, {"a": ("OCC", "FM"), "b": ("OCC",), "c": (), "z": ("DEF",)})
    assert list(table) == ["FM", "OCC"]  # z has no row; c has no attribute
    assert table["OCC"] == pytest.approx({"sequences": 2, "JF_M": 0.5, "J_M": 0.6, "F_M": 0.4})
    assert table["FM"] == pytest.approx({"sequences": 1, "JF_M": 0.7, "J_M": 0.8, "F_M": 0.6})
    text = format_attribute_table(table)
    assert "OCC occlusion" in text and "50.0" in text and "FM fast motion" in text


@pytest.mark.parametrize("text", ["sequences: 3\n", "[1, 2\n", "sequences:\n- attributes: [FM]\n"])
def test_a_broken_db_info_is_one_line_naming_it(tmp_path, text):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "db_info.yml").write_text(text)
    with pytest.raises(UserError, match="db_info.yml: not a DAVIS db_info.yml") as err:
        read_attributes(tmp_path)
    assert "\n" not in str(err.value)


def test_evaluate_writes_and_prints_the_attribute_table(real_davis, tmp_path, capsys):
    rc = main(["--davis-root", str(real_davis), "--sequences", "camel,cows", "--baselines", "static",
               "--max-frames", "3", "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 0
    doc = json.loads((tmp_path / "o" / "static" / "results.json").read_text())
    attrs = read_attributes(real_davis)
    assert set(doc["attributes"]) == set(attrs["camel"]) | set(attrs["cows"])
    both = set(attrs["camel"]) & set(attrs["cows"])  # CS, IO, DEF: the mean of the two sequences
    for code in both:
        mean = (doc["sequences"]["camel"]["J_M"] + doc["sequences"]["cows"]["J_M"]) / 2
        assert doc["attributes"][code]["sequences"] == 2 and doc["attributes"][code]["J_M"] == pytest.approx(mean)
    assert "== static per DAVIS attribute" in capsys.readouterr().out
