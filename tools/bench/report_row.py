#!/usr/bin/env python3
"""One markdown table row from a `diffuse generate --report` file, for the bench scripts:
   report_row.py NAME REPORT.json
| name | accel:0 peak | process peak RSS | last UNet step | VAE decode | transfers | transfer wait |"""
import json
import sys

name, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
t, m, tr = r["timings"], r["memory"], r["transfers"]
accel = m["devices"].get("accel:0", {}).get("peak_bytes", 0)
rss = m.get("process_peak_rss_bytes")
rss = f"{rss / 2**30:.2f} GiB" if rss else "–"
c = r.get("capture")
if c:
    name += f" (arena {c['arena_bytes'] / 2**20:.0f} MiB, eager activations {c['eager_peak_bytes'] / 2**20:.0f} MiB)"
print(f"| {name} | {accel / 2**20:.0f} MiB | {rss} | {t['steps_s'][-1]:.2f} s | "
      f"{t['vae_decode_s']:.1f} s | {tr['bytes'] / 2**30:.2f} GiB / {tr['count']} | {tr['wait_s']:.2f} s |")
