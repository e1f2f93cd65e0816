// Package kube checks fliswarm's Kubernetes export against a real API
// server. It is a module of its own, so that fliswarm's module needs only
// k8s.io/api, k8s.io/apimachinery and sigs.k8s.io/yaml: it builds
// kube-apiserver (from k8s.io/kubernetes, its staging modules replaced by
// their published release) and etcd (cmd/etcd) into bin/, and its test
// starts them with controller-runtime's envtest. Run it with
// `make kube-check`, which builds the binaries, exports every
// configuration with bin/fliswarm and runs the test.
package kube
