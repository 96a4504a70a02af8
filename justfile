# Tasks for dispatch-client. `pip install -e ".[dev]"` puts `just` on PATH.
# The project's virtual environment, when there is one, comes first on PATH so
# `.venv/bin/just test` works without activating it.
export PATH := justfile_directory() + "/.venv/bin:" + env_var("PATH")

default:
    @just --list

# Run the whole test suite (every async test on asyncio and trio).
test *ARGS:
    python -m pytest {{ARGS}}

# Lint and format check.
lint:
    ruff check .
    ruff format --check .

# Static types, strict.
typecheck:
    mypy

# Regenerate dispatch_client/_proto from the pinned frequenz-api-dispatch wheel.
codegen:
    python tools/codegen.py dispatch_client/_proto

# Fail if dispatch_client/_proto differs from a fresh generation.
codegen-check:
    python tools/codegen.py --check dispatch_client/_proto

# Build the documentation site, warnings are errors.
docs:
    mkdocs build --strict --site-dir build/site

# Prove `pip install .` pulls in neither grpcio nor protobuf.
runtime-check:
    python tools/runtime_check.py

# Everything CI checks.
check: lint typecheck codegen-check docs test

# The demo from the README.
demo:
    python -m dispatch_client._demo

# Every benchmark, ours against the official client (scripts, never tests; one grpcio
# server); a full run writes docs/benchmarks.md, .json and .svg. `--quick`: a smoke run.
bench *ARGS:
    python -m benchmarks --docs docs {{ARGS}}

# The transports against a grpcio client: calls/s and streamed messages/s.
bench-transports *ARGS:
    python -m benchmarks --only transports {{ARGS}}

# How fast the benchmark server can go: a bare HTTP/2 client that does no work, with
# 10 concurrent get() callers, beside ours and the official client.
bench-pace *ARGS:
    python -m benchmarks.server_pace {{ARGS}}

# Soak: 10 clients with mixed calls and 50 streams for 60 s through two server restarts
# (loopback; asyncio with both transports, then trio); exits 1 when a bound fails.
soak *ARGS:
    python -m benchmarks.soak {{ARGS}}

# Stream fan-out, 1 / 100 / 1,000 receivers: ours against the official client.
bench-stream *ARGS:
    python -m benchmarks --only stream {{ARGS}}
