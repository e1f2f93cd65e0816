package engine

// Tests against a fake engine on loopback: an HTTP server that answers
// like dockerd 20.10 (API 1.41) for the few endpoints each test needs. They
// check what the SDK alone cannot be trusted with: version negotiation,
// error wrapping and classification, stream ends.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeEngine is an httptest server that answers /_ping with API 1.41 and
// routes versioned paths ("/v1.41/...") to handlers.
type fakeEngine struct {
	*httptest.Server
	mu       sync.Mutex
	handlers map[string]http.HandlerFunc // key: "METHOD /path" without version
	paths    []string                    // every request path seen
}

func newFakeEngine(t *testing.T) *fakeEngine {
	t.Helper()
	f := &fakeEngine{handlers: map[string]http.HandlerFunc{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeEngine) handle(method, path string, h http.HandlerFunc) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.handlers[method+" "+path] = h
}

func (f *fakeEngine) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.paths...)
}

func (f *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.paths = append(f.paths, r.URL.Path)
	f.mu.Unlock()
	w.Header().Set("Api-Version", "1.41")
	if r.URL.Path == "/_ping" {
		_, _ = w.Write([]byte("OK"))
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/v1.41")
	if !ok {
		writeJSONError(w, http.StatusBadRequest, "client version not negotiated: "+r.URL.Path)
		return
	}
	f.mu.Lock()
	h := f.handlers[r.Method+" "+p]
	f.mu.Unlock()
	if h == nil {
		writeJSONError(w, http.StatusNotFound, "page not found")
		return
	}
	h(w, r)
}

func writeJSONError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (f *fakeEngine) client(t *testing.T, opts Options) *Client {
	t.Helper()
	c, err := New("gfa1", "tcp://"+f.Listener.Addr().String(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestFakeNegotiatesAndClassifiesNotFound(t *testing.T) {
	f := newFakeEngine(t)
	f.handle("GET", "/containers/flicamera-gfa1/json", func(w http.ResponseWriter, _ *http.Request) {
		writeJSONError(w, http.StatusNotFound, "No such container: flicamera-gfa1")
	})
	f.handle("DELETE", "/containers/flicamera-gfa1", func(w http.ResponseWriter, _ *http.Request) {
		writeJSONError(w, http.StatusNotFound, "No such container: flicamera-gfa1")
	})
	f.handle("DELETE", "/volumes/data", func(w http.ResponseWriter, _ *http.Request) {
		writeJSONError(w, http.StatusNotFound, "get data: no such volume")
	})
	f.handle("DELETE", "/volumes/busy", func(w http.ResponseWriter, _ *http.Request) {
		writeJSONError(w, http.StatusConflict, "remove busy: volume is in use")
	})
	c := f.client(t, Options{})
	ctx := context.Background()

	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if v := c.APIVersion(); v != "1.41" {
		t.Errorf("APIVersion after Ping = %q, want 1.41", v)
	}
	_, err := c.InspectContainer(ctx, "flicamera-gfa1")
	if !IsNotFound(err) || IsUnreachable(err) {
		t.Errorf("InspectContainer of a missing container: %v (IsNotFound %v, IsUnreachable %v)", err, IsNotFound(err), IsUnreachable(err))
	}
	const wantMsg = "gfa1: inspect container flicamera-gfa1: Error response from daemon: No such container: flicamera-gfa1"
	if err == nil || err.Error() != wantMsg {
		t.Errorf("error = %q, want %q", err, wantMsg)
	}
	if err := c.RemoveContainer(ctx, "flicamera-gfa1", true); err != nil {
		t.Errorf("RemoveContainer of a missing container: %v, want nil", err)
	}
	if err := c.RemoveVolume(ctx, "data", false); err != nil {
		t.Errorf("RemoveVolume of a missing volume: %v, want nil", err)
	}
	if err := c.RemoveVolume(ctx, "busy", false); !IsConflict(err) {
		t.Errorf("RemoveVolume of a busy volume: %v, want a conflict", err)
	}
	for _, p := range f.seen() {
		if p != "/_ping" && !strings.HasPrefix(p, "/v1.41/") {
			t.Errorf("request to %s, want every call on /v1.41", p)
		}
	}
}

func TestNegotiatesWithoutExplicitPing(t *testing.T) {
	f := newFakeEngine(t)
	f.handle("GET", "/volumes/data", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"Name":"data","Driver":"local","Options":{"type":"none"},"Labels":null,"Mountpoint":"/x"}`))
	})
	c := f.client(t, Options{})
	v, err := c.InspectVolume(context.Background(), "data")
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "data" || v.Driver != "local" || v.Options["type"] != "none" || v.Labels == nil {
		t.Errorf("InspectVolume = %+v", v)
	}
}

func TestUnreachable(t *testing.T) {
	// A port nothing listens on: take one and close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refusedAddr := l.Addr().String()
	_ = l.Close()

	tests := []struct {
		name, address string
	}{
		{"refused", "tcp://" + refusedAddr},
		{"missing socket", "unix://" + filepath.Join(t.TempDir(), "docker.sock")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New("gfa1", tt.address, Options{Timeout: 20 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = c.Ping(context.Background())
			if !IsUnreachable(err) {
				t.Errorf("Ping: %v, want unreachable", err)
			}
			if err == nil || !strings.HasPrefix(err.Error(), "gfa1: ping: ") {
				t.Errorf("error %q does not start with the node and operation", err)
			}
			_, err = c.ListContainers(context.Background(), map[string]string{"a": "b"})
			if !IsUnreachable(err) || IsNotFound(err) {
				t.Errorf("ListContainers: %v, want unreachable", err)
			}
		})
	}
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return "tcp://" + l.Addr().String()
}

func TestTimeout(t *testing.T) {
	addr := silentServer(t)
	c, err := New("gfa1", addr, Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	err = c.Ping(context.Background())
	var te *TimeoutError
	if !errors.As(err, &te) || te.After != 300*time.Millisecond || !IsUnreachable(err) {
		t.Errorf("Ping of a silent engine: %v, want a 300ms TimeoutError, unreachable", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Ping of a silent engine: %v does not wrap context.DeadlineExceeded", err)
	}

	// The caller's own deadline is not the engine's fault.
	c2, err := New("gfa1", addr, Options{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = c2.Ping(ctx)
	if err == nil || errors.As(err, &te) || IsUnreachable(err) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Ping under the caller's deadline: %v, want the caller's deadline, not unreachable", err)
	}

	// An event stream that cannot start within the per-call timeout.
	evs, errc := c.Events(context.Background())
	select {
	case err := <-errc:
		if !IsUnreachable(err) || !strings.HasPrefix(err.Error(), "gfa1: events: ") {
			t.Errorf("Events of a silent engine: %v, want unreachable", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Events of a silent engine never ended")
	}
	if _, ok := <-evs; ok {
		t.Error("event channel not closed after the error")
	}
}

func TestFakeEventsStreamEnds(t *testing.T) {
	f := newFakeEngine(t)
	queries := make(chan string, 1)
	f.handle("GET", "/events", func(w http.ResponseWriter, r *http.Request) {
		select {
		case queries <- r.URL.Query().Get("filters"):
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		enc := json.NewEncoder(w)
		_ = enc.Encode(map[string]any{"Type": "network", "Action": "connect", "Actor": map[string]any{"ID": "n"}, "time": 1})
		_ = enc.Encode(map[string]any{
			"status": "die", "id": "abc", "from": "img",
			"Type": "container", "Action": "die",
			"Actor": map[string]any{"ID": "abc", "Attributes": map[string]string{"name": "flicamera-gfa1", "exitCode": "1", "k": "v"}},
			"time":  1700000000, "timeNano": 1700000000123456789,
		})
		// Returning ends the response: the engine went away.
	})
	c := f.client(t, Options{})
	evs, errc := c.Events(context.Background())

	var got []Event
	for ev := range evs {
		got = append(got, ev)
	}
	err := <-errc
	if len(got) != 1 || got[0].Name != "flicamera-gfa1" || got[0].Action != "die" || got[0].Labels["k"] != "v" ||
		!got[0].Time.Equal(time.Unix(0, 1700000000123456789)) {
		t.Errorf("events = %+v, want the one container die", got)
	}
	if !errors.Is(err, ErrStreamEnded) || !strings.HasPrefix(err.Error(), "gfa1: events: ") {
		t.Errorf("stream end error = %v, want ErrStreamEnded", err)
	}
	if _, ok := <-errc; ok {
		t.Error("error channel not closed after its one error")
	}
	query := <-queries
	var filters map[string]map[string]bool
	if err := json.Unmarshal([]byte(query), &filters); err != nil {
		t.Fatalf("filters %q: %v", query, err)
	}
	want := map[string]bool{"container": true, "volume": true, "image": true}
	if fmt.Sprint(filters["type"]) != fmt.Sprint(want) || len(filters) != 1 {
		t.Errorf("filters = %v, want type in %v", filters, want)
	}
}

func TestFakeEventsCancel(t *testing.T) {
	f := newFakeEngine(t)
	f.handle("GET", "/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	c := f.client(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	evs, errc := c.Events(ctx)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) || IsUnreachable(err) {
			t.Errorf("error after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no error after cancel")
	}
	if _, ok := <-evs; ok {
		t.Error("event channel not closed")
	}
}

func TestFakePullStreamError(t *testing.T) {
	f := newFakeEngine(t)
	f.handle("POST", "/images/create", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fromImage") != "10.213.0.1:5000/sdss/flicamera" || r.URL.Query().Get("tag") != "latest" {
			writeJSONError(w, http.StatusBadRequest, "unexpected query "+r.URL.RawQuery)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"Pulling from sdss/flicamera","id":"latest"}` + "\n" +
			`{"errorDetail":{"message":"manifest for 10.213.0.1:5000/sdss/flicamera:latest not found"},"error":"manifest for 10.213.0.1:5000/sdss/flicamera:latest not found"}` + "\n"))
	})
	c := f.client(t, Options{})
	err := c.PullImage(context.Background(), "10.213.0.1:5000/sdss/flicamera", PullOptions{})
	var pe *PullError
	if !errors.As(err, &pe) {
		t.Fatalf("PullImage: %v, want a PullError", err)
	}
	const want = "gfa1: pull image 10.213.0.1:5000/sdss/flicamera: manifest for 10.213.0.1:5000/sdss/flicamera:latest not found"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if err := c.PullImage(context.Background(), "Not A Valid Ref", PullOptions{}); err == nil {
		t.Error("PullImage of an invalid reference succeeded")
	}
}

