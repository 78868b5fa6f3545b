#!/usr/bin/env bash
# Installs everything the project needs on a fresh Debian machine with Python 3.11 and Node 20:
# Debian packages (espeak-ng for the offline voice; chromium and Korean fonts for browser tests and
# reports; sox for the browser test's fake microphone), the Python distribution with its pinned
# models, and the browser client build.
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

apt_packages=(espeak-ng chromium chromium-driver fonts-noto-cjk sox)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing Debian packages: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp=".setup-stamp"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing Python packages (pinned; torch only with the train extra)"
    python3 -m pip install -q -e '.[dev]'
    touch "$stamp"
fi

if [ -f web/client/package.json ]; then
    if [ ! -d web/client/node_modules ] || [ web/client/package-lock.json -nt web/client/node_modules ]; then
        echo "setup: installing the browser client's npm packages"
        # `npm install` (not `npm ci`): the lock pins every version, but npm ci also insists on
        # lock entries for rollup's binaries of other platforms, which npm leaves out here.
        (cd web/client && npm install --no-audit --no-fund --loglevel=error)
    fi
    echo "setup: building the browser client"
    (cd web/client && npm run --silent build)
fi

# livekit-client for the dev server's browser test (served to headless Chromium as its UMD build)
if [ ! -d tests/devserver/browser/node_modules ] || [ tests/devserver/browser/package-lock.json -nt tests/devserver/browser/node_modules ]; then
    echo "setup: installing livekit-client for the browser test"
    (cd tests/devserver/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# The real livekit-server, pinned: every room, dispatch, API and browser test also runs against it.
# Built from its Go module (pure Go, CGO off) into .tools/ (git-ignored, kept between runs; Go keeps
# its module and build caches, so a second set-up is quick). LIVEKIT_SERVER_BIN names another binary.
livekit_server_version="1.13.5"
if [ -z "${LIVEKIT_SERVER_BIN:-}" ]; then
    server=".tools/livekit-server"
    if [ ! -x "$server" ] || ! "$server" --version 2>/dev/null | grep -q "$livekit_server_version"; then
        if command -v go >/dev/null 2>&1; then
            echo "setup: building livekit-server v$livekit_server_version with Go (a few minutes the first time)"
            mkdir -p .tools/gobin
            start=$(date +%s)
            GOBIN="$PWD/.tools/gobin" CGO_ENABLED=0 GOFLAGS=-mod=mod \
                go install "github.com/livekit/livekit-server/cmd/server@v$livekit_server_version"
            mv .tools/gobin/server "$server"
            rmdir .tools/gobin
            echo "setup: livekit-server built in $(($(date +%s) - start)) s: $("$server" --version)"
        elif [ "${CI:-}" = "true" ]; then
            echo "setup: Go is needed to build livekit-server v$livekit_server_version for the tests (CI=true)" >&2
            exit 1
        else
            echo "setup: no Go toolchain, so the tests against the real livekit-server will be skipped;" \
                "install Go 1.26 or LiveKit's own server (https://docs.livekit.io/home/self-hosting/local/)" \
                "and set LIVEKIT_SERVER_BIN" >&2
        fi
    fi
fi
