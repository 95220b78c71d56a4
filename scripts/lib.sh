# Shared helpers for the project's scripts; source it, do not run it.

project_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${RECENGINE_CACHE:-$project_root/.cache}"

log() {
    printf '==> %s\n' "$*" >&2
}

# Installs the Debian packages given as arguments that are not installed yet.
ensure_packages() {
    local missing=()
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing system packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Makes `python3` on PATH one that imports the given modules, creating a virtual environment in
# the cache when the system's python lacks them.
ensure_python_modules() {
    local imports="$1"
    shift
    if python3 -c "import $imports" 2>/dev/null; then
        return 0
    fi
    local venv="$cache_dir/python"
    if [ ! -x "$venv/bin/python3" ]; then
        log "creating a Python virtual environment in $venv"
        python3 -m venv "$venv" 2>/dev/null || { ensure_packages python3-venv && python3 -m venv "$venv"; }
    fi
    export PATH="$venv/bin:$PATH"
    python3 -c "import $imports" 2>/dev/null && return 0
    log "installing Python packages: $*"
    python3 -m pip install --quiet --disable-pip-version-check "$@"
}
