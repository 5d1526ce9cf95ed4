"""Tests of skhsfm.cli._common: errors, progress output, warnings."""

import warnings
from io import StringIO

import pytest

from skhsfm._utils.progress import NoBar
from skhsfm.cli._common import Reporter, collect_warnings


class _FakeTerminal(StringIO):
    def isatty(self):
        return True


def test_progress_bars_follow_the_on_epoch_callback():
    pytest.importorskip("tqdm")
    from skhsfm.datasets._dominoes_cnn import EpochRecord

    stream = _FakeTerminal()
    reporter = Reporter(stream=stream)
    assert reporter.bars
    with reporter.epoch_callback(2, "backbone") as on_epoch:
        on_epoch(EpochRecord(1, 2, 0.5, 0.75, 0.1))
        on_epoch(EpochRecord(2, 2, 0.4, 0.8, 0.1))
    assert "2/2" in stream.getvalue() and "loss 0.4" in stream.getvalue()

    quiet = Reporter(quiet=True, stream=_FakeTerminal())
    assert not quiet.bars
    quiet.log("hidden")
    quiet.bar(3, "hidden").update(1)
    with quiet.epoch_callback(1, "hidden") as on_epoch:
        on_epoch(EpochRecord(1, 1, 0.5))
    assert quiet.stream.getvalue() == ""
    assert not Reporter(stream=StringIO()).bars  # no bars in a log file


def test_reporter_without_bars_prints_lines_and_uses_the_shared_no_bar():
    stream = StringIO()
    reporter = Reporter(stream=stream)
    assert isinstance(reporter.bar(3, "seeds"), NoBar)
    reporter.log("seed 0: done")
    assert stream.getvalue() == "seed 0: done\n"


def test_reporter_log_keeps_clear_of_bars():
    pytest.importorskip("tqdm")
    stream = _FakeTerminal()
    reporter = Reporter(stream=stream)
    bar = reporter.bar(2, "seeds")
    reporter.log("a message")
    bar.close()
    assert "a message" in stream.getvalue()


def test_collect_warnings_keeps_each_message_once():
    sink = []
    for _ in range(2):
        with collect_warnings(sink):
            warnings.warn("first line\nsecond line", UserWarning)
    assert sink == ["UserWarning: first line"]
