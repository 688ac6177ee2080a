// Package overlaytest holds the DHT's test over the real overlay: QUIC
// nodes on 127.0.0.1 carrying IPv8 signed datagrams in the DHT community.
// It lives apart so that package dht never imports the overlay.
package overlaytest
