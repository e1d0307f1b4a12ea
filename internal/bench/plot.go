package bench

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// WritePlot draws the run as SVG: throughput (accepted/s, delivered/s)
// above latency (accept p50/p99, accept-to-provider p50/p99), per second
// on a shared time axis. No dependency: the SVG is written by hand.
func (rep *Report) WritePlot(w io.Writer) error {
	const (
		width, left, right = 960, 80, 190
		top, panelH, gap   = 56, 220, 70
		height             = top + 2*panelH + gap + 56
	)
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif" font-size="12">`+"\n",
		width, height, width, height)
	fmt.Fprintf(b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	title := fmt.Sprintf("herald bench: %s", rep.Target)
	sub := fmt.Sprintf("%s; mix %s; %d recipient(s) per request; %d accepted, %d delivered",
		rep.Loop, rep.Mix, rep.Recipients, rep.Deliveries.Accepted, rep.Deliveries.Delivered)
	fmt.Fprintf(b, `<text x="%d" y="24" font-size="16" font-weight="600" fill="#222">%s</text>`+"\n", left, html.EscapeString(title))
	fmt.Fprintf(b, `<text x="%d" y="42" fill="#555">%s</text>`+"\n", left, html.EscapeString(sub))

	n := len(rep.Series)
	xStep := niceStep(math.Max(float64(n), 1) / 10)
	xMax := math.Ceil(math.Max(float64(n), 1)/xStep) * xStep
	plotW := float64(width - left - right)
	x := func(t float64) float64 { return left + t/xMax*plotW }

	type line struct {
		name, color string
		dash        bool
		v           func(Second) float64
		skipZero    bool
	}
	panel := func(y0 int, label string, lines []line) {
		yMax := 0.0
		for _, s := range rep.Series {
			for _, l := range lines {
				yMax = math.Max(yMax, l.v(s))
			}
		}
		yStep := niceStep(math.Max(yMax, 1) / 5)
		yMax = math.Max(math.Ceil(yMax/yStep), 1) * yStep
		y := func(v float64) float64 { return float64(y0+panelH) - v/yMax*panelH }
		// Grid and y ticks.
		for v := 0.0; v <= yMax+yStep/2; v += yStep {
			fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e6e6e6"/>`+"\n", left, y(v), width-right, y(v))
			fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n", left-8, y(v)+4, tick(v))
		}
		// x ticks.
		for t := 0.0; t <= xMax+xStep/2; t += xStep {
			fmt.Fprintf(b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#999"/>`+"\n", x(t), y0+panelH, x(t), y0+panelH+4)
			fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%s</text>`+"\n", x(t), y0+panelH+18, tick(t))
		}
		// Axes.
		fmt.Fprintf(b, `<path d="M%d %d V%d H%d" fill="none" stroke="#333"/>`+"\n", left, y0, y0+panelH, width-right)
		fmt.Fprintf(b, `<text transform="translate(%d %d) rotate(-90)" text-anchor="middle" fill="#333">%s</text>`+"\n",
			left-56, y0+panelH/2, html.EscapeString(label))
		// Lines, then the legend.
		for i, l := range lines {
			var d strings.Builder
			pen := "M"
			for _, s := range rep.Series {
				v := l.v(s)
				if l.skipZero && v == 0 {
					pen = "M" // no sample this second: lift the pen
					continue
				}
				fmt.Fprintf(&d, "%s%.1f %.1f ", pen, x(float64(s.T)+0.5), y(v))
				pen = "L"
			}
			dash := ""
			if l.dash {
				dash = ` stroke-dasharray="6 4"`
			}
			fmt.Fprintf(b, `<path d="%s" fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round"%s/>`+"\n", strings.TrimSpace(d.String()), l.color, dash)
			ly := y0 + 14 + i*20
			fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", width-right+16, ly, width-right+40, ly, l.color, dash)
			fmt.Fprintf(b, `<text x="%d" y="%d" fill="#333">%s</text>`+"\n", width-right+46, ly+4, html.EscapeString(l.name))
		}
	}
	panel(top, "per second", []line{
		{name: "accepted/s", color: "#1f77b4", v: func(s Second) float64 { return float64(s.Accepted) }},
		{name: "delivered/s", color: "#ff7f0e", v: func(s Second) float64 { return float64(s.Delivered) }},
	})
	panel(top+panelH+gap, "latency (ms)", []line{
		{name: "accept p50", color: "#2ca02c", v: func(s Second) float64 { return s.AcceptP50 }, skipZero: true},
		{name: "accept p99", color: "#2ca02c", dash: true, v: func(s Second) float64 { return s.AcceptP99 }, skipZero: true},
		{name: "to provider p50", color: "#d62728", v: func(s Second) float64 { return s.DeliveryP50 }, skipZero: true},
		{name: "to provider p99", color: "#d62728", dash: true, v: func(s Second) float64 { return s.DeliveryP99 }, skipZero: true},
	})
	fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#333">seconds since the first request</text>`+"\n",
		left+plotW/2, height-12)
	fmt.Fprintln(b, "</svg>")
	return b.Flush()
}

// niceStep rounds v up to 1, 2 or 5 times a power of ten: a tick spacing.
func niceStep(v float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p+1e-9 {
			return m * p
		}
	}
	return 10 * p
}

func tick(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%gk", v/1000)
	case math.Abs(v-math.Round(v)) < 1e-9:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%g", math.Round(v*100)/100)
	}
}
