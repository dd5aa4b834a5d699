#!/usr/bin/env bash
# Install the open IONM appliance on Raspberry Pi OS (bookworm). Research use; not a medical device.
#
#   sudo deploy/install.sh            install or update (idempotent: safe to run again)
#   deploy/install.sh --dry-run       print every step, change nothing (no root needed)
#   deploy/install.sh --print-config  print the ionm.toml it writes when there is none
#
# Steps: apt packages; system user `ionm` in groups gpio and spi; SPI enabled
# (dtparam=spi=on in /boot/firmware/config.txt); venv in /opt/ionm/venv with this checkout
# and the libgpiod v2 binding (PyPI gpiod>=2, checked);
# config in /etc/ionm (an existing ionm.toml is never overwritten); mosquitto with the TLS/ACL
# files of deploy/mosquitto/, a local CA + server certificate and the appliance's MQTT login;
# the systemd unit enabled.
set -euo pipefail

SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PREFIX="${IONM_PREFIX:-/opt/ionm}"
CONF_DIR="${IONM_CONF_DIR:-/etc/ionm}"
UNIT_DIR="${IONM_UNIT_DIR:-/etc/systemd/system}"
MOSQ_DIR="${IONM_MOSQ_DIR:-/etc/mosquitto}"
BOOT_CONFIG="${IONM_BOOT_CONFIG:-/boot/firmware/config.txt}"
[ -e "$BOOT_CONFIG" ] || [ ! -e /boot/config.txt ] || BOOT_CONFIG=/boot/config.txt  # pre-bookworm
USER_NAME=ionm
DEVICE_ID="${IONM_DEVICE_ID:-}"  # device.id in ionm.toml: the appliance's MQTT username
APT_PACKAGES=(python3 python3-venv python3-dev build-essential pkg-config libsystemd-dev
    swig liblgpio-dev mosquitto mosquitto-clients openssl)
DRY_RUN=0
REBOOT_NEEDED=0

# the config written when /etc/ionm/ionm.toml does not exist (edit it afterwards)
minimal_config() {
    cat <<EOF
# /etc/ionm/ionm.toml written by deploy/install.sh; see the README for every key.
[device]
id = "${DEVICE_ID:-ionm-dev}"

[frontend]
kind = "ads1299"

[recording]
directory = "/var/lib/ionm/cases"

[mqtt]
username = "${DEVICE_ID:-ionm-dev}"
password_file = "$CONF_DIR/mqtt-password"
EOF
}

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
}

for arg in "$@"; do
    case "$arg" in
        --dry-run | -n) DRY_RUN=1 ;;
        --print-config) minimal_config; exit 0 ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$arg' (allowed: --dry-run, --print-config, --help)" >&2
           exit 2 ;;
    esac
done

step() { printf '\n== %s\n' "$*"; }
# run CMD...: print it; execute it unless --dry-run
run() {
    printf '+ %s\n' "$*"
    if [ "$DRY_RUN" -eq 0 ]; then "$@"; fi
}
skip() { printf '  (already done: %s)\n' "$*"; }

if [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    echo "install.sh: run as root (sudo), or with --dry-run to see the steps" >&2
    exit 1
fi

step "0. check the system"
if [ -r /etc/os-release ]; then
    # shellcheck disable=SC1091
    . /etc/os-release
    echo "  system: ${PRETTY_NAME:-unknown}"
    [ "${VERSION_CODENAME:-}" = bookworm ] || echo "  note: written for Raspberry Pi OS bookworm"
fi
echo "  source: $SRC"

step "1. apt packages"
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    run apt-get update -qq
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}"
else
    skip "all of ${APT_PACKAGES[*]}"
fi

step "2. user $USER_NAME in groups gpio, spi (ADS1299) and dialout (Cyton dongle)"
for g in gpio spi dialout; do
    if getent group "$g" >/dev/null; then skip "group $g"; else run groupadd --system "$g"; fi
