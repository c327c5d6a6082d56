#!/usr/bin/env bash
# The manifests of `clarity jobs k8s`, validated against the Kubernetes schemas (no cluster):
#
#   scripts/k8s-validate.sh [CLARITY_BINARY]
#
# 1. A virtual environment at ${CARGO_TARGET_DIR:-target}/k8s-venv with the pinned
#    scripts/k8s-requirements.txt (kubernetes-validate bundles the JSON schemas of every
#    Kubernetes release it knows). Kept between runs; made anew when the pins change.
# 2. `clarity jobs k8s` on examples/shards.toml (builtin cohort) and examples/quickstart.toml
#    (with --storage-class and -o), validated with `kubernetes-validate --strict` (unknown
#    fields are errors) against Kubernetes 1.30 (oldest checked: backoffLimitPerIndex needs
#    1.29+) and 1.37.
# 3. PyYAML reads the manifests back: the ConfigMap holds the config byte for byte; the
#    Indexed Job has completions = parallelism = the shard count.
#
# Prints SKIPPED and exits 0 when python3/venv or the packages cannot be installed.
# CLARITY_SKIP_K8S=1 skips on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

skip() {
  echo "SKIPPED Kubernetes manifest validation: $*"
  exit 0
}
[[ "${CLARITY_SKIP_K8S:-}" == 1 ]] && skip "CLARITY_SKIP_K8S=1"

TARGET="${CARGO_TARGET_DIR:-target}"
[[ "$TARGET" == /* ]] || TARGET="$ROOT/$TARGET"
BIN="${1:-$TARGET/debug/clarity}"
if [[ ! -x "$BIN" ]]; then
  echo "==> building the clarity binary"
  cargo build -p clarity-cli --locked
fi

command -v python3 >/dev/null 2>&1 || skip "python3 not found"
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 \
  || skip "python3-venv missing (scripts/python-test.sh installs it when it can)"
VENV="$TARGET/k8s-venv"
STAMP="$(sha256sum scripts/k8s-requirements.txt | cut -c1-16)-$(python3 -c 'import sys; print(sys.version.split()[0])')"
if [[ ! -x "$VENV/bin/kubernetes-validate" || "$(cat "$VENV/.stamp" 2>/dev/null)" != "$STAMP" ]]; then
  echo "==> creating $VENV (pinned scripts/k8s-requirements.txt)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r scripts/k8s-requirements.txt \
    >/tmp/clarity-k8s-pip.log 2>&1 \
    || { tail -20 /tmp/clarity-k8s-pip.log; rm -rf "$VENV"; skip "pip could not install scripts/k8s-requirements.txt (log above)"; }
  echo "$STAMP" >"$VENV/.stamp"
fi

W="$(mktemp -d /tmp/clarity-k8s.XXXXXX)"
trap 'rm -rf "$W"' EXIT
"$BIN" jobs k8s examples/shards.toml --shards 4 >"$W/shards.yaml"
"$BIN" jobs k8s examples/quickstart.toml --shards 7 --storage-class nfs-client \
  -o /data/sweeps/quickstart --image registry.example/clarity:1 >"$W/quickstart.yaml"
for v in 1.30.0 1.37.0; do
  echo "==> kubernetes-validate --strict -k $v"
  "$VENV/bin/kubernetes-validate" --strict --no-warn -k "$v" "$W/shards.yaml" "$W/quickstart.yaml"
done
echo "==> reading the manifests back (PyYAML)"
"$VENV/bin/python" - "$W/shards.yaml" examples/shards.toml 4 "$W/quickstart.yaml" examples/quickstart.toml 7 <<'PY'
import sys, yaml
args = sys.argv[1:]
for manifest, config, n in zip(args[0::3], args[1::3], args[2::3]):
    docs = [d for d in yaml.safe_load_all(open(manifest)) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds == ["ConfigMap", "PersistentVolumeClaim", "Job", "Job"], kinds
    cm, pvc, shards, merge = docs
    want = open(config).read()
    assert list(cm["data"].values()) == [want], "ConfigMap does not hold the config byte for byte"
    s = shards["spec"]
    assert s["completionMode"] == "Indexed", s
    assert s["completions"] == s["parallelism"] == int(n), s
    c = s["template"]["spec"]["containers"][0]
    assert c["args"][:4] == ["run", "/config/sweep.toml", "--shard", f"$(CLARITY_SHARD_INDEX)/{n}"], c["args"]
    assert "while" in merge["spec"]["template"]["spec"]["containers"][0]["command"][2]
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    print(f"{manifest.split('/')[-1]}: {len(docs)} objects, {n} shards, config intact")
PY
echo "PASSED Kubernetes manifest validation"
