"""provabgs_sbi.progress: a bar that reaches its total draws "100%" once (by close()), not
once by the last update and again by close() as plain tqdm does in a log file."""
from __future__ import annotations

import io

import pytest

from provabgs_sbi.progress import progress_bar


def states(out: io.StringIO) -> list[str]:
    """The drawn states of a bar written to a file: tqdm starts each with a carriage
    return (a file is not a terminal: every draw stays in it)."""
    return [s.strip() for s in out.getvalue().split("\r") if s.strip()]


def run_bar(total, steps, **kwargs):
    out = io.StringIO()
    # mininterval=0: every update draws, so the last update would draw 100% (plain tqdm)
    bar = progress_bar(total=total, file=out, mininterval=0, **kwargs)
    for _ in range(steps):
        bar.update(1)
    bar.close()
    return out


def test_a_bar_run_to_its_total_draws_100_percent_once():
    out = run_bar(3, 3, desc="demo", unit="gal")
    drawn = states(out)
    assert [s.split("|")[0].strip() for s in drawn] == ["demo:   0%", "demo:  33%", "demo:  67%",
                                                       "demo: 100%"]
    assert out.getvalue().count("100%") == 1 and out.getvalue().count("3/3") == 1
    assert "gal/s" in drawn[-1] and out.getvalue().endswith("\n")


def test_the_iterable_and_context_manager_forms_draw_100_percent_once():
    out = io.StringIO()
    assert list(progress_bar(range(4), file=out, mininterval=0, miniters=1)) == [0, 1, 2, 3]
    assert out.getvalue().count("100%") == 1 and "4/4" in states(out)[-1]

    out = io.StringIO()
    with progress_bar(total=2, file=out, mininterval=0) as bar:
        bar.update(1)
        bar.set_postfix(loss="0.5")       # a redraw at the total is left to close() too
        bar.update(1)
        bar.set_postfix(loss="0.25")
    assert out.getvalue().count("100%") == 1 and "loss=0.25" in states(out)[-1]


def test_an_overshoot_and_a_finished_resume_draw_one_final_line():
    out = run_bar(3, 5)                           # tqdm shows an overshoot as a count
    assert [s for s in states(out) if "it/s" in s and "%" not in s] == [states(out)[-1]]
    assert states(out)[-1].startswith("5it")
    out = run_bar(3, 0, initial=3, desc="resumed")
    assert len(states(out)) == 1 and states(out)[0].startswith("resumed: 100%")


def test_an_interrupted_bar_shows_its_last_state():
    out = run_bar(5, 2, desc="interrupted")
    assert "100%" not in out.getvalue()
    assert states(out)[-1].startswith("interrupted:  40%") and "2/5" in states(out)[-1]
    assert out.getvalue().endswith("\n")


def test_a_bar_closed_by_an_exception_shows_its_last_state():
    out = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        with progress_bar(total=4, file=out, mininterval=0, initial=1) as bar:
            bar.update(1)
            raise KeyboardInterrupt
    assert "2/4" in states(out)[-1] and "100%" not in out.getvalue()


def test_disable_and_leave_false_keep_their_meaning():
    assert run_bar(3, 3, disable=True).getvalue() == ""
    out = run_bar(3, 3, leave=False)
    assert "100%" not in out.getvalue()          # a bar that is not left is cleared
    assert states(out)[-1].startswith("67%")
