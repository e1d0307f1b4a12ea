// Package journal is an append-only, per-process file of records written
// the moment something happens that must survive a crash of the process
// before it reaches the notification log: a provider's answer, while the
// outcome waits for the group commit.
//
// Each record is one write(2) and no fsync. What write(2) handed to the
// kernel survives the process (kill -9, an out-of-memory kill, a panic);
// a crash of the machine may lose it, and then nothing is worse than
// without the journal. Records are framed with their length and a CRC-32C,
// so a record torn by a crash mid-write is detected and ignored, with
// everything after it.
//
// Records go to numbered segment files; a segment is closed at a size and
// deleted once every record in it is Done. At start, Recover hands over
// the records the previous process left and deletes their segments. A lock
// file keeps a second process out of the directory.
package journal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Options tune a Journal.
type Options struct {
	// SegmentBytes is the size at which a segment is closed and the next
	// one started (default 1 MiB).
	SegmentBytes int64
	Logger       *slog.Logger
}

// ErrLocked is returned by Open when another process holds the directory.
var ErrLocked = errors.New("journal: the directory is in use by another process")

// MaxRecord is the largest record Append takes.
const MaxRecord = 1 << 20

const (
	headerLen = 8 // length (uint32 LE) + CRC-32C of the payload (uint32 LE)
	suffix    = ".jnl"
	lockName  = "LOCK"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Journal appends records to the current segment. Its methods are safe for
// concurrent use.
type Journal struct {
	dir  string
	o    Options
	lock *os.File

	mu       sync.Mutex
	previous []uint64        // segments left by an earlier process, for Recover
	cur      *os.File        // the segment being written
	curSeq   uint64          // its number
	curSize  int64           // its size
	pending  map[uint64]int  // records not yet Done, by segment
	closed   map[uint64]bool // segments no longer written
	buf      []byte
}

// Open locks dir (creating it) and starts a new segment after the ones an
// earlier process left, which Recover then reads. It returns ErrLocked when
// another process holds dir.
func Open(dir string, o Options) (*Journal, error) {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: create %s: %w", dir, err)
	}
	lock, err := lockDir(filepath.Join(dir, lockName))
	if err != nil {
		return nil, err
	}
	j := &Journal{dir: dir, o: o, lock: lock, pending: map[uint64]int{}, closed: map[uint64]bool{}}
	if j.previous, err = segments(dir); err != nil {
		_ = unlockDir(lock)
		return nil, err
	}
	next := uint64(1)
	if n := len(j.previous); n > 0 {
		next = j.previous[n-1] + 1
	}
	if err := j.startSegment(next); err != nil {
		_ = unlockDir(lock)
		return nil, err
	}
	return j, nil
}

// Dir is the journal's directory.
func (j *Journal) Dir() string { return j.dir }

func (j *Journal) segmentPath(seq uint64) string {
	return filepath.Join(j.dir, fmt.Sprintf("%020d%s", seq, suffix))
}

// startSegment opens segment seq for writing; j.mu is held or j is new.
func (j *Journal) startSegment(seq uint64) error {
	f, err := os.OpenFile(j.segmentPath(seq), os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("journal: start segment %d: %w", seq, err)
	}
	j.cur, j.curSeq, j.curSize = f, seq, 0
	return nil
}

// segments lists the numbers of the segment files in dir, in order.
func segments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("journal: list %s: %w", dir, err)
	}
	var out []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), suffix)
		if !ok || e.IsDir() {
			continue
		}
		if n, err := strconv.ParseUint(name, 10, 64); err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Append writes rec as one record with a single write(2) and returns the
