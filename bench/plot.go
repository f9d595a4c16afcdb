package bench

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"strconv"
)

// Plot geometry.
const (
	plotW, plotH = 800, 480
	plotL, plotR = 60, 60
	plotT, plotB = 30, 50
)

var (
	colCPU  = color.RGBA{0x1f, 0x5f, 0xd0, 0xff}
	colLoss = color.RGBA{0xd0, 0x30, 0x20, 0xff}
	colAxis = color.RGBA{0x30, 0x30, 0x30, 0xff}
	colGrid = color.RGBA{0xe0, 0xe0, 0xe0, 0xff}
)

// digits is a 3×5 pixel font for tick labels: 0-9, '.', '%'.
var digits = map[rune][5]string{
	'0': {"###", "#.#", "#.#", "#.#", "###"}, '1': {".#.", "##.", ".#.", ".#.", "###"},
	'2': {"###", "..#", "###", "#..", "###"}, '3': {"###", "..#", "###", "..#", "###"},
	'4': {"#.#", "#.#", "###", "..#", "..#"}, '5': {"###", "#..", "###", "..#", "###"},
	'6': {"###", "#..", "###", "#.#", "###"}, '7': {"###", "..#", "..#", "..#", "..#"},
	'8': {"###", "#.#", "###", "#.#", "###"}, '9': {"###", "#.#", "###", "..#", "###"},
	'.': {"...", "...", "...", "...", ".#."}, '%': {"#.#", "..#", ".#.", "#..", "#.#"},
}

type canvas struct{ *image.RGBA }

func (c canvas) rect(x0, y0, x1, y1 int, col color.Color) {
	for y := y0; y <= y1; y++ {
		for x := x0; x <= x1; x++ {
			c.Set(x, y, col)
		}
	}
}

// line draws with Bresenham's algorithm, 2 px wide.
func (c canvas) line(x0, y0, x1, y1 int, col color.Color) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := sign(x1-x0), sign(y1-y0)
	e := dx + dy
	for {
		c.rect(x0, y0, x0+1, y0+1, col)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

// text draws s at (x, y) with 2× scaled 3×5 glyphs.
func (c canvas) text(x, y int, s string, col color.Color) {
	for _, r := range s {
		g, ok := digits[r]
		if ok {
			for gy, row := range g {
				for gx, ch := range row {
					if ch == '#' {
						c.rect(x+2*gx, y+2*gy, x+2*gx+1, y+2*gy+1, col)
					}
				}
			}
		}
		x += 8
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

func sign(v int) int {
	switch {
	case v < 0:
		return -1
	case v > 0:
		return 1
	}
	return 0
}

func fmtTick(v float64) string {
	if v >= 10 || v == 0 {
		return strconv.Itoa(int(v + 0.5))
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

// WritePlot draws server CPU % (blue, left axis) and loss % (red, right
// axis) against subscribers (x axis) into a PNG file.
func WritePlot(path string, steps []Result) error {
	c := canvas{image.NewRGBA(image.Rect(0, 0, plotW, plotH))}
	c.rect(0, 0, plotW-1, plotH-1, color.White)
	maxX, maxCPU, maxLoss := 1.0, 10.0, 1.0
	for _, s := range steps {
		maxX = max(maxX, float64(s.SubscribersRequested))
		maxCPU = max(maxCPU, s.ServerCPUPercent*1.1, s.BenchReaderCPUPercent*1.1)
		maxLoss = max(maxLoss, s.LossRatio*100*1.1)
	}
	x0, x1, y0, y1 := plotL, plotW-plotR, plotH-plotB, plotT
	px := func(v float64) int { return x0 + int(v/maxX*float64(x1-x0)) }
	py := func(v, top float64) int { return y0 - int(v/top*float64(y0-y1)) }
	for i := 0; i <= 5; i++ {
		y := y0 - i*(y0-y1)/5
		c.rect(x0, y, x1, y, colGrid)
		c.text(4, y-5, fmtTick(maxCPU*float64(i)/5), colCPU)
		c.text(x1+6, y-5, fmtTick(maxLoss*float64(i)/5)+"%", colLoss)
		x := x0 + i*(x1-x0)/5
		c.text(x-12, y0+10, fmtTick(maxX*float64(i)/5), colAxis)
	}
	c.rect(x0, y1, x0+1, y0, colAxis)
	c.rect(x0, y0, x1, y0+1, colAxis)
	c.rect(x1, y1, x1+1, y0, colAxis)
	series := func(val func(Result) float64, top float64, col color.Color) {
		var lx, ly int
		first := true
		for _, s := range steps {
			v := val(s)
			if v < 0 {
				continue
			}
			x, y := px(float64(s.SubscribersRequested)), py(v, top)
			c.rect(x-3, y-3, x+3, y+3, col)
			if !first {
				c.line(lx, ly, x, y, col)
			}
			lx, ly, first = x, y, false
		}
	}
	series(func(s Result) float64 { return s.ServerCPUPercent }, maxCPU, colCPU)
	series(func(s Result) float64 { return s.LossRatio * 100 }, maxLoss, colLoss)
	c.rect(x0+10, 8, x0+30, 18, colCPU)
	c.rect(x0+110, 8, x0+130, 18, colLoss)
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	defer f.Close()
	if err := png.Encode(f, c); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
