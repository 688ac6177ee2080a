// Package udpbatch wraps a UDP socket so that a caller writing and reading
// one packet at a time (quic-go, when its PacketConn is not a bare
// *net.UDPConn) moves many packets per system call.
//
// Writes: WriteTo copies the packet into a batch and returns; a flusher
// goroutine sends each batch with one sendmsg carrying a UDP_SEGMENT control
// message (Generic Segmentation Offload): the kernel cuts the buffer into
// datagrams of the batch's segment size. A batch holds packets for one
// destination, all of the first packet's length except possibly the last,
// at most maxSegments packets and maxBatchBytes bytes. A packet goes at the
// end of the last queued batch for its destination when it fits there
// (batches for other destinations may sit in between, so connections
// writing at once still fill whole batches); a longer packet, a packet
// after a shorter one, or a full batch starts a new batch. Packets to one
// destination keep their order. At most maxPerDest batches per destination
// wait for the flusher and at most maxBatches are queued or being sent;
// WriteTo blocks beyond that, as a full socket buffer would.
//
// Reads: the socket has UDP_GRO set, so the kernel may hand over several
// datagrams of one flow as one buffer with a UDP_GRO control message giving
// the segment size (on loopback a GSO send arrives whole). ReadFrom returns
// the segments one at a time from that buffer; without the control message
// the buffer is one datagram.
//
// On loopback this moves a 64 KiB batch through the kernel as one buffer
// instead of about 44 packets, which is most of the kernel time of a bulk
// QUIC transfer. On a real network the sender still saves system calls and
// the receiver gains when the driver coalesces (Linux 5.0 and later).
//
// Errors: a send error cannot be returned by the WriteTo that queued the
// packet, which has returned. The flusher keeps the last hard error per
// destination and the next WriteTo to that destination returns it (so a
// dial to an unreachable address still fails with the socket's error).
// EMSGSIZE (a path-MTU probe too large for the path) and ENOBUFS/EAGAIN
// (momentary pressure) are dropped like a lost packet. If the kernel
// refuses segmentation offload (EIO or EINVAL on a segmented send), the
// batch is resent one packet at a time and offload stays off.
//
// Only Linux has the offloads; elsewhere New returns the socket unchanged.
package udpbatch
