package cli

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// progress draws a one-line bar of work done on a terminal, redrawn in
// place; it is only started when stderr is one, so scripts and logs never
// see it.
type progress struct {
	w      io.Writer
	label  string
	total  int64 // 0 when unknown: a counter without a bar
	start  time.Time
	n      atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup
	stopMu sync.Once
}

func startProgress(w io.Writer, label string, total int64) *progress {
	p := &progress{w: w, label: label, total: total, start: time.Now(), stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				fmt.Fprint(p.w, "\r\033[K") // clear the line for what is printed next
				return
			case <-t.C:
				fmt.Fprint(p.w, "\r"+p.line(p.n.Load(), time.Since(p.start)))
			}
		}
	}()
	return p
}

// Stop clears the bar; safe to call twice.
func (p *progress) Stop() {
	p.stopMu.Do(func() { close(p.stop) })
	p.wg.Wait()
}

// line renders the bar after n units in elapsed.
func (p *progress) line(n int64, elapsed time.Duration) string {
	const width = 30
	secs := elapsed.Seconds()
	rate := ""
	if secs > 0 {
		rate = fmt.Sprintf(" %s/s", bytesText(int64(float64(n)/secs)))
	}
	if p.total <= 0 {
		return fmt.Sprintf("%s %s%s", p.label, bytesText(n), rate)
	}
	frac := min(float64(n)/float64(p.total), 1)
	full := int(frac * width)
	bar := strings.Repeat("=", full)
	if full < width {
		bar += ">" + strings.Repeat(" ", width-full-1)
	}
	return fmt.Sprintf("%s [%s] %3.0f%% %s/%s%s", p.label, bar, frac*100, bytesText(n), bytesText(p.total), rate)
}

func bytesText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// progressReader counts what is read through it.
type progressReader struct {
	r io.Reader
	p *progress
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.n.Add(int64(n))
	return n, err
}
