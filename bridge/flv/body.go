package flv

import (
	"encoding/binary"
	"fmt"
)

// Video is a parsed H.264 video tag body.
type Video struct {
	Key bool
	// SPS and PPS are set for a sequence header.
	SPS, PPS []byte
	// NALUs are set for an access unit.
	NALUs [][]byte
	CTS   int32
}

// ParseVideo parses an AVC video tag body.
func ParseVideo(b []byte) (Video, error) {
	if len(b) < 5 {
		return Video{}, ErrShortTag
	}
	if b[0]&0x0F != codecAVC {
		return Video{}, ErrUnsupported
	}
	v := Video{Key: b[0]>>4 == frameKey}
	cts := int32(uint32(b[2])<<16|uint32(b[3])<<8|uint32(b[4])) << 8 >> 8
	v.CTS = cts
	switch b[1] {
	case avcSeqHeader:
		return parseAVCC(v, b[5:])
	case avcNALU:
		p := b[5:]
		for len(p) > 0 {
			if len(p) < 4 {
				return Video{}, ErrShortTag
			}
			n := binary.BigEndian.Uint32(p)
			p = p[4:]
			if uint64(n) > uint64(len(p)) {
				return Video{}, ErrShortTag
			}
			v.NALUs = append(v.NALUs, p[:n])
			p = p[n:]
		}
		return v, nil
	}
	return v, nil // end of sequence: nothing to carry
}

func parseAVCC(v Video, b []byte) (Video, error) {
	if len(b) < 8 {
		return Video{}, fmt.Errorf("avcC: %w", ErrShortTag)
	}
	p := b[6:]
	sn := int(binary.BigEndian.Uint16(b[6:]))
	p = p[2:]
	if b[5]&0x1F < 1 || sn > len(p) {
		return Video{}, fmt.Errorf("avcC sps: %w", ErrShortTag)
	}
	v.SPS = p[:sn]
	p = p[sn:]
	if len(p) < 3 || p[0] < 1 {
		return Video{}, fmt.Errorf("avcC pps: %w", ErrShortTag)
	}
	pn := int(binary.BigEndian.Uint16(p[1:]))
	p = p[3:]
	if pn > len(p) {
		return Video{}, fmt.Errorf("avcC pps: %w", ErrShortTag)
	}
	v.PPS = p[:pn]
	return v, nil
}

// Audio is a parsed AAC audio tag body.
type Audio struct {
	// Config is set for a sequence header (AudioSpecificConfig).
	Config []byte
	// Frame is set for a raw AAC frame.
	Frame []byte
}

// ParseAudio parses an AAC audio tag body.
func ParseAudio(b []byte) (Audio, error) {
	if len(b) < 2 {
		return Audio{}, ErrShortTag
	}
	if b[0]>>4 != 10 {
		return Audio{}, ErrUnsupported
	}
	if b[1] == aacSeqHeader {
		return Audio{Config: b[2:]}, nil
	}
	return Audio{Frame: b[2:]}, nil
}
