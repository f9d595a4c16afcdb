package rtcpx

import (
	"testing"

	"github.com/pion/rtcp"
)

func TestZeroAlloc(t *testing.T) {
	compound := marshal(t,
		&rtcp.SenderReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 2}}},
		&rtcp.PictureLossIndication{MediaSSRC: 2},
		&rtcp.ExtendedReport{SenderSSRC: 2, Reports: []rtcp.ReportBlock{&rtcp.DLRRReportBlock{Reports: []rtcp.DLRRReport{{SSRC: 1, LastRR: 7, DLRR: 8}}}}},
	)
	var s ReceiveStats
	s.Init(1, 90000)
	var log RTTLog
	buf := make([]byte, 1500)
	seq, now := uint16(0), int64(0)
	blocks := [2]ReportBlock{}
	cases := map[string]func(){
		"Walk+parse": func() {
			Walk(compound, func(_, _ uint8, p []byte) { parseEverything(p) })
		},
		"ReceiveStats.Update": func() { seq++; now += ms; s.Update(seq, uint32(now/11111), now) },
		"ReceiveStats.OnSR":   func() { s.OnSR(uint64(now), 5, now) },
		"Report+BuildRR": func() {
			blocks[0] = s.Report(now)
			_, _ = BuildRR(buf, 9, blocks[:1]...)
		},
		"BuildRR variadic": func() { _, _ = BuildRR(buf, 9, blocks[0], blocks[1]) },
		"TranslateSR": func() {
			src, _ := s.LastSR()
			_, ntp, _ := TranslateSR(buf, src, 90000, now, 5, 6, 7, 8)
			log.Sent(ntp, now)
		},
		"BuildRRTR": func() { _, _ = BuildRRTR(buf, 1, uint64(now)) },
		"RTT":       func() { _, _ = log.RTT(7, 8, now) },
	}
	for name, f := range cases {
		f()
		if a := testing.AllocsPerRun(1000, f); a != 0 {
			t.Errorf("%s: %v allocs/op", name, a)
		}
	}
}

func BenchmarkWalk(b *testing.B) {
	compound := marshal(b,
		&rtcp.ReceiverReport{SSRC: 1, Reports: []rtcp.ReceptionReport{{SSRC: 2}}},
		&rtcp.SourceDescription{Chunks: []rtcp.SourceDescriptionChunk{{Source: 1, Items: []rtcp.SourceDescriptionItem{{Type: rtcp.SDESCNAME, Text: "abcdefgh"}}}}},
		&rtcp.TransportLayerNack{MediaSSRC: 2, Nacks: []rtcp.NackPair{{PacketID: 5}}},
		&rtcp.PictureLossIndication{MediaSSRC: 2},
	)
	b.ReportAllocs()
	b.SetBytes(int64(len(compound)))
	kinds := 0
	for b.Loop() {
		Walk(compound, func(pt, _ uint8, p []byte) {
			if pt == TypeRTPFB || pt == TypePSFB {
				if _, _, _, _, ok := ParseFeedback(p); ok {
					kinds++
				}
			}
		})
	}
}

func BenchmarkReceiveStatsUpdate(b *testing.B) {
	var s ReceiveStats
	s.Init(1, 90000)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Update(uint16(i), uint32(i*3000), int64(i)*33*ms)
	}
}

func BenchmarkReportBuildRR(b *testing.B) {
	var s ReceiveStats
	s.Init(1, 90000)
	s.Update(1, 0, 0)
	s.OnSR(1<<40, 0, 0)
	buf := make([]byte, 100)
	b.ReportAllocs()
	for b.Loop() {
		rb := s.Report(5 * ms)
		_, _ = BuildRR(buf, 2, rb)
	}
}

func BenchmarkTranslateSR(b *testing.B) {
	src := SRSource{NTP: 1 << 50, RTPTime: 1, At: 0}
	buf := make([]byte, 100)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		_, _, _ = TranslateSR(buf, src, 90000, int64(i), 1, 2, 3, 4)
	}
}
