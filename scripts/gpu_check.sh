#!/usr/bin/env bash
# One prepared run on a CUDA machine (about 10 minutes on one GPU):
#   1. environment (torch, CUDA, GPU name, CPU, threads)      -> OUT/environment.json
#   2. the fast test suite with the `device` fixture on CUDA   -> OUT/pytest.log, OUT/junit.xml
#   3. `groupconv bench SUITE --device cuda` for every suite (= `bench all`, one suite per step
#      so a slow suite cannot lose the others; escnn rows when escnn is installed)
#                                                              -> OUT/bench_SUITE.json/.log
#   4. the demo in quick mode on CUDA                          -> OUT/demo/, OUT/demo.log
#   5. a summary of all of it                                  -> OUT/summary.json, OUT/summary.md
#
# Usage:  scripts/gpu_check.sh [--out DIR] [--dry-run]
#   --dry-run  the same steps on the CPU with smoke sizes (one test file, `bench conv` at tiny
#              sizes, no demo training): tests/test_gpu_check.py runs it in the fast suite so
#              this script cannot rot. A dry run's numbers mean nothing.
# Environment: PYTHON (default: .venv/bin/python when present, else python3),
#              GPU_CHECK_TEST_TIMEOUT / GPU_CHECK_BENCH_TIMEOUT / GPU_CHECK_DEMO_TIMEOUT (seconds).
# Exit status: 0 when every step passed, 1 when a step failed (the summary says which),
#              2 on a usage error or when a real run finds no CUDA device.
set -u -o pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/gpu_check_out"
DRY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --out=*) OUT="${1#--out=}"; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "gpu_check.sh: unknown argument $1 (expected --out DIR or --dry-run)" >&2; exit 2 ;;
  esac
done
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT" || exit 2

if [ "$DRY" = 1 ]; then
  DEVICE=cpu
  TESTS=(tests/test_fftconv.py -k "next_fast_len or padding_resolution")
  SUITES=(conv)
  bench_args() { BARGS=(-m groupconv.benchmarks.conv --quick --length 64 --repeats 1 --direct-repeats 1
                       --no-memory --no-cost-model --device cpu --json "$OUT/bench_$1.json"); }
  DEMO=(-c "import groupconv.experiments.demo as d; print('demo importable:', callable(d.run_demo))")
  T_TEST=${GPU_CHECK_TEST_TIMEOUT:-120}; T_BENCH=${GPU_CHECK_BENCH_TIMEOUT:-120}
  T_DEMO=${GPU_CHECK_DEMO_TIMEOUT:-60}
else
  if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check.sh: torch sees no CUDA device; use --dry-run on a CPU machine" >&2
    exit 2
  fi
  DEVICE=cuda
  NPROC=$(nproc 2>/dev/null || echo 2)
  WORKERS=$(( NPROC > 8 ? 8 : NPROC ))
  TESTS=(-m "not slow and not training" --groupconv-devices=cuda -n "$WORKERS")
  SUITES=(groups conv gconv separable attention gsa)
  bench_args() { BARGS=(-m groupconv bench "$1" --device cuda --json "$OUT/bench_$1.json"); }
  DEMO=(-m groupconv demo --quick --device cuda --out "$OUT/demo" --no-progress)
  # worst case 200 + 6 x 55 + 60 s < 10 minutes (each limit is per step)
  T_TEST=${GPU_CHECK_TEST_TIMEOUT:-200}; T_BENCH=${GPU_CHECK_BENCH_TIMEOUT:-55}
  T_DEMO=${GPU_CHECK_DEMO_TIMEOUT:-60}
fi

STEPS_FILE="$OUT/steps.tsv"
: > "$STEPS_FILE"
step() {  # step NAME TIMEOUT LOG CMD...
  local name="$1" limit="$2" log="$3"; shift 3
  local t0 rc
  t0=$(date +%s%N)
  echo "== $name: $*"
  echo "== $name: $*" > "$log"
  timeout "$limit" "$@" >> "$log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(( ($(date +%s%N) - t0) / 1000000 ))" "$log" >> "$STEPS_FILE"
  tail -n 3 "$log"
  return 0
}

