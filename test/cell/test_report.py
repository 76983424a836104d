"""`damage-perception report` (cell/report.py): asking a node that is not there fails with the reason."""
from __future__ import annotations

from damage_perception import cli


def test_report_command_without_a_node_fails_with_a_reason(capsys):
    assert cli.main(["report", "--node", "/nobody_here", "--timeout", "0.5"]) == 1
    assert "no service /nobody_here/save_report within 0.5 s" in capsys.readouterr().out
