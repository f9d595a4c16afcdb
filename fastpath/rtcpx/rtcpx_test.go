package rtcpx

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

const ms = int64(time.Millisecond)

func marshal(t testing.TB, pkts ...rtcp.Packet) []byte {
	t.Helper()
	b, err := rtcp.Marshal(pkts)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type visit struct {
	pt, count uint8
	size      int
}

func walkAll(pkt []byte) ([]visit, int, bool) {
	var v []visit
	n, ok := Walk(pkt, func(pt, count uint8, p []byte) { v = append(v, visit{pt, count, len(p)}) })
	return v, n, ok
}

func TestWalk(t *testing.T) {
	compound := marshal(t,
		&rtcp.SenderReport{SSRC: 1, NTPTime: 5, Reports: []rtcp.ReceptionReport{{SSRC: 2}}},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "x"}}}}},
		&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2},
		&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 2, Nacks: []rtcp.NackPair{{PacketID: 5}}},
	)
	padded := []byte{0xa0, TypeRR, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4} // RR + 4 bytes of padding
	padFirst := append(append([]byte{}, padded...), 0x80, TypeRR, 0, 1, 0, 0, 0, 1)
	for _, tc := range []struct {
		name   string
		pkt    []byte
		visits []visit
		ok     bool
	}{
		{"compound", compound, []visit{{TypeSR, 1, 52}, {TypeSDES, 1, 12}, {TypePSFB, FmtPLI, 12}, {TypeRTPFB, FmtNACK, 16}}, true},
		{"reduced size PLI", marshal(t, &rtcp.PictureLossIndication{MediaSSRC: 9}), []visit{{TypePSFB, 1, 12}}, true},
		{"padding on last", padded, []visit{{TypeRR, 0, 8}}, true},
		{"padding not on last", padFirst, nil, false},
		{"padding too big", []byte{0xa0, TypeRR, 0, 1, 0, 0, 0, 9}, nil, false},
		{"padding zero", []byte{0xa0, TypeRR, 0, 1, 0, 0, 0, 0}, nil, false},
		{"empty", nil, nil, false},
		{"short", []byte{0x80, 200, 0}, nil, false},
		{"version 1", []byte{0x40, TypeRR, 0, 0}, nil, false},
		{"length past end", []byte{0x80, TypeRR, 0, 5, 0, 0, 0, 1}, nil, false},
		{"good then garbage", append(marshal(t, &rtcp.PictureLossIndication{}), 0xff), []visit{{TypePSFB, 1, 12}}, false},
		{"header only", []byte{0x80, TypeBYE, 0, 0}, []visit{{TypeBYE, 0, 4}}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, n, ok := walkAll(tc.pkt)
			if ok != tc.ok || n != len(tc.visits) || len(v) != len(tc.visits) {
				t.Fatalf("n=%d ok=%v visits %v", n, ok, v)
			}
			for i := range v {
				if v[i] != tc.visits[i] {
					t.Errorf("visit %d: %+v want %+v", i, v[i], tc.visits[i])
				}
			}
		})
	}
}