step environment 60 "$OUT/environment.log" "$PYTHON" - "$OUT/environment.json" "$DEVICE" <<'EOF'
import json, sys
from groupconv.benchmarks.common import environment_info
info = environment_info(sys.argv[2])
import torch
info["cuda_available"] = torch.cuda.is_available()
info["gpu_count"] = torch.cuda.device_count()
json.dump(info, open(sys.argv[1], "w"), indent=2)
print(json.dumps(info))
EOF
step tests "$T_TEST" "$OUT/pytest.log" "$PYTHON" -m pytest -q -p no:cacheprovider \
  --junitxml="$OUT/junit.xml" "${TESTS[@]}"
for suite in "${SUITES[@]}"; do
  bench_args "$suite"
  step "bench-$suite" "$T_BENCH" "$OUT/bench_$suite.log" "$PYTHON" "${BARGS[@]}"
done
step demo "$T_DEMO" "$OUT/demo.log" "$PYTHON" "${DEMO[@]}"

"$PYTHON" - "$OUT" "$DRY" <<'EOF'
import json, sys, datetime, pathlib, xml.etree.ElementTree as ET
out, dry = pathlib.Path(sys.argv[1]), sys.argv[2] == "1"
steps = []
for line in (out / "steps.tsv").read_text().splitlines():
    name, rc, ms, log = line.split("\t")
    steps.append({"step": name, "rc": int(rc), "ok": rc == "0", "seconds": round(int(ms) / 1e3, 1),
                  "log": log, "timed_out": rc in ("124", "137")})
env = json.loads((out / "environment.json").read_text()) if (out / "environment.json").exists() else {}
tests = None
if (out / "junit.xml").exists():
    root = ET.parse(out / "junit.xml").getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    tests = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
bench_rows = []
for path in sorted(out.glob("bench_*.json")):
    data = json.loads(path.read_text())
    suites = {data["benchmark"]: data} if "benchmark" in data else data
    for suite, res in suites.items():
        for r in res.get("verdicts") or res.get("rows", []):  # verdict rows where a suite has them
            bench_rows.append({"suite": suite, "check": r.get("check") or r.get("op"),
                               "what": (r.get("what") or r.get("candidate") or r.get("layer")
                                        or (f"{r['group']} {r.get('op', '')}".strip() if r.get("group") else None)),
                               "ratio": r.get("ratio"), "ok": r.get("ok"),
                               "rule": r.get("rule")})
summary = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "dry_run": dry, "environment": env, "steps": steps, "tests": tests,
           "bench": bench_rows, "ok": all(s["ok"] for s in steps)}
(out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
md = [f"# gpu_check {'DRY RUN (CPU, numbers mean nothing)' if dry else 'on ' + str(env.get('device_name'))}",
      "", f"{summary['date']}; torch {env.get('torch')}, CUDA {env.get('cuda')}, "
      f"{env.get('cpu_model')}, {env.get('threads')} threads", "",
      "| step | status | seconds |", "|---|---|---|"]
md += [f"| {s['step']} | {'ok' if s['ok'] else ('TIMEOUT' if s['timed_out'] else 'FAILED rc=' + str(s['rc']))}"
       f" | {s['seconds']} |" for s in steps]
if tests:
    md += ["", f"tests: {tests['tests']} run, {tests['failures']} failures, {tests['errors']} errors, "
           f"{tests['skipped']} skipped"]
if bench_rows:
    md += ["", "| suite | check | what | ratio | ok |", "|---|---|---|---|---|"]
    md += [f"| {b['suite']} | {b['check']} | {b['what']} | "
           f"{'-' if b['ratio'] is None else format(b['ratio'], '.3g')} | "
           f"{'-' if b['ok'] is None else ('ok' if b['ok'] else 'NO')} |" for b in bench_rows]
(out / "summary.md").write_text("\n".join(md) + "\n")
print("\n".join(md))
sys.exit(0 if summary["ok"] else 1)
EOF