done
if id "$USER_NAME" >/dev/null 2>&1; then
    skip "user $USER_NAME"
else
    run useradd --system --user-group --home-dir /var/lib/ionm --no-create-home \
        --shell /usr/sbin/nologin "$USER_NAME"
fi
groups_now=" $(id -nG "$USER_NAME" 2>/dev/null || true) "
if [[ $groups_now == *" gpio "* && $groups_now == *" spi "* && $groups_now == *" dialout "* ]]
then
    skip "$USER_NAME in gpio, spi, dialout"
else
    run usermod -a -G gpio,spi,dialout "$USER_NAME"
fi

step "3. SPI enabled ($BOOT_CONFIG)"
if [ -e "$BOOT_CONFIG" ] && grep -Eq '^[[:space:]]*dtparam=spi=on' "$BOOT_CONFIG"; then
    skip "dtparam=spi=on"
else
    printf '+ append "dtparam=spi=on" to %s\n' "$BOOT_CONFIG"
    if [ "$DRY_RUN" -eq 0 ]; then
        printf '\n# open IONM appliance: ADS1299 on SPI0\ndtparam=spi=on\n' >>"$BOOT_CONFIG"
    fi
    REBOOT_NEEDED=1
fi

step "4. Python venv in $PREFIX/venv"
if [ -x "$PREFIX/venv/bin/python" ]; then
    skip "venv exists"
else
    run install -d -m 0755 "$PREFIX"
    run python3 -m venv "$PREFIX/venv"
fi
# always (re)install this checkout: updates the appliance in place
run "$PREFIX/venv/bin/python" -m pip install -q --upgrade pip
# [systemd]: journald fields through systemd-python (built against libsystemd-dev, step 1)
run "$PREFIX/venv/bin/python" -m pip install -q "${SRC}[systemd]"
# DRDY needs the libgpiod v2 binding (edge timestamps and sequence numbers: exact loss counts).
# PyPI's gpiod >= 2 builds against its bundled libgpiod; Debian's python3-libgpiod on bookworm
# is the 1.6 API, which ionm refuses by name. The venv does not see system packages.
run "$PREFIX/venv/bin/python" -m pip install -q "gpiod>=2"
run "$PREFIX/venv/bin/python" -c 'import gpiod, sys
sys.exit(0 if hasattr(gpiod, "request_lines") else "gpiod in the venv is not the v2 API")'
# the compiled ADS1299 reader (C, needs build-essential + python3-dev above) must have built
run "$PREFIX/venv/bin/python" -c 'import sys; from appliance.frontend.ads1299.compiled import \
compiled_available as ok, compiled_unavailable_reason as why; ok() or sys.exit(why())'

# the MQTT login is the device id of the config in use (existing, else the example)
if [ -z "$DEVICE_ID" ]; then
    for f in "$CONF_DIR/ionm.toml" "$SRC/deploy/config/ionm.toml"; do
        if [ -r "$f" ]; then
            DEVICE_ID="$(python3 -c 'import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb")).get("device", {}).get("id", ""))' "$f" 2>/dev/null \
                || true)"
            break
        fi
    done
fi
DEVICE_ID="${DEVICE_ID:-ionm-dev}"
echo "  device id / MQTT user: $DEVICE_ID"

step "5. configuration in $CONF_DIR"
run install -d -m 0750 -o root -g "$USER_NAME" "$CONF_DIR"
if [ -e "$CONF_DIR/ionm.toml" ]; then
    skip "$CONF_DIR/ionm.toml exists (never overwritten)"
else
    example="$SRC/deploy/config/ionm.toml"
    if [ -e "$example" ]; then
        run install -m 0640 -o root -g "$USER_NAME" "$example" "$CONF_DIR/ionm.toml"
    else
        printf '+ write a minimal %s (see --print-config)\n' "$CONF_DIR/ionm.toml"
        if [ "$DRY_RUN" -eq 0 ]; then
            minimal_config >"$CONF_DIR/ionm.toml"
            chgrp "$USER_NAME" "$CONF_DIR/ionm.toml"
            chmod 0640 "$CONF_DIR/ionm.toml"
        fi
    fi
