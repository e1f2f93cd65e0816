package kubernetes

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/config"
)

func load(t *testing.T, doc string) *config.Loaded {
	t.Helper()
	l, err := config.Parse([]byte(doc), "APO", nil)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const base = `
image: sdss/flicamera:latest
enabled_nodes: [gfa1, gfa2]
nodes:
  gfa1: {host: sdss-gfa1, port: 19995, docker-client: "tcp://sdss-gfa1:2375", category: gfa, docker-uid: 2005, docker-gid: 3005}
  gfa2: {host: sdss-gfa2, port: 19996, docker-client: "tcp://sdss-gfa2:2375", kubernetes_hostname: gfa2.cluster, env: {GAIN: "2"}}
`

// TestRefusedSettingsAllReportedWithPaths: a configuration with every kind
// of setting Kubernetes cannot express fails with each problem at its
// configuration path, in one list.
func TestRefusedSettingsAllReportedWithPaths(t *testing.T) {
	l := load(t, base+`
network_mode: bridge
image_update_interval: 60
devices: [/dev/bus/usb, /dev/bus-usb]
registry_auth: {username: u, password: p}
volumes:
  plugin: {driver: rexray, opts: {device: /a}}
  tmp: {opts: {type: tmpfs, device: /tmp/x}}
  nfsnoaddr: {opts: {type: nfs, o: "nfsvers=4", device: ":/data"}}
  extra: {opts: {type: none, o: "bind,noexec", device: /srv, size: "1"}}
  Upper: {opts: {type: none, o: bind, device: /up}}
`)
	_, err := Build(l.Spec, l.Paths, Options{UpdateStrategy: Rolling})
	var list v1.ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("want an ErrorList, got %v", err)
	}
	got := map[string]string{}
	for _, e := range list {
		got[e.Path] += e.Message
	}
	for _, path := range []string{
		"network_mode", "image_update_interval", "registry_auth", "max_unavailable",
		"volumes.plugin.driver", "volumes.tmp.opts.type", "volumes.nfsnoaddr.opts.o",
		"volumes.extra.opts.o", "volumes.extra.opts.size", "volumes.Upper", "devices[1]",
	} {
		if got[path] == "" {
			t.Errorf("no problem reported at %s; got:\n%v", path, err)
		}
	}
	if !strings.Contains(got["volumes.extra.opts.o"], `"noexec"`) {
		t.Errorf("volumes.extra.opts.o: %q should name the option", got["volumes.extra.opts.o"])
	}
}

// TestNamesCheckedBeforeWriting: names Kubernetes refuses are reported
// with their path, not written.
func TestNamesCheckedBeforeWriting(t *testing.T) {
	l := load(t, `
image: sdss/flicamera:latest
container_name: FliCamera
actor: {name: fli_swarm}
enabled_nodes: [Gfa1]
nodes:
  Gfa1: {host: "bad host", port: 19995, docker-client: "tcp://a:2375", env: {"1X": "y"}}
`)
	_, err := Build(l.Spec, l.Paths, Options{Namespace: "Cams"})
	if err == nil {
		t.Fatal("bad names exported")
	}
	for _, path := range []string{"--namespace", "actor.name", "container_name", "nodes.Gfa1", "nodes.Gfa1.host", "nodes.Gfa1.env.1X"} {
		if !strings.Contains(err.Error(), path+": ") {
			t.Errorf("no problem at %s in:\n%v", path, err)
		}
	}
}

func daemonSets(t *testing.T, objs []Object) map[string]*appsv1.DaemonSet {
	out := map[string]*appsv1.DaemonSet{}
	for _, o := range objs {
		if ds, ok := o.Obj.(*appsv1.DaemonSet); ok {
			out[ds.Name] = ds
		}
	}
	return out
}

