"""The timing protocol the reference benchmark scripts share with `runtime bench` (BenchCommand.Time).

measure(fn) runs `before` untimed warm-ups, one timed call whose length sets the repeat count (about
`budget_ms` worth, between `min_reps` and `max_reps`, unless `repeat` is given), `after` more warm-ups, then
the timed repeats; `sync` (e.g. torch.cuda.synchronize) ends every call. Returns (median ms, min ms, repeats).
"""
import statistics
import time


def measure(fn, repeat=None, sync=None, before=0, after=0, budget_ms=1000, min_reps=5, max_reps=200):
    sync = sync or (lambda: None)

    def once():
        t0 = time.perf_counter()
        fn()
        sync()
        return (time.perf_counter() - t0) * 1000

    for _ in range(before):
        fn()
        sync()
    first = once()
    for _ in range(after):
        fn()
        sync()
    reps = repeat or int(min(max_reps, max(min_reps, budget_ms / max(first, 0.01))))
    times = [once() for _ in range(reps)]
    return statistics.median(times), min(times), reps