// A pull that keeps making progress finishes however long it takes in
// all; one that goes silent ends after the stall timeout, with that cause.
func TestFakePullStallTimeout(t *testing.T) {
	const stall = 300 * time.Millisecond
	f := newFakeEngine(t)
	f.handle("POST", "/images/create", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fl := w.(http.Flusher)
		// Five progress messages, each 150 ms apart: 750 ms in all, more
		// than twice the stall timeout, but never silent for that long.
		for i := 1; i <= 5; i++ {
			fmt.Fprintf(w, `{"status":"Downloading","id":"layer1","progressDetail":{"current":%d,"total":500}}`+"\n", i*100)
			fl.Flush()
			time.Sleep(stall / 2)
		}
		if r.URL.Query().Get("tag") == "silent" {
			<-r.Context().Done()
			return
		}
		_, _ = w.Write([]byte(`{"status":"Status: Downloaded newer image"}` + "\n"))
	})
	c := f.client(t, Options{})
	var seen []PullProgress
	err := c.PullImage(context.Background(), "10.213.0.1:5000/sdss/flicamera:slow", PullOptions{
		StallTimeout: stall, Progress: func(p PullProgress) { seen = append(seen, p) },
	})
	if err != nil {
		t.Fatalf("slow pull: %v", err)
	}
	if len(seen) < 5 || seen[4].Current != 500 || seen[4].Total != 500 {
		t.Errorf("progress = %+v, want 5 reports ending at 500/500", seen)
	}
	start := time.Now()
	err = c.PullImage(context.Background(), "10.213.0.1:5000/sdss/flicamera:silent", PullOptions{StallTimeout: stall})
	var se *StallError
	if !errors.As(err, &se) {
		t.Fatalf("silent pull: %v, want a StallError", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("silent pull ended after %s", took)
	}
}

