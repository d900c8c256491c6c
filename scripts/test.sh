#!/usr/bin/env bash
# The whole siptool test suite, with the real peers it runs against.
#
#   scripts/test.sh [pytest args...]
#
# As root on Debian/Ubuntu it first installs the peers with apt-get (Kamailio, SIPp, coturn,
# stund, tshark, sipsak, dnsmasq, iproute2/iptables for the NAT testbed, xxd/hexdump/openssl,
# Prometheus and node_exporter for the metrics,
# zsh and fish for the completion checks); as a normal user it uses what is installed and the tests that need a
# missing peer or root skip with the reason.  With CI=true a missing peer or privilege fails.
# pytest's exit code 5 (no tests collected) is turned into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PEERS=(
    kamailio kamailio-tls-modules kamailio-presence-modules kamailio-sqlite-modules
    kamailio-websocket-modules baresip-core sip-tester sipsak
    coturn stun-server stun-client
    tshark tcpdump xxd bsdextrautils openssl
    dnsmasq iproute2 iptables util-linux
    gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good
    prometheus prometheus-node-exporter
    zsh fish
)

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${PEERS[@]}" >/dev/null
fi

python3 -m pip install -q -e '.[test]'

status=0
python3 -m pytest "$@" || status=$?
if [ "$status" = 5 ]; then
    echo "scripts/test.sh: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
