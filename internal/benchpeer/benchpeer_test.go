package benchpeer

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// shPeer is a peer in sh speaking the line protocol: it echoes the GO line
// it gets in its DONE line.
func shPeer(t *testing.T, addr string) *Peer {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh:", err)
	}
	script := `echo READY ` + addr + `; read cmd; if [ "$cmd" != EXIT ]; then echo DONE $cmd; read cmd; fi; echo STATS 100 200 0.5`
	p, err := Start("peer "+addr, exec.Command(sh, "-c", script))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Kill)
	return p
}

func TestSwarmLines(t *testing.T) {
	peers := []*Peer{shPeer(t, "a:1"), shPeer(t, "b:2"), shPeer(t, "c:3")}
	addrs, err := Ready(peers, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(addrs, ","); got != "a:1,b:2,c:3" {
		t.Fatalf("addresses %s", got)
	}
	if err := Go(peers, 1, addrs); err != nil {
		t.Fatal(err)
	}
	for i, want := range map[int]string{1: "DONE GO a:1 c:3", 2: "DONE GO a:1 b:2"} {
		f, err := peers[i].Expect("DONE", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(f, " "); got != want {
			t.Errorf("peer %d: %q, want %q", i, got, want)
		}
	}
	for _, p := range peers {
		st, err := p.Exit(time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if st != (Stats{Uploaded: 100, PeakRSS: 200, CPU: 0.5}) {
			t.Errorf("stats %+v", st)
		}
	}
}

func TestExpectFailedAndExit(t *testing.T) {
	p, err := Start("peer x", exec.Command("sh", "-c", "echo FAILED no disk"))
	if err != nil {
		t.Skip("no sh:", err)
	}
	defer p.Kill()
	if _, err := p.Expect("READY", time.Minute); err == nil || err.Error() != "peer x: FAILED no disk" {
		t.Errorf("FAILED line: %v", err)
	}
	if _, err := p.Expect("READY", time.Minute); err == nil || !strings.Contains(err.Error(), "exited while waiting for READY") {
		t.Errorf("after exit: %v", err)
	}
}
