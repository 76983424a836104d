"""`damage-perception review`'s refusals before it serves, and where the station token comes from."""
from pathlib import Path

import pytest

from damage_perception import cli
from damage_perception.review.app import load_token


def test_token_from_file_first_line_else_environment(tmp_path: Path):
    token_file = tmp_path / "token"
    token_file.write_text("  abc123  \nsecond line\n")
    assert load_token(token_file, "from-env") == "abc123"
    assert load_token(None, " from-env\n") == "from-env"
    assert load_token(None, None) == ""
    token_file.write_text("\n")
    with pytest.raises(ValueError, match="empty"):
        load_token(token_file, "from-env")


def test_review_refuses_a_missing_store_or_token_file(tmp_path: Path, capsys):
    assert cli.main(["review", "--store", str(tmp_path / "none.db"), "--port", "58001"]) == 2
    assert "does not exist" in capsys.readouterr().err
    store = tmp_path / "station.db"
    store.write_bytes(b"")
    assert cli.main(["review", "--store", str(store), "--token-file", str(tmp_path / "missing")]) == 2
    assert "no station token" in capsys.readouterr().err
