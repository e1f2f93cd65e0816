package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// admissionConfig makes Pod Security's cluster default "baseline", as on a
// hardened cluster: a privileged camera pod is then admitted only in a
// namespace labelled privileged.
const admissionConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: baseline
      enforce-version: latest
`

// resources are the kinds fliswarm exports.
var resources = map[string]struct {
	gvr        schema.GroupVersionResource
	namespaced bool
}{
	"Namespace":             {schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}, false},
	"PersistentVolume":      {schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumes"}, false},
	"PersistentVolumeClaim": {schema.GroupVersionResource{Version: "v1", Resource: "persistentvolumeclaims"}, true},
	"ConfigMap":             {schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, true},
	"Service":               {schema.GroupVersionResource{Version: "v1", Resource: "services"}, true},
	"Deployment":            {schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true},
	"DaemonSet":             {schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "daemonsets"}, true},
}

var (
	dyn    dynamic.Interface
	client kubernetes.Interface
)

func TestMain(m *testing.M) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" || os.Getenv("FLISWARM_EXPORTS") == "" {
		fmt.Println("skipped: KUBEBUILDER_ASSETS and FLISWARM_EXPORTS are unset (run make kube-check)")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "kube-check")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	defer os.RemoveAll(dir)
	admission := filepath.Join(dir, "admission.yaml")
	if err := os.WriteFile(admission, []byte(admissionConfig), 0o644); err != nil {
		fmt.Println(err)
		return 1
	}
	env := &envtest.Environment{BinaryAssetsDirectory: os.Getenv("KUBEBUILDER_ASSETS")}
	env.ControlPlane.GetAPIServer().Configure().Set("admission-control-config-file", admission)
	started := time.Now()
	cfg, err := env.Start()
	if err != nil {
		fmt.Println("starting kube-apiserver and etcd:", err)
		return 1
	}
	fmt.Printf("kube-apiserver and etcd started in %.1f s\n", time.Since(started).Seconds())
	defer env.Stop()
	if dyn, err = dynamic.NewForConfig(cfg); err == nil {
		client, err = kubernetes.NewForConfig(cfg)
	}
	if err != nil {
		fmt.Println(err)
		return 1
	}
	return m.Run()
}

// object is one exported document.
type object struct {
	file string
	u    *unstructured.Unstructured
}

func (o object) String() string { return o.u.GetKind() + " " + o.u.GetName() }

// exports reads every configuration's export: FLISWARM_EXPORTS holds one
// directory per configuration, written by fliswarm export kubernetes -o.
func exports(t *testing.T) map[string][]object {
	t.Helper()
	root := os.Getenv("FLISWARM_EXPORTS")
	dirs, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]object{}
	for _, d := range dirs {
		files, _ := filepath.Glob(filepath.Join(root, d.Name(), "*.yaml"))
		sort.Strings(files)
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal(b, &u.Object); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			out[d.Name()] = append(out[d.Name()], object{file: f, u: u})
		}
	}
	if len(out) == 0 {
		t.Fatalf("no exports under %s", root)
	}
	return out
}

// apply is a server-side apply with strict field validation; dryRun leaves
// the cluster as it was.
func apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) (*unstructured.Unstructured, error) {
	r, ok := resources[u.GetKind()]
	if !ok {
		return nil, fmt.Errorf("fliswarm does not export kind %q", u.GetKind())
	}
	data, err := json.Marshal(u.Object)
	if err != nil {
		return nil, err
	}
	opts := metav1.PatchOptions{FieldManager: "fliswarm-export", Force: ptr(true), FieldValidation: "Strict"}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var ri dynamic.ResourceInterface = dyn.Resource(r.gvr)
	if r.namespaced {
		ri = dyn.Resource(r.gvr).Namespace(u.GetNamespace())
	}
	return ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, opts)
}

func ptr[T any](v T) *T { return &v }

// TestExportsPassTheAPIServer: every exported object passes a strict
// server-side dry-run; applying all of them twice leaves each object's
// generation as the first apply left it.
func TestExportsPassTheAPIServer(t *testing.T) {
	ctx := context.Background()
	for cfg, objs := range exports(t) {
		t.Run(cfg, func(t *testing.T) {
			for _, o := range objs {
				if _, err := apply(ctx, o.u, true); err != nil {
					t.Errorf("%s: strict dry-run refused: %v", o.file, err)
				}
				// The namespaced objects' dry-runs need their namespace.
				if o.u.GetKind() == "Namespace" {
					if _, err := apply(ctx, o.u, false); err != nil {
						t.Fatalf("%s: %v", o.file, err)
					}
				}
			}
			first := map[string]int64{}
			for _, o := range objs {
				got, err := apply(ctx, o.u, false)
				if err != nil {
					t.Fatalf("%s: apply: %v", o.file, err)
				}
				first[o.String()] = got.GetGeneration()
			}
			for _, o := range objs {
				got, err := apply(ctx, o.u, false)
				if err != nil {
					t.Fatalf("%s: second apply: %v", o.file, err)
				}
				if got.GetGeneration() != first[o.String()] {
					t.Errorf("%s: a second apply of the same object moved its generation from %d to %d", o, first[o.String()], got.GetGeneration())
				}
			}
		})
	}
}

// TestCameraPodsAdmittedOnlyInTheExportedNamespace: with Pod Security's
// default at baseline, a Pod made from each DaemonSet's template is
// admitted in the exported namespace and refused in an unlabelled one.
func TestCameraPodsAdmittedOnlyInTheExportedNamespace(t *testing.T) {
	ctx := context.Background()
	plain := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unlabelled"}}
	if _, err := client.CoreV1().Namespaces().Create(ctx, plain, metav1.CreateOptions{}); err != nil && !strings.Contains(err.Error(), "already exists") {
		t.Fatal(err)
	}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	pods := 0
	for cfg, objs := range exports(t) {
		for _, o := range objs {
			if o.u.GetKind() == "Namespace" {
				if _, err := apply(ctx, o.u, false); err != nil {
					t.Fatalf("%s: %v", o.file, err)
				}
			}
		}
		for _, o := range objs {
			if o.u.GetKind() != "DaemonSet" {
				continue
			}
			pods++
			pod, err := podFromTemplate(o.u)
			if err != nil {
				t.Fatalf("%s: %v", o.file, err)
			}
			if _, err := client.CoreV1().Pods(pod.Namespace).Create(ctx, pod.DeepCopy(), dryRun); err != nil {
				t.Errorf("%s %s: the camera pod is refused in its own namespace %s: %v", cfg, o, pod.Namespace, err)
			}
			pod.Namespace = plain.Name
			_, err = client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, dryRun)
			if err == nil || !strings.Contains(err.Error(), `violates PodSecurity "baseline`) {
				t.Errorf("%s %s: the camera pod in an unlabelled namespace: want a baseline PodSecurity refusal, got %v", cfg, o, err)
			}
		}
	}
	if pods == 0 {
		t.Fatal("no DaemonSet exported")
	}
}

