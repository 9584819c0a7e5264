"""Every case of the bad-input corpus (``tests/corpus/build.py``): the API raises the typed error
naming the file and the problem, and the CLI answers with one line ``semseg: error: ...`` and exit
code 2 (``data check``: the problem listed, exit 1), or accepts the valid-but-unusual input with 0.
Never a traceback, and never code run from a checkpoint."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import torch
from corpus.build import Case, argv, build_corpus, expected_exit

from semseg.cli import main
from semseg.data import build_dataset
from semseg.data.io import read_image
from semseg.errors import CheckpointError, ConfigError, DataError


def _case_list() -> list[Case]:
    with tempfile.TemporaryDirectory() as tmp:
        return build_corpus(Path(tmp) / "corpus")


_CASES = _case_list()  # names and commands only; the files are rebuilt under tmp_path below
CASE_NAMES = [c.name for c in _CASES]
CASE_COMMANDS = [(c.name, command) for c in _CASES for command in c.commands]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Case], Path]:
    root = tmp_path_factory.mktemp("corpus")
    cases = {c.name: c for c in build_corpus(root)}
    return root, cases, tmp_path_factory.mktemp("out")


def _load_every_pair(case: Case) -> int:
    """Build the train and evaluated splits of the case's folder dataset and decode every pair."""
    n = 0
    for split in ("train", case.split or "val"):
        ds = build_dataset("folder", case.root, split, classes=list(case.classes))
        for i in range(len(ds)):
            image, mask = ds[i]
            assert image.dtype == torch.uint8 and image.shape[0] == 3 and mask.shape == image.shape[1:]
            assert set(mask.unique().tolist()) <= set(range(len(case.classes))) | {255}
            n += 1
    return n


def _marker(case: Case) -> Path | None:
    return case.run / "MARKER" if case.run is not None else None


@pytest.mark.parametrize("name", CASE_NAMES)
def test_api_raises_the_typed_error_naming_the_culprit(corpus: tuple[Path, dict[str, Case], Path], name: str) -> None:
    _, cases, _ = corpus
    case = cases[name]
    if case.kind == "data":
        if case.exit_code == 0:
            assert _load_every_pair(case) >= 2
            if case.image is not None:
                image = read_image(case.image)
                assert image.dtype == torch.uint8 and image.shape[0] == 3 and int(image.max()) > 0
            return
        with pytest.raises(DataError) as info:
            _load_every_pair(case)
        if "predict" in case.commands:  # the culprit is the image itself
            with pytest.raises(DataError) as image_info:
                read_image(case.image)
            assert case.culprit in str(image_info.value) and case.message in str(image_info.value)
    elif case.kind == "config":
        from semseg.config import load_config

        with pytest.raises(ConfigError) as info:
            load_config(case.config)
    else:
        from semseg.engine.checkpoint import find_checkpoint, load_state

        assert case.run is not None
        with pytest.raises(CheckpointError) as info:
            if case.commands == ("train",):
                load_state(find_checkpoint(case.run))
            else:
                import semseg

                semseg.load_model(case.run)
        marker = _marker(case)
        assert marker is None or not marker.exists(), "loading the checkpoint ran code from it"
    text = str(info.value)
    assert case.message in text and case.culprit in text, text


@pytest.mark.parametrize(("name", "command"), CASE_COMMANDS)
def test_cli_answers_in_one_line_without_traceback(
    corpus: tuple[Path, dict[str, Case], Path], name: str, command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    root, cases, out = corpus
    case = cases[name]
    try:
        code = main(argv(case, command, root, out))
    except SystemExit as exc:  # argparse's own errors
        code = exc.code  # type: ignore[assignment]
    except BaseException as exc:  # a bug: report it as one clear failure
        pytest.fail(f"{command} on {name}: {type(exc).__name__} escaped main(): {exc}")
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    err_lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == expected_exit(case, command), f"exit {code}; stderr: {captured.err[-2000:]}"
    assert len(err_lines) <= 2, captured.err
    if case.exit_code == 2:
        text = captured.out if command == "data check" else captured.err
        assert case.message in text and case.culprit in text, text
        if command != "data check":
            assert err_lines[0].startswith("semseg: error: ")
    marker = _marker(case)
    assert marker is None or not marker.exists(), "loading the checkpoint ran code from it"


def test_data_check_lists_every_problem_of_a_folder_tree(corpus: tuple[Path, dict[str, Case], Path]) -> None:
    from semseg.data.check import check_dataset

    _, cases, _ = corpus
    report = check_dataset("folder", cases["many-problems"].root, ["train"], classes=["bg", "fg"])
    problems = report.splits[0].problems
    assert len(problems) == 3, problems
    assert "share the stem 'f3'" in problems[0]
    assert [p.split(" has no mask")[0].rsplit("/", 1)[-1] for p in problems[1:]] == ["f1.png", "f2.png"]
