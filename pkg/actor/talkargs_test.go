package actor

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/sdss/fliswarm/pkg/opscore"
)

// clickCase is one line of testdata/talk_click.json: what click made of a
// talk command line in the original (see gen_talk_click.py).
type clickCase struct {
	Line          string   `json:"line"`
	Args          []string `json:"args"` // shlex.split(line)
	Help          bool     `json:"help"`
	Error         string   `json:"error"`
	Names         *string  `json:"names"`
	Category      *string  `json:"category"`
	Words         []string `json:"words"`
	CameraCommand string   `json:"camera_command"`
}

func loadClickCases(t testing.TB) []clickCase {
	t.Helper()
	b, err := os.ReadFile("testdata/talk_click.json")
	if err != nil {
		t.Fatal(err)
	}
	var table struct {
		Click string      `json:"click"`
		Cases []clickCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &table); err != nil {
		t.Fatalf("talk_click.json: %v", err)
	}
	if len(table.Cases) < 20 || !strings.HasPrefix(table.Click, "8.") {
		t.Fatalf("talk_click.json: %d cases from click %q; want at least 20 from click 8", len(table.Cases), table.Click)
	}
	return table.Cases
}

// TestTalkArgsMatchClick holds talk's parse of each recorded command line
// against click's: the same selection, camera words and camera command,
// the same usage errors (click's wording) and the same --help.
func TestTalkArgsMatchClick(t *testing.T) {
	deref := func(s *string) string { // click's None selects like ""
		if s == nil {
			return ""
		}
		return *s
	}
	for _, tc := range loadClickCases(t) {
		words, err := opscore.SplitWords(tc.Line)
		if err != nil {
			t.Errorf("%q: %v", tc.Line, err)
			continue
		}
		if diff := cmp.Diff(tc.Args, words, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%q: words unlike shlex.split's (-shlex +fliswarm):\n%s", tc.Line, diff)
		}
		got, err := parseTalkArgs(words)
		switch {
		case tc.Error != "":
			var ue *talkUsageError
			if !errors.As(err, &ue) || err.Error() != tc.Error {
				t.Errorf("%q: error %v, click says %q", tc.Line, err, tc.Error)
			}
			continue
		case err != nil:
			t.Errorf("%q: unexpected error %v", tc.Line, err)
			continue
		}
		if got.Help != tc.Help {
			t.Errorf("%q: help %v, click %v", tc.Line, got.Help, tc.Help)
		}
		if tc.Help {
			continue
		}
		want := talkArgs{Names: deref(tc.Names), Category: deref(tc.Category), Words: tc.Words}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%q (-click +fliswarm):\n%s", tc.Line, diff)
		}
		if got.CameraCommand() != tc.CameraCommand {
			t.Errorf("%q: camera command %q, the original sends %q", tc.Line, got.CameraCommand(), tc.CameraCommand)
		}
	}
}

// FuzzTalkArgs: any line parses without panicking, and a parse written
// back in its plainest form (both options with `=`, then `--`, then the
// words) parses to the same thing.
func FuzzTalkArgs(f *testing.F) {
	for _, tc := range loadClickCases(f) {
		f.Add(tc.Line)
	}
	f.Fuzz(func(t *testing.T, line string) {
		words, err := opscore.SplitWords(line)
		if err != nil {
			return
		}
		got, err := parseTalkArgs(words)
		if err != nil {
			if _, ok := err.(*talkUsageError); !ok {
				t.Fatalf("%q: error of type %T", line, err)
			}
			return
		}
		plain := append([]string{"--names=" + got.Names, "--category=" + got.Category, "--"}, got.Words...)
		again, err := parseTalkArgs(plain)
		if err != nil {
			t.Fatalf("%q: %v", plain, err)
		}
		got.Help = false
		if !slices.Equal(got.Words, again.Words) || got.Names != again.Names || got.Category != again.Category || again.Help {
			t.Fatalf("%q parsed to %+v, its plain form %q to %+v", line, got, plain, again)
		}
	})
}

// TestTalkOptionsAnywhere runs talk through the actor: options after the
// camera command select cameras and do not reach them, unknown options
// and a quoted command do.
func TestTalkOptionsAnywhere(t *testing.T) {
	h := newHarness(t, harnessConfig{})
	c := h.dial()
	filenameNodes := func(res result) []string {
		var nodes []string
		for _, r := range res.find(func(r opscore.Reply) bool { _, ok := r.Get("filename"); return ok }) {
			v, _ := kwValues(r, "filename")
			nodes = append(nodes, v[0])
		}
		slices.Sort(nodes)
		return nodes
	}
	for _, tc := range []struct {
		body string
		want []string // the nodes that wrote an image
	}{
		{"talk expose 0.01 -n gfa1", []string{"gfa1"}},
		{"talk expose -c gfa 0.01 --names=fvc", []string{"fvc", "gfa1", "gfa2"}},
		{`talk -n gfa2 "expose 0.01"`, []string{"gfa2"}},
		{"talk -n gfa1 -n gfa2 expose 0.01", []string{"gfa2"}},
	} {
		res := send(t, c, tc.body)
		if res.final.Code != opscore.Done {
			t.Errorf("%s: ended %q: %q", tc.body, res.final.Line, res.lines())
			continue
		}
		if diff := cmp.Diff(tc.want, filenameNodes(res)); diff != "" {
			t.Errorf("%s: cameras that exposed (-want +got):\n%s", tc.body, diff)
		}
	}
	// An option the original did not know goes to the camera, which
	// rejects it: the talk fails naming the camera, not as a usage error.
	res := send(t, c, "talk -n gfa1 status --bogus")
	if res.final.Code != opscore.Failed || !strings.Contains(res.final.Line, `"Command \"status --bogus\" failed on every camera (gfa1)."`) {
		t.Errorf("talk with an unknown option ended %q: %q", res.final.Line, res.lines())
	}
	// A usage error is answered like any other: the usage, then the error.
	res = send(t, c, "talk status -n")
	want := `error=fliswarm,"talk: Option '-n' requires an argument."`
	if res.final.Code != opscore.Failed || stripHeader(res.final.Line) != "f "+want || !res.hasLine(`w help="Usage: fliswarm talk [OPTIONS] CAMERA-COMMAND..."`) {
		t.Errorf("talk status -n: %q", res.lines())
	}
}
