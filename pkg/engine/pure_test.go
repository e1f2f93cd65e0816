package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
)

func TestParseAddress(t *testing.T) {
	tests := []struct {
		in      string
		scheme  string
		host    string
		path    string
		tls     bool
		wantErr bool
	}{
		{in: "tcp://sdss-gfa1", tls: true, scheme: "tcp", host: "sdss-gfa1:2376"},
		{in: "tcp://sdss-gfa1:2375", tls: true, scheme: "tcp", host: "sdss-gfa1:2375"},
		{in: "ssh://root@10.213.0.13", scheme: "ssh", host: "10.213.0.13:22", path: "/var/run/docker.sock"},
		{in: "ssh://root@gfa1:2222/run/fs/docker.sock", scheme: "ssh", host: "gfa1:2222", path: "/run/fs/docker.sock"},
		{in: "ssh://root@[::1]:2222/", scheme: "ssh", host: "[::1]:2222", path: "/var/run/docker.sock"},
		{in: "ssh://root:pw@gfa1", wantErr: true},
		{in: "ssh://", wantErr: true},
		{in: "ssh://gfa1?x=1", wantErr: true},
		{in: "tcp://sdss-gfa1:2375", scheme: "tcp", host: "sdss-gfa1:2375"},
		{in: "tcp://10.213.0.11:2375", scheme: "tcp", host: "10.213.0.11:2375"},
		{in: "tcp://sdss-gfa1", scheme: "tcp", host: "sdss-gfa1:2375"},
		{in: "tcp://sdss-gfa1:", scheme: "tcp", host: "sdss-gfa1:2375"},
		{in: "tcp://[::1]:2375", scheme: "tcp", host: "[::1]:2375"},
		{in: "unix:///var/run/docker.sock", scheme: "unix", path: "/var/run/docker.sock"},
		{in: "unix://relative.sock", wantErr: true},
		{in: "sdss-gfa1:2375", wantErr: true},
		{in: "http://sdss-gfa1:2375", wantErr: true},
		{in: "tcp://", wantErr: true},
		{in: "tcp://:2375", wantErr: true},
		{in: "tcp://host:2375/path", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := parseAddress(tt.in, tt.tls)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseAddress(%q) = %v, want an error", tt.in, u)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseAddress(%q): %v", tt.in, err)
			}
			if u.Scheme != tt.scheme || u.Host != tt.host || u.Path != tt.path {
				t.Errorf("parseAddress(%q) = scheme %q host %q path %q, want %q %q %q",
					tt.in, u.Scheme, u.Host, u.Path, tt.scheme, tt.host, tt.path)
			}
		})
	}
}

