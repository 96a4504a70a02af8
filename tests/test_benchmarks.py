"""Smoke tests of the benchmark runner: it runs and reports; no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from benchmarks._clients import CONTESTANTS, OFFICIAL
from benchmarks._report import Bar, Metric, summarize, svg_chart
from benchmarks.calls import QUICK

ROOT = Path(__file__).resolve().parent.parent


def test_quick_list_run_reports_every_client_with_every_dispatch(tmp_path: Path) -> None:
    """A quick run of the list case gives figures for every client and page size, all counted."""
    out = tmp_path / "results.json"
    subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "list", "--json", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    runs_by_client = json.loads(out.read_text())["cases"]["list"]["runs_by_client"]
    assert set(runs_by_client) == {contestant.name for contestant in CONTESTANTS}
    for name, runs in runs_by_client.items():
        for run in runs:
            assert "errors" not in run, name
            for size in QUICK.page_sizes:
                assert run[f"count@{size}"] == QUICK.list_total
                assert run[f"us_per_dispatch@{size}"] > 0
                assert run[f"peak_rss_mb@{size}"] > 0


def test_decode_case_decodes_both_pages_with_every_decoder() -> None:
    """The decode case gets every dispatch of both pages from each of the three decoders."""
    from benchmarks import decode

    runs_by_client = decode.measure(size=20, runs=1, repeats=1)
    assert set(runs_by_client) == {decode.OURS_FAST, decode.OURS_REFERENCE, OFFICIAL}
    for name, runs in runs_by_client.items():
        for run in runs:
            assert run["errors"] == [], name
            for page in decode.PAGES:
                assert run[f"decode_us@{page}"] > 0


def test_encode_case_times_every_request_with_every_encoder() -> None:
    """The encode case gives every figure for each of the three encoders, without errors."""
    from benchmarks import encode

    runs_by_client = encode.measure(runs=1, repeats=1)
    assert set(runs_by_client) == {encode.OURS_FAST, encode.OURS_REFERENCE, OFFICIAL}
    for name, runs in runs_by_client.items():
        for run in runs:
            assert run["errors"] == [], name
            for metric in encode.METRICS:
                assert run[metric.key] > 0


def test_the_encode_case_sends_the_same_requests_from_both_clients() -> None:
    """Ours and the official client encode the benchmark's create and list to equal messages."""
    from frequenz.api.dispatch.v1 import dispatch_pb2

    from benchmarks import encode
    from benchmarks._clients import official_warnings_silenced

    encoders = encode.encoders()
    for metric, official_class in (
        ("encode_us@create", dispatch_pb2.CreateMicrogridDispatchRequest),
        ("encode_us@list", dispatch_pb2.ListMicrogridDispatchesRequest),
    ):
        with official_warnings_silenced():
            messages = [
                official_class.FromString(encoders[name][metric]()())
                for name in (encode.OURS_FAST, encode.OURS_REFERENCE, OFFICIAL)
            ]
        if metric == "encode_us@create":
            # The official client also sends start_immediately=false; ours leaves it unset.
            assert messages[2].start_immediately is False
            messages[2].ClearField("start_immediately")
        assert messages[0] == messages[1] == messages[2], metric


def test_the_decode_case_pages_differ_only_in_rules_and_target_ids() -> None:
    """The distinct page has a different rule in every dispatch, the shared page one rule."""
    from benchmarks import decode
    from dispatch_client._codec import _bridge as bridge

    pages = {name: bridge.decode_list_response(data) for name, data in decode.pages(6).items()}
    shared, distinct = pages["shared"].dispatches, pages["distinct"].dispatches
    assert len({d.recurrence for d in shared}) == 1
    assert len({d.recurrence for d in distinct}) == 6
    assert [d.payload for d in shared] == [d.payload for d in distinct]


def test_summary_gives_the_ratio_of_medians_to_the_official_client() -> None:
    """Statistics leave failed runs out and divide medians by the official client's."""
    metric = Metric("t", "time", lower_is_better=True)
    summary = summarize(
        {"ours": [{"t": 2.0}, {"t": 4.0}, {"errors": ["boom"]}], OFFICIAL: [{"t": 1.0}]},
        [metric],
        OFFICIAL,
    )
    assert summary["t"]["ours"]["median"] == 3.0
    assert summary["t"]["ours"]["ratio"] == 3.0
    assert summary["t"][OFFICIAL]["ratio"] == 1.0


