// Package benchpeer runs the peer processes of the benchmark programs
// (bench, cmd/shoal-bench): each reads command lines (GO, EXIT) on stdin and
// answers with lines whose first word names them (READY, DONE, STATS, or
// FAILED with the reason).
package benchpeer

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Peer is a running peer process and its output lines.
type Peer struct {
	name  string
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

// Start starts cmd (its stderr going to ours unless set) and reads its output
// lines; name says which peer in errors ("child [-role seeder]").
func Start(name string, cmd *exec.Cmd) (*Peer, error) {
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Peer{name: name, cmd: cmd, in: in, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	return p, nil
}

// Cmd is the running command.
func (p *Peer) Cmd() *exec.Cmd { return p.cmd }

// Kill kills the process if it still runs and waits for it.
func (p *Peer) Kill() {
	p.cmd.Process.Kill()
	p.cmd.Wait()
}

// Expect waits for a line starting with word and returns its fields; a
// FAILED line, the end of the output or the timeout is an error.
func (p *Peer) Expect(word string, timeout time.Duration) ([]string, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				return nil, fmt.Errorf("%s exited while waiting for %s", p.name, word)
			}
			f := strings.Fields(l)
			if len(f) > 0 && f[0] == word {
				return f, nil
			}
			if len(f) > 0 && f[0] == "FAILED" {
				return nil, fmt.Errorf("%s: %s", p.name, l)
			}
		case <-t.C:
			return nil, fmt.Errorf("%s: no %s within %v", p.name, word, timeout)
		}
	}
}

// Send writes one line to the peer.
func (p *Peer) Send(line string) error {
	_, err := io.WriteString(p.in, line+"\n")
	return err
}

// Ready waits for every peer's READY line and returns the address each
// gives.
func Ready(peers []*Peer, timeout time.Duration) ([]string, error) {
	addrs := make([]string, len(peers))
	for i, p := range peers {
		f, err := p.Expect("READY", timeout)
		if err != nil {
			return nil, err
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("peer %d: READY without an address", i)
		}
		addrs[i] = f[1]
	}
	return addrs, nil
}

// Go sends each leecher (peers[nSeed:]) GO with the addresses of all the
// other peers.
func Go(peers []*Peer, nSeed int, addrs []string) error {
	for i := nSeed; i < len(peers); i++ {
		var others []string
		for j, a := range addrs {
			if j != i {
				others = append(others, a)
			}
		}
		if err := peers[i].Send("GO " + strings.Join(others, " ")); err != nil {
			return err
		}
	}
	return nil
}

// Stats are the figures of a peer's STATS line.
type Stats struct {
	Uploaded int64   // bytes
	PeakRSS  int64   // bytes
	CPU      float64 // seconds of user+system time since READY
}

// Exit sends the peer EXIT and reads its STATS line.
func (p *Peer) Exit(timeout time.Duration) (Stats, error) {
	if err := p.Send("EXIT"); err != nil {
		return Stats{}, err
	}
	f, err := p.Expect("STATS", timeout)
	if err != nil {
		return Stats{}, err
	}
	if len(f) < 4 {
		return Stats{}, fmt.Errorf("%s: short STATS line %q", p.name, f)
	}
	var s Stats
	s.Uploaded, _ = strconv.ParseInt(f[1], 10, 64)
	s.PeakRSS, _ = strconv.ParseInt(f[2], 10, 64)
	s.CPU, _ = strconv.ParseFloat(f[3], 64)
	return s, nil
}
