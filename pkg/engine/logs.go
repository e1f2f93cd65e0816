package engine

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// LogOptions select what StreamLogs reads of a container's output.
type LogOptions struct {
	// Tail is how many of the last lines to start with; negative: all.
	Tail int
	// Since and Until bound the lines by the time the engine received
	// them; zero: unbounded.
	Since, Until time.Time
	// Follow keeps the stream open and sends new lines as the container
	// writes them, until ctx ends or the container stops.
	Follow bool
}

// LogLine is one line a container wrote.
type LogLine struct {
	// Time is when the engine received the line.
	Time time.Time `json:"time"`
	// Stream is "stdout" or "stderr".
	Stream string `json:"stream"`
	// Text is the line without its line ending.
	Text string `json:"text"`
}

// maxLogLine bounds one line: a longer one is cut into pieces this long.
const maxLogLine = 16 << 10

// StreamLogs reads the output of the container id (which must run
// without a TTY, as the camera does: the engine then multiplexes stdout
// and stderr, which stdcopy separates) and calls fn with each line, in
// the order the engine stored them. The engine gets the per-call timeout
// to answer the request; the stream then runs until it ends (the last
// line read; with Follow, the container stopped), ctx ends (nil is
// returned) or fn returns an error (returned as it is).
func (c *Client) StreamLogs(ctx context.Context, id string, opts LogOptions, fn func(LogLine) error) error {
	op := "logs of container " + shortID(id)
	streamCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	q := client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Timestamps: true, Follow: opts.Follow, Tail: "all",
	}
	if opts.Tail >= 0 {
		q.Tail = strconv.Itoa(opts.Tail)
	}
	if !opts.Since.IsZero() {
		q.Since = opts.Since.UTC().Format(time.RFC3339Nano)
	}
	if !opts.Until.IsZero() {
		q.Until = opts.Until.UTC().Format(time.RFC3339Nano)
	}
	var (
		mu       sync.Mutex
		answered bool
		timedOut bool
	)
	timer := time.AfterFunc(c.timeout, func() {
		mu.Lock()
		defer mu.Unlock()
		if !answered {
			timedOut = true
			cancel()
		}
	})
	rc, err := c.api.ContainerLogs(streamCtx, id, q)
	mu.Lock()
	answered = true
	late := timedOut
	mu.Unlock()
	timer.Stop()
	c.log.V(1).Info("engine call", "op", op, "follow", opts.Follow, "error", err)
	if err != nil {
		if late && ctx.Err() == nil {
			err = &TimeoutError{After: c.timeout, Err: err}
		}
		return fmt.Errorf("%s: %s: %w", c.node, op, err)
	}
	defer rc.Close()

	var fnErr error
	emit := func(l LogLine) error {
		if fnErr = fn(l); fnErr != nil {
			return fnErr
		}
		return nil
	}
	stdout := &lineWriter{stream: "stdout", emit: emit}
	stderr := &lineWriter{stream: "stderr", emit: emit}
	_, err = stdcopy.StdCopy(stdout, stderr, rc)
	if fnErr != nil {
		return fnErr
	}
	if err == nil {
		// A last line without its newline.
		if err = stdout.flush(); err == nil {
			err = stderr.flush()
		}
		return err
	}
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("%s: %s: %w: %w", c.node, op, ErrStreamEnded, err)
}

// lineWriter cuts what stdcopy writes for one stream into lines, each
// starting with the timestamp the engine prefixed it with.
type lineWriter struct {
	stream string
	emit   func(LogLine) error
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) >= maxLogLine {
				i = maxLogLine
			} else {
				return len(p), nil
			}
		}
		line := w.buf[:i]
		if i < len(w.buf) && w.buf[i] == '\n' {
			i++
		}
		if err := w.emit(parseLogLine(w.stream, line)); err != nil {
			return 0, err
		}
		w.buf = w.buf[i:]
	}
}

func (w *lineWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	line := w.buf
	w.buf = nil
	return w.emit(parseLogLine(w.stream, line))
}

// parseLogLine splits the engine's "RFC3339Nano-timestamp text" form.
func parseLogLine(stream string, b []byte) LogLine {
	b = bytes.TrimRight(b, "\r")
	l := LogLine{Stream: stream, Text: string(b)}
	if ts, rest, ok := bytes.Cut(b, []byte{' '}); ok {
		if t, err := time.Parse(time.RFC3339Nano, string(ts)); err == nil {
			l.Time, l.Text = t, string(rest)
		}
	} else if t, err := time.Parse(time.RFC3339Nano, string(b)); err == nil {
		l.Time, l.Text = t, "" // an empty line
	}
	return l
}
