#!/usr/bin/env bash
# Trains the two model screeners of issue #20 on synthetic hard phantoms and writes
# Ops/models/<name>-<version>.onnx and <name>.json (manifest), docs/models/<name>.md (model
# card) and docs/models/<name>.metrics.json.
#   scripts/train-screen-models.sh             both models
#   scripts/train-screen-models.sh head        one (head | chest)
# Python packages are pinned and installed project-locally into .pydeps-train/ (never
# system-wide); the exported tensors go to .build-screen-data/ (ignored by git).
# Seeds: training and validation seeds below; the test seed 20261203 is held out (evaluated
# once, after the threshold is chosen on the validation seed).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

kinds=("${@:-head chest}")
read -r -a kinds <<< "${kinds[*]}"

train_seeds=(20261201 20261211)
train_count=${TRAIN_COUNT:-400}      # per training seed
val_seed=20261202
val_count=${VAL_COUNT:-200}
test_seed=20261203
test_count=200

deps="$PWD/.pydeps-train"
pins=(
  torch==2.13.0+cpu
  onnx==1.23.2
  numpy==2.4.6
  # what those need, pinned
  filelock==4.3.1
  typing-extensions==4.16.0
  sympy==1.14.0
  mpmath==1.3.0
  networkx==3.6.1
  jinja2==3.1.6
  MarkupSafe==3.0.4
  fsspec==2026.9.0
  setuptools==84.2.1
  protobuf==7.36.2
  ml_dtypes==0.7.0
)
marker="$deps/.pins"
if [[ ! -f "$marker" ]] || [[ "$(cat "$marker")" != "${pins[*]}" ]]; then
  echo "installing ${pins[*]} into $deps" >&2
  python3 -m pip install --quiet --disable-pip-version-check --target "$deps" --upgrade "${pins[@]}"
  echo "${pins[*]}" > "$marker"
fi

# The bench links the worker's libraries, which need OpenVINO's pkg-config file.
scripts/openvino.sh
export PKG_CONFIG_PATH="$PWD/.openvino/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
swift build -c release --product radgrid-bench
bench=.build/release/radgrid-bench

data="$PWD/.build-screen-data"
mkdir -p "$data"
export PYTHONPATH="$deps${PYTHONPATH:+:$PYTHONPATH}"
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 PYTHONHASHSEED=0

for kind in "${kinds[@]}"; do
  case "$kind" in
    head) name=ct-head-hyperdensity-cnn; spec='{"tensor":"slices","modality":"CT","bodyParts":["HEAD","BRAIN","SKULL"],"windowHU":[-20,140],"spacingMM":1.5,"size":[160,160],"channels":3}' ;;
    chest) name=ct-chest-nodule-cnn; spec='{"tensor":"slices","modality":"CT","bodyParts":["CHEST","LUNG","THORAX"],"windowHU":[-1000,400],"spacingMM":2.2,"size":[160,160],"channels":3}' ;;
    *) echo "unknown kind $kind (head | chest)" >&2; exit 2 ;;
  esac
  echo "$spec" > "$data/$kind-input.json"
  t0=$(date +%s)
  trains=()
  for s in "${train_seeds[@]}"; do
    rm -rf "$data/$kind-train-$s"
    "$bench" screen-data --kind "$kind" --count "$train_count" --seed "$s" --hard --out "$data/$kind-train-$s" --input-spec "$data/$kind-input.json"
    trains+=("$data/$kind-train-$s")
  done
  # Several training seeds: one folder of symlinks with the cases renumbered.
  merged="$data/$kind-train"
  rm -rf "$merged"; mkdir -p "$merged"; : > "$merged/labels.jsonl"
  n=0
  for d in "${trains[@]}"; do
    while IFS= read -r line; do
      c=$(sed -E 's/.*"case":([0-9]+).*/\1/' <<< "$line")
      ln -s "$d/case-$c.npy" "$merged/case-$n.npy"
      sed -E "s/\"case\":$c([,}])/\"case\":$n\1/" <<< "$line" >> "$merged/labels.jsonl"
      n=$((n + 1))
    done < "$d/labels.jsonl"
  done
  rm -rf "$data/$kind-val" "$data/$kind-test"
  "$bench" screen-data --kind "$kind" --count "$val_count" --seed "$val_seed" --hard --out "$data/$kind-val" --input-spec "$data/$kind-input.json"
  "$bench" screen-data --kind "$kind" --count "$test_count" --seed "$test_seed" --hard --out "$data/$kind-test" --input-spec "$data/$kind-input.json"
  echo "[$name] data exported in $(( $(date +%s) - t0 )) s"

  python3 scripts/train_screen_models.py --kind "$kind" --train "$merged" --val "$data/$kind-val" --test "$data/$kind-test" \
    --train-seeds "$(IFS=,; echo "${train_seeds[*]}")" --val-seed "$val_seed" --test-seed "$test_seed" \
    --out Ops/models --docs docs/models
done

echo
echo "summary (total $(( $(date +%s) - start )) s):"
for kind in "${kinds[@]}"; do
  case "$kind" in head) name=ct-head-hyperdensity-cnn ;; chest) name=ct-chest-nodule-cnn ;; esac
  python3 - "docs/models/$name.metrics.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
v, t = m["validation"], m["test"]
print(f"  {m['model']}: {m['onnxBytes']} bytes, trained {m['trainSeconds']:.0f} s, threshold {m['threshold']:.4f}")
print(f"    validation (seed {m['valSeed']}): AUC {v['auc']:.3f} sens {v['sensitivity']:.3f} spec {v['specificity']:.3f}")
print(f"    test       (seed {m['testSeed']}): AUC {t['auc']:.3f} sens {t['sensitivity']:.3f} spec {t['specificity']:.3f}")
PY
done
