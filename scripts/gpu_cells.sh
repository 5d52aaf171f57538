#!/bin/bash
# The study cells that need a GPU (studies/paper_protocol.yaml: ISBI 2012 with U-Net width 64 and
# ResNet-50 on CIFAR-10, the paper's protocol), as one prepared run on a lent GPU machine.
#
#   bash scripts/gpu_cells.sh prepare        # here: copy the data the cells read into .gpu_data/
#   bash scripts/gpu_cells.sh run [SECONDS]  # there, from the repository root (default 540 s)
#
# `prepare` copies from $MIAMIND_DATA (default ../shared/data) only the files these cells read:
# the CIFAR-10 JPEG archive (19 MB) and the ISBI training volume and labels (16 MB), so the tree
# that travels stays under the device's 64 MiB; it also records this checkout's commit, which the
# cells' study_cell.json carry (the copy sent there is no git checkout). Send it with the device
# tool's `run`, carry [".gpu_data"], command `bash scripts/gpu_cells.sh run 540`.
#
# `run` trains the cells ISBI first (10 cells, ~150 steps each), then ResNet-50 seed by seed, several
# at a time, until SECONDS have passed, then packs every finished cell's folder, without checkpoints,
# into $OUT/cells.tar.gz. A cell cut off by the deadline is lost (the machine goes back bare), so
# a later lease starts it again. Back here: unpack into a runs folder and report, e.g.
#   tar xzf cells.tar.gz -C runs/study/paper-gpu
#   miamind study report studies/paper_protocol.yaml --runs-dir runs/study/paper-gpu
set -euo pipefail
cd "$(dirname "$0")/.."
DATA_DIR=.gpu_data

case "${1:-}" in
prepare)
    src="${MIAMIND_DATA:-../shared/data}"
    for f in cifar10/cifar-10-images-jpeg-q75_YoongiKim.tar.gz cifar10/batches.meta \
        cifar10/PROVENANCE.md isbi2012/train-volume.tif isbi2012/train-labels.tif isbi2012/PROVENANCE.md; do
        [ -f "$src/$f" ] || { echo "gpu_cells: $src/$f: missing (set MIAMIND_DATA)" >&2; exit 2; }
        mkdir -p "$DATA_DIR/$(dirname "$f")"
        cp "$src/$f" "$DATA_DIR/$f"
    done
    git rev-parse HEAD >"$DATA_DIR/COMMIT"
    grep -qx "/$DATA_DIR/" .git/info/exclude 2>/dev/null || echo "/$DATA_DIR/" >>.git/info/exclude
    echo "gpu_cells: $(du -sh "$DATA_DIR" | cut -f1) in $DATA_DIR at commit $(cat "$DATA_DIR/COMMIT")"
    ;;
run)
    seconds="${2:-540}"
    out="${OUT:-/tmp/gpu_cells_out}"
    runs=/tmp/gpu_cells_runs
    mkdir -p "$out" "$runs"
    [ -f "$DATA_DIR/COMMIT" ] || { echo "gpu_cells: $DATA_DIR/COMMIT: missing (run 'prepare' first)" >&2; exit 2; }
    export MIAMIND_DATA="$PWD/$DATA_DIR" PYTHONPATH="$PWD/src" PYTHONUNBUFFERED=1
    export MIAMIND_SOURCE_COMMIT="$(cat "$DATA_DIR/COMMIT")"
    python3 -c "import torch; assert torch.cuda.is_available(), 'no GPU'; print(torch.__version__, torch.cuda.get_device_name())"
    # ISBI's 10 short cells first, then ResNet-50; the runner orders each by seed/fold.
    timeout --signal=INT "$seconds" python3 -m miamind study run studies/paper_protocol.yaml \
        --runs-dir "$runs" --only isbi2012-paper --jobs 5 || true
    left=$((seconds - SECONDS))
    if [ "$left" -gt 60 ]; then
        timeout --signal=INT "$left" python3 -m miamind study run studies/paper_protocol.yaml \
            --runs-dir "$runs" --only cifar10-resnet50-paper --jobs 8 || true
    fi
    # finished cells only (metrics.json present), without weights
    (cd "$runs" && ls -d */ 2>/dev/null | while read -r d; do [ -f "$d/metrics.json" ] && echo "$d"; done) >"$out/finished.txt"
    tar czf "$out/cells.tar.gz" -C "$runs" --exclude='checkpoints' --exclude='*.ckpt' \
        --exclude='*.safetensors' -T "$out/finished.txt"
    echo "gpu_cells: $(wc -l <"$out/finished.txt") finished cells in $out/cells.tar.gz"
    ;;
*)
    echo "usage: bash scripts/gpu_cells.sh prepare | run [SECONDS]" >&2
    exit 2
    ;;
esac
