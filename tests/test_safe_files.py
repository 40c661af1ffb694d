"""Safe files: models only as .keras in Keras' safe mode, no pickle anywhere, plain HDF5 stores.

A model file from an untrusted place must not run code when serlib loads it: a Lambda layer, a
layer class from a non-Keras module (whose import would run code) and a Python builtin smuggled in
as an activation are all refused with a clear error by every serlib model loader.
"""

from __future__ import annotations

import ast
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
from tiny_pipeline import assert_no_pickle_files, assert_plain_hdf5

import serlib
from serlib.app import predict
from serlib.base import config as config_module
from serlib.data import manifest as manifests
from serlib.features import store
from serlib.models import autoencoder
from serlib.models.acnn import model as acnn

PACKAGE = Path(serlib.__file__).parent
FORBIDDEN_IMPORTS = {"pickle", "cPickle", "_pickle", "joblib", "dill", "cloudpickle", "shelve", "marshal"}
FORBIDDEN_CALLS = {"read_pickle", "to_pickle", "enable_unsafe_deserialization"}
LOADERS = {
    "autoencoder.load_model": (autoencoder.load_model, autoencoder.AutoencoderError),
    "acnn.load_acnn": (acnn.load_acnn, acnn.ACNNError),
    "predict.safe_load_model": (predict.safe_load_model, predict.PredictError),
}


# -- the code never unpickles or loads unsafely --------------------------------------------------------
def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Name):
        return node.id
    return ""


@pytest.mark.parametrize("path", _sources(), ids=lambda p: p.name)
def test_no_pickle_and_only_safe_model_loading(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            problems += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in FORBIDDEN_IMPORTS]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in FORBIDDEN_IMPORTS:
            problems.append(f"from {node.module} import")
        elif isinstance(node, ast.Call):
            name = _dotted(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if name.split(".")[-1] in FORBIDDEN_CALLS:
                problems.append(f"{name}()")
            if name.split(".")[-1] == "load" and name.startswith(("np.", "numpy.")):
                value = keywords.get("allow_pickle")
                if value is not None and not (isinstance(value, ast.Constant) and value.value is False):
                    problems.append(f"{name}(allow_pickle=...) line {node.lineno}")
            if name.split(".")[-1] == "load_model" and ("keras" in name or "saving" in name):
                value = keywords.get("safe_mode")
                if not (isinstance(value, ast.Constant) and value.value is True):
                    problems.append(f"{name}() without safe_mode=True, line {node.lineno}")
        elif isinstance(node, ast.Attribute) and node.attr == "enable_unsafe_deserialization":
            problems.append(f"{_dotted(node)} line {node.lineno}")
    assert not problems, f"{path.name}: {problems}"


def test_the_scan_finds_what_it_forbids(tmp_path):
    """The scanner above is not vacuous: it flags each forbidden construct in a sample."""
    sample = (
        "import pickle\nimport numpy as np\nimport keras\n"
        "np.load('x.npy', allow_pickle=True)\nkeras.saving.load_model('m.keras', safe_mode=False)\n"
        "keras.models.load_model('m.keras')\nkeras.config.enable_unsafe_deserialization()\n"
    )
    path = tmp_path / "sample.py"
    path.write_text(sample)
    with pytest.raises(AssertionError) as error:
        test_no_pickle_and_only_safe_model_loading(path)
    message = str(error.value)
    for expected in ("import pickle", "allow_pickle", "enable_unsafe_deserialization"):
        assert expected in message
    assert "without safe_mode=True, line 5" in message and "without safe_mode=True, line 6" in message


# -- crafted model files are refused --------------------------------------------------------------------
@pytest.fixture(scope="module")
def dense_model(tmp_path_factory) -> Path:
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))
    path = tmp_path_factory.mktemp("models") / "dense.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def lambda_model(tmp_path_factory) -> tuple[Path, Path]:
    """A .keras file whose Lambda layer would create a marker file if its code ever ran."""
    import keras

    folder = tmp_path_factory.mktemp("lambda")
    marker = folder / "code_ran"
    inputs = keras.Input((4,))
    code = eval(f"lambda x: (open({str(marker)!r}, 'w').write('ran'), x * 2)[1]")  # no closure: serialisable
    outputs = keras.layers.Lambda(code, name="lambda")(inputs)
    path = folder / "lambda.keras"
    keras.Model(inputs, outputs).save(path)
    marker.unlink()  # building the model here ran the code once; loading must not run it again
    return path, marker


def _rewrite_config(source: Path, target: Path, change) -> Path:
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(members["config.json"])
    change(config)
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


@pytest.mark.parametrize("loader", list(LOADERS))
def test_lambda_layer_is_refused(lambda_model, loader):
    path, marker = lambda_model
    function, error_type = LOADERS[loader]
    with pytest.raises(error_type) as error:
        function(path)
    message = str(error.value)
    assert str(path) in message and ("Lambda" in message or "Python code" in message)
    assert "safe_mode=False" not in message  # never advise switching safe mode off
    assert not marker.exists()


