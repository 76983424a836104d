"""A tool's model file: the shipped one by default, a file that does not load refused with the reason."""
from damage_perception.core.damage_model import DamageModel
from damage_perception.core.station import SHIPPED_MODEL_FILE
from damage_perception.tools.model_file import open_model


def test_the_shipped_model_by_default():
    assert open_model(None, "evaluate").version == DamageModel.load(SHIPPED_MODEL_FILE).version


def test_a_corrupt_or_missing_file_is_refused_with_the_tool_and_the_reason(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a model")
    assert open_model(corrupt, "evaluate-mvtec") is None
    assert open_model(tmp_path / "absent.pt", "enrol") is None
    err = capsys.readouterr().err
    assert err.startswith("evaluate-mvtec: model file ") and "corrupt.pt is unreadable" in err
    assert "\nenrol: model file " in err and "absent.pt does not exist" in err
