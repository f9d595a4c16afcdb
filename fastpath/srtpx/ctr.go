package srtpx

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"reflect"
	"sync"
	"unsafe"
)

// ctr is an AES-CTR keystream whose 128-bit initial counter is set per packet.
//
// The standard library's AES-CTR (crypto/cipher.NewCTR over a crypto/aes
// block) is pipelined, eight blocks at a time with AES-NI, but NewCTR
// allocates its state (the expanded key plus the counter, 512 bytes) on each
// call, and an existing stream cannot be moved to another counter. In Go
// 1.26 that stream is a one-pointer struct around
// crypto/internal/fips140/aes.CTR, whose fields ivlo and ivhi hold the start
// counter and offset the position in the keystream. So a ctr makes one
// stream per session key and, before each packet, writes the packet's
// counter into ivlo and ivhi and zero into offset: the result is exactly the
// stream NewCTR would have returned for that counter.
//
// Nothing about this is assumed blindly. The offsets come from reflection on
// the stream's dynamic type (field names and uint64 types are checked), and
// once per process ctrProbe checks that a stream reset this way produces
// the same bytes as a fresh NewCTR for a random key, counters and lengths,
// including after a use that left offset in the middle of a block. If any
// of this fails, state stays nil and xor takes a fresh NewCTR per packet.
type ctr struct {
	block  cipher.Block
	stream cipher.Stream
	state  unsafe.Pointer // the *aes.CTR inside stream, or nil to use NewCTR per call
	layout ctrLayout
	iv     [aes.BlockSize]byte
}

// ctrLayout locates the counter fields of the standard library's AES-CTR state.
type ctrLayout struct {
	typ                reflect.Type // dynamic type of the cipher.Stream NewCTR returns
	ivlo, ivhi, offset uintptr      // field offsets in the state it points to
}

// ctrProbe finds and verifies the layout once per process; ok is false when
// a counter reset cannot be trusted.
var ctrProbe = sync.OnceValues(probeCTR)

// ZeroAllocCTR reports whether AES-CM protection uses the zero-allocation
// counter reset. When false (a Go release changed crypto/aes, or a
// BoringCrypto build replaced it), Protect is still correct but allocates one AES-CTR
// state per AES-CM packet; the caller should log that once.
func ZeroAllocCTR() bool {
	_, ok := ctrProbe()
	return ok
}

func newCTR(block cipher.Block) *ctr {
	c := &ctr{block: block}
	l, ok := ctrProbe()
	if !ok {
		return c
	}
	c.stream = cipher.NewCTR(block, c.iv[:])
	if v := reflect.ValueOf(c.stream); v.Type() == l.typ {
		c.state, c.layout = v.Field(0).UnsafePointer(), l
	}
	return c
}

// xor XORs buf in place with the AES-CTR keystream that starts at the
// counter hi·2^64 + lo.
func (c *ctr) xor(buf []byte, hi, lo uint64) {
	if c.state != nil {
		c.layout.set(c.state, hi, lo)
		c.stream.XORKeyStream(buf, buf)
		return
	}
	binary.BigEndian.PutUint64(c.iv[:8], hi)
	binary.BigEndian.PutUint64(c.iv[8:], lo)
	cipher.NewCTR(c.block, c.iv[:]).XORKeyStream(buf, buf)
}

func (l ctrLayout) set(state unsafe.Pointer, hi, lo uint64) {
	*(*uint64)(unsafe.Add(state, l.ivlo)) = lo
	*(*uint64)(unsafe.Add(state, l.ivhi)) = hi
	*(*uint64)(unsafe.Add(state, l.offset)) = 0
}

func (l ctrLayout) get(state unsafe.Pointer) (hi, lo, offset uint64) {
	return *(*uint64)(unsafe.Add(state, l.ivhi)), *(*uint64)(unsafe.Add(state, l.ivlo)),
		*(*uint64)(unsafe.Add(state, l.offset))
}

// probeCTR finds the counter fields by name and proves that resetting them
// gives the stream a fresh NewCTR gives.
func probeCTR() (ctrLayout, bool) {
	var key [16]byte
	var iv [aes.BlockSize]byte
	_, _ = rand.Read(key[:])
	_, _ = rand.Read(iv[:])
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return ctrLayout{}, false
	}
	stream := cipher.NewCTR(block, iv[:])
	v := reflect.ValueOf(stream)
	if v.Kind() != reflect.Struct || v.NumField() != 1 || v.Field(0).Kind() != reflect.Pointer ||
		v.Field(0).Type().Elem().Kind() != reflect.Struct {
		return ctrLayout{}, false
	}
	st := v.Field(0).Type().Elem()
	l := ctrLayout{typ: v.Type()}
	for _, f := range []struct {
		name string
		off  *uintptr
	}{{"ivlo", &l.ivlo}, {"ivhi", &l.ivhi}, {"offset", &l.offset}} {
		sf, ok := st.FieldByName(f.name)
		if !ok || sf.Type.Kind() != reflect.Uint64 || sf.Offset+8 > st.Size() {
			return ctrLayout{}, false
		}
		*f.off = sf.Offset
	}
	// The fields hold what NewCTR stored: the counter, big-endian halves, at offset 0.
	state := v.Field(0).UnsafePointer()
	hi, lo, off := l.get(state)
	if hi != binary.BigEndian.Uint64(iv[:8]) || lo != binary.BigEndian.Uint64(iv[8:]) || off != 0 {
		return ctrLayout{}, false
	}
	// A reset stream equals a fresh one, for lengths around block and
	// eight-block boundaries, with counters that carry across 64 bits.
	buf, want := make([]byte, 1500), make([]byte, 1500)
	for _, n := range []int{1, 15, 16, 17, 127, 128, 129, 1200, 1500} {
		_, _ = rand.Read(iv[:])
		if n == 1500 {
			copy(iv[8:], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe})
		}
		_, _ = rand.Read(buf[:n])
		copy(want, buf[:n])
		cipher.NewCTR(block, iv[:]).XORKeyStream(want[:n], want[:n])
		l.set(state, binary.BigEndian.Uint64(iv[:8]), binary.BigEndian.Uint64(iv[8:]))
		stream.XORKeyStream(buf[:n], buf[:n])
		if !bytes.Equal(buf[:n], want[:n]) {
			return ctrLayout{}, false
		}
	}
	return l, true
}
