# Sourced by the bench tables: the header, and one row = one fresh `diffuse generate` process.
# Uses the caller's $model, $steps, $size and $dtype. DIFFUSE=PATH runs that binary instead of
# .build/release/diffuse (a copy, so that building while a table runs cannot swap it mid-run).

table_header() {
  echo "| technique | accel peak | process peak RSS | last UNet step | VAE decode | transfers | transfer wait |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
}

# run_row NAME PREFIX ARGS...: runs with ARGS, writing PREFIX.{png,json,err}; prints the row,
# or a "failed" row and status 1.
run_row() {
  local name=$1 prefix=$2; shift 2
  "${DIFFUSE:-.build/release/diffuse}" generate --model "$model" --prompt "a red circle" --steps "$steps" --width "$size" --height "$size" \
      --dtype "$dtype" "$@" --out "$prefix.png" --report "$prefix.json" >/dev/null 2>"$prefix.err" \
      || { echo "| $name | failed: $(tail -1 "$prefix.err") |"; return 1; }
  python3 tools/bench/report_row.py "$name" "$prefix.json"
}
