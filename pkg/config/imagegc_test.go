package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestImageGCValues(t *testing.T) {
	tests := []struct {
		yaml       string
		keep, high int
	}{
		{"", 2, 0}, // absent: on, with the defaults
		{"image_gc: {keep: 3}\n", 3, 0},
		{"image_gc: {keep: 0}\n", 0, 0},
		{"image_gc: {keep: 1, high_percent: 0}\n", 1, 0},
		{"image_gc: {high_percent: 90}\n", 2, 90},
		{"image_gc: {}\n", 2, 0},
	}
	for _, tt := range tests {
		l, err := Parse([]byte(flatFile+tt.yaml), "APO", nil)
		if err != nil {
			t.Fatalf("%q: %v", tt.yaml, err)
		}
		if k, h := l.Spec.ImageGC.GCKeep(), l.Spec.ImageGC.GCHighPercent(); k != tt.keep || h != tt.high {
			t.Errorf("%q: keep %d, high_percent %d; want %d, %d", tt.yaml, k, h, tt.keep, tt.high)
		}
	}
	bad := map[string]string{
		"image_gc: {keep: -1}\n":          "image_gc.keep",
		"image_gc: {keep: two}\n":         "image_gc.keep",
		"image_gc: {high_percent: 101}\n": "image_gc.high_percent",
		"image_gc: {high_percent: -5}\n":  "image_gc.high_percent",
		"image_gc: {enabled: false}\n":    "image_gc.enabled",
		"image_gc: 2\n":                   "image_gc",
	}
	for doc, path := range bad {
		_, err := Parse([]byte(flatFile+doc), "APO", nil)
		if diff := cmp.Diff([]string{path}, problemPaths(t, err)); diff != "" {
			t.Errorf("%q (-want +got):\n%s", doc, diff)
		}
	}
	_, err := Parse([]byte(flatFile+"image_gc: {keep: -1}\n"), "APO", nil)
	if err == nil || !strings.Contains(err.Error(), "0 to turn image garbage collection off") {
		t.Errorf("keep -1: %v, want a message saying how to turn it off", err)
	}
}

func TestImageGCRevisionAndShow(t *testing.T) {
	plain, err := Parse([]byte(flatFile), "APO", nil)
	if err != nil {
		t.Fatal(err)
	}
	off, err := Parse([]byte(flatFile+"image_gc: {keep: 0}\n"), "APO", nil)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Revision == off.Revision {
		t.Error("turning image_gc off did not change the revision")
	}
}
