import csv

from conftest import SAMPLE_DIR

from pianolib.bench import COLUMNS, markdown_table, run_benchmark


def test_benchmark_on_sample_clips_writes_every_column(tmp_path):
    rows = run_benchmark(data=SAMPLE_DIR, out=tmp_path, include_maps=False, progress=False)
    systems = {r["system"] for r in rows}
    assert "pianolib" in systems  # plus basic-pitch when it is installed
    with open(tmp_path / "results.csv") as fh:
        table = list(csv.DictReader(fh))
    assert list(table[0]) == COLUMNS
    for r in table:
        assert all(r[c] != "" for c in COLUMNS)
        assert 0 <= float(r["note_f1"]) <= 1 and float(r["speed_x"]) > 0
        assert float(r["peak_rss_mb"]) > 0 and int(r["pieces"]) == 3
    md = (tmp_path / "results.md").read_text()
    assert all(c in md for c in COLUMNS)
    assert (tmp_path / "results.png").stat().st_size > 1000
    assert markdown_table(rows).count("\n") == len(rows) + 2
    with open(tmp_path / "per_piece.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 3 * len(systems)


def test_benchmark_refuses_to_replace_results_without_force(tmp_path):
    import pytest

    from pianolib.errors import PianolibError

    (tmp_path / "results.csv").write_text("earlier results\n")
    with pytest.raises(PianolibError, match="--force"):
        run_benchmark(data=SAMPLE_DIR, out=tmp_path, include_maps=False, progress=False)
    assert (tmp_path / "results.csv").read_text() == "earlier results\n"


def test_bench_and_speed_measure_the_same_long_recording_for_memory():
    """`bench` rewrites speed.md too: with `speed`'s 60-minute memory row, not a shorter table."""
    from pianolib.__main__ import build_parser
    from pianolib.speed import MEMORY_MINUTES

    assert build_parser().parse_args(["speed"]).memory_minutes == MEMORY_MINUTES