fi

step "6. mosquitto: TLS and ACL from deploy/mosquitto/ (see docs/mqtt.md)"
mq="$MOSQ_DIR/ionm"
if [ -e "$SRC/deploy/mosquitto/ionm.conf" ]; then
    run install -d -m 0750 -g mosquitto "$mq"
    run install -m 0644 "$SRC/deploy/mosquitto/ionm.conf" "$MOSQ_DIR/conf.d/ionm.conf"
    [ ! -e "$SRC/deploy/mosquitto/acl" ] \
        || run install -m 0640 -g mosquitto "$SRC/deploy/mosquitto/acl" "$mq/acl"
    if [ -e "$mq/server.crt" ]; then
        skip "CA and server certificate in $mq"
    else
        run openssl req -x509 -newkey rsa:3072 -nodes -days 3650 -subj "/CN=ionm-local-ca" \
            -keyout "$mq/ca.key" -out "$mq/ca.crt"
        run openssl req -newkey rsa:3072 -nodes -subj "/CN=$(hostname)" \
            -keyout "$mq/server.key" -out "$mq/server.csr"
        # clients that check the host name need it in subjectAltName, not just the CN
        san="subjectAltName=DNS:$(hostname),DNS:$(hostname).local,DNS:localhost,IP:127.0.0.1"
        run openssl x509 -req -days 3650 -in "$mq/server.csr" -CA "$mq/ca.crt" \
            -CAkey "$mq/ca.key" -CAcreateserial -out "$mq/server.crt" \
            -extfile /dev/stdin <<<"$san"
        run chgrp mosquitto "$mq/server.key"
        run chmod 0640 "$mq/server.key"
        run chmod 0600 "$mq/ca.key"
    fi
    if [ -e "$mq/passwd" ]; then
        skip "password file $mq/passwd"
    else
        # the appliance's own login on the loopback listener; its password lives in /etc/ionm
        printf '+ make %s (user %s) and %s\n' "$mq/passwd" "$DEVICE_ID" "$CONF_DIR/mqtt-password"
        if [ "$DRY_RUN" -eq 0 ]; then
            pw="$(openssl rand -hex 24)"
            (umask 0027 && printf '%s\n' "$pw" >"$CONF_DIR/mqtt-password")
            chgrp "$USER_NAME" "$CONF_DIR/mqtt-password"
            mosquitto_passwd -b -c "$mq/passwd" "$DEVICE_ID" "$pw"
            chgrp mosquitto "$mq/passwd"
            chmod 0640 "$mq/passwd"
        fi
    fi
else
    echo "  note: no deploy/mosquitto/ionm.conf; mosquitto keeps its defaults"
fi
run systemctl enable mosquitto.service
run systemctl restart mosquitto.service

step "7. systemd unit"
unit_src="$SRC/deploy/systemd/ionm.service"
if [ -e "$UNIT_DIR/ionm.service" ] && cmp -s "$unit_src" "$UNIT_DIR/ionm.service"; then
    skip "$UNIT_DIR/ionm.service up to date"
else
    run install -m 0644 "$unit_src" "$UNIT_DIR/ionm.service"
    run systemctl daemon-reload
fi
run systemctl enable ionm.service

step "done"
if [ "$DRY_RUN" -eq 1 ]; then
    echo "dry run: nothing was changed"
elif [ "$REBOOT_NEEDED" -eq 1 ]; then
    echo "SPI was just enabled: reboot, then check with: systemctl status ionm; journalctl -u ionm"
else
    run systemctl restart ionm.service
    echo "check with: systemctl status ionm; journalctl -u ionm -f"
fi
