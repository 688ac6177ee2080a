package sched

// bitset is a fixed-size set of small non-negative integers.
type bitset []uint64

func newBitset(n int) bitset { return make(bitset, (n+63)/64) }

func (b bitset) has(i int) bool { return b[i>>6]&(1<<(uint(i)&63)) != 0 }
func (b bitset) set(i int)      { b[i>>6] |= 1 << (uint(i) & 63) }
func (b bitset) clear(i int)    { b[i>>6] &^= 1 << (uint(i) & 63) }

// hasByte reports bit i of a wire bitmap: bit i%8 (least significant
// first) of byte i/8; false past its end.
func hasByte(b []byte, i int) bool { return i/8 < len(b) && b[i/8]&(1<<(uint(i)%8)) != 0 }
