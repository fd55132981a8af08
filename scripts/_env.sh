# Sourced by every script in scripts/: the environment they share. Works from a fresh
# clone in a clean shell (no uv on PATH, an empty HOME, a system Python under PEP 668).
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export KV_REPO_ROOT="$ROOT"
export UV_PYTHON_DOWNLOADS=never  # use the machine's Pythons; never download one
# uv: the one already on PATH, else the project's own copy that scripts/bootstrap puts in
# .tools/bin (never ~/.local/bin, which a fresh shell does not have on PATH).
# The sbin folders: root's tools (mkfs.ext4, losetup) that the mount tests use.
export PATH="$ROOT/.tools/bin:$PATH:$HOME/.local/bin:/usr/sbin:/sbin"