@pytest.fixture
def evil_module(tmp_path, monkeypatch) -> Path:
    """An importable module whose import would leave a marker file."""
    marker = tmp_path / "module_imported"
    (tmp_path / "serlib_evil_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('imported')\nclass Evil:\n    pass\ndef evil(*args):\n    return args\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


def _dense_layer(config: dict) -> dict:
    """The saved model's Dense layer entry, the one each crafted file tampers with."""
    return next(item for item in config["config"]["layers"] if item["class_name"] == "Dense")


def _function_activation(config: dict, module: str, function: str) -> None:
    """Make the Dense layer's activation ``module.function``, serialised as Keras writes a plain function."""
    _dense_layer(config)["config"]["activation"] = {
        "module": module,
        "class_name": "function",
        "config": function,
        "registered_name": "function",
    }


def _foreign_layer(config: dict) -> None:
    _dense_layer(config).update(module="serlib_evil_module", class_name="Evil", registered_name=None)


def _foreign_activation(config: dict) -> None:
    _function_activation(config, "serlib_evil_module", "evil")


def _builtin_eval(config: dict) -> None:
    _function_activation(config, "builtins", "eval")


@pytest.mark.parametrize(
    "craft", [_foreign_layer, _foreign_activation, _builtin_eval], ids=lambda f: f.__name__
)
@pytest.mark.parametrize("loader", list(LOADERS))
def test_crafted_config_is_refused_without_importing(dense_model, evil_module, tmp_path, craft, loader):
    path = _rewrite_config(dense_model, tmp_path / "crafted.keras", craft)
    function, error_type = LOADERS[loader]
    with pytest.raises(error_type) as error:
        function(path)
    assert str(path) in str(error.value)
    assert not evil_module.exists(), "loading the crafted model imported a foreign module"


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("model.h5", None),  # legacy HDF5 models are not loaded at all
        ("model.keras", b"not a zip file"),
        ("model.keras", b"PK\x03\x04" + b"\x00" * 60),
    ],
)
def test_other_or_damaged_files_are_refused(tmp_path, dense_model, name, content):
    path = tmp_path / name
    path.write_bytes(dense_model.read_bytes() if content is None else content)
    with pytest.raises(predict.PredictError) as error:
        predict.safe_load_model(path)
    assert str(path) in str(error.value)


def test_model_folder_with_lambda_model_is_refused(lambda_model, tmp_path):
    """``serlib predict`` on a model folder whose model.keras is crafted: refused before any audio is read."""
    path, marker = lambda_model
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.keras").write_bytes(path.read_bytes())
    (folder / "model.json").write_text(
        json.dumps(
            {
                "format": predict.METADATA_FORMAT,
                "audio": {"sample_rate": 16000},
                "logmel": {
                    "bands": 26,
                    "low_hz": 0.0,
                    "high_hz": 6500.0,
                    "frame_s": 0.025,
                    "shift_s": 0.01,
                    "max_frames": 750,
                },
                "inputs": {"logmel": [750, 26]},
                "classes": {
                    "emotion": list(manifests.EMOTIONS),
                    "arousal": list(manifests.LEVELS),
                    "valence": list(manifests.LEVELS),
                },
                "autoencoder": None,
            }
        )
    )
    with pytest.raises(predict.PredictError, match="Python code"):
        predict.load_predictor(folder)
    assert not marker.exists()


# -- stores hold plain arrays ---------------------------------------------------------------------------
def test_feature_stores_are_plain_hdf5(tmp_path):
    rows = []
    for i in range(3):
        path = tmp_path / f"u{i}.wav"
        sf.write(path, 0.3 * np.sin(np.arange(8000 + 1000 * i) * 0.05 * (i + 1)), 16000)
        rows.append(
            {"utterance_id": f"u{i}", "path": str(path), "speaker": "s", "session": "1", "emotion": "sad"}
        )
    manifest = manifests.make_manifest(rows)
    config = config_module.override(
        config_module.load_preset("demo"),
        **{
            "output_dir": str(tmp_path / "out"),
            "features.n_jobs": 1,
            "features.spectrogram.fixed_length_s": 1.0,
        },
    )
    paths = [
        store.extract_manifest(manifest, extractor, config, progress=False).path
        for extractor in ("logmel", "spectrogram")
    ]
    paths.append(
        store.save_arrays(
            tmp_path / "out" / "arrays.h5", ["u0"], {"note": "x", "values": [1, 2]}, vectors=np.ones((1, 4))
        )
    )
    for path in paths:
        assert_plain_hdf5(path)
    seen = assert_no_pickle_files(tmp_path / "out")
    assert len([p for p in seen if p.suffix == ".h5"]) == 3


def test_a_pickled_object_dataset_would_be_caught(tmp_path):
    """The checks above can fail: an opaque/object dataset and a pickle file are flagged."""
    path = tmp_path / "opaque.h5"
    with h5py.File(path, "w") as handle:
        handle.create_dataset("blob", data=np.void(b"\x80\x04pickled"))
    with pytest.raises(AssertionError):
        assert_plain_hdf5(path)
    (tmp_path / "model.bin").write_bytes(b"\x80\x04\x95")
    with pytest.raises(AssertionError):
        assert_no_pickle_files(tmp_path)
