package logging

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFileGetsStructuredJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "fliswarm.log")
	log, flush, err := New(Options{File: path})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("reconcile", "node", "gfa1", "action", "create-container", "reason", "no container")
	log.V(1).Info("debug line that info level drops")
	flush()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 1 {
		t.Fatalf("want 1 line at info level, got %d:\n%s", len(lines), b)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	for k, v := range map[string]string{"msg": "reconcile", "node": "gfa1", "action": "create-container", "reason": "no container"} {
		if rec[k] != v {
			t.Errorf("%s = %v, want %q", k, rec[k], v)
		}
	}
	if _, ok := rec["time"]; !ok {
		t.Error("no time field")
	}
}

func TestVerboseKeepsDebugAndNoSinkDiscards(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.log")
	log, flush, err := New(Options{File: path, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	log.V(1).Info("debug")
	flush()
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), `"msg":"debug"`) {
		t.Errorf("verbose logger dropped a debug line: %s", b)
	}
	log, flush, err = New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("goes nowhere")
	flush()
}

func TestUnwritableFileIsAnError(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := New(Options{File: filepath.Join(f, "x.log")}); err == nil {
		t.Error("a log path under a regular file was accepted")
	}
	if FileIn("") != "" || FileIn("/var/log/fs") != "/var/log/fs/fliswarm.log" {
		t.Error("FileIn")
	}
}
