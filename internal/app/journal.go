package app

import (
	"context"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/heraldhq/herald/internal/deliver"
	"github.com/heraldhq/herald/internal/journal"
)

// journalDir is where the worker's outcome journal lives, "" when it is off.
func (c *Config) journalDir() string {
	switch c.JournalDir {
	case "off":
		return ""
	case "":
		if c.DataDir == "" {
			return ""
		}
		return filepath.Join(c.DataDir, "journal")
	}
	return c.JournalDir
}

// openJournal opens the outcome journal, or returns nil (with a warning)
// when it is off or cannot be used: the workers then run as without one,
// and a crash between a provider's answer and its commit means a flagged
// possible duplicate.
func (a *App) openJournal() *journal.Journal {
	dir := a.cfg.journalDir()
	if dir == "" {
		a.logger.Warn("the outcome journal is off: a crash of this process after a provider answered and before the outcome was committed sends that delivery again (flagged possible_duplicate)")
		return nil
	}
	j, err := journal.Open(dir, journal.Options{Logger: a.logger})
	if err != nil {
		a.logger.Warn("the outcome journal cannot be used; running without it (a crash between a provider's answer and its commit sends again, flagged possible_duplicate)",
			"dir", dir, "err", err)
		return nil
	}
	return j
}

// recoverJournal commits the outcomes a crashed predecessor recorded but
// may not have committed, before any consumer starts. A record the log has
// moved past is dropped. When the log cannot be read or written the records
// are kept for the next start and the process starts all the same: those
// deliveries are then taken over once their claim runs out, as without a
// journal.
func (a *App) recoverJournal(ctx context.Context, w *deliver.Worker) error {
	recovered := prometheus.NewCounter(prometheus.CounterOpts{Name: "herald_journal_recovered_outcomes_total",
		Help: "Provider outcomes a crashed process had recorded in its journal but not committed, committed at start from the journal."})
	if err := a.reg.Register(recovered); err != nil {
		return err
	}
	if a.journal == nil {
		return nil
	}
	applied := 0
	n, err := a.journal.Recover(func(rec []byte) error {
		ok, err := w.Recover(ctx, rec)
		if ok {
			applied++
		}
		return err
	})
	recovered.Add(float64(applied))
	if err != nil {
		a.logger.Warn("recovering outcomes from the journal; the rest is kept for the next start", "dir", a.journal.Dir(),
			"records", n, "recovered", applied, "err", err)
		return nil
	}
	if n > 0 {
		a.logger.Info("recovered outcomes from the journal", "dir", a.journal.Dir(), "records", n, "recovered", applied)
	}
	return nil
}
