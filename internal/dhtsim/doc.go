// Package dhtsim is a deterministic discrete-event simulator for the DHT
// core (dht.Core): thousands of nodes in one process, with latency, loss and
// churn drawn from one seed. The same seed and the same calls give the same
// event trace; TraceHash summarises it so tests can compare two runs.
//
// The simulator plays the overlay: a delivered payload is handed to the
// receiving Core with the sender's public key, as the IPv8 layer does after
// checking the datagram signature. Addresses are 127.x.y.z loopback values
// that exist only in memory; nothing touches a socket.
//
// Time is simulated and starts at Epoch; nothing reads the wall clock. A
// Sim is not safe for concurrent use.
package dhtsim
