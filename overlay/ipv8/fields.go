package ipv8

import (
	"encoding/binary"
	"fmt"
	"math"
	"net/netip"
	"unicode/utf8"
)

// Field formats of py-ipv8's serializer, for application payloads. A
// payload is its fields in order, big-endian, with no framing of its own:
//
//	varlenH      uint16 length + bytes
//	varlenHutf8  uint16 length + UTF-8 bytes
//	ipv4         4 address bytes + uint16 port
//	ip_address   type byte (0x01 IPv4 / 0x03 IPv6) + address + uint16 port
//	bits         one byte of 8 booleans, most significant first
//	B H I Q      uint8, uint16, uint32, uint64
//	20s (etc.)   fixed-size bytes
//	raw          every byte to the end of the payload (last field only)
//
// A payload with bytes after its last field is malformed, unless that
// field is raw.

// FieldWriter appends fields to a payload and remembers the first error
// (a value too long for its length prefix, an IPv6 address as ipv4).
type FieldWriter struct {
	b   []byte
	err error
}

// NewFieldWriter returns a writer that appends to b.
func NewFieldWriter(b []byte) *FieldWriter { return &FieldWriter{b: b} }

// Bytes returns the payload and the first error met.
func (w *FieldWriter) Bytes() ([]byte, error) { return w.b, w.err }

// VarlenH appends a uint16 length and v. Longer than 65,535 bytes is an
// error.
func (w *FieldWriter) VarlenH(v []byte) *FieldWriter {
	if len(v) > math.MaxUint16 {
		w.fail(fmt.Errorf("ipv8: varlenH field of %d bytes, limit 65535", len(v)))
		return w
	}
	w.b = binary.BigEndian.AppendUint16(w.b, uint16(len(v)))
	w.b = append(w.b, v...)
	return w
}

// VarlenHUTF8 appends a uint16 length and s, which must be valid UTF-8.
func (w *FieldWriter) VarlenHUTF8(s string) *FieldWriter {
	if !utf8.ValidString(s) {
		w.fail(fmt.Errorf("ipv8: varlenHutf8 field is not valid UTF-8"))
		return w
	}
	if len(s) > math.MaxUint16 {
		w.fail(fmt.Errorf("ipv8: varlenHutf8 field of %d bytes, limit 65535", len(s)))
		return w
	}
	w.b = binary.BigEndian.AppendUint16(w.b, uint16(len(s)))
	w.b = append(w.b, s...)
	return w
}

// IPv4 appends a in the ipv4 encoding.
func (w *FieldWriter) IPv4(a netip.AddrPort) *FieldWriter {
	b, err := AppendIPv4(w.b, a)
	if err != nil {
		w.fail(err)
		return w
	}
	w.b = b
	return w
}

// IPAddress appends a in the ip_address encoding.
func (w *FieldWriter) IPAddress(a netip.AddrPort) *FieldWriter {
	w.b = AppendIPAddress(w.b, a)
	return w
}

// Bits appends eight flags, v[0] as the most significant bit.
func (w *FieldWriter) Bits(v [8]bool) *FieldWriter {
	var x byte
	for i, f := range v {
		if f {
			x |= 0x80 >> i
		}
	}
	w.b = append(w.b, x)
	return w
}

// Uint8 appends B.
func (w *FieldWriter) Uint8(v uint8) *FieldWriter { w.b = append(w.b, v); return w }

// Uint16 appends H.
func (w *FieldWriter) Uint16(v uint16) *FieldWriter {
	w.b = binary.BigEndian.AppendUint16(w.b, v)
	return w
}

// Uint32 appends I.
func (w *FieldWriter) Uint32(v uint32) *FieldWriter {
	w.b = binary.BigEndian.AppendUint32(w.b, v)
	return w
}

// Uint64 appends Q.
func (w *FieldWriter) Uint64(v uint64) *FieldWriter {
	w.b = binary.BigEndian.AppendUint64(w.b, v)
	return w
}

