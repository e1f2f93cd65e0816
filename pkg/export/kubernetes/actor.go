package kubernetes

import (
	"encoding/json"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	v1 "github.com/sdss/fliswarm/api/v1"
	"github.com/sdss/fliswarm/pkg/config"
)

// The actor bridge's configuration in its pod.
const (
	ConfigKey   = "fliswarm.yaml"
	configDir   = "/etc/fliswarm"
	actorRunDir = "/run/fliswarm"
)

func configMapName(s *v1.Swarm) string { return s.Actor.Name + "-config" }

func jsonString(v any) (string, error) {
	b, err := json.Marshal(v)
	return string(b), err
}

func (b *builder) actorLabels() map[string]string {
	l := b.labels()
	l[LabelName] = b.s.Actor.Name
	l[LabelComponent] = "actor"
	return l
}

func (b *builder) actorSelector() map[string]string {
	return map[string]string{LabelName: b.s.Actor.Name, LabelComponent: "actor"}
}

// configMap holds the effective configuration the actor bridge reads: the
// same spec, in the flat layout, listening on its pod's address and
// logging to stderr.
func (b *builder) configMap() *corev1.ConfigMap {
	s := *b.s
	s.Actor.Host = "0.0.0.0"
	s.Actor.LogDir = ""
	data, err := config.Show(&s)
	if err != nil {
		b.errs.Add("(configuration)", "cannot be written for the ConfigMap: %v", err)
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: configMapName(b.s), Namespace: b.opts.Namespace, Labels: b.actorLabels()},
		Data:       map[string]string{ConfigKey: string(data)},
	}
}

// service is where tron reaches the actor.
func (b *builder) service() *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: b.s.Actor.Name, Namespace: b.opts.Namespace, Labels: b.actorLabels()},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: b.actorSelector(),
			Ports: []corev1.ServicePort{{
				Name: "actor", Protocol: corev1.ProtocolTCP,
				Port: int32(b.s.Actor.Port), TargetPort: intstr.FromString("actor"),
			}},
		},
	}
}

// deployment runs the actor bridge: one replica, replaced by stopping the
// old one first (two bridges would both answer tron).
func (b *builder) deployment(cm *corev1.ConfigMap) *appsv1.Deployment {
	labels := b.actorLabels()
	selector := b.actorSelector()
	// The configuration's revision in the template replaces the pod when
	// the ConfigMap changes.
	rev := config.Revision(b.s)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: b.s.Actor.Name, Namespace: b.opts.Namespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      labels,
					Annotations: map[string]string{"fliswarm.sdss.org/config-revision": rev},
				},
				Spec: corev1.PodSpec{
					Volumes: []corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: cm.Name}}}},
						{Name: "run", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
					},
					Containers: []corev1.Container{{
						Name:  "fliswarm",
						Image: b.opts.ActorImage,
						Args: []string{"--config", configDir + "/" + ConfigKey, "--run-dir", actorRunDir,
							"start", "--foreground", "--relay-only"},
						Env:   []corev1.EnvVar{{Name: "OBSERVATORY", Value: b.s.Observatory}},
						Ports: []corev1.ContainerPort{{Name: "actor", ContainerPort: int32(b.s.Actor.Port), Protocol: corev1.ProtocolTCP}},
						VolumeMounts: []corev1.VolumeMount{
							{Name: "config", MountPath: configDir, ReadOnly: true},
							{Name: "run", MountPath: actorRunDir},
						},
						ReadinessProbe: &corev1.Probe{
							ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromString("actor")}},
							PeriodSeconds: 5,
						},
					}},
				},
			},
		},
	}
}