func TestParseSRAndReports(t *testing.T) {
	rr := []rtcp.ReceptionReport{
		{SSRC: 7, FractionLost: 12, TotalLost: 100, LastSequenceNumber: 1 << 17, Jitter: 33, LastSenderReport: 0xabcd, Delay: 99},
		{SSRC: 8, TotalLost: 0x7fffff},
	}
	sr := marshal(t, &rtcp.SenderReport{SSRC: 3, NTPTime: 0x1122334455667788, RTPTime: 9, PacketCount: 10, OctetCount: 11, Reports: rr})
	si, ok := ParseSR(sr)
	if !ok || si != (SenderInfo{SSRC: 3, NTP: 0x1122334455667788, RTPTime: 9, Packets: 10, Octets: 11}) {
		t.Fatalf("ParseSR %+v %v", si, ok)
	}
	var got []ReportBlock
	Reports(sr, func(rb ReportBlock) { got = append(got, rb) })
	want := ReportBlock{SSRC: 7, FractionLost: 12, TotalLost: 100, ExtHighestSeq: 1 << 17, Jitter: 33, LSR: 0xabcd, DLSR: 99}
	if len(got) != 2 || got[0] != want || got[1].TotalLost != 0x7fffff {
		t.Fatalf("reports %+v", got)
	}
	rrPkt := marshal(t, &rtcp.ReceiverReport{SSRC: 4, Reports: rr[:1]})
	got = got[:0]
	if Reports(rrPkt, func(rb ReportBlock) { got = append(got, rb) }) != 1 || got[0] != want {
		t.Fatalf("RR reports %+v", got)
	}
	if _, ok := ParseSR(rrPkt); ok {
		t.Error("ParseSR accepted an RR")
	}
	if _, ok := ParseSR(sr[:40]); ok {
		t.Error("ParseSR accepted a truncated SR")
	}
	// negative cumulative loss survives the 24-bit round trip
	buf := make([]byte, 64)
	n, _ := BuildRR(buf, 1, ReportBlock{SSRC: 2, TotalLost: -5})
	Reports(buf[:n], func(rb ReportBlock) { got[0] = rb })
	if got[0].TotalLost != -5 {
		t.Errorf("TotalLost %d", got[0].TotalLost)
	}
}

func TestBuildersInterop(t *testing.T) {
	buf := make([]byte, 1500)
	blocks := []ReportBlock{{SSRC: 7, FractionLost: 25, TotalLost: 1000, ExtHighestSeq: 70000, Jitter: 450, LSR: 1, DLSR: 2}, {SSRC: 8}}
	n, ok := BuildRR(buf, 99, blocks...)
	var rr rtcp.ReceiverReport
	if !ok || rr.Unmarshal(buf[:n]) != nil || rr.SSRC != 99 || len(rr.Reports) != 2 ||
		rr.Reports[0].TotalLost != 1000 || rr.Reports[0].FractionLost != 25 || rr.Reports[0].Jitter != 450 || rr.Reports[0].LastSequenceNumber != 70000 {
		t.Fatalf("RR %+v", rr)
	}
	n, ok = BuildSR(buf, SenderInfo{SSRC: 5, NTP: 6, RTPTime: 7, Packets: 8, Octets: 9}, blocks[0])
	var sr rtcp.SenderReport
	if !ok || sr.Unmarshal(buf[:n]) != nil || sr.SSRC != 5 || sr.NTPTime != 6 || sr.RTPTime != 7 || sr.PacketCount != 8 || sr.OctetCount != 9 || len(sr.Reports) != 1 {
		t.Fatalf("SR %+v", sr)
	}
	n, ok = BuildRRTR(buf, 77, 0x0102030405060708)
	pkts, err := rtcp.Unmarshal(buf[:n])
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	xr := pkts[0].(*rtcp.ExtendedReport)
	if rrtr, isRRTR := xr.Reports[0].(*rtcp.ReceiverReferenceTimeReportBlock); xr.SenderSSRC != 77 || !isRRTR || rrtr.NTPTimestamp != 0x0102030405060708 {
		t.Fatalf("XR %+v", xr)
	}
	if _, ok := XRBlocks(buf[:n], func(bt uint8, block []byte) {
		if bt != BlockRRTR || len(block) != 12 || binary.BigEndian.Uint64(block[4:]) != 0x0102030405060708 {
			t.Errorf("RRTR block %x", block)
		}
	}); !ok {
		t.Error("XRBlocks of our own RRTR")
	}
	if _, ok := BuildRR(buf[:20], 1, blocks...); ok {
		t.Error("BuildRR overran dst")
	}
	if _, ok := BuildSR(buf, SenderInfo{}, make([]ReportBlock, 32)...); ok {
		t.Error("BuildSR took 32 blocks")
	}
	if _, ok := BuildRRTR(buf[:19], 1, 1); ok {
		t.Error("BuildRRTR overran dst")
	}
}

