package linesession

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

func (s *Session[R]) readLoop(r io.Reader) error {
	limit := s.cfg.MaxLineBytes
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 4096 {
		br = bufio.NewReaderSize(r, min(limit+1, 64<<10))
	}
	var buf []byte
	skipping, skipped := false, 0
	var prefix []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			if !skipping && len(buf)+len(chunk) > limit {
				skipping, skipped = true, len(buf)
				prefix = append(prefix[:0], buf[:min(len(buf), 256)]...)
				if len(prefix) < 256 {
					prefix = append(prefix, chunk[:min(len(chunk), 256-len(prefix))]...)
				}
				buf = buf[:0]
			}
			if skipping {
				skipped += len(chunk)
			} else {
				buf = append(buf, chunk...)
			}
			continue
		}
		if err != nil {
			return err // a last line without its newline is dropped
		}
		s.active.Store(true)
		if skipping {
			skipping = false
			s.handleLong(prefix, skipped+len(trimEOL(chunk)))
			continue
		}
		line := chunk
		if len(buf) > 0 {
			buf = append(buf, chunk...)
			line = buf
		}
		line = trimEOL(line)
		if len(line) > limit {
			s.handleLong(line[:min(256, len(line))], len(line))
		} else if len(bytes.TrimSpace(line)) > 0 {
			s.handle(line)
		}
		buf = buf[:0]
		if cap(buf) > 64<<10 {
			buf = nil // do not keep a huge buffer after one big line
		}
		if s.Err() != nil {
			return s.cause
		}
	}
}

// trimEOL removes the line break (a reply may end in a blank: opscore's
// `1 13 : ` needs it).
func trimEOL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// handleLong routes what DecodeLong makes of an over-long line.
func (s *Session[R]) handleLong(prefix []byte, length int) {
	if s.cfg.DecodeLong == nil {
		return
	}
	r, id, terminal, err := s.cfg.DecodeLong(prefix, length)
	if err == nil {
		s.route(r, id, terminal)
	}
}

// handle decodes one line and routes it.
func (s *Session[R]) handle(line []byte) {
	r, id, terminal, err := s.cfg.Decode(line)
	if err != nil {
		if !errors.Is(err, ErrSkip) && s.cfg.OnBadLine != nil {
			s.cfg.OnBadLine(line, err)
		}
		return
	}
	if s.cfg.Check != nil {
		if err := s.cfg.Check(r); err != nil {
			s.Close(err)
			return
		}
	}
	s.route(r, id, terminal)
}

// route gives a reply to its command, or to OnUnsolicited.
func (s *Session[R]) route(r R, id int, terminal bool) {
	var c *Call[R]
	if id != 0 {
		s.mu.Lock()
		c = s.pending[id]
		if c != nil && terminal {
			delete(s.pending, id) // the id is free again
		}
		s.mu.Unlock()
	}
	if c == nil {
		if s.cfg.OnUnsolicited != nil {
			s.cfg.OnUnsolicited(r)
		}
		return
	}
	if !c.receive(r, terminal) {
		s.discarded.Add(1)
		if s.cfg.OnDiscard != nil {
			s.cfg.OnDiscard(r)
		}
	}
}