func TestNew(t *testing.T) {
	c, err := New("gfa1", "tcp://sdss-gfa1:2375", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.node != "gfa1" || c.address != "tcp://sdss-gfa1:2375" || c.timeout != DefaultTimeout {
		t.Errorf("got node %q address %q timeout %s", c.node, c.address, c.timeout)
	}
	if _, err := New("gfa2", "ftp://x", Options{}); err == nil || !strings.HasPrefix(err.Error(), "gfa2: ") {
		t.Errorf("New with a bad address: error %v, want one starting with the node", err)
	}
}

// notFoundErr is an errdefs-style error recognised by its method.
type notFoundErr struct{}

func (notFoundErr) Error() string { return "gone" }
func (notFoundErr) NotFound()     {}

func TestIsNotFound(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"errdefs", cerrdefs.ErrNotFound, true},
		{"wrapped errdefs", fmt.Errorf("gfa1: inspect container x: %w", cerrdefs.ErrNotFound.WithMessage("No such container: x")), true},
		{"interface", fmt.Errorf("a: %w", notFoundErr{}), true},
		{"conflict", cerrdefs.ErrConflict, false},
		{"text only", errors.New("Error response from daemon: No such container: x"), false},
		{"pull 404", &PullError{Code: 404, Message: "manifest unknown"}, true},
		{"pull no code", &PullError{Message: "not found"}, false},
		{"pull 500", &PullError{Code: 500, Message: "boom"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsNotFound(tt.err); got != tt.want {
				t.Errorf("IsNotFound(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestIsUnreachable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"refused", fmt.Errorf("gfa1: ping: %w", refused), true},
		{"no route", &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"dns", &net.DNSError{Err: "no such host", Name: "sdss-gfa9", IsNotFound: true}, true},
		{"dial timeout", &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}, true},
		{"per-call timeout", fmt.Errorf("gfa1: ping: %w", &TimeoutError{After: time.Second, Err: context.DeadlineExceeded}), true},
		{"slow pull", &TimeoutError{After: time.Second, Answered: true, Err: context.DeadlineExceeded}, false},
		{"caller deadline", fmt.Errorf("gfa1: ping: %w", context.DeadlineExceeded), false},
		{"caller cancel", context.Canceled, false},
		{"daemon text", errors.New("Error response from daemon: dial tcp 127.0.0.1:1: connect: connection refused"), false},
		{"not found", cerrdefs.ErrNotFound, false},
		{"stream ended", fmt.Errorf("gfa1: events: %w", ErrStreamEnded), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsUnreachable(tt.err); got != tt.want {
				t.Errorf("IsUnreachable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func TestSelected(t *testing.T) {
	want := map[string]string{"fliswarm.node": "gfa1", "fliswarm.managed": "true"}
	tests := []struct {
		name   string
		have   map[string]string
		cname  string
		labels map[string]string
		names  []string
		want   bool
	}{
		{"all labels", map[string]string{"fliswarm.node": "gfa1", "fliswarm.managed": "true", "x": "y"}, "a", want, nil, true},
		{"one label missing", map[string]string{"fliswarm.node": "gfa1"}, "a", want, nil, false},
		{"label value differs", map[string]string{"fliswarm.node": "gfa2", "fliswarm.managed": "true"}, "a", want, nil, false},
		{"empty value must be present", map[string]string{}, "a", map[string]string{"k": ""}, nil, false},
		{"empty value present", map[string]string{"k": ""}, "a", map[string]string{"k": ""}, nil, true},
		{"by name", nil, "flicamera-gfa1", want, []string{"flicamera-gfa1"}, true},
		{"by name with slash", nil, "/flicamera-gfa1", nil, []string{"/flicamera-gfa1"}, true},
		{"name is exact", nil, "flicamera-gfa10", nil, []string{"flicamera-gfa1"}, false},
		{"name only, labels ignored", map[string]string{"fliswarm.node": "gfa1", "fliswarm.managed": "true"}, "x", nil, []string{"y"}, false},
		{"nothing asked selects all", nil, "x", nil, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := selected(tt.have, tt.cname, tt.labels, tt.names); got != tt.want {
				t.Errorf("selected(%v, %q, %v, %v) = %v, want %v", tt.have, tt.cname, tt.labels, tt.names, got, tt.want)
			}
		})
	}
}

func TestSortContainers(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	cs := []Container{
		{ID: "c", Created: t0.Add(2 * time.Nanosecond)},
		{ID: "b", Created: t0},
		{ID: "a", Created: t0},
		{ID: "d", Created: t0.Add(-time.Hour)},
	}
	sortContainers(cs)
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	if diff := cmp.Diff([]string{"d", "a", "b", "c"}, ids); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func TestFromInspect(t *testing.T) {
	tests := []struct {
		name string
		in   container.InspectResponse
		want Container
	}{
		{
			name: "running",
			in: container.InspectResponse{
				ID:           "0123456789abcdef",
				Name:         "/flicamera-gfa1",
				Image:        "sha256:feed",
				Created:      "2026-11-24T23:26:13.314336126Z",
				RestartCount: 2,
				State: &container.State{
					Status: container.StateRunning, Running: true, Pid: 42,
					StartedAt:  "2026-11-24T23:26:14.5Z",
					FinishedAt: "0001-01-01T00:00:00Z",
				},
				Config:     &container.Config{Image: "sdss/flicamera:latest", Labels: map[string]string{"a": "b"}},
				HostConfig: &container.HostConfig{Privileged: true, NetworkMode: "host"},
			},
			want: Container{
				ID: "0123456789abcdef", Name: "flicamera-gfa1", Image: "sdss/flicamera:latest",
				ImageID: "sha256:feed", State: "running", Running: true, Pid: 42, RestartCount: 2,
				Labels:     map[string]string{"a": "b"},
				Created:    time.Date(2026, 11, 24, 23, 26, 13, 314336126, time.UTC),
				StartedAt:  time.Date(2026, 11, 24, 23, 26, 14, 500000000, time.UTC),
				Privileged: true, NetworkMode: "host",
			},
		},
		{
			name: "exited after oom",
			in: container.InspectResponse{
				ID: "x", Name: "/c",
				State: &container.State{
					Status: container.StateExited, ExitCode: 137, OOMKilled: true, Error: "",
					StartedAt: "2026-11-24T23:00:00Z", FinishedAt: "2026-11-24T23:01:00Z",
				},
			},
			want: Container{
				ID: "x", Name: "c", State: "exited", ExitCode: 137, OOMKilled: true,
				Labels:     map[string]string{},
				StartedAt:  time.Date(2026, 11, 24, 23, 0, 0, 0, time.UTC),
				FinishedAt: time.Date(2026, 11, 24, 23, 1, 0, 0, time.UTC),
			},
		},
		{
			name: "what the original's docker run asked for",
			in: container.InspectResponse{
				ID: "z", Name: "/flicamera-gfa1",
				Config: &container.Config{Env: []string{"ACTOR_NAME=gfa1", "PATH=/bin"}, User: "2005:3005"},
				Mounts: []container.MountPoint{
					{Type: mount.TypeVolume, Name: "data", Source: "/var/lib/docker/volumes/data/_data", Destination: "/data"},
					{Type: mount.TypeBind, Source: "/dev/bus/usb", Destination: "/dev/bus/usb"},
				},
				HostConfig: &container.HostConfig{
					AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "no"},
					Resources: container.Resources{
						CPUPeriod: 10000, CPUQuota: 35000, NanoCPUs: 7, Memory: 6 << 30,
						Devices: []container.DeviceMapping{{PathOnHost: "/dev/bus/usb", PathInContainer: "/dev/bus/usb", CgroupPermissions: "rwm"}},
					},
				},
			},
			want: Container{
				ID: "z", Name: "flicamera-gfa1", Labels: map[string]string{},
				Env: []string{"ACTOR_NAME=gfa1", "PATH=/bin"}, User: "2005:3005",
				Mounts: []Mount{
					{Type: "volume", Name: "data", Source: "/var/lib/docker/volumes/data/_data", Target: "/data"},
					{Type: "bind", Source: "/dev/bus/usb", Target: "/dev/bus/usb"},
				},
				Devices:   []DeviceMapping{{PathOnHost: "/dev/bus/usb", PathInContainer: "/dev/bus/usb", CgroupPermissions: "rwm"}},
				CPUPeriod: 10000, CPUQuota: 35000, NanoCPUs: 7, Memory: 6 << 30,
				AutoRemove: true, RestartPolicy: "no",
			},
		},
		{
			name: "nothing but an id",
			in:   container.InspectResponse{ID: "y", Created: "garbage"},
			want: Container{ID: "y", Labels: map[string]string{}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, fromInspect(tt.in)); diff != "" {
				t.Errorf("fromInspect (-want +got):\n%s", diff)
			}
		})
	}
}

func TestShortID(t *testing.T) {
	full := strings.Repeat("0123456789abcdef", 4)
	tests := map[string]string{
		full:                                 "0123456789ab",
		"flicamera-gfa1":                     "flicamera-gfa1",
		strings.Repeat("flicamera-", 7)[:64]: strings.Repeat("flicamera-", 7)[:64],
		"0123456789ab":                       "0123456789ab",
	}
	for in, want := range tests {
		if got := shortID(in); got != want {
			t.Errorf("shortID(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFromMessage(t *testing.T) {
	when := time.Date(2026, 11, 24, 23, 0, 0, 123, time.UTC)
	tests := []struct {
		name   string
		in     events.Message
		want   Event
		wantOK bool
	}{
		{
			name: "container die",
			in: events.Message{
				Type: events.ContainerEventType, Action: events.ActionDie,
				Actor: events.Actor{ID: "abc", Attributes: map[string]string{
					"name": "flicamera-gfa1", "image": "sdss/flicamera", "exitCode": "137",
					"fliswarm.node": "gfa1",
				}},
				Time: when.Unix(), TimeNano: when.UnixNano(),
			},
			want: Event{
				Type: "container", Action: "die", ID: "abc", Name: "flicamera-gfa1",
				Labels: map[string]string{"fliswarm.node": "gfa1"},
				Attributes: map[string]string{
					"name": "flicamera-gfa1", "image": "sdss/flicamera", "exitCode": "137",
					"fliswarm.node": "gfa1",
				},
				Time: time.Unix(0, when.UnixNano()),
			},
			wantOK: true,
		},
		{
			name: "volume create, seconds only",
			in: events.Message{
				Type: events.VolumeEventType, Action: events.ActionCreate,
				Actor: events.Actor{ID: "data", Attributes: map[string]string{"driver": "local"}},
				Time:  when.Unix(),
			},
			want: Event{
				Type: "volume", Action: "create", ID: "data", Name: "data",
				Labels: map[string]string{}, Attributes: map[string]string{"driver": "local"},
				Time: time.Unix(when.Unix(), 0),
			},
			wantOK: true,
		},
		{
			name: "image untag without attributes",
			in: events.Message{
				Type: events.ImageEventType, Action: events.ActionUnTag,
				Actor: events.Actor{ID: "sha256:feed"},
			},
			want: Event{
				Type: "image", Action: "untag", ID: "sha256:feed",
				Labels: map[string]string{}, Attributes: map[string]string{},
			},
			wantOK: true,
		},
		{
			name: "network events are not reported",
			in: events.Message{
				Type: events.NetworkEventType, Action: events.ActionConnect,
				Actor: events.Actor{ID: "n"},
			},
			wantOK: false,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := fromMessage(tt.in)
			if ok != tt.wantOK {
				t.Fatalf("fromMessage ok = %v, want %v", ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("fromMessage (-want +got):\n%s", diff)
			}
		})
	}
}
