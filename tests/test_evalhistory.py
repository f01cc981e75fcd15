"""The bounded evaluation history: exact count and best, bounded size, newest at full
resolution, the first and the best point always kept; evals.jsonl for a resume."""

from hypothesis import given
from hypothesis import strategies as st

from d3q_core.run.evalhistory import EvalHistory
from d3q_core.snapshot import EvalPoint


def point(k: int, mean: float) -> EvalPoint:
    return EvalPoint(learner_samples=100 * (k + 1), env_steps=10 * k, version=k, mean=mean,
                     max=mean + 1, min=mean - 1, elapsed=float(k))


@given(st.lists(st.floats(-500, 500), min_size=1, max_size=400), st.integers(8, 40))
def test_bounded_with_exact_count_first_newest_and_best(means, keep):
    h = EvalHistory(keep=keep)
    for k, mean in enumerate(means):
        h.add(point(k, mean))
    pts = h.points()
    assert h.count == len(means) and len(pts) <= keep
    assert pts[0].version == 0 and pts[-1].version == len(means) - 1
    assert h.best == max(means) and any(p.mean == max(means) for p in pts)
    assert [p.version for p in pts] == sorted({p.version for p in pts})  # in order, no repeats
    newest = min(len(means), keep // 2)  # the newest half is never thinned
    assert [p.version for p in pts[-newest:]] == list(range(len(means) - newest, len(means)))


def test_long_run_stays_bounded_in_memory():
    h = EvalHistory()
    for k in range(50_000):
        h.add(point(k, float(k % 300)))
    assert h.count == 50_000 and len(h) <= h.keep


def test_a_resumed_history_goes_on_from_the_checkpoint(tmp_path):
    from dataclasses import asdict

    from d3q_core.storage.rundir import RunDir

    rd = RunDir(tmp_path)
    for k in range(30):
        rd.append_eval(asdict(point(k, float(k))))
    with open(rd.evals_path, "a") as f:
        f.write('{"learner_samples": 31')  # torn by a kill mid-write
    records = rd.read_evals(max_learner_samples=100 * 28)  # the last 2 came after it
    assert [r["version"] for r in records] == list(range(28))
    rd.rewrite_evals(records)
    assert rd.read_evals(10**9) == records  # the evaluations after the checkpoint are gone
    resumed = EvalHistory((EvalPoint(**r) for r in records), keep=8)
    assert resumed.count == 28 and resumed.points()[-1].version == 27
    resumed.add(point(28, 1.0))
    assert resumed.count == 29 and resumed.best == 27.0
