"""Batch scoring through the client CLI against a running gateway: images/s one at a time vs `--concurrency N`
on the same images, then a run killed half-way and resumed, checked for exactly one row per input.

    .venv/bin/python benchmarks/client_batch.py --url http://127.0.0.1:8080 --images 1500 --concurrency 4

The gateway's API key, if it needs one, comes from XRAY_API_KEY. Prints one line per measurement.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CHEST_XRAY_DIR", REPO.parent / "shared" / "data" / "chest_xray"))


def sample(count: int) -> list[Path]:
    """`count` training images, both classes in their proportions, spread over each sorted folder."""
    files = sorted((DATA / "train").glob("*/*.jpeg"))
    return files[:: max(1, len(files) // count)][:count]


def score(url: str, listing: Path, out: Path, concurrency: int) -> list[str]:
    return [sys.executable, "-m", "client", "score", str(listing), "--out", str(out), "--url", url,
            "--concurrency", str(concurrency), "--no-progress"]


def timed_run(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def rows(out: Path) -> list[dict[str, str]]:
    with out.open(newline="") as stream:
        return list(csv.DictReader(stream))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--images", type=int, default=1500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    images = sample(args.images)
    work = Path(tempfile.mkdtemp(prefix="client-batch-"))
    listing = work / "inputs.txt"
    listing.write_text("".join(f"{path}\n" for path in images))
    print(f"{len(images)} images from {DATA / 'train'}; results under {work}", flush=True)

    rates = {}
    for concurrency in (1, args.concurrency):
        seconds = timed_run(score(args.url, listing, work / f"c{concurrency}.csv", concurrency))
        rates[concurrency] = len(images) / seconds
        print(f"concurrency {concurrency}: {len(images)} images in {seconds:.1f} s = {rates[concurrency]:.1f} images/s",
              flush=True)
    print(f"speed-up concurrency {args.concurrency} vs 1: {rates[args.concurrency] / rates[1]:.2f}x", flush=True)

    out = work / "resumed.csv"
    process = subprocess.Popen(score(args.url, listing, out, args.concurrency), cwd=REPO, stdout=subprocess.DEVNULL)
    while process.poll() is None and (not out.exists() or out.read_text().count("\n") <= len(images) // 2):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    at_kill = [row for row in rows(out) if not row["error"]]
    seconds = timed_run(score(args.url, listing, out, args.concurrency))
    final = rows(out)
    paths = [row["path"] for row in final]
    print(f"killed (SIGKILL, exit {process.returncode}) with {len(at_kill)} rows written; re-run scored the other "
          f"{len(images) - len(at_kill)} in {seconds:.1f} s", flush=True)
    one_each = sorted(paths) == sorted(str(path) for path in images)
    kept = {row["path"]: row for row in final}
    unchanged = all(kept.get(row["path"]) == row for row in at_kill)
    failed = sum(1 for row in final if row["error"])
    print(f"after resume: {len(final)} rows for {len(images)} inputs, one per input: {one_each}, "
          f"rows from before the kill unchanged: {unchanged}, failed rows: {failed}", flush=True)


if __name__ == "__main__":
    main()
