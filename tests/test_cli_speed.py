"""Tests of skhsfm.cli.speed: settings and the quick run."""

import dataclasses
import json
import os

import pytest

from skhsfm.cli import build_parser, main
from skhsfm.cli.speed import SpeedSettings


def test_speed_settings_are_a_frozen_dataclass():
    args = build_parser().parse_args(["speed", "--quick", "--threads", "2"])
    settings = SpeedSettings.from_args(args, args.subparser)
    assert settings == SpeedSettings(quick=True, threads=2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.quick = False


def test_speed_rejects_zero_threads(capsys):
    with pytest.raises(SystemExit) as info:
        main(["speed", "--threads", "0"])
    assert info.value.code == 2
    assert "--threads must be >= 1" in capsys.readouterr().err


def test_speed_quick(tmp_path, capsys):
    status = main(["speed", "--quick", "--device", "cpu", "--out", str(tmp_path)])
    stdout = capsys.readouterr().out
    assert status == 0
    assert "HSFM fit (preset waterbirds" in stdout
    assert "HSFM fit (preset celeba" in stdout
    assert "embed: torchvision resnet18" in stdout
    assert "| step " in stdout and "|--------:|" in stdout  # the Markdown table
    payload = json.loads((tmp_path / "speed.json").read_text())
    assert payload["quick"] is True
    assert len(payload["rows"]) == 8
    assert all(row["seconds"] > 0 for row in payload["rows"])
    assert os.path.isfile(tmp_path / "speed.json")
