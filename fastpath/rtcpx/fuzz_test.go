package rtcpx

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/pion/rtcp"
)

// seedPackets are real RTCP shapes (as pion and browsers send them) for the
// fuzz corpus in testdata/fuzz/FuzzWalk.
func seedPackets(t testing.TB) map[string][]byte {
	rr := []rtcp.ReceptionReport{{SSRC: 7, FractionLost: 12, TotalLost: 100, LastSequenceNumber: 70000, Jitter: 33, LastSenderReport: 1, Delay: 2}}
	sdes := &rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "cname"}}}}}
	tcc := &rtcp.TransportLayerCC{SenderSSRC: 1, MediaSSRC: 2, BaseSequenceNumber: 65530, PacketStatusCount: 3, ReferenceTime: 100, FbPktCount: 4,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 3}},
		RecvDeltas:   []*rtcp.RecvDelta{{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 500}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 0}}}
	seeds := map[string][]rtcp.Packet{
		"sr_sdes":  {&rtcp.SenderReport{SSRC: 1, NTPTime: 0xe8e8e8e8_12345678, RTPTime: 90000, PacketCount: 10, OctetCount: 1000, Reports: rr}, sdes},
		"rr_sdes":  {&rtcp.ReceiverReport{SSRC: 1, Reports: rr}, sdes},
		"pli":      {&rtcp.PictureLossIndication{SenderSSRC: 1, MediaSSRC: 2}},
		"fir":      {&rtcp.FullIntraRequest{SenderSSRC: 1, FIR: []rtcp.FIREntry{{SSRC: 2, SequenceNumber: 9}}}},
		"nack":     {&rtcp.TransportLayerNack{SenderSSRC: 1, MediaSSRC: 2, Nacks: []rtcp.NackPair{{PacketID: 100, LostPackets: 0x8001}}}},
		"remb":     {&rtcp.ReceiverEstimatedMaximumBitrate{SenderSSRC: 1, Bitrate: 1.5e6, SSRCs: []uint32{2, 3}}},
		"twcc":     {tcc},
		"bye":      {&rtcp.Goodbye{Sources: []uint32{1, 2}, Reason: "bye"}},
		"app":      {&rtcp.ApplicationDefined{SubType: 1, SSRC: 1, Name: "TEST", Data: []byte{1, 2, 3, 4}}},
		"sli":      {&rtcp.SliceLossIndication{SenderSSRC: 1, MediaSSRC: 2, SLI: []rtcp.SLIEntry{{First: 1, Number: 2, Picture: 3}}}},
		"rr_xr":    {&rtcp.ReceiverReport{SSRC: 1}, &rtcp.ExtendedReport{SenderSSRC: 1, Reports: []rtcp.ReportBlock{&rtcp.ReceiverReferenceTimeReportBlock{NTPTimestamp: 5}}}},
		"xr_dlrr":  {&rtcp.ExtendedReport{SenderSSRC: 2, Reports: []rtcp.ReportBlock{&rtcp.DLRRReportBlock{Reports: []rtcp.DLRRReport{{SSRC: 1, LastRR: 7, DLRR: 8}}}}}},
		"compound": {&rtcp.ReceiverReport{SSRC: 1, Reports: rr}, &rtcp.PictureLossIndication{MediaSSRC: 2}, &rtcp.TransportLayerNack{MediaSSRC: 2, Nacks: []rtcp.NackPair{{PacketID: 5}}}, tcc},
	}
	out := map[string][]byte{}
	for name, pkts := range seeds {
		b, err := rtcp.Marshal(pkts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = b
	}
	out["padded_rr"] = []byte{0xa0, TypeRR, 0, 2, 0, 0, 0, 1, 0, 0, 0, 4}
	out["garbage"] = []byte{0x80, 0xc8, 0xff, 0xff, 1, 2, 3}
	return out
}

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzWalk when
// FANOUT_WRITE_SEEDS=1; otherwise it checks the corpus is there.
func TestWriteFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzWalk")
	if os.Getenv("FANOUT_WRITE_SEEDS") == "" {
		if ents, err := os.ReadDir(dir); err != nil || len(ents) == 0 {
			t.Fatalf("fuzz corpus missing in %s (FANOUT_WRITE_SEEDS=1 go test -run TestWriteFuzzSeeds)", dir)
		}
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range seedPackets(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzWalk feeds arbitrary bytes through the walker and every parser: none
// may panic, each packet visited lies inside the input, and a valid walk
// covers the input exactly.
func FuzzWalk(f *testing.F) {
	for _, b := range seedPackets(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		covered := 0
		n, ok := Walk(data, func(pt, count uint8, p []byte) {
			if len(p) < 4 || len(p) > len(data) || p[1] != pt || p[0]&0x1f != count {
				t.Fatalf("bad packet view %x of %x", p, data)
			}
			covered += 4 * (int(p[2])<<8 | int(p[3]) + 1)
			parseEverything(p)
		})
		if ok && covered != len(data) {
			t.Fatalf("valid walk of %d packets covered %d of %d bytes", n, covered, len(data))
		}
		parseEverything(data) // the parsers must also survive unwalked input
	})
}

// parseEverything runs every parser the fastpath uses on p.
func parseEverything(p []byte) {
	_, _ = ParseSR(p)
	Reports(p, func(ReportBlock) {})
	_, _, _, _, _ = ParseFeedback(p)
	XRBlocks(p, func(_ uint8, block []byte) {
		ParseDLRR(block, func(_, _, _ uint32) {})
	})
	_, _, _ = FindDLRR(p, 1)
}
