"""Measured (Nsight Compute CSV) against modelled (the emulator's profile, `emu_test --counts` JSON
lines, and the time model's predictions, bench/gpu/predict.ts) counters, one row per kernel launch and
metric; bench/gpu/ncu.sh runs it.
   python3 bench/gpu/ncu_table.py MODELLED.jsonl PREDICTED.jsonl [NCU.csv]   # no CSV: modelled only"""
import csv
import json
import sys

# ncu metric -> how the emulator's counters model it (None: the emulator has no model for it yet).
MODEL = {
    "l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum": lambda c: c["global_load_sectors"],
    "l1tex__data_pipe_lsu_wavefronts_mem_shared.sum": lambda c: c["shared_load_wavefronts"] + c["shared_store_wavefronts"],
    "l1tex__data_bank_conflicts_pipe_lsu_mem_shared.sum": lambda c: c["shared_bank_conflicts"],
    "dram__bytes.sum": lambda c: 32 * c["unique_global_sectors"],  # a lower bound: compulsory traffic
    "gpu__time_duration.sum": lambda c: round(1000 * c["predicted_micros"]),  # ns, as ncu's base unit
}


def measured_launches(path):
    """[(kernel name, {metric: value})] in launch order."""
    with open(path, newline="") as f:
        rows = [line for line in f if line.startswith('"')]
    launches = {}
    for row in csv.DictReader(rows):
        launch = launches.setdefault(row["ID"], (row["Kernel Name"], {}))
        launch[1][row["Metric Name"]] = row["Metric Value"].replace(",", "")
    return [launches[k] for k in sorted(launches, key=int)]


def main():
    modelled = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
    predicted = [json.loads(line) for line in open(sys.argv[2]) if line.strip()]
    for counts, prediction in zip(modelled, predicted, strict=True):
        counts["predicted_micros"] = prediction["micros"]
    measured = measured_launches(sys.argv[3]) if len(sys.argv) > 3 else None
    if measured is not None and len(measured) != len(modelled):
        sys.exit(f"ncu_table.py: ncu measured {len(measured)} launches, the emulator {len(modelled)}")
    print(f"{'kernel':<20} {'metric':<52} {'measured':>12} {'modelled':>12}")
    for i, counts in enumerate(modelled):
        name = counts["kernel"]
        if measured is not None and not name.startswith(measured[i][0].split("(")[0]):
            sys.exit(f"ncu_table.py: launch {i} is {measured[i][0]} on the GPU but {name} in the emulator")
        for metric, model in MODEL.items():
            got = measured[i][1].get(metric, "?") if measured is not None else "n/a"
            want = "n/a" if model is None else str(model(counts))
            print(f"{name:<20} {metric:<52} {got:>12} {want:>12}")


if __name__ == "__main__":
    main()
