package v1

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestVolumeMountPath(t *testing.T) {
	tests := []struct {
		device string
		want   string
	}{
		{":/data", "/data"},
		{"/data", "/data"},
		{"10.25.1.1:/export/data", "10.25.1.1:/export/data"},
		{":", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.device, func(t *testing.T) {
			v := Volume{Opts: map[string]string{"device": tt.device}}
			if got := v.MountPath(); got != tt.want {
				t.Errorf("MountPath(%q) = %q, want %q", tt.device, got, tt.want)
			}
		})
	}
	if got := (Volume{}).MountPath(); got != "" {
		t.Errorf("MountPath of a volume without opts = %q, want empty", got)
	}
}

func TestImageRefAndContainerName(t *testing.T) {
	s := Swarm{Registry: "sdss-hub:5000", Image: "sdss5/flicamera:latest", ContainerName: "flicamera"}
	if got, want := s.ImageRef(), "sdss-hub:5000/sdss5/flicamera:latest"; got != want {
		t.Errorf("ImageRef() = %q, want %q", got, want)
	}
	s.Registry = ""
	if got, want := s.ImageRef(), "sdss5/flicamera:latest"; got != want {
		t.Errorf("ImageRef() with Docker Hub = %q, want %q", got, want)
	}
	if got, want := s.ContainerNameFor("gfa1"), "flicamera-gfa1"; got != want {
		t.Errorf("ContainerNameFor = %q, want %q", got, want)
	}
}

func TestNamesAndIsEnabled(t *testing.T) {
	s := Swarm{
		EnabledNodes: []string{"gfa2", "fvc"},
		Nodes:        map[string]Node{"gfa2": {}, "gfa1": {}, "fvc": {}},
		Volumes:      map[string]Volume{"z": {}, "a": {}},
	}
	if diff := cmp.Diff([]string{"fvc", "gfa1", "gfa2"}, s.NodeNames()); diff != "" {
		t.Errorf("NodeNames (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"a", "z"}, s.VolumeNames()); diff != "" {
		t.Errorf("VolumeNames (-want +got):\n%s", diff)
	}
	for node, want := range map[string]bool{"gfa2": true, "fvc": true, "gfa1": false, "x": false} {
		if got := s.IsEnabled(node); got != want {
			t.Errorf("IsEnabled(%q) = %v, want %v", node, got, want)
		}
	}
}

func TestDurationJSON(t *testing.T) {
	tests := []struct {
		json string
		want time.Duration
	}{
		{"0.1", 100 * time.Millisecond},
		{"30", 30 * time.Second},
		{"300", 5 * time.Minute},
		{"0", 0},
		{"-1", -time.Second},
		{"1.5e2", 150 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.json, func(t *testing.T) {
			var d Duration
			if err := json.Unmarshal([]byte(tt.json), &d); err != nil {
				t.Fatalf("Unmarshal(%s): %v", tt.json, err)
			}
			if d.D() != tt.want {
				t.Fatalf("Unmarshal(%s) = %v, want %v", tt.json, d.D(), tt.want)
			}
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			var back Duration
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatalf("Unmarshal(%s): %v", b, err)
			}
			if back != d {
				t.Errorf("round trip of %v through %s gave %v", d.D(), b, back.D())
			}
		})
	}
}

func TestDurationJSONMarshalsSeconds(t *testing.T) {
	b, err := json.Marshal(struct {
		T Duration `json:"t"`
	}{Seconds(0.1)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"t":0.1}`; got != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
}

func TestDurationJSONRejects(t *testing.T) {
	for _, in := range []string{`"5s"`, `true`, `null5`, `1e10`, `-1e10`, `{}`} {
		t.Run(in, func(t *testing.T) {
			var d Duration
			err := json.Unmarshal([]byte(in), &d)
			if err == nil {
				t.Fatalf("Unmarshal(%s) = %v, want an error", in, d.D())
			}
			if !strings.Contains(err.Error(), "seconds") && !strings.Contains(err.Error(), "invalid") {
				t.Errorf("error %q does not say what was expected", err)
			}
		})
	}
}

func TestSecondsIsExactForDecimalConfigValues(t *testing.T) {
	// Config files hold decimal seconds; each must land on the nearest
	// nanosecond, so a spec re-rendered and read back is the same spec.
	tests := []struct {
		s    float64
		want time.Duration
	}{
		{0.1, 100 * time.Millisecond},
		{0.3, 300 * time.Millisecond},
		{0.7, 700 * time.Millisecond},
		{1.1, 1100 * time.Millisecond},
		{2.675, 2675 * time.Millisecond},
		{0.000000001, time.Nanosecond},
		{0.000000015, 15 * time.Nanosecond},
		{0.000065, 65 * time.Microsecond},
		{0.00013, 130 * time.Microsecond},
		{-0.3, -300 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := Seconds(tt.s).D(); got != tt.want {
			t.Errorf("Seconds(%v) = %v (%d ns), want %v", tt.s, got, int64(got), tt.want)
		}
		if back := Seconds(Seconds(tt.s).D().Seconds()); back != Seconds(tt.s) {
			t.Errorf("Seconds(%v) does not survive D().Seconds(): %d ns then %d ns", tt.s, int64(Seconds(tt.s)), int64(back))
		}
	}
}
