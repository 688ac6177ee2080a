#!/bin/sh
# Runs the shoal drills (network namespaces, real processes) by hand.
#
#   sudo internal/drill/run-drills.sh            # short forms, all drills
#   sudo internal/drill/run-drills.sh long       # full sizes (SHOAL_LONG=1), one drill at a time
#   sudo internal/drill/run-drills.sh long Liars # full size, drills matching a regexp
#
# It prints each drill's FIGURES line (what docs/drills.md quotes). Needs
# root, ip and tc (and nft for the NAT drills); leaves no namespace behind (the test binary checks).
set -eu
cd "$(dirname "$0")/../.."
mode=${1:-short}
pattern=${2:-.}
if [ "$mode" = long ]; then
	export SHOAL_LONG=1
	for t in TestNetLeavesNothing TestFlashCrowd TestChurn TestPartition TestLiars TestDiscoveryDHT TestNATRouters TestNAT TestNATKeepAlive TestNATRelayUpgrade TestNATRelayThroughput TestRegistryMirror TestRegistryCrowd; do
		if echo "$t" | grep -Eq -- "$pattern"; then
			go test -count=1 -v -timeout 30m -run "^$t\$" ./internal/drill/ | grep -E '^(--- |FIGURES|ok|FAIL|PASS)|FIGURES|_test.go' || true
		fi
	done
else
	go test -count=1 -v -timeout 10m -run "$pattern" ./internal/drill/ | grep -E '^(--- |ok|FAIL|PASS)|FIGURES|_test.go' || true
fi
leftover=$(ip netns list | grep -c '^shoaldrill-' || true)
echo "namespaces left with the shoaldrill- prefix: $leftover"
