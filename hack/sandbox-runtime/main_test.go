package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSubcommand(t *testing.T) {
	tests := []struct {
		args     []string
		wantSub  string
		wantRest []string
	}{
		{[]string{"create", "--bundle", "/b", "id"}, "create", []string{"--bundle", "/b", "id"}},
		{[]string{"--root", "/run/x", "--log", "/l.json", "--log-format", "json", "create", "-b", "/b", "id"},
			"create", []string{"-b", "/b", "id"}},
		{[]string{"--root=/run/x", "--debug", "--systemd-cgroup", "run", "id"}, "run", []string{"id"}},
		{[]string{"--root", "create", "delete", "id"}, "delete", []string{"id"}}, // "create" is --root's value
		{[]string{"--version"}, "", nil},
		{nil, "", nil},
	}
	for _, tt := range tests {
		sub, rest := subcommand(tt.args)
		if sub != tt.wantSub || !slices.Equal(rest, tt.wantRest) {
			t.Errorf("subcommand(%q) = %q, %q; want %q, %q", tt.args, sub, rest, tt.wantSub, tt.wantRest)
		}
	}
}

func TestFlagValue(t *testing.T) {
	tests := []struct {
		args   []string
		want   string
		wantOK bool
	}{
		{[]string{"--bundle", "/a", "id"}, "/a", true},
		{[]string{"-b", "/a", "id"}, "/a", true},
		{[]string{"--bundle=/a", "id"}, "/a", true},
		{[]string{"-b=/a", "id"}, "/a", true},
		{[]string{"--pid-file", "/p", "id"}, "", false},
		{[]string{"id", "--bundle"}, "", false}, // no value
		{[]string{"--", "--bundle", "/a"}, "", false},
	}
	for _, tt := range tests {
		got, ok := flagValue(tt.args, "--bundle", "-b")
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("flagValue(%q) = %q, %v; want %q, %v", tt.args, got, ok, tt.want, tt.wantOK)
		}
	}
}

const spec = `{"ociVersion":"1.0.2","process":{"user":{"uid":0,"gid":0},"args":["/flicamera-sim"],
"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_RESOURCE","CAP_NET_RAW"],"effective":["CAP_SYS_RESOURCE"],
"inheritable":["CAP_CHOWN"],"permitted":["CAP_SYS_RESOURCE","CAP_CHOWN"]}},
"linux":{"resources":{"memory":{"limit":6442450944},"cpu":{"quota":350000,"period":100000}}}}`

func TestRewriteBundle(t *testing.T) {
	for _, flag := range []string{"--bundle", "-b"} {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.json")
		if err := os.WriteFile(path, []byte(spec), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := rewrite([]string{"--root", "/run/r", "create", flag, dir, "--pid-file", "/p", "id"}); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(raw), "CAP_SYS_RESOURCE") {
			t.Errorf("%s: CAP_SYS_RESOURCE still present: %s", flag, raw)
		}
		// Other capabilities and large numbers survive unchanged.
		if !strings.Contains(string(raw), `"bounding":["CAP_CHOWN","CAP_NET_RAW"]`) {
			t.Errorf("%s: bounding set changed: %s", flag, raw)
		}
		if !strings.Contains(string(raw), `"limit":6442450944`) {
			t.Errorf("%s: memory limit changed: %s", flag, raw)
		}
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode changed: %v %v", flag, st.Mode(), err)
		}
	}
}

func TestRewriteExecProcess(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "process.json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(spec), &doc); err != nil {
		t.Fatal(err)
	}
	proc, err := json.Marshal(doc["process"])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, proc, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := rewrite([]string{"exec", "--process", path, "--detach", "id"}); err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "CAP_SYS_RESOURCE") {
		t.Errorf("CAP_SYS_RESOURCE still present: %s", raw)
	}
}

func TestRewriteOtherSubcommands(t *testing.T) {
	// No file is touched (a missing bundle would fail for create).
	for _, args := range [][]string{
		{"start", "id"}, {"delete", "--force", "id"}, {"state", "id"}, {"kill", "id", "9"},
		{"exec", "id", "/bin/true"}, {"--version"},
	} {
		if err := rewrite(args); err != nil {
			t.Errorf("rewrite(%q): %v", args, err)
		}
	}
	if err := rewrite([]string{"create", "--bundle", filepath.Join(t.TempDir(), "missing"), "id"}); err == nil {
		t.Errorf("create with a missing bundle: no error")
	}
}