func TestFakePullStreams(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		wantStatus string
		wantErr    string
		wantCode   int
	}{
		{
			name: "success",
			in: `{"status":"Pulling from fliswarm/sleeper","id":"latest"}
{"status":"Pulling fs layer","progressDetail":{},"id":"a1b2"}
{"status":"Downloading","progressDetail":{"current":10,"total":20},"progress":"[====>   ]","id":"a1b2"}
{"status":"Digest: sha256:abc"}
{"status":"Status: Downloaded newer image for 10.213.0.1:5000/fliswarm/sleeper:latest"}
`,
			wantStatus: "Status: Downloaded newer image for 10.213.0.1:5000/fliswarm/sleeper:latest",
		},
		{name: "empty", in: ""},
		{
			name:    "error detail and error",
			in:      `{"status":"Pulling"}` + "\n" + `{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}`,
			wantErr: "manifest unknown", wantStatus: "Pulling",
		},
		{
			name:    "error detail with code",
			in:      `{"errorDetail":{"code":404,"message":"not found: manifest unknown"}}`,
			wantErr: "not found: manifest unknown", wantCode: 404,
		},
		{name: "empty error detail", in: `{"errorDetail":{}}`, wantErr: "pull failed (the engine gave no message)"},
		{name: "cut short", in: `{"status":"Downloading","id":"a1`, wantErr: "reading pull progress: unexpected EOF"},
		{name: "not json", in: `<html>`, wantErr: "reading pull progress: invalid character '<' looking for beginning of value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeEngine(t)
			f.handle("POST", "/images/create", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(tt.in))
			})
			var status string
			err := f.client(t, Options{}).PullImage(context.Background(), "10.213.0.1:5000/fliswarm/sleeper", PullOptions{
				Progress: func(p PullProgress) { status = p.Status },
			})
			if status != tt.wantStatus {
				t.Errorf("status = %q, want %q", status, tt.wantStatus)
			}
			const prefix = "gfa1: pull image 10.213.0.1:5000/fliswarm/sleeper: "
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("error %v, want none", err)
				}
				return
			}
			if err == nil || err.Error() != prefix+tt.wantErr {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			var pe *PullError
			if errors.As(err, &pe) && pe.Code != tt.wantCode {
				t.Errorf("code %d, want %d", pe.Code, tt.wantCode)
			}
		})
	}
}