// function that marks it Done; Done may be called once, from any goroutine.
func (j *Journal) Append(rec []byte) (done func(), err error) {
	if len(rec) > MaxRecord {
		return nil, fmt.Errorf("journal: record of %d bytes, at most %d", len(rec), MaxRecord)
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cur == nil {
		return nil, errors.New("journal: closed")
	}
	size := int64(headerLen + len(rec))
	if j.curSize > 0 && j.curSize+size > j.o.SegmentBytes {
		if err := j.rotate(); err != nil {
			return nil, err
		}
	}
	j.buf = binary.LittleEndian.AppendUint32(j.buf[:0], uint32(len(rec)))
	j.buf = binary.LittleEndian.AppendUint32(j.buf, crc32.Checksum(rec, castagnoli))
	j.buf = append(j.buf, rec...)
	n, err := j.cur.Write(j.buf)
	j.curSize += int64(n)
	if err != nil {
		// A partial record is a torn one: replay stops there. Start afresh
		// so that later records are not hidden behind it.
		if rerr := j.rotate(); rerr != nil {
			j.o.Logger.Warn("journal: starting a new segment after a failed write", "err", rerr)
		}
		return nil, fmt.Errorf("journal: append: %w", err)
	}
	seq := j.curSeq
	j.pending[seq]++
	var once sync.Once
	return func() { once.Do(func() { j.done(seq) }) }, nil
}

// rotate closes the current segment and starts the next; j.mu is held.
func (j *Journal) rotate() error {
	old := j.curSeq
	if err := j.cur.Close(); err != nil {
		j.o.Logger.Warn("journal: closing a segment", "segment", old, "err", err)
	}
	j.cur = nil
	j.closed[old] = true
	j.removeIfDone(old)
	return j.startSegment(old + 1)
}

func (j *Journal) done(seq uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.pending[seq]--
	j.removeIfDone(seq)
}

// removeIfDone deletes a closed segment none of whose records is pending; j.mu is held.
func (j *Journal) removeIfDone(seq uint64) {
	if !j.closed[seq] || j.pending[seq] > 0 {
		return
	}
	delete(j.closed, seq)
	delete(j.pending, seq)
	if err := os.Remove(j.segmentPath(seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
		j.o.Logger.Warn("journal: deleting a finished segment", "segment", seq, "err", err)
	}
}

// Recover calls fn with every intact record of the segments an earlier
// process left, oldest first, then deletes those segments. A torn or
// corrupt record ends its segment's replay (it is logged). When fn returns
// an error Recover stops and keeps the segments, so that the next start
// tries them again. It returns how many records fn took.
func (j *Journal) Recover(fn func(rec []byte) error) (int, error) {
	j.mu.Lock()
	prev := j.previous
	j.mu.Unlock()
	n := 0
	for _, seq := range prev {
		data, err := os.ReadFile(j.segmentPath(seq))
		if err != nil {
			return n, fmt.Errorf("journal: read segment %d: %w", seq, err)
		}
		recs, torn := Decode(data)
		if torn > 0 {
			j.o.Logger.Warn("journal: ignoring a torn or corrupt tail", "segment", seq, "bytes", torn)
		}
		for _, rec := range recs {
			if err := fn(rec); err != nil {
				return n, err
			}
			n++
		}
	}
	for _, seq := range prev {
		if err := os.Remove(j.segmentPath(seq)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return n, fmt.Errorf("journal: delete recovered segment %d: %w", seq, err)
		}
	}
	j.mu.Lock()
	j.previous = nil
	j.mu.Unlock()
	return n, nil
}

// Decode splits a segment's bytes into its records, stopping at the first
// record that is incomplete or fails its CRC; torn is how many bytes were
// left unread from there.
func Decode(data []byte) (recs [][]byte, torn int) {
	for len(data) > 0 {
		if len(data) < headerLen {
			return recs, len(data)
		}
		n := binary.LittleEndian.Uint32(data)
		sum := binary.LittleEndian.Uint32(data[4:])
		if n > MaxRecord || int(n) > len(data)-headerLen {
			return recs, len(data)
		}
		rec := data[headerLen : headerLen+int(n)]
		if crc32.Checksum(rec, castagnoli) != sum {
			return recs, len(data)
		}
		recs = append(recs, rec)
		data = data[headerLen+int(n):]
	}
	return recs, 0
}

// Close closes the current segment, deletes it when none of its records is
// pending, and releases the directory. Records still pending stay on disk
// for the next start's Recover. Safe to call twice.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.cur == nil {
		return nil
	}
	err := j.cur.Close()
	j.cur = nil
	j.closed[j.curSeq] = true
	j.removeIfDone(j.curSeq)
	return errors.Join(err, unlockDir(j.lock))
}

var _ io.Closer = (*Journal)(nil)
