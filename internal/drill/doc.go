// Package drill runs shoal on a real multi-host network on one machine:
// network namespaces, each with its own private address in 10.77.0.0/24,
// joined by veth pairs to a bridge that lives in a namespace of its own, so
// that nothing touches the host's interfaces, routes or sysctls. Each host
// runs a real shoal binary (built once per test run) under `ip netns exec`.
//
//	 ns <prefix>br                 ns <prefix>h0        ns <prefix>h1
//	+---------------------+       +-------------+      +-------------+
//	| br0 --- v0 ---------+-veth--+ eth0        |      | eth0        |
//	|     \-- v1 ---------+-veth--+-------------+------+ 10.77.0.2   |
//	|      (tbf: download)|       | 10.77.0.1   |      | (tbf: up)   |
//	+---------------------+       +-------------+      +-------------+
//
// Shaping uses tc tbf: on v<i> (bridge side) it caps what host i receives,
// on eth0 (host side) what it sends. Delay and loss come from
// internal/netem wrapped around the node's socket by the drill-only program
// shoal-drill (the shipped shoal has no such hook), since the kernel may
// lack sch_netem; shoal-drill also makes the lying peers. A partition sets v<i> down, as if the cable were pulled.
//
// Names start with "shoaldrill-<pid>-<n>-", unique per process and per Net,
// so packages running in parallel never collide; New first deletes the
// leftovers of crashed earlier runs (a prefix whose pid no longer runs),
// and Close (registered with t.Cleanup) kills the processes and deletes
// every namespace, which takes the veths and the bridge with it.
//
// NAT drills (nat.go) add router namespaces that join private segments to
// a public bridge (NewPublic) through nft masquerade, cone or symmetric;
// a relay host's traffic can be captured (capture.go) to check it never
// carries plaintext. See docs/drills.md and docs/nat.md.
//
// The harness needs root and the ip and tc commands (nft for routers);
// without them New skips the test with one line saying why.
package drill
