"""Step lines on stderr, and notes printed during a step."""

from __future__ import annotations

import io

import pytest

from flows.progress import Progress, note


def test_a_note_during_a_step_gets_its_own_line_and_the_step_is_printed_again(capsys) -> None:
    """`[1/6] loading the champion model ...note: this workspace was moved ...`: the note was glued on."""
    progress = Progress(2)
    with progress.step("loading the champion model"):
        note("note: this workspace was moved or copied from /a b/ws")
    with progress.step("loading and checking transactions"):
        pass
    note("note: between steps")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "[1/2] loading the champion model ..."
    assert lines[1] == "note: this workspace was moved or copied from /a b/ws"
    assert lines[2].startswith("[1/2] loading the champion model ... done in ")
    assert lines[3].startswith("[2/2] loading and checking transactions ... done in ")
    assert lines[4] == "note: between steps"


def test_a_failed_step_after_a_note_names_itself(capsys) -> None:
    progress = Progress(1, stream=io.StringIO())
    with pytest.raises(RuntimeError):
        with progress.step("writing the outputs"):
            note("note: waiting for another scoring run")
            raise RuntimeError("store busy")
    assert progress.stream.getvalue() == "[1/1] writing the outputs ...\n[1/1] writing the outputs ... failed\n"
    assert capsys.readouterr().err == "note: waiting for another scoring run\n"
