//go:build !unix

package journal

import (
	"errors"
	"os"
)

// lockDir is not implemented here: without a lock the journal is not used.
func lockDir(string) (*os.File, error) {
	return nil, errors.New("journal: directory locking is supported on unix systems only")
}

func unlockDir(*os.File) error { return nil }
