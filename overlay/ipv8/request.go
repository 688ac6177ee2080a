package ipv8

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
)

// waiter is one Request waiting for its answer.
type waiter struct {
	to        netip.AddrPort
	community CommunityID
	match     func(*Message) bool
	ch        chan Message // capacity 1; the endpoint sends at most once
}

// Request sends a signed message to addr and waits for the first message
// of the same community from the same address for which match returns
// true, or until ctx ends.
//
// match runs on the receiving goroutine, under the endpoint's lock: it
// must be quick and must not call the endpoint. It typically checks the
// message ID and an identifier echoed from the request. A matched message
// goes to the requester only, not to the community's handler; its
// Payload is a copy the caller owns. Unmatched messages are handled as
// usual. Requests are bounded by Config.MaxPendingRequests.
func (e *Endpoint) Request(ctx context.Context, to netip.AddrPort, c CommunityID, msgID byte, payload []byte, match func(*Message) bool) (Message, error) {
	return e.RequestFramed(ctx, to, c, msgID, FramingSigned, payload, match)
}

// RequestUnsigned is Request with an unsigned request message.
func (e *Endpoint) RequestUnsigned(ctx context.Context, to netip.AddrPort, c CommunityID, msgID byte, payload []byte, match func(*Message) bool) (Message, error) {
	return e.RequestFramed(ctx, to, c, msgID, FramingUnsigned, payload, match)
}

// RequestFramed is Request with a request message in framing f.
func (e *Endpoint) RequestFramed(ctx context.Context, to netip.AddrPort, c CommunityID, msgID byte, f Framing, payload []byte, match func(*Message) bool) (Message, error) {
	return e.request(ctx, to, c, match, func() error { return e.SendFramed(to, c, msgID, f, payload) })
}

func (e *Endpoint) request(ctx context.Context, to netip.AddrPort, c CommunityID, match func(*Message) bool, send func() error) (Message, error) {
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	w := &waiter{to: to, community: c, match: match, ch: make(chan Message, 1)}
	e.mu.Lock()
	if len(e.waiters) >= e.cfg.MaxPendingRequests {
		e.mu.Unlock()
		return Message{}, ErrTooManyRequests
	}
	e.waiters[w] = struct{}{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.waiters, w)
		e.mu.Unlock()
	}()
	if err := send(); err != nil {
		return Message{}, err
	}
	select {
	case m := <-w.ch:
		return m, nil
	case <-ctx.Done():
		return Message{}, fmt.Errorf("%w: %w", ErrRequestCancelled, context.Cause(ctx))
	}
}

// answer hands m to the first waiting Request that matches it and reports
// whether one did.
func (e *Endpoint) answer(m *Message) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for w := range e.waiters {
		if w.to != m.From || w.community != m.Community || !w.match(m) {
			continue
		}
		delete(e.waiters, w)
		cp := *m
		cp.Payload = bytes.Clone(m.Payload)
		w.ch <- cp // capacity 1 and removed from the set: never blocks
		return true
	}
	return false
}
