package sqlite

// SetWALRestartBytes lowers the WAL size above which the checkpoint loop
// restarts the WAL, so that a test need not write 64 MiB.
func SetWALRestartBytes(s *Store, n int64) { s.walRestart.Store(n) }
