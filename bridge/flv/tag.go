package flv

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
)

// TagType is the FLV tag type.
type TagType uint8

// Tag types (FLV v10.1 E.4.1).
const (
	TagAudio  TagType = 8
	TagVideo  TagType = 9
	TagScript TagType = 18
)

const (
	headerSize    = 9
	tagHeaderSize = 11
	maxBody       = 1<<24 - 1

	// Video codec id 7 = AVC; frame types 1 = key, 2 = inter (E.4.3.1).
	codecAVC   = 7
	frameKey   = 1
	frameInter = 2
	// AVCPacketType values.
	avcSeqHeader = 0
	avcNALU      = 1
	// Audio: SoundFormat 10 = AAC, 44 kHz, 16-bit, stereo (0xAF) as SRS writes.
	aacTagByte   = 0xAF
	aacSeqHeader = 0
	aacRaw       = 1
)

// AppendHeader appends the 9-byte FLV header and PreviousTagSize0.
func AppendHeader(dst []byte, hasVideo, hasAudio bool) []byte {
	var flags byte
	if hasAudio {
		flags |= 0x04
	}
	if hasVideo {
		flags |= 0x01
	}
	dst = append(dst, 'F', 'L', 'V', 1, flags, 0, 0, 0, headerSize)
	return binary.BigEndian.AppendUint32(dst, 0)
}

// AppendTag appends one tag (header, body, PreviousTagSize). ts is in ms.
func AppendTag(dst []byte, typ TagType, ts uint32, body []byte) ([]byte, error) {
	if len(body) > maxBody {
		return dst, ErrTagTooBig
	}
	n := len(body)
	dst = append(dst, byte(typ), byte(n>>16), byte(n>>8), byte(n),
		byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
	dst = append(dst, body...)
	return binary.BigEndian.AppendUint32(dst, uint32(tagHeaderSize+n)), nil
}

// AppendAVCSequenceHeader appends a video tag body holding an
// AVCDecoderConfigurationRecord (ISO 14496-15 5.2.4.1) for one SPS and PPS.
func AppendAVCSequenceHeader(dst []byte, sps, pps []byte) ([]byte, error) {
	if len(sps) < 4 || len(pps) < 1 || len(sps) > 0xFFFF || len(pps) > 0xFFFF {
		return dst, fmt.Errorf("avc sequence header: %w", ErrShortTag)
	}
	dst = append(dst, frameKey<<4|codecAVC, avcSeqHeader, 0, 0, 0,
		1, sps[1], sps[2], sps[3], 0xFF, 0xE1)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(sps)))
	dst = append(dst, sps...)
	dst = append(dst, 1)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(pps)))
	return append(dst, pps...), nil
}

// AppendAVCNALUs appends a video tag body with an AVCC access unit (4-byte
// lengths). cts is the composition time offset (PTS-DTS) in ms.
func AppendAVCNALUs(dst []byte, key bool, cts int32, nalus [][]byte) []byte {
	ft := byte(frameInter)
	if key {
		ft = frameKey
	}
	dst = append(dst, ft<<4|codecAVC, avcNALU, byte(cts>>16), byte(cts>>8), byte(cts))
	for _, n := range nalus {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(n)))
		dst = append(dst, n...)
	}
	return dst
}

// AppendAACSequenceHeader appends an audio tag body holding the
// AudioSpecificConfig.
func AppendAACSequenceHeader(dst []byte, asc []byte) []byte {
	dst = append(dst, aacTagByte, aacSeqHeader)
	return append(dst, asc...)
}

// AppendAACFrame appends an audio tag body holding one raw AAC frame.
func AppendAACFrame(dst []byte, frame []byte) []byte {
	dst = append(dst, aacTagByte, aacRaw)
	return append(dst, frame...)
}

// Tag is one tag read back by Reader.
type Tag struct {
	Type      TagType
	Timestamp uint32
	Body      []byte
}

// Reader reads an FLV byte stream.
type Reader struct {
	r       io.Reader
	hdr     [tagHeaderSize]byte
	started bool
}

// NewReader returns a reader over r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// ReadHeader reads the file header and PreviousTagSize0; it returns the
// audio and video flags.
func (r *Reader) ReadHeader() (hasVideo, hasAudio bool, err error) {
	var b [headerSize + 4]byte
	if _, err := io.ReadFull(r.r, b[:]); err != nil {
		return false, false, fmt.Errorf("%w: %w", ErrBadHeader, err)
	}
	if b[0] != 'F' || b[1] != 'L' || b[2] != 'V' || binary.BigEndian.Uint32(b[5:9]) != headerSize {
		return false, false, ErrBadHeader
	}
	r.started = true
	return b[4]&0x01 != 0, b[4]&0x04 != 0, nil
}

// ReadTag reads the next tag and checks its PreviousTagSize.
func (r *Reader) ReadTag() (Tag, error) {
	if !r.started {
		return Tag{}, ErrBadHeader
	}
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		return Tag{}, err
	}
	h := r.hdr[:]
	n := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
	ts := uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6]) | uint32(h[7])<<24
	// Grow with the data actually read, so a forged size cannot make us
	// allocate 16 MiB up front.
	var buf bytes.Buffer
	if _, err := io.CopyN(&buf, r.r, int64(n+4)); err != nil {
		return Tag{}, fmt.Errorf("%w: %w", ErrShortTag, err)
	}
	body := buf.Bytes()
	if binary.BigEndian.Uint32(body[n:]) != uint32(tagHeaderSize+n) {
		return Tag{}, ErrBadTagSize
	}
	return Tag{Type: TagType(h[0]), Timestamp: ts, Body: body[:n]}, nil
}
