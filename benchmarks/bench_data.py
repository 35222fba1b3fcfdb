"""How long loading DialogSum's 12,460 training dialogues from the release folder takes.

    python benchmarks/bench_data.py [--data ../shared/data/dialogsum] [--quick]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from summarizer.data import load_split  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared/data/dialogsum"))
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 10")
    args = parser.parse_args()
    times = []
    for _ in range(3 if args.quick else 10):
        started = time.perf_counter()
        examples = load_split(args.data, "train")
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(f"loaded {len(examples)} training dialogues: median {median:.3f} s over {len(times)} runs")
    print(f"ratio to the 5 s budget: {median / 5:.3f}")


if __name__ == "__main__":
    main()