// TestCameraPodTemplate checks what each node's DaemonSet must carry.
func TestCameraPodTemplate(t *testing.T) {
	l := load(t, base+`
resources: {cpus: 0.05, memory: 128m}
volumes:
  data: {opts: {type: nfs, o: "nfsvers=4,addr=sdss-hub,rw", device: ":/data"}}
`)
	objs, err := Build(l.Spec, l.Paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ds := daemonSets(t, objs)
	if len(ds) != 2 {
		t.Fatalf("daemonsets %v", ds)
	}
	g1, g2 := ds["flicamera-gfa1"], ds["flicamera-gfa2"]
	p1, p2 := g1.Spec.Template.Spec, g2.Spec.Template.Spec
	if p1.NodeSelector[HostnameLabel] != "sdss-gfa1" || p2.NodeSelector[HostnameLabel] != "gfa2.cluster" {
		t.Errorf("node selectors %v %v", p1.NodeSelector, p2.NodeSelector)
	}
	c1, c2 := p1.Containers[0], p2.Containers[0]
	if c2.Ports[0].ContainerPort != 19996 || c2.Ports[0].HostPort != 19996 || !p2.HostNetwork || p2.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("gfa2 networking: %+v hostNetwork %v dns %v", c2.Ports, p2.HostNetwork, p2.DNSPolicy)
	}
	if *c1.SecurityContext.RunAsUser != 2005 || *c1.SecurityContext.RunAsGroup != 3005 || !*c1.SecurityContext.Privileged || c2.SecurityContext.RunAsUser != nil {
		t.Errorf("security contexts %+v %+v", c1.SecurityContext, c2.SecurityContext)
	}
	if c1.LivenessProbe != nil || c1.ReadinessProbe.TCPSocket.Port.IntValue() != 19995 || g1.Spec.MinReadySeconds == 0 {
		t.Errorf("probes: liveness %v readiness %+v", c1.LivenessProbe, c1.ReadinessProbe)
	}
	// Limits below the usual requests lower the requests to them.
	if c1.Resources.Limits.Cpu().String() != "50m" || c1.Resources.Requests.Cpu().String() != "50m" ||
		c1.Resources.Limits.Memory().String() != "128Mi" || c1.Resources.Requests.Memory().String() != "128Mi" {
		t.Errorf("resources %+v", c1.Resources)
	}
	env := map[string]string{}
	for _, e := range c2.Env {
		env[e.Name] = e.Value
	}
	if env["ACTOR_NAME"] != "gfa2" || env["OBSERVATORY"] != "APO" || env["GAIN"] != "2" {
		t.Errorf("env %v", env)
	}
	if g1.Spec.UpdateStrategy.Type != appsv1.OnDeleteDaemonSetStrategyType {
		t.Errorf("default strategy %v", g1.Spec.UpdateStrategy)
	}
	if g1.Spec.Template.Labels[LabelSpecHash] == g2.Spec.Template.Labels[LabelSpecHash] || g1.Spec.Template.Annotations[AnnotationSpec] == "" {
		t.Error("each node's spec hash and spec should be on its template")
	}
	var pv *corev1.PersistentVolume
	var pvc *corev1.PersistentVolumeClaim
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *corev1.PersistentVolume:
			pv = v
		case *corev1.PersistentVolumeClaim:
			pvc = v
		}
	}
	if pv == nil || pvc == nil || pv.Spec.NFS.Server != "sdss-hub" || pv.Spec.NFS.Path != "/data" ||
		strings.Join(pv.Spec.MountOptions, ",") != "nfsvers=4,rw" || pvc.Spec.VolumeName != pv.Name ||
		pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "" || pv.Spec.ClaimRef.Name != pvc.Name {
		t.Errorf("NFS volume: %+v %+v", pv, pvc)
	}
}

// TestRollingStrategy: the option gives maxSurge 0 and maxUnavailable 1,
// and is accepted when max_unavailable allows every node down at once.
func TestRollingStrategy(t *testing.T) {
	l := load(t, base+"max_unavailable: 2\n")
	objs, err := Build(l.Spec, l.Paths, Options{UpdateStrategy: Rolling})
	if err != nil {
		t.Fatal(err)
	}
	u := daemonSets(t, objs)["flicamera-gfa1"].Spec.UpdateStrategy
	if u.Type != appsv1.RollingUpdateDaemonSetStrategyType || u.RollingUpdate.MaxSurge.IntValue() != 0 || u.RollingUpdate.MaxUnavailable.IntValue() != 1 {
		t.Errorf("rolling strategy %+v", u)
	}
}

// TestConfigMapLoadsAsTheSameSpec: the actor bridge's ConfigMap holds a
// configuration fliswarm loads back into the same spec, but for the
// address it listens on (its pod's) and its log directory (stderr).
func TestConfigMapLoadsAsTheSameSpec(t *testing.T) {
	l, err := config.Load(config.Options{Path: "testdata/testbed.yaml", Observatory: "LCO"})
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Build(l.Spec, l.Paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		cm, ok := o.Obj.(*corev1.ConfigMap)
		if !ok {
			continue
		}
		back, err := config.Parse([]byte(cm.Data[ConfigKey]), "", nil)
		if err != nil {
			t.Fatalf("the ConfigMap's configuration does not load: %v", err)
		}
		want := *l.Spec
		want.Actor.Host, want.Actor.LogDir = "0.0.0.0", ""
		if diff := cmp.Diff(&want, back.Spec); diff != "" {
			t.Errorf("the ConfigMap's spec differs (-want +got):\n%s", diff)
		}
		return
	}
	t.Fatal("no ConfigMap exported")
}
