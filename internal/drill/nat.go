//go:build linux

package drill

import (
	"bytes"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// NATKind is how a Router maps its private hosts' flows to its public
// address.
type NATKind int

const (
	// Cone maps every flow from one private address and port to the same
	// public port, whatever the destination (endpoint-independent mapping,
	// the usual home router): nft masquerade, which keeps the source port
	// when it is free. Linux conntrack lets in only replies from the exact
	// address and port a host sent to (port-restricted filtering).
	Cone NATKind = iota
	// Symmetric gives every destination a new random public port:
	// nft masquerade fully-random.
	Symmetric
)

func (k NATKind) String() string {
	if k == Symmetric {
		return "symmetric"
	}
	return "cone"
}

// Router is a namespace that joins a private segment to the Net's public
// bridge through a masquerading NAT:
//
//	ns <prefix>br (public)       ns <prefix>r<k>                      ns <prefix>h<i>
//	br0 --- r<k> ---veth--- eth0 198.18.0.<200+k>  lan (bridge)        eth0 192.168.<k+1>.<j+2>
//	                            192.168.<k+1>.1 \-- v<i> ---veth-------+ default via 192.168.<k+1>.1
//
// Forwarding is enabled inside the router's namespace only.
type Router struct {
	net    *Net
	Index  int
	NS     string
	Kind   NATKind
	Public netip.Addr // on the public bridge
	LAN    netip.Prefix
	hosts  int
}

// Available also needs nft for routers.
func natAvailable() string {
	if why := Available(); why != "" {
		return why
	}
	if _, err := exec.LookPath("nft"); err != nil {
		if exec.Command("apt-get", "install", "-y", "nftables").Run() != nil {
			// A fresh machine may have no package lists yet.
			exec.Command("apt-get", "update").Run()
			if out, err := exec.Command("apt-get", "install", "-y", "nftables").CombinedOutput(); err != nil {
				return fmt.Sprintf("NAT drills need nft (apt-get install nftables failed: %s)", lastLine(string(out)))
			}
		}
	}
	return ""
}

// AddRouter adds a NAT router of the given kind with a private segment of
// its own. Unsolicited packets to the router itself are always dropped;
// firewall also drops every unsolicited forwarded packet (only replies to
// flows the private side opened pass).
func (nt *Net) AddRouter(kind NATKind, firewall bool) *Router {
	nt.t.Helper()
	nt.mu.Lock()
	k := len(nt.routers)
	nt.mu.Unlock()
	if k >= 50 {
		nt.t.Fatal("drill: at most 50 routers per Net")
	}
	r := &Router{net: nt, Index: k, NS: fmt.Sprintf("%sr%d", nt.prefix, k), Kind: kind,
		Public: netip.AddrFrom4([4]byte{nt.base[0], nt.base[1], nt.base[2], byte(200 + k)}),
		LAN:    netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(k + 1), 0}), 24)}
	if err := nt.ip("netns", "add", r.NS); err != nil {
		nt.t.Fatal(err)
	}
	nt.mu.Lock()
	nt.routers = append(nt.routers, r)
	nt.mu.Unlock()
	gw := r.gateway()
	up := fmt.Sprintf("r%d", k)
	for _, args := range [][]string{
		{"-n", r.NS, "link", "set", "lo", "up"},
		{"-n", nt.bridge, "link", "add", up, "type", "veth", "peer", "name", "eth0", "netns", r.NS},
		{"-n", nt.bridge, "link", "set", up, "master", "br0", "up"},
		{"-n", r.NS, "addr", "add", r.Public.String() + "/24", "dev", "eth0"},
		{"-n", r.NS, "link", "set", "eth0", "up"},
		{"-n", r.NS, "link", "add", "lan", "type", "bridge"},
		{"-n", r.NS, "addr", "add", gw.String() + "/24", "dev", "lan"},
		{"-n", r.NS, "link", "set", "lan", "up"},
	} {
		if err := nt.ip(args...); err != nil {
			nt.t.Fatal(err)
		}
	}
	if out, err := exec.Command("ip", "netns", "exec", r.NS, "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
		nt.t.Fatalf("forwarding in %s: %v: %s", r.NS, err, out)
	}
	masq := "masquerade"
	if kind == Symmetric {
		masq = "masquerade fully-random"
	}
	rules := fmt.Sprintf(`table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "eth0" ip saddr %s %s
	}
}
`, r.LAN, masq)
	// Like a home router, it offers no service of its own on the public
	// side: an unsolicited packet to its public address is dropped before
	// conntrack confirms a flow for it. (Delivered locally instead, such a
	// packet leaves a flow that holds the public port, and the private
	// host's own flow to the same peer then gets a random port: no
	// puncture could work.)
	rules += `table ip router {
	chain input_filter {
		type filter hook input priority filter; policy drop;
		ct state established,related accept
		iifname "lan" accept
		iifname "lo" accept
	}
`
	if firewall {
		// Forwarded packets too: only replies to flows the private side
		// opened pass (Linux conntrack's NAT already filters so; this
		// makes it explicit, as a firewall in front of the NAT would).
		rules += `	chain forward_filter {
		type filter hook forward priority filter; policy drop;
		ct state established,related accept
		iifname "lan" oifname "eth0" accept
	}
`
	}
	rules += "}\n"
	c := exec.Command("ip", "netns", "exec", r.NS, "nft", "-f", "-")
	c.Stdin = strings.NewReader(rules)
	if out, err := c.CombinedOutput(); err != nil {
		nt.t.Fatalf("nft in %s: %v: %s", r.NS, err, bytes.TrimSpace(out))
	}
	return r
}