func podFromTemplate(u *unstructured.Unstructured) (*corev1.Pod, error) {
	tmpl, ok, err := unstructured.NestedMap(u.Object, "spec", "template")
	if err != nil || !ok {
		return nil, fmt.Errorf("no pod template: %v", err)
	}
	b, err := json.Marshal(tmpl)
	if err != nil {
		return nil, err
	}
	var t corev1.PodTemplateSpec
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, err
	}
	pod := &corev1.Pod{ObjectMeta: t.ObjectMeta, Spec: t.Spec}
	pod.Name = u.GetName() + "-check"
	pod.Namespace = u.GetNamespace()
	return pod, nil
}

// TestBadObjectsAreRefused: the checks above can fail: an unknown field and
// a name Kubernetes refuses are each refused by the same apply.
func TestBadObjectsAreRefused(t *testing.T) {
	ctx := context.Background()
	for _, objs := range exports(t) {
		for _, o := range objs {
			if o.u.GetKind() != "DaemonSet" {
				continue
			}
			bad := o.u.DeepCopy()
			if err := unstructured.SetNestedField(bad.Object, int64(0), "spec", "maxSurge"); err != nil {
				t.Fatal(err)
			}
			_, err := apply(ctx, bad, true)
			if err == nil || !strings.Contains(err.Error(), "field not declared in schema") {
				t.Errorf("an unknown field: want it refused as not declared in schema, got %v", err)
			}
			bad = o.u.DeepCopy()
			bad.SetName("Flicamera_GFA1")
			if _, err := apply(ctx, bad, true); err == nil || !strings.Contains(err.Error(), "RFC 1123") {
				t.Errorf("a bad name: want an RFC 1123 refusal, got %v", err)
			}
			return
		}
	}
	t.Fatal("no DaemonSet exported")
}
