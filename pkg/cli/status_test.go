package cli

import (
	"bytes"
	"strings"
	"testing"

	v1 "github.com/sdss/fliswarm/api/v1"
)

func TestPrintStatusSaysAdopted(t *testing.T) {
	var out bytes.Buffer
	g := &globals{stdout: &out}
	ctr := &v1.ContainerStatus{ID: "abcdef0123456789", State: "running", Count: 1}
	st := v1.DaemonStatus{Nodes: []v1.NodeStatus{
		{Name: "gfa1", Phase: v1.PhaseReady, Container: ctr},
		{Name: "gfa2", Phase: v1.PhaseReady, Container: &v1.ContainerStatus{ID: "0123456789abcdef", State: "running", Count: 1, Adopted: true}},
	}}
	printStatus(g, st)
	lines := strings.Split(out.String(), "\n")
	var gfa1, gfa2 string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "gfa1 "):
			gfa1 = l
		case strings.HasPrefix(l, "gfa2 "):
			gfa2 = l
		}
	}
	if !strings.HasSuffix(gfa2, "container 0123456789ab running (restarts 0) adopted") {
		t.Errorf("adopted node: %q", gfa2)
	}
	if strings.Contains(gfa1, "adopted") || gfa1 == "" {
		t.Errorf("node of fliswarm's own container: %q", gfa1)
	}
}

func TestPrintStatusShowsDiskUse(t *testing.T) {
	var out bytes.Buffer
	g := &globals{stdout: &out}
	st := v1.DaemonStatus{Nodes: []v1.NodeStatus{
		{Name: "gfa1", Phase: v1.PhaseReady, Disk: &v1.DiskStatus{Images: 2, ImagesSize: 240_000_000, ImagesReclaimable: 0, FSSize: 64_000_000_000, FSPercent: 40}},
		{Name: "gfa2", Phase: v1.PhaseReady},
	}}
	printStatus(g, st)
	if !strings.Contains(out.String(), "       disk: 2 images, 240 MB (0 B reclaimable); data root 40% of 64 GB used (checked ") {
		t.Errorf("status lacks gfa1's disk line:\n%s", out.String())
	}
	if strings.Count(out.String(), "disk:") != 1 {
		t.Errorf("a disk line for a node never checked:\n%s", out.String())
	}
}
