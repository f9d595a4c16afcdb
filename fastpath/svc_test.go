package fastpath

import "testing"

func TestVP9TID(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    []byte
		want uint8
	}{
		{"no layer indices", []byte{0x88, 0x01}, noTID},
		{"7-bit picture id", []byte{0xa8, 0x05, 2<<5 | 0x10, 0x03}, 2},
		{"15-bit picture id", []byte{0xa8, 0x85, 0x01, 1 << 5, 0x03}, 1},
		{"no picture id", []byte{0x28, 3 << 5}, 3},
		{"truncated after picture id", []byte{0xa8, 0x85, 0x01}, noTID},
		{"empty", nil, noTID},
	} {
		if got := vp9TID(tc.p); got != tc.want {
			t.Errorf("%s: tid %d, want %d", tc.name, got, tc.want)
		}
	}
	p := []byte{0xa8, 0x85, 0x01, 1 << 5, 0x03}
	zeroAllocs(t, "vp9TID", func() { _ = vp9TID(p) })
}

func FuzzVP9TID(f *testing.F) {
	f.Add([]byte{0xa8, 0x85, 0x01, 1 << 5, 0x03})
	f.Fuzz(func(_ *testing.T, p []byte) { _ = vp9TID(p) })
}