def test_chart_is_well_formed_svg() -> None:
    """The chart is parseable SVG with one bar per given ratio, plus the legend."""
    bars = [Bar("list", "ours", 0.5), Bar("list", "other", 3.0), Bar("get", "ours", 1.0)]
    root = ElementTree.fromstring(svg_chart(bars, "a <title> & more"))
    rects = root.findall("{http://www.w3.org/2000/svg}rect")
    # The background, one per bar, one legend swatch per client.
    assert len(rects) == 1 + len(bars) + 2


def test_scheduler_case_gets_every_start_and_stop_of_ours() -> None:
    """A tiny run of the scheduler case receives every start and stop, without an error."""
    from benchmarks import scheduler

    result = scheduler._one_run(scheduler.OURS, scheduler.Plan(dispatches=40, window=0.2, lead=4))
    assert result["errors"] == []
    assert result["events"] == 80
    assert result["late_p99_ms"] >= 0
    assert result["cpu_us_per_event"] > 0


def test_the_page_compares_each_summary_row_with_the_run_it_replaces(tmp_path: Path) -> None:
    """A full run's page gives, beside each summary ratio, the same row of the run it
    replaces (a dash for a row that run did not have); an unreadable page is no previous run."""
    from benchmarks.__main__ import _markdown, _previous_run

    machine = {
        "platform": "p",
        "cpu": "c",
        "cpu_count": 2,
        "python": "3.11",
        "dispatch_client": "0",
        "commit": "abc1234",
        "frequenz_client_dispatch": "1",
        "grpcio": "1",
        "protobuf": "1",
        "betterproto2": "0",
    }
    old_chart = [{"case": "get, latency p50", "client": "ours", "cost_ratio": 1.5}]
    page = tmp_path / "benchmarks.json"
    page.write_text(json.dumps({"generated": "then", "machine": machine, "chart": old_chart}))
    previous = _previous_run(page)
    assert previous == {"generated": "then", "commit": "abc1234", "chart": old_chart}
    report = {
        "generated": "now",
        "command": "python -m benchmarks",
        "seconds": 60.0,
        "runs": 5,
        "machine": machine,
        "chart": [
            {"case": "get, latency p50", "client": "ours", "cost_ratio": 1.25},
            {"case": "burst", "client": "ours", "cost_ratio": 0.5},
        ],
        "previous": previous,
    }
    text = _markdown(report, [], None)
    assert "| case | client | ours / official | previous run (commit abc1234) |" in text
    assert "| get, latency p50 | ours | 1.25 | 1.50 |" in text
    assert "| burst | ours | 0.50 | - |" in text
    assert _previous_run(tmp_path / "missing.json") is None
    page.write_text("{not json")
    assert _previous_run(page) is None
    assert "previous run" not in _markdown({**report, "previous": None}, [], None)


_MACHINE_KEYS = (
    "platform",
    "cpu",
    "cpu_count",
    "python",
    "dispatch_client",
    "commit",
    "frequenz_client_dispatch",
    "grpcio",
    "protobuf",
    "betterproto2",
)


def test_the_page_gives_the_unary_targets_met_or_not_beside_the_previous_run() -> None:
    """The targets table gives each ratio against its target, met or not, client and
    server CPU and the previous run's ratio (its chart stores the cost, official / ours)."""
    from benchmarks.__main__ import _markdown

    rows = [
        {
            "case": "get",
            "callers": "sequential",
            "client": "ours",
            "ratio": 1.6,
            "target": 1.5,
            "met": True,
            "cpu_us": 150.0,
            "official_cpu_us": 480.0,
            "server_cpu_us": 330.0,
            "official_server_cpu_us": 350.0,
            "ceiling": None,
            "bar": "get, sequential calls/s",
        },
        {
            "case": "create",
            "callers": "10 callers",
            "client": "ours",
            "ratio": 1.1,
            "target": 1.3,
            "met": False,
            "cpu_us": None,
            "official_cpu_us": 400.0,
            "ceiling": 1.4,
            "server_busy": "83 % / 63 %",
            "bar": "create, 10 concurrent callers",
        },
    ]
    report = {
        "generated": "now",
        "command": "python -m benchmarks",
        "seconds": 60.0,
        "runs": 5,
        "machine": dict.fromkeys(_MACHINE_KEYS, "x"),
        "chart": [{"case": "get, sequential calls/s", "client": "ours", "cost_ratio": 0.625}],
        "targets": rows,
        "previous": {
            "generated": "then",
            "commit": "abc",
            "chart": [{"case": "get, sequential calls/s", "client": "ours", "cost_ratio": 1.25}],
        },
    }
    text = _markdown(report, [], None)
    assert (
        "| get | sequential | ours | 1.60 | ≥ 1.5 | yes | 150 / 480 | 330 / 350 | - | - | 0.80 |"
        in text
    )
    assert (
        "| create | 10 callers | ours | 1.10 | ≥ 1.3 | no | n/a | n/a | 1.40 | 83 % / 63 % | - |"
        in text
    )
    assert "## Targets" not in _markdown({**report, "targets": []}, [], None)


