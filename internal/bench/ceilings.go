package bench

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/heraldhq/herald/internal/bench/ceiling"
)

// Ceilings are the machine's bare figures, measured in the same run, and
// Herald's figures as shares of them.
type Ceilings struct {
	ceiling.Figures
	// Store names the store whose ceiling the accept ratio uses: "sqlite",
	// or "postgres" when the run was given a database URL.
	Store  string  `json:"store"`
	Ratios []Ratio `json:"ratios,omitempty"`
}

// Ratio is one of Herald's figures against the ceiling it runs on.
type Ratio struct {
	Name    string  `json:"name"`
	Herald  float64 `json:"herald"`
	Ceiling float64 `json:"ceiling"`
	Ratio   float64 `json:"ratio"`
}

// AddCeilings attaches f to the report and divides the report's figures
// by them: accepted requests by bare HTTP requests, accepted deliveries
// (rows Herald must commit, one per delivery at least) by bare store rows,
// delivered by bare publish+consume messages.
func (rep *Report) AddCeilings(f *ceiling.Figures) {
	c := &Ceilings{Figures: *f, Store: "sqlite"}
	storeRows := f.SQLiteRowsPerSecond
	if f.PostgresRowsPerSecond > 0 {
		c.Store, storeRows = "postgres", f.PostgresRowsPerSecond
	}
	ratio := func(name string, herald, ceiling float64) {
		r := Ratio{Name: name, Herald: herald, Ceiling: ceiling}
		if ceiling > 0 {
			r.Ratio = round(herald/ceiling, 3)
		}
		c.Ratios = append(c.Ratios, r)
	}
	if rep.Requests.Sent > 0 {
		ratio("requests accepted/s ÷ bare HTTP requests/s", rep.RequestsPerSecond, f.HTTPRequestsPerSecond)
		ratio("deliveries accepted/s ÷ bare "+c.Store+" rows/s", rep.RecipientsPerSecond, storeRows)
		if rep.Sink != nil {
			ratio("delivered/s ÷ bare publish+consume/s", rep.DeliveredPerSecond, f.PublishConsumePerSecond)
		}
	}
	rep.Ceilings = c
}

// WriteTable prints the ceilings and, after a run, the ratios.
func (c *Ceilings) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := func(format string, args ...any) { fmt.Fprintf(tw, format+"\n", args...) }
	p("ceilings (%gs each)\t", c.SecondsEach)
	p("bare HTTP\t%.0f requests/s\t(net/http answering a tiny JSON body, %d in flight)", c.HTTPRequestsPerSecond, c.HTTPConcurrency)
	p("bare publish+consume\t%.0f messages/s\t(embedded JetStream, async publish, one consumer acking)", c.PublishConsumePerSecond)
	p("bare SQLite insert\t%.0f rows/s\t(WAL, synchronous=FULL, %d rows per transaction)", c.SQLiteRowsPerSecond, c.BatchRows)
	if c.PostgresRowsPerSecond > 0 {
		p("bare Postgres insert\t%.0f rows/s\t(COPY, %d rows per transaction)", c.PostgresRowsPerSecond, c.BatchRows)
	}
	if len(c.Ratios) > 0 {
		p("")
		p("ratio\therald\tceiling\tshare")
		for _, r := range c.Ratios {
			p("%s\t%.1f\t%.1f\t%.1f%%", r.Name, r.Herald, r.Ceiling, 100*r.Ratio)
		}
	}
	return tw.Flush()
}
