package e2e

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sdss/fliswarm/pkg/opscore"
)

// TestTalkOptionAfterCameraCommand: `talk expose 1 -n <node>` (the option
// after the camera's words, as click allows) exposes that node's camera
// only, through the running daemon: its replies and its filename_bundle
// come from that node alone, one image is written, and a following
// `talk expose 1` to every camera writes one image each, so no other
// camera had an exposure of the first command running or pending.
func TestTalkOptionAfterCameraCommand(t *testing.T) {
	bed, e := actorEnv(t)
	if len(bed.Nodes) < 2 {
		t.Skip("needs two nodes")
	}
	c := dialActor(t, e)
	target := bed.Nodes[0].Name
	var others []string
	for _, n := range bed.Nodes[1:] {
		others = append(others, n.Name)
	}

	before := countImages(t, bed.DataDir)
	lines, final := send(t, c, "talk expose 1 -n "+target, 2*time.Minute)
	if final.Code != opscore.Done {
		t.Fatalf("talk expose 1 -n %s: %s\n%s", target, final.Line, replyLines(lines))
	}
	for _, l := range lines {
		for _, kw := range l.Keywords {
			if len(kw.Values) > 0 && slices.Contains(others, fmt.Sprint(kw.Values[0])) {
				t.Errorf("a reply from %v to a talk for %s: %s", kw.Values[0], target, l.Line)
			}
		}
	}
	bundle := bundleOf(lines)
	if len(bundle) != 1 || !strings.Contains(filepath.Base(bundle[0]), "-"+camNameOf(t, lines, target)+"-") {
		t.Fatalf("filename_bundle %q, want one image of %s:\n%s", bundle, target, replyLines(lines))
	}
	if got := countImages(t, bed.DataDir); got != before+1 {
		t.Errorf("%d images written by a talk to %s, want 1", got-before, target)
	}

	// Every camera exposes once more: each writes one image and is not
	// busy, so none had been exposing since the first talk.
	lines, final = send(t, c, "talk expose 1", 2*time.Minute)
	if final.Code != opscore.Done {
		t.Fatalf("talk expose 1: %s\n%s", final.Line, replyLines(lines))
	}
	if b := bundleOf(lines); len(b) != len(bed.Nodes) {
		t.Errorf("filename_bundle %q, want one image per node", b)
	}
	if got := countImages(t, bed.DataDir); got != before+1+len(bed.Nodes) {
		t.Errorf("%d images after both talks, want %d: another camera exposed for the talk to %s",
			got-before, 1+len(bed.Nodes), target)
	}
}

// bundleOf returns the values of a command's filename_bundle.
func bundleOf(lines []opscore.Reply) []string {
	for _, l := range lines {
		if kw, ok := l.Get("filename_bundle"); ok {
			var files []string
			for _, v := range kw.Values {
				files = append(files, fmt.Sprint(v))
			}
			return files
		}
	}
	return nil
}

// camNameOf returns the camera name node's filename keyword gives
// (node, camera, path).
func camNameOf(t *testing.T, lines []opscore.Reply, node string) string {
	t.Helper()
	for _, l := range lines {
		if kw, ok := l.Get("filename"); ok && len(kw.Values) == 3 && kw.Values[0] == node {
			return fmt.Sprint(kw.Values[1])
		}
	}
	t.Fatalf("no filename keyword from %s:\n%s", node, replyLines(lines))
	return ""
}

// countImages counts the finished FITS files under dir.
func countImages(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".fits") && !strings.HasPrefix(d.Name(), ".") {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("listing images: %v", err)
	}
	return n
}