def test_the_cpu_bound_ceiling_is_the_ratio_of_client_plus_server_cpu() -> None:
    """With client and server sharing the cores, the ceiling is (official client + server
    CPU) / (ours client + server CPU); a missing figure gives no ceiling."""
    from benchmarks.__main__ import _ceiling

    ours_client, ours_server = 175.0, 320.0
    official_client, official_server = 366.0, 340.0
    ceiling = _ceiling(ours_client, ours_server, official_client, official_server)
    assert ceiling is not None
    assert abs(ceiling - 706 / 495) < 1e-9
    assert _ceiling(ours_client, None, official_client, official_server) is None
    assert _ceiling(ours_client, ours_server, None, official_server) is None


def test_the_bare_client_gets_the_servers_answer() -> None:
    """The server-pace case's bare client hands back the message the server sent."""
    import anyio

    from benchmarks._server_process import ServerProcess
    from benchmarks.server_pace import BareClient
    from dispatch_client._codec import _decode

    server = ServerProcess()
    try:

        async def main() -> list[bytes]:
            with anyio.fail_after(30):
                client = await BareClient.connect("127.0.0.1", server.port, (("key", "k"),))
                try:
                    async with anyio.create_task_group() as group:
                        answers: list[bytes] = []

                        async def call() -> None:
                            answers.append(await client.get())

                        for _ in range(25):
                            group.start_soon(call)
                    return answers
                finally:
                    client.close()

        answers = anyio.run(main, backend="asyncio")
    finally:
        server.stop()
    assert len(answers) == 25
    assert len(set(answers)) == 1
    assert _decode.decode_get_response(answers[0]).id == 42


def test_the_server_pace_case_measures_every_client() -> None:
    """A tiny server-pace run gives calls/s and CPU for the bare client (also decoding
    its answers, and with work per call, which it spends), ours and the official client."""
    from benchmarks import server_pace

    results = server_pace.measure(runs=1, count=40, work=(300,))
    busy = server_pace.with_work(300)
    bare, decoding, *others = server_pace.CLIENTS
    assert list(results) == [bare, decoding, busy, *others]
    for name, runs in results.items():
        assert len(runs) == 1, name
        assert runs[0]["calls_per_s"] > 0
        assert runs[0]["cpu_us"] > 0
    # The busy loop runs on the thread's CPU clock, which the per-call CPU includes.
    assert results[busy][0]["cpu_us"] >= 300
    assert f"| {busy} |" in server_pace.report(results)


def test_quick_pace_run_is_a_section_of_the_benchmarks(tmp_path: Path) -> None:
    """`python -m benchmarks --only pace` measures every row of the pace case and prints
    its table."""
    from benchmarks import server_pace

    out = tmp_path / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--runs", "1", "--only", "pace",
         "--json", str(out)],
        cwd=ROOT, check=True, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    pace = json.loads(out.read_text())["cases"]["pace"]
    rows = [server_pace.with_work(work_us) for work_us in server_pace.BENCH_WORK]
    assert set(pace["runs_by_client"]) == {*server_pace.CLIENTS, *rows}
    assert "## How fast the server goes" in done.stdout
    for row in rows:
        assert f"| {row} |" in done.stdout


@pytest.mark.parametrize("work", ["0", "-5", "ten", "15,,30"])
def test_the_server_pace_work_option_rejects_bad_values(
    work: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--work` takes whole µs > 0, comma-separated; anything else is a usage error."""
    from benchmarks import server_pace

    with pytest.raises(SystemExit) as exited:
        server_pace.main(["--work", work])
    assert exited.value.code == 2
    assert "--work" in capsys.readouterr().err