func (r *Router) gateway() netip.Addr {
	a := r.LAN.Addr().As4()
	a[3] = 1
	return netip.AddrFrom4(a)
}

// AddHost adds a host on the router's private segment, with the router as
// its default route.
func (r *Router) AddHost() *Host {
	nt := r.net
	nt.t.Helper()
	nt.mu.Lock()
	i := len(nt.hosts)
	nt.mu.Unlock()
	a := r.LAN.Addr().As4()
	a[3] = byte(r.hosts + 2)
	r.hosts++
	h := &Host{net: nt, Index: i, NS: fmt.Sprintf("%sh%d", nt.prefix, i), Addr: netip.AddrFrom4(a),
		veth: fmt.Sprintf("v%d", i), brNS: r.NS}
	nt.attach(h, r.NS, "lan", []string{"-n", h.NS, "route", "add", "default", "via", r.gateway().String()})
	return h
}

// Mappings lists the router's UDP conntrack entries (its NAT bindings), one
// line each, or an error when conntrack cannot be read.
func (r *Router) Mappings() (string, error) {
	out, err := exec.Command("ip", "netns", "exec", r.NS, "cat", "/proc/net/nf_conntrack").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("conntrack in %s: %v: %s", r.NS, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// SetUDPTimeout sets how long the router keeps a UDP binding without
// traffic (conntrack's timeouts for unreplied and replied flows), inside
// its namespace only.
func (r *Router) SetUDPTimeout(seconds int) error {
	for _, k := range []string{"net.netfilter.nf_conntrack_udp_timeout", "net.netfilter.nf_conntrack_udp_timeout_stream"} {
		if out, err := exec.Command("ip", "netns", "exec", r.NS, "sysctl", "-qw", fmt.Sprintf("%s=%d", k, seconds)).CombinedOutput(); err != nil {
			return fmt.Errorf("%s in %s: %v: %s", k, r.NS, err, bytes.TrimSpace(out))
		}
	}
	return nil
}

// Block drops every packet from src arriving at the router's public side
// (before conntrack sees it, as if the path were broken); Unblock undoes
// it.
func (r *Router) Block(src netip.Addr) error {
	rules := fmt.Sprintf(`table ip block {
	chain pre {
		type filter hook prerouting priority raw; policy accept;
		iifname "eth0" ip saddr %s drop
	}
}
`, src)
	c := exec.Command("ip", "netns", "exec", r.NS, "nft", "-f", "-")
	c.Stdin = strings.NewReader(rules)
	if out, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s", r.NS, err, bytes.TrimSpace(out))
	}
	return nil
}

// Unblock removes what Block added.
func (r *Router) Unblock() error {
	if out, err := exec.Command("ip", "netns", "exec", r.NS, "nft", "delete", "table", "ip", "block").CombinedOutput(); err != nil {
		return fmt.Errorf("nft in %s: %v: %s", r.NS, err, bytes.TrimSpace(out))
	}
	return nil
}
