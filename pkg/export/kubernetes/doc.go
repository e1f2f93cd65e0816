// Package kubernetes turns a fliswarm spec into the Kubernetes objects that
// run the same cameras under a cluster: a privileged Namespace, one
// DaemonSet per enabled node pinned to that node, the volumes as a static
// PersistentVolume and pre-bound claim (NFS) or a hostPath (bind), and the
// actor bridge as a Deployment, Service and ConfigMap. Objects are built as
// typed k8s.io/api values and written as deterministic YAML.
//
// A setting that Kubernetes cannot express is refused, never dropped: Fields
// says, for every field of the configuration, whether it is mapped, does not
// apply (and why) or is refused (and why), and Build reports every refused
// setting with its configuration path.
package kubernetes
