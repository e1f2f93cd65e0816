package kubernetes

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	v1 "github.com/sdss/fliswarm/api/v1"
)

// refuse reports every setting of s that the objects cannot express, and
// every name that Kubernetes would refuse, with its configuration path.
func refuse(s *v1.Swarm, p v1.Paths, o Options, errs *v1.ErrorList) {
	if o.UpdateStrategy != OnDelete && o.UpdateStrategy != Rolling {
		errs.Add("--update-strategy", "expected %s or %s, found %q", OnDelete, Rolling, o.UpdateStrategy)
	}
	name(errs, "--namespace", "namespace", o.Namespace, validation.IsDNS1123Label)
	name(errs, "actor.name", "Service name", s.Actor.Name, validation.IsDNS1035Label)
	name(errs, "actor.name", "ConfigMap name", configMapName(s), validation.IsDNS1123Subdomain)
	name(errs, "container_name", "container name", s.ContainerName, validation.IsDNS1123Label)

	if s.NetworkMode != "host" {
		errs.Add("network_mode", "refused: %q cannot be exported; the camera actor must listen on its node's address (hostNetwork), so only \"host\" is", s.NetworkMode)
	}
	if s.Privileged != nil && !*s.Privileged && len(s.Devices) > 0 {
		errs.Add("devices", "refused: Kubernetes maps no device into an unprivileged container without a device plugin; set privileged: true or devices: []")
	}
	podVolumes := map[string]string{}
	for _, vn := range s.VolumeNames() {
		podVolumes[vn] = "volumes." + vn
	}
	for i, d := range s.Devices {
		path, vn := fmt.Sprintf("devices[%d]", i), deviceVolumeName(d)
		name(errs, path, "volume name", vn, validation.IsDNS1123Label)
		if other, dup := podVolumes[vn]; dup {
			errs.Add(path, "refused: its pod volume would be named %q, as that of %s", vn, other)
		}
		podVolumes[vn] = path
	}
	if o.UpdateStrategy == Rolling && len(s.EnabledNodes) > 1 && s.MaxUnavailable < len(s.EnabledNodes) {
		errs.Add("max_unavailable", "refused with --update-strategy=%s: each node has its own DaemonSet and they all roll at once, taking down %d cameras, more than max_unavailable (%d); use --update-strategy=%s and replace one node's pod at a time", Rolling, len(s.EnabledNodes), s.MaxUnavailable, OnDelete)
	}
	if s.ImageUpdateInterval > 0 {
		errs.Add("image_update_interval", "refused: the cluster does not follow an image tag pushed again; set it to 0, push a new tag and export again")
	}
	if s.RegistryAuth != nil {
		errs.Add("registry_auth", "refused: pulling with credentials needs an imagePullSecret, and a password has no place in exported files; remove registry_auth here, create the Secret in the cluster and name it in the pod templates")
	}
	envNames(errs, "env", s.Env)
	for _, n := range s.EnabledNodes {
		node, ok := s.Nodes[n]
		if !ok {
			continue
		}
		path := p.Nodes + "." + n
		name(errs, path, "label value", n, validation.IsValidLabelValue)
		name(errs, path, "DaemonSet name", s.ContainerNameFor(n), validation.IsDNS1123Subdomain)
		host, hpath := hostname(node), path+".kubernetes_hostname"
		if node.KubernetesHostname == "" {
			hpath = path + ".host"
		}
		name(errs, hpath, "kubernetes.io/hostname value", host, validation.IsValidLabelValue)
		if c := node.Category; c != "" {
			name(errs, path+".category", "label value", c, validation.IsValidLabelValue)
		}
		if node.DockerUID != nil && *node.DockerUID < 0 {
			errs.Add(path+".docker-uid", "refused: runAsUser must not be negative, found %d", *node.DockerUID)
		}
		if node.DockerGID != nil && *node.DockerGID < 0 {
			errs.Add(path+".docker-gid", "refused: runAsGroup must not be negative, found %d", *node.DockerGID)
		}
		envNames(errs, path+".env", node.Env)
	}
	for _, vn := range s.VolumeNames() {
		path := "volumes." + vn
		name(errs, path, "volume name", vn, validation.IsDNS1123Label)
		name(errs, path, "PersistentVolume name", pvName(o, vn), validation.IsDNS1123Subdomain)
		if _, err := volumeSource(s.Volumes[vn]); err != nil {
			for _, e := range err.(v1.ErrorList) {
				errs.Add(path+e.Path, "%s", e.Message)
			}
		}
	}
}

func name(errs *v1.ErrorList, path, what, value string, check func(string) []string) {
	if msgs := check(value); len(msgs) > 0 {
		errs.Add(path, "%q is not a valid Kubernetes %s: %s", value, what, strings.Join(msgs, "; "))
	}
}

func envNames(errs *v1.ErrorList, path string, env map[string]string) {
	for k := range env {
		if msgs := validation.IsEnvVarName(k); len(msgs) > 0 {
			errs.Add(path+"."+k, "not a valid Kubernetes variable name: %s", strings.Join(msgs, "; "))
		}
	}
}

func hostname(n v1.Node) string {
	if n.KubernetesHostname != "" {
		return n.KubernetesHostname
	}
	return n.Host
}
