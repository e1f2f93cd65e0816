package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/events"
)

// serveEvents answers GET /v1/events?node=…&since=…&follow=1 with JSON
// lines (v1.EventsLine), each flushed as it is written.
func serveEvents(w http.ResponseWriter, r *http.Request, b Backend) {
	q := r.URL.Query()
	req := v1.EventsRequest{Nodes: q["node"], Follow: q.Get("follow") == "1"}
	if v := q.Get("since"); v != "" {
		since, err := events.ParseSince(v, time.Now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		req.Since = since
	}
	past, f, err := b.Events(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	}
	if f != nil {
		defer f.Close()
	}
	send := jsonLines(w)
	for _, ev := range past {
		if send(v1.EventsLine{Event: ev}) != nil {
			return
		}
	}
	if f == nil {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-f.C():
			if !ok {
				if f.Lost() {
					_ = send(v1.EventsLine{Error: "this follower fell too far behind and missed events: run the command again"})
				}
				return
			}
			if send(v1.EventsLine{Event: ev}) != nil {
				return
			}
		}
	}
}

// Events asks the daemon for events and calls each with every one, in
// order, until the stream ends (after the events kept, unless it
// follows), ctx ends (nil is returned) or each returns an error.
func (c *Client) Events(ctx context.Context, req v1.EventsRequest, each func(v1.Event) error) error {
	q := url.Values{}
	for _, n := range req.Nodes {
		q.Add("node", n)
	}
	if !req.Since.IsZero() {
		q.Set("since", req.Since.UTC().Format(time.RFC3339Nano))
	}
	if req.Follow {
		q.Set("follow", "1")
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://fliswarm/v1/events?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s", strings.TrimSpace(string(msg)))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var l v1.EventsLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("control socket: a bad events line: %w", err)
		}
		if l.Error != "" {
			return errors.New(l.Error)
		}
		if err := each(l.Event); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if req.Follow {
		return errors.New("the daemon ended the stream (it stopped?)")
	}
	return nil
}
