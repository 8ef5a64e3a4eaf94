"""The csv source: numeric and text targets, feature selection, errors that name the column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datahelp import source

from trainctl.data import load_data
from trainctl.errors import DataError

IRISH = """sepal_length,sepal_width,species
5.1,3.5,setosa
7.0,3.2,versicolor
6.3,3.3,virginica
4.9,3.0,setosa
"""


def load(tmp_path: Path, text: str, name: str = "d.csv", **fields):
    (tmp_path / name).write_text(text)
    return load_data(source(source="csv", path=name, **fields), base_dir=tmp_path, seed=0)


def test_text_target_is_label_encoded_in_sorted_order(tmp_path: Path) -> None:
    ds = load(tmp_path, IRISH, target="species")
    assert ds.class_names == ["setosa", "versicolor", "virginica"]
    assert ds.y_train.tolist() == [0, 1, 2, 0] and ds.y_train.dtype == np.int64
    np.testing.assert_array_equal(ds.x_train, np.float32([[5.1, 3.5], [7.0, 3.2], [6.3, 3.3], [4.9, 3.0]]))
    assert ds.task_hint == "classification"


def test_target_by_index_features_by_name_and_delimiter(tmp_path: Path) -> None:
    text = "a;b;c;price\n1;2;3;10.5\n4;5;6;20.25\n"
    ds = load(tmp_path, text, target=-1, features=["c", 0], delimiter=";")
    assert ds.x_train.tolist() == [[3, 1], [6, 4]]
    assert ds.y_train.tolist() == [[10.5], [20.25]] and ds.task_hint == "regression"


def test_integer_target_and_test_path_share_the_vocabulary(tmp_path: Path) -> None:
    ds = load(tmp_path, "x,y\n1,3\n2,1\n", target="y")
    assert ds.y_train.dtype == np.int64 and ds.y_train.tolist() == [3, 1] and ds.class_names is None
    (tmp_path / "t.csv").write_text("sepal_length,sepal_width,species\n1,2,virginica\n3,4,setosa\n")
    ds = load(tmp_path, IRISH.replace("versicolor", "setosa"), target="species", test_path="t.csv")
    assert ds.class_names == ["setosa", "virginica"]
    assert ds.y_test.tolist() == [1, 0] and ds.x_test.tolist() == [[1, 2], [3, 4]]


def test_text_feature_names_column_line_and_value(tmp_path: Path) -> None:
    text = "age,city,label\n31,5,0\n40,Paris,1\n"
    with pytest.raises(DataError) as e:
        load(tmp_path, text, target="label")
    msg = str(e.value)
    assert "'city'" in msg and "'Paris'" in msg and "line 3" in msg
    assert e.value.key == "data.features"
    with pytest.raises(DataError, match="received '' on line 2"):
        load(tmp_path, "a,b\n,1\n2,0\n", target="b")


def test_unknown_column_and_ragged_rows(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        load(tmp_path, IRISH, target="specie")
    assert e.value.key == "data.target" and e.value.hint == "did you mean 'species'?"
    with pytest.raises(DataError) as e:
        load(tmp_path, IRISH, target="species", features=["sepal_length", "species"])
    assert e.value.key == "data.features[1]"
    with pytest.raises(DataError, match=r"expected 3 fields .* on line 3 .* received 2"):
        load(tmp_path, "a,b,c\n1,2,3\n4,5\n", target="c")
    with pytest.raises(DataError, match="one column 'a;b' when splitting on ','") as e:
        load(tmp_path, "a;b\n1;2\n", target=0)
    assert e.value.key == "data.delimiter"


def test_stratified_split_of_a_text_target(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{'yes' if i % 4 == 0 else 'no'}" for i in range(40))
    ds = load(tmp_path, "v,label\n" + rows + "\n", target="label", test_split=0.25)
    # 10 'yes' (code 1) and 30 'no' (code 0); 25% of each class is 2.5 'yes' and 7.5 'no'
    assert ds.class_names == ["no", "yes"] and len(ds.y_test) == 10
    assert int(ds.y_test.sum()) in (2, 3) and int(ds.y_train.sum()) + int(ds.y_test.sum()) == 10