// Fixed appends v, which must be n bytes long (a "20s"-style field).
func (w *FieldWriter) Fixed(n int, v []byte) *FieldWriter {
	if len(v) != n {
		w.fail(fmt.Errorf("ipv8: fixed field of %d bytes, want %d", len(v), n))
		return w
	}
	w.b = append(w.b, v...)
	return w
}

// Raw appends v with no length: it must be the last field.
func (w *FieldWriter) Raw(v []byte) *FieldWriter { w.b = append(w.b, v...); return w }

func (w *FieldWriter) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// FieldReader reads fields from a payload in order. After the first
// error every read returns a zero value; Done reports that error, or
// trailing bytes. Slices it returns alias the payload.
type FieldReader struct {
	b   []byte
	err error
}

// NewFieldReader returns a reader of payload p.
func NewFieldReader(p []byte) *FieldReader { return &FieldReader{b: p} }

// Done returns the first error met, or ErrMalformed if bytes are left.
func (r *FieldReader) Done() error {
	if r.err != nil {
		return r.err
	}
	return noTrailing(r.b, "payload")
}

// Err returns the first error met so far.
func (r *FieldReader) Err() error { return r.err }

// Len returns the number of bytes not read yet.
func (r *FieldReader) Len() int { return len(r.b) }

func (r *FieldReader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.err = fmt.Errorf("%w: %s: %d bytes left, want %d", ErrMalformed, what, len(r.b), n)
		r.b = nil
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// VarlenH reads a uint16 length and that many bytes.
func (r *FieldReader) VarlenH() []byte {
	n := r.Uint16()
	return r.take(int(n), "varlenH field")
}

// VarlenHUTF8 reads a uint16 length and that many bytes of UTF-8.
func (r *FieldReader) VarlenHUTF8() string {
	v := r.VarlenH()
	if r.err == nil && !utf8.Valid(v) {
		r.err = fmt.Errorf("%w: varlenHutf8 field is not valid UTF-8", ErrMalformed)
		return ""
	}
	return string(v)
}

// IPv4 reads an ipv4 address.
func (r *FieldReader) IPv4() netip.AddrPort {
	v := r.take(IPv4Size, "ipv4 field")
	if v == nil {
		return netip.AddrPort{}
	}
	a, _, _ := ReadIPv4(v)
	return a
}

// IPAddress reads an ip_address.
func (r *FieldReader) IPAddress() netip.AddrPort {
	if r.err != nil {
		return netip.AddrPort{}
	}
	a, rest, err := ReadIPAddress(r.b)
	if err != nil {
		r.err, r.b = err, nil
		return netip.AddrPort{}
	}
	r.b = rest
	return a
}

// Bits reads eight flags, the most significant bit first.
func (r *FieldReader) Bits() [8]bool {
	var v [8]bool
	x := r.Uint8()
	for i := range v {
		v[i] = x&(0x80>>i) != 0
	}
	return v
}

// Uint8 reads B.
func (r *FieldReader) Uint8() uint8 {
	if v := r.take(1, "uint8 field"); v != nil {
		return v[0]
	}
	return 0
}

// Uint16 reads H.
func (r *FieldReader) Uint16() uint16 {
	if v := r.take(2, "uint16 field"); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

// Uint32 reads I.
func (r *FieldReader) Uint32() uint32 {
	if v := r.take(4, "uint32 field"); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

// Uint64 reads Q.
func (r *FieldReader) Uint64() uint64 {
	if v := r.take(8, "uint64 field"); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// Fixed reads n bytes.
func (r *FieldReader) Fixed(n int) []byte { return r.take(n, "fixed field") }

// Raw reads every byte left.
func (r *FieldReader) Raw() []byte {
	if r.err != nil {
		return nil
	}
	v := r.b
	r.b = nil
	return v
}