// RegistryDigest reads the descriptor's digest from the engine's
// distribution endpoint, sending the registry credentials, and keeps the
// engine's error class (an unknown tag is NotFound).
func TestFakeRegistryDigest(t *testing.T) {
	f := newFakeEngine(t)
	const digest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	var gotAuth string
	f.handle("GET", "/distribution/10.213.0.1:5000/sdss/flicamera:latest/json", func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("X-Registry-Auth")
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"Descriptor":{"mediaType":"application/vnd.oci.image.index.v1+json","digest":%q,"size":1234},"Platforms":[{"architecture":"amd64","os":"linux"}]}`, digest)
	})
	f.handle("GET", "/distribution/10.213.0.1:5000/sdss/flicamera:gone/json", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusNotFound, "manifest unknown")
	})
	f.handle("GET", "/distribution/10.213.0.1:5000/sdss/flicamera:down/json", func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusInternalServerError, `Get "http://10.213.0.1:5000/v2/": dial tcp 10.213.0.1:5000: connect: connection refused`)
	})
	c := f.client(t, Options{RegistryAuth: func() (string, error) { return "c2VjcmV0", nil }})
	got, err := c.RegistryDigest(context.Background(), "10.213.0.1:5000/sdss/flicamera:latest")
	if err != nil || got != digest {
		t.Fatalf("RegistryDigest = %q, %v; want %s", got, err, digest)
	}
	if gotAuth != "c2VjcmV0" {
		t.Errorf("X-Registry-Auth = %q, want the client's credentials", gotAuth)
	}
	if _, err := c.RegistryDigest(context.Background(), "10.213.0.1:5000/sdss/flicamera:gone"); !IsNotFound(err) {
		t.Errorf("unknown tag: %v, want NotFound", err)
	}
	_, err = c.RegistryDigest(context.Background(), "10.213.0.1:5000/sdss/flicamera:down")
	if err == nil || !strings.Contains(err.Error(), "gfa1: registry digest of 10.213.0.1:5000/sdss/flicamera:down: ") ||
		!strings.Contains(err.Error(), "connection refused") {
		t.Errorf("registry down: %v, want the engine's error wrapped with node and op", err)
	}
}