func TestFeedbackParsers(t *testing.T) {
	fir := marshal(t, &rtcp.FullIntraRequest{SenderSSRC: 1, MediaSSRC: 0, FIR: []rtcp.FIREntry{{SSRC: 5, SequenceNumber: 3}, {SSRC: 6, SequenceNumber: 4}}})
	format, sender, media, fci, ok := ParseFeedback(fir)
	if !ok || format != FmtFIR || sender != 1 || media != 0 || len(fci) != 16 {
		t.Fatalf("FIR header %d %d %d %d %v", format, sender, media, len(fci), ok)
	}
	nack := marshal(t, &rtcp.TransportLayerNack{SenderSSRC: 2, MediaSSRC: 9, Nacks: []rtcp.NackPair{{PacketID: 100, LostPackets: 1}}})
	format, sender, media, fci, ok = ParseFeedback(nack)
	if !ok || format != FmtNACK || sender != 2 || media != 9 || len(fci) != 4 || binary.BigEndian.Uint16(fci) != 100 {
		t.Fatalf("NACK header %d %d %d %x %v", format, sender, media, fci, ok)
	}
	if _, _, _, _, ok := ParseFeedback(marshal(t, &rtcp.ReceiverReport{})); ok {
		t.Error("RR taken as feedback")
	}
	if _, _, _, _, ok := ParseFeedback(fir[:11]); ok {
		t.Error("feedback shorter than its 12-byte header")
	}
}

func TestDLRRAndRTT(t *testing.T) {
	xr := marshal(t, &rtcp.ExtendedReport{SenderSSRC: 3, Reports: []rtcp.ReportBlock{
		&rtcp.ReceiverReferenceTimeReportBlock{NTPTimestamp: 42},
		&rtcp.DLRRReportBlock{Reports: []rtcp.DLRRReport{{SSRC: 10, LastRR: 1, DLRR: 2}, {SSRC: 77, LastRR: 0x55667788, DLRR: 65536 / 10}}},
	}})
	var log RTTLog
	sentNTP := uint64(0x1111_5566_7788_0000)
	log.Sent(sentNTP, 1000*ms)
	lrr, dlrr, ok := FindDLRR(xr, 77)
	if !ok || lrr != NTPMiddle(sentNTP) {
		t.Fatalf("FindDLRR %x %d %v", lrr, dlrr, ok)
	}
	rtt, ok := log.RTT(lrr, dlrr, 1180*ms) // 180 ms later, peer held it 100 ms
	if !ok || rtt < 79*ms || rtt > 81*ms {
		t.Fatalf("RTT %v %v", time.Duration(rtt), ok)
	}
	if _, _, ok := FindDLRR(xr, 99); ok {
		t.Error("DLRR for an unknown SSRC")
	}
	if _, ok := log.RTT(0x12345678, 0, 2000*ms); ok {
		t.Error("RTT from an echo never sent")
	}
	if _, ok := log.RTT(lrr, 65536*5, 1180*ms); ok {
		t.Error("negative RTT accepted")
	}
	if ssrc, ok := XRBlocks(xr[:len(xr)-4], func(uint8, []byte) {}); ok || ssrc != 3 {
		t.Error("truncated XR accepted")
	}
}

func TestNTP(t *testing.T) {
	ntp := NTPFromUnixNano(1_700_000_000_500_000_000)
	if ntp>>32 != 1_700_000_000+ntpEpochOffset || uint32(ntp) != 1<<31 {
		t.Fatalf("NTP %x", ntp)
	}
	if NTPDuration(1500*ms) != 1<<32|1<<31 {
		t.Fatalf("duration %x", NTPDuration(1500*ms))
	}
}

func TestTranslateSR(t *testing.T) {
	src := SRSource{NTP: NTPFromUnixNano(1e18), RTPTime: 1000, At: 5000 * ms}
	buf := make([]byte, 64)
	n, ntp, ok := TranslateSR(buf, src, 90000, 5500*ms, 0xabc, 7, 100, 120000)
	if !ok || n != 28 {
		t.Fatal(ok, n)
	}
	si, _ := ParseSR(buf[:n])
	want := SenderInfo{SSRC: 0xabc, NTP: src.NTP + NTPDuration(500*ms), RTPTime: 1000 + 45000 + 7, Packets: 100, Octets: 120000}
	if si != want || ntp != want.NTP {
		t.Fatalf("SR %+v want %+v", si, want)
	}
}
