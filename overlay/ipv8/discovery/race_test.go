//go:build race

package discovery

// timeScale stretches the loopback tests' durations: the race detector
// slows signing and verifying about tenfold.
const timeScale = 6
